//! The whole tenant dashboard in headless Chromium (`tests/browser/dashboard_flow.mjs`) against the real control plane
//! and the real OpenID Connect provider (Dex, `tests/oidc/dex.sh`): an admin binding signs in with its token, sees an
//! alert appear on the open overview when a pod starts failing, stops, starts, restarts and scales an app with the
//! page's buttons, invites a member with the view role and downloads a kubeconfig that the real kubectl then uses; it
//! is refused another instance's page and a cross-site form; the member signs in through Dex, sees no control and a
//! forged action of theirs is refused; through Cloud Foundry's sign-on (Dex as UAA, a stand-in Cloud Controller that
//! asks Dex who the token is) a user who may manage the instance gets the controls and one who may not is refused.
//! Each outcome is checked in the cluster, and a screenshot of every page is kept
//! under the test's target folder (`dashboard-flow-<id>/`).

mod support;

use std::process::Command;

use caas_broker::tenant::apps::{ANNOTATION_REPLICAS_BEFORE_STOP, ANNOTATION_RESTARTED_AT};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::broker::*;
use support::browser::Probe;
use support::cloud_controller::{PermissionTable, stand_in_cloud_controller};
use support::cluster::cluster;
use support::dashboard::*;
use support::dex::listener_known_to_dex;

/// Base64 of the SHA-256 of the public key of the certificate in `pem_file`: what Chromium's
/// `--ignore-certificate-errors-spki-list` pins (the provider's certificate only, not any certificate).
fn spki_sha256(pem_file: &std::path::Path) -> String {
    let script = "openssl x509 -in \"$1\" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl base64 -A";
    let out = Command::new("sh").args(["-c", script, "spki"]).arg(pem_file).output().expect("run openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("base64").trim().to_owned()
}

async fn tenant_deployment(namespace: &str) -> Api<Deployment> {
    let deployments = Api::<Deployment>::namespaced(cluster().admin().await, namespace);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } },
                                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] } } }
    }))
    .expect("deployment");
    deployments.create(&PostParams::default(), &deployment).await.expect("create the tenant's deployment");
    deployments
}

