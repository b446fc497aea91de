//! The tenant dashboard against the real control plane, over real HTTP on its own listener: provision returns its
//! URL, a binding's token and the owner's sign in (checked by TokenReview), the overview is read as that binding (quota bars, an
//! alert for a crash-looping pod), and everything that must be refused is: another instance's pages, another
//! instance's token, a cross-site form, a visit without a session. Then headless Chromium does the same as a tenant.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use axum::http::Method;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::broker::*;
use support::browser::run_to_end;
use support::cluster::{cluster, eventually};
use support::dashboard::*;
use support::http::{form_encode, send};

#[tokio::test]
async fn a_binding_signs_in_sees_its_cluster_as_itself_and_nothing_of_another() {
    let served = serve().await;
    let broker = &served.broker;
    let (a, url_a, token_a) = instance_with_binding(broker, "edit").await;
    let (b, url_b, token_b) = instance_with_binding(broker, "view").await;
    assert_eq!(url_a, format!("{}/instances/{a}", served.origin), "dashboard_url is the dashboard's listener");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{a}"), None).await;
    assert_eq!(fetched.body["dashboard_url"], Value::String(url_a.clone()), "GET instance returns it too");
    crash_looping_pod(&broker.namespace(&a)).await;
    let (overview_a, overview_b) = (path_of(&url_a, &served.origin), path_of(&url_b, &served.origin));
    let login_a = format!("{overview_a}/login");

    // Without a session: sent to the sign-in page, which carries the security headers and no script.
    let anonymous = send(served.address, "GET", &overview_a, &[], "").await;
    assert_eq!((anonymous.status, anonymous.header("location")), (303, Some(login_a.as_str())));
    let form = send(served.address, "GET", &login_a, &[], "").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"type="password""#) && !form.body.contains("<script"), "{}", form.body);
    let policy = form.header("content-security-policy").expect("CSP");
    assert!(policy.contains("default-src 'self'") && policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(form.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(form.header("referrer-policy"), Some("no-referrer"));

    // Refused at sign-in: another instance's token, a token that is no token, a cross-site form, no proof of origin.
    let other = sign_in(&served, &login_a, &token_b, &served.origin).await;
    assert_eq!(other.status, 403, "{other:?}");
    assert!(other.header("set-cookie").is_none() && other.body.contains("does not open this instance"));
    assert_eq!(sign_in(&served, &login_a, "not-a-token", &served.origin).await.status, 403);
    let cross_site = sign_in(&served, &login_a, &token_a, "https://evil.example").await;
    assert_eq!(cross_site.status, 403, "{cross_site:?}");
    assert!(cross_site.header("set-cookie").is_none(), "no session from a cross-site form");
    let body = format!("token={}", form_encode(&token_a));
    let no_origin =
        send(served.address, "POST", &login_a, &[("content-type", "application/x-www-form-urlencoded")], &body);
    assert_eq!(no_origin.await.status, 403);

    // Signed in with the binding's own token.
    let signed_in = sign_in(&served, &login_a, &token_a, &served.origin).await;
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some(overview_a.as_str())), "{signed_in:?}");
    let set_cookie = signed_in.header("set-cookie").expect("cookie").to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Max-Age=", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
    }
    assert!(!set_cookie.contains(&token_a), "the cookie holds a session id, not the token");
    let cookie = cookie_of(&signed_in);

    // The overview, read as the binding: the plan, quota bars, container defaults, pods, workloads, the alert.
    let page = eventually(Duration::from_secs(30), "the crash loop on the overview", || async {
        let page = send(served.address, "GET", &overview_a, &[("cookie", &cookie)], "").await;
        assert_eq!(page.status, 200, "{page:?}");
        page.body.contains("CrashLoopBackOff").then_some(page)
    })
    .await;
    let html = &page.body;
    assert!(html.contains(r#"<dd id="plan">caas / small</dd>"#), "{html}");
    assert!(html.contains(r#"<meter id="quota-pods""#) && html.contains("1 / 20"), "quota bar for pods: {html}");
    assert!(html.contains(r#"<meter id="quota-requests.cpu""#) && html.contains("100m / 2"), "{html}");
    // In words, the raw name on hover.
    assert!(html.contains(r#"title="requests.cpu">CPU reserved</label>"#), "{html}");
    assert!(html.contains(r#"title="count/deployments.apps">Deployments</label>"#), "{html}");
    assert!(html.contains("512Mi") && html.contains("128Mi"), "the LimitRange's defaults: {html}");
    assert!(html.contains("<span>Running</span> <strong>1</strong>"), "pods by state: {html}");
    assert!(html.contains("Pod/web-1 (web)") && html.contains("kubectl logs --previous"), "the alert says what to do");
    assert!(html.contains(&format!("caas-broker-identities:caas-binding-{a}-edit")), "read as the binding: {html}");
    assert!(html.contains(&format!(">Signed in as binding {a}-edit (edit)</span>")), "named as its user knows it");
    assert!(!html.contains(&token_a) && !html.contains("<script>"), "no token and no inline script in the page");
    let korean_headers = [("cookie", cookie.as_str()), ("accept-language", "ko-KR,ko;q=0.9")];
    let korean = send(served.address, "GET", &overview_a, &korean_headers, "").await;
    assert!(korean.body.contains(r#"<html lang="ko">"#) && korean.body.contains("쿼터"), "{}", korean.body);
    assert!(korean.body.contains(r#"title="requests.cpu">예약된 CPU</label>"#), "{}", korean.body);
    assert!(korean.body.contains(&format!(">로그인 계정 바인딩 {a}-edit (edit)</span>")), "{}", korean.body);

    // kubectl: a kubeconfig for the binding's own identity, the CA embedded, a new token that lasts an hour; it works
    // with the real kubectl in A's namespace and nowhere else. Minting it is a change: refused cross-site.
    let kubeconfig_path = format!("{overview_a}/kubeconfig");
    let evil = [("cookie", cookie.as_str()), ("origin", "https://evil.example")];
    assert_eq!(send(served.address, "POST", &kubeconfig_path, &evil, "").await.status, 403);
    let own = [("cookie", cookie.as_str()), ("origin", served.origin.as_str())];
    let download = send(served.address, "POST", &kubeconfig_path, &own, "").await;
    assert_eq!(download.status, 200, "{download:?}");
    let namespace_a = broker.namespace(&a);
    let attachment = format!("attachment; filename=\"{namespace_a}.kubeconfig\"");
    assert_eq!(download.header("content-disposition"), Some(attachment.as_str()));
    assert_eq!(download.header("cache-control"), Some("no-store"));
    let yaml: Value = serde_norway::from_str(&download.body).expect("a kubeconfig");
    assert!(yaml["clusters"][0]["cluster"]["certificate-authority-data"].is_string(), "CA embedded: {yaml}");
    assert_eq!(yaml["contexts"][0]["context"]["namespace"], Value::String(namespace_a.clone()));
    let token = yaml["users"][0]["user"]["token"].as_str().expect("token");
    assert_ne!(token, token_a, "a token of its own, not the one pasted");
    let claims = token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).expect("base64url claims");
    let claims: Value = serde_json::from_slice(&claims).expect("JSON claims");
    let lifetime = claims["exp"].as_i64().unwrap_or_default() - claims["iat"].as_i64().unwrap_or_default();
    assert_eq!(lifetime, caas_broker::lifecycle::KUBECONFIG_TOKEN_SECONDS, "short-lived: {claims}");
    assert!(claims["sub"].as_str().is_some_and(|sub| sub.ends_with(&format!("caas-binding-{a}-edit"))), "{claims}");
    let file = std::env::temp_dir().join(format!("{namespace_a}-{}.kubeconfig", std::process::id()));
    std::fs::write(&file, &download.body).expect("save the kubeconfig");
    let kubectl = |args: &[&str]| cluster().kubectl(&file, args);
    let (listed, out, err) = kubectl(&["get", "pods", "-o", "name"]);
    assert!(listed && out.contains("pod/web-1"), "kubectl in its namespace: {out} {err}");
    let (allowed, out, _) = kubectl(&["auth", "can-i", "create", "deployments"]);
    assert!(allowed && out.trim() == "yes", "the binding's edit role: {out}");
    let (elsewhere, _, err) = kubectl(&["get", "pods", "-n", &broker.namespace(&b)]);
    assert!(!elsewhere && err.contains("forbidden"), "nothing of another namespace: {err}");
    std::fs::remove_file(&file).ok();

    // Instance B's pages are not A's user's: its overview, its sign-in page and a sign-in post, with A's session.
    for (method, path) in [("GET", overview_b.clone()), ("GET", format!("{overview_b}/login"))] {
        let answer = send(served.address, method, &path, &[("cookie", &cookie)], "").await;
        assert_eq!(answer.status, 403, "{method} {path}: {answer:?}");
        assert!(!answer.body.contains(&b), "nothing of B is shown");
    }
    let headers = [
        ("cookie", cookie.as_str()),
        ("origin", served.origin.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let body = format!("token={}", form_encode(&token_b));
    assert_eq!(send(served.address, "POST", &format!("{overview_b}/login"), &headers, &body).await.status, 403);

    // Sign-out: refused cross-site, done same-origin; the session is then gone.
    let evil = [("cookie", cookie.as_str()), ("origin", "https://evil.example")];
    assert_eq!(send(served.address, "POST", "/logout", &evil, "").await.status, 403);
    let same_site = [("cookie", cookie.as_str()), ("sec-fetch-site", "same-origin")];
    let out = send(served.address, "POST", "/logout", &same_site, "").await;
    assert_eq!((out.status, out.header("location")), (303, Some(login_a.as_str())), "{out:?}");
    assert!(out.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    let after = send(served.address, "GET", &overview_a, &[("cookie", &cookie)], "").await;
    assert_eq!(after.status, 303, "the session ended: {after:?}");

    // The owner's token opens the instance too (the owner is an identity of it, like each binding).
    let admin = cluster().admin().await;
    let identities = Api::<ServiceAccount>::namespaced(admin, &broker.settings.kubernetes.identity_namespace);
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "expirationSeconds": 600 } })).expect("request");
    let owner = caas_broker::k8s::names::owner_account(&a);
    let issued = identities.create_token_request(&owner, &PostParams::default(), &request).await.expect("owner token");
    let owner_token = issued.status.and_then(|status| status.token).expect("token");
    let as_owner = sign_in(&served, &login_a, &owner_token, &served.origin).await;
    assert_eq!((as_owner.status, as_owner.header("location")), (303, Some(overview_a.as_str())), "{as_owner:?}");
    let owner_cookie = cookie_of(&as_owner);
    let owner_page = send(served.address, "GET", &overview_a, &[("cookie", &owner_cookie)], "").await;
    assert!(owner_page.body.contains(">Signed in as owner</span>"), "{}", owner_page.body);

    broker.deprovision(&a, SMALL).await;
    broker.deprovision(&b, SMALL).await;
}

#[tokio::test]
async fn headless_chromium_signs_in_with_a_token_and_sees_the_quota_and_the_alert() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, token) = instance_with_binding(broker, "edit").await;
    crash_looping_pod(&broker.namespace(&id)).await;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-{id}"));
    let (report, screenshot) = chromium_reads_the_overview(&dir, &url, &token, "en-US").await;
    assert_eq!(report["signInUrl"], Value::String(format!("{url}/login")), "{report}");
    assert_eq!(report["finalUrl"], Value::String(url.clone()), "{report}");
    assert_eq!(report["lang"], "en");
    assert_eq!(report["who"], Value::String(format!("Signed in as binding {id}-edit (edit)")), "{report}");
    assert_eq!(report["plan"], "caas / small");
    let quota = report["quota"].as_str().unwrap_or_default();
    assert!(quota.contains("Pods") && quota.contains("1 / 20") && quota.contains("Memory reserved"), "{report}");
    assert!(report["quotaBars"].as_u64().unwrap_or(0) >= 10, "a bar per quota resource: {report}");
    let alerts = report["alerts"].as_str().unwrap_or_default();
    assert!(alerts.contains("Pod/web-1 (web)") && alerts.contains("CrashLoopBackOff"), "{report}");
    assert_eq!(report["cookieVisibleToScripts"], false, "{report}");
    assert_eq!(report["consoleErrors"], json!([]), "no policy violation or error in the page: {report}");
    assert_eq!(report["phoneOverflowPx"], 0, "readable on a phone without scrolling sideways: {report}");
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", screenshot.display());

    // The same in Korean: the identity line and the quota in words.
    let (korean, screenshot) = chromium_reads_the_overview(&dir, &url, &token, "ko-KR").await;
    assert_eq!(korean["lang"], "ko", "{korean}");
    assert_eq!(korean["who"], Value::String(format!("로그인 계정 바인딩 {id}-edit (edit)")), "{korean}");
    let quota = korean["quota"].as_str().unwrap_or_default();
    assert!(quota.contains("파드") && quota.contains("예약된 메모리"), "{korean}");
    assert_eq!(korean["consoleErrors"], json!([]), "{korean}");
    assert_eq!(korean["phoneOverflowPx"], 0, "readable on a phone without scrolling sideways: {korean}");
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {}", screenshot.display());
    broker.deprovision(&id, SMALL).await;
}

/// Signs in to `url` with `token` in headless Chromium speaking `locale` and reports what the overview shows (see
/// tests/browser/dashboard_probe.mjs), with the path of its screenshot, kept under `dir`.
async fn chromium_reads_the_overview(dir: &std::path::Path, url: &str, token: &str, locale: &str) -> (Value, PathBuf) {
    let dir = dir.join(locale);
    std::fs::create_dir_all(&dir).expect("probe directory");
    let screenshot = dir.join("overview.png");
    let profile = dir.join("profile");
    let envs: [(&str, &std::ffi::OsStr); 5] = [
        ("PROBE_URL", url.as_ref()),
        ("PROBE_TOKEN", token.as_ref()),
        ("PROBE_USER_DATA_DIR", profile.as_os_str()),
        ("PROBE_SCREENSHOT", screenshot.as_os_str()),
        ("PROBE_LOCALE", locale.as_ref()),
    ];
    let report = run_to_end("dashboard_probe.mjs", &envs, Duration::from_secs(120), &dir).await;
    (report, screenshot)
}