#[tokio::test]
async fn a_tenant_goes_through_the_whole_dashboard_in_headless_chromium() {
    // The dashboard where Dex sends its users back: a port of our own, known to Dex as a redirect URI.
    let (listener, dex) = listener_known_to_dex();
    let base_url = format!("http://{}", listener.local_addr().expect("address"));
    let permissions = PermissionTable::default();
    let (cloud_controller, _cc) = stand_in_cloud_controller(&dex, permissions.clone()).await;
    let served = serve_on(listener, |settings| {
        settings.dashboard.base_url = Some(base_url.clone());
        settings.dashboard.oidc = Some(dex.oidc_settings());
        settings.dashboard.cf_sso = Some(dex.cf_sso_settings(&cloud_controller));
    })
    .await;
    let broker = &served.broker;
    let (id, url, admin_token) = instance_with_binding(broker, "admin").await;
    let (other, other_url, _) = instance_with_binding(broker, "view").await;
    assert!(url.starts_with(&base_url), "{url}");
    let namespace = broker.namespace(&id);
    let deployments = tenant_deployment(&namespace).await;
    let member = "alice@example.test";
    let password = dex.users.get(member).expect("alice's password").clone();
    // Through Cloud Foundry's sign-on, Bob may manage this instance and Alice nothing.
    let manager = "bob@example.test";
    let manager_password = dex.users.get(manager).expect("bob's password").clone();
    permissions.lock().expect("table").insert((id.clone(), manager.to_owned()), (true, true));
    let spki = spki_sha256(&dex.ca_file.with_file_name("dex.crt"));

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-flow-{id}"));
    let (shots, downloads) = (dir.join("screenshots"), dir.join("downloads"));
    for folder in [&shots, &downloads] {
        std::fs::create_dir_all(folder).expect("probe folders");
    }
    let profile = dir.join("profile");
    let envs: [(&str, &std::ffi::OsStr); 13] = [
        ("PROBE_URL", url.as_ref()),
        ("PROBE_TOKEN", admin_token.as_ref()),
        ("OTHER_URL", other_url.as_ref()),
        ("MEMBER_EMAIL", member.as_ref()),
        ("MEMBER_PASSWORD", password.as_ref()),
        ("CF_MANAGER", manager.as_ref()),
        ("CF_MANAGER_PASSWORD", manager_password.as_ref()),
        ("CF_STRANGER", member.as_ref()),
        ("CF_STRANGER_PASSWORD", password.as_ref()),
        ("PROVIDER_SPKI", spki.as_ref()),
        ("SCREENSHOT_DIR", shots.as_os_str()),
        ("DOWNLOAD_DIR", downloads.as_os_str()),
        ("PROBE_USER_DATA_DIR", profile.as_os_str()),
    ];
    let mut probe = Probe::start("dashboard_flow.mjs", &envs);

    // The overview is open: now a pod starts failing, and the page must show it by itself.
    let ready = probe.next().await;
    assert_eq!(ready["event"], "ready-for-alert", "{ready}");
    crash_looping_pod(&namespace).await;
    probe.go_on();
    let report = probe.report().await;

    // 1–2. Signed in as the admin binding; the alert came without a reload.
    assert_eq!(report["overviewUrl"], Value::String(url.clone()), "{report}");
    assert_eq!(report["signedInAs"], Value::String(format!("Signed in as binding {id}-admin (admin)")), "{report}");
    assert!(!report["alertsBefore"].as_str().unwrap_or_default().contains("CrashLoopBackOff"), "{report}");
    assert!(report["alertsAfter"].as_str().unwrap_or_default().contains("Pod/web-1 (web)"), "{report}");
    assert_eq!(report["alertWithoutReload"], true, "the alert came into the open page: {report}");

    // 3. The app went through stop, start, restart and scale: the cluster shows the last two.
    let notices: Vec<&str> = report["notices"].as_array().expect("notices").iter().filter_map(Value::as_str).collect();
    assert_eq!(
        notices,
        ["Requested: stop: web", "Requested: start: web", "Requested: restart: web", "Requested: scale: web"]
    );
    let web = deployments.get("web").await.expect("the app");
    let annotations = web.metadata.annotations.clone().unwrap_or_default();
    assert!(!annotations.contains_key(ANNOTATION_REPLICAS_BEFORE_STOP), "started again: {annotations:?}");
    let spec = web.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2), "scaled to two");
    let template = spec.template.metadata.and_then(|m| m.annotations).unwrap_or_default();
    assert!(template.contains_key(ANNOTATION_RESTARTED_AT), "restarted: {template:?}");

    // 4. The member exists as an identity of this instance with the view role, and only that.
    assert!(report["members"].as_str().unwrap_or_default().contains(member), "{report}");
    let account = caas_broker::k8s::names::member_account(&id, member);
    let identities =
        Api::<ServiceAccount>::namespaced(broker.client.clone(), &broker.settings.kubernetes.identity_namespace);
    assert!(identities.get_opt(&account).await.expect("get").is_some(), "the member's ServiceAccount");
    let binding =
        Api::<RoleBinding>::namespaced(broker.client.clone(), &namespace).get(&account).await.expect("binding");
    assert_eq!(binding.role_ref.name, "view");

    // 5. The downloaded kubeconfig works with the real kubectl, as the admin binding, in this namespace only.
    let file = std::path::PathBuf::from(report["kubeconfig"].as_str().expect("the kubeconfig's path"));
    assert_eq!(report["kubeconfigName"], Value::String(format!("{namespace}.kubeconfig")));
    assert!(report["kubectlCommands"].as_str().unwrap_or_default().contains("$env:KUBECONFIG"), "{report}");
    let kubectl = |args: &[&str]| cluster().kubectl(&file, args);
    let (listed, out, err) = kubectl(&["get", "deployments", "-o", "name"]);
    assert!(listed && out.contains("deployment.apps/web"), "{out} {err}");
    let (elsewhere, _, err) = kubectl(&["get", "pods", "-n", &broker.namespace(&other)]);
    assert!(!elsewhere && err.contains("forbidden"), "{err}");

    // 6. Refusals.
    assert_eq!(report["otherInstanceStatus"], 403, "{report}");
    assert_eq!(report["crossSiteStatus"], 403, "{report}");

    // 7. The member came through Dex, as their own identity, with no control; their forged scale changed nothing.
    assert!(report["providerLoginUrl"].as_str().unwrap_or_default().starts_with(&dex.issuer), "{report}");
    assert_eq!(report["memberUrl"], Value::String(url.clone()), "{report}");
    assert_eq!(report["memberSignedInAs"], Value::String(format!("Signed in as member {member} (view)")), "{report}");
    assert!(report["memberIdentity"].as_str().unwrap_or_default().ends_with(&account), "{report}");
    assert_eq!((report["memberControls"].as_u64(), report["memberViewOnly"].as_u64()), (Some(0), Some(1)), "{report}");
    assert_eq!(report["memberForgedStatus"], 403, "{report}");
    assert!(report["memberForgedBody"].as_str().unwrap_or_default().contains("forbidden"), "{report}");
    assert_eq!(deployments.get("web").await.expect("the app").spec.and_then(|s| s.replicas), Some(2));

    // 8. Cloud Foundry's sign-on: the manager is an admin member named after the provider's user id and gets the
    // controls; the user the Cloud Controller gives nothing is refused and becomes no member.
    let cf_manager = report["cfManagerSignedInAs"].as_str().unwrap_or_default();
    assert!(cf_manager.starts_with("Signed in as member cf:") && cf_manager.ends_with(" (admin)"), "{report}");
    let cf_who = report["cfManagerIdentity"].as_str().unwrap_or_default();
    let cf_account = cf_who.rsplit(':').next().unwrap_or_default();
    assert!(cf_account.starts_with("caas-member-") && cf_account != account, "{report}");
    let cf_binding = Api::<RoleBinding>::namespaced(broker.client.clone(), &namespace).get(cf_account).await;
    assert_eq!(cf_binding.expect("the CF manager's binding").role_ref.name, "admin");
    assert!(report["cfManagerControls"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(report["cfStrangerStatus"], 403, "{report}");
    let members = served.domain.members(&id).await.expect("members");
    assert_eq!(members.len(), 3, "the owner, the invited member, the CF manager — not the stranger: {members:?}");

    assert_eq!(report["consoleErrors"], json!([]), "no error or policy violation in any page: {report}");
    let screenshots = report["screenshots"].as_array().expect("screenshots");
    assert_eq!(screenshots.len(), 10, "{report}");
    for shot in screenshots.iter().filter_map(Value::as_str) {
        let png = std::fs::read(shot).unwrap_or_else(|e| panic!("{shot}: {e}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "a real screenshot at {shot}");
    }
    std::fs::remove_file(&file).ok();
    broker.deprovision(&other, SMALL).await;
    broker.deprovision(&id, SMALL).await;
}
