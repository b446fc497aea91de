//! The dashboard's live workloads view against the real control plane, over real HTTP: a binding signs in and sees a
//! Deployment, its ReplicaSet and its pods (run by kwok's simulated nodes) read as itself; one object as YAML; the live
//! stream says `pods` when the admin creates or deletes a pod; three viewers of one namespace share one watch per
//! kind, and none leaves none (the broker's `/metrics`); signing out ends a stream; another instance's stream, YAML
//! and logs are refused; a pod's logs (kwok keeps none: the page and the stream say so). Then headless Chromium sees a
//! new pod appear without a reload and no policy violation; and an identity RBAC lets list pods only sees pods and
//! "not allowed" for the rest. One sign-in opens at most 8 streams and one identity 16 (429 beyond), given back when
//! they close; an unbind ends its sign-in's stream.
//!
//! The watch and viewer gauges are the process's: the tests of this file that open live pages take [`LIVE`] in turn.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::broker::*;
use support::cluster::{cluster, eventually};
use support::dashboard::{
    Served, cookie_of, gauge, instance_with_binding, live_probe_report, serve, sign_in, start_live_probe,
};
use support::http::send;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The tests that open live pages, one at a time (the gauges they read are the process's).
static LIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// An open event stream, read as raw bytes as they come.
struct EventStream {
    connection: tokio::net::TcpStream,
    seen: String,
}

impl EventStream {
    /// Opens `path` with `cookie`; returns the status line and headers, and the stream when it is one.
    async fn open(address: SocketAddr, path: &str, cookie: &str) -> (String, Option<EventStream>) {
        let mut connection = tokio::net::TcpStream::connect(address).await.expect("connect");
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: {address}\r\ncookie: {cookie}\r\naccept: text/event-stream\r\n\r\n");
        connection.write_all(request.as_bytes()).await.expect("send");
        let mut stream = EventStream { connection, seen: String::new() };
        let head = stream.until("\r\n\r\n", Duration::from_secs(30)).await;
        let is_stream = head.starts_with("HTTP/1.1 200") && head.to_ascii_lowercase().contains("text/event-stream");
        (head, is_stream.then_some(stream))
    }

    /// Reads until the dashboard closes the stream (its last chunk); panics after `limit`.
    async fn until_closed(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buffer = [0u8; 4096];
        loop {
            let read = tokio::time::timeout_at(deadline, self.connection.read(&mut buffer)).await;
            let count = read.unwrap_or_else(|_| panic!("the stream still open after {limit:?}")).expect("read");
            self.seen.push_str(&String::from_utf8_lossy(&buffer[..count]));
            if count == 0 || self.seen.ends_with("0\r\n\r\n") {
                return;
            }
        }
    }

    /// Reads until what was read since the last call contains `wanted`, and returns what came before it; panics
    /// after `limit`.
    async fn until(&mut self, wanted: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        let mut buffer = [0u8; 4096];
        while !self.seen.contains(wanted) {
            let read = tokio::time::timeout_at(deadline, self.connection.read(&mut buffer)).await;
            let read = read.unwrap_or_else(|_| panic!("no {wanted:?} within {limit:?}; read: {}", self.seen));
            let count = read.expect("read");
            assert!(count > 0, "the stream ended before {wanted:?}: {}", self.seen);
            self.seen.push_str(&String::from_utf8_lossy(&buffer[..count]));
        }
        let (before, after) = self.seen.split_once(wanted).unwrap_or_default();
        let before = before.to_owned();
        self.seen = after.to_owned();
        before
    }
}

/// The value of a gauge on the broker's `/metrics`.
async fn watches_and_viewers(broker: &TestBroker) -> (i64, i64) {
    (gauge(broker, "caas_broker_dashboard_watches").await, gauge(broker, "caas_broker_dashboard_viewers").await)
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "containers": [{ "name": "app", "image": "example.invalid/app:1" }] }
    }))
    .expect("pod")
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "replicas": replicas, "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } },
                                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:2" }] } } }
    }))
    .expect("deployment")
}

/// A token of the instance's owner (its `admin`), as the broker would hand it out.
async fn owner_token(served: &Served, instance_id: &str) -> String {
    let admin = cluster().admin().await;
    let identities = Api::<ServiceAccount>::namespaced(admin, &served.broker.settings.kubernetes.identity_namespace);
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "expirationSeconds": 600 } })).expect("request");
    let owner = caas_broker::k8s::names::owner_account(instance_id);
    let issued = identities.create_token_request(&owner, &PostParams::default(), &request).await.expect("token");
    issued.status.and_then(|status| status.token).expect("token")
}

#[tokio::test]
async fn the_workloads_view_is_read_as_the_user_and_kept_live_by_one_shared_watch_per_kind() {
    let _live = LIVE.lock().await;
    install_tenant_guard();
    let served = serve().await;
    let broker = &served.broker;
    let (a, _, token_a) = instance_with_binding(broker, "edit").await;
    let (b, _, _) = instance_with_binding(broker, "view").await;
    let namespace = broker.namespace(&a);
    let base = format!("/instances/{a}");
    let signed_in = sign_in(&served, &format!("{base}/login"), &token_a, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let cookie = cookie_of(&signed_in);
    let get = |path: String| {
        let cookie = cookie.clone();
        let address = served.address;
        async move { send(address, "GET", &path, &[("cookie", &cookie)], "").await }
    };

    // The broker's watch RoleBinding was made at provision, protected: the tenant's owner cannot take it away.
    let admin = cluster().admin().await;
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &namespace);
    let watch_binding = bindings.get("caas-broker-dashboard-watch").await.expect("the broker's watch RoleBinding");
    assert_eq!(watch_binding.role_ref.name, "caas-broker-dashboard-watch");
    let owner = kube::Client::try_from(caas_broker::k8s::as_user(
        &cluster().admin_config().await,
        &owner_token(&served, &a).await,
    ))
    .expect("owner client");
    let as_owner = Api::<RoleBinding>::namespaced(owner, &namespace);
    let refused = as_owner.delete("caas-broker-dashboard-watch", &DeleteParams::default()).await;
    assert!(matches!(&refused, Err(kube::Error::Api(status)) if status.code == 403), "{refused:?}");

    // A Deployment of two pods, run by simulated nodes: the page lists it, its ReplicaSet and its pods, as the binding.
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &namespace);
    deployments.create(&PostParams::default(), &deployment("web", 2)).await.expect("create the deployment");
    let page = eventually(Duration::from_secs(60), "the deployment ready on the workloads page", || async {
        let page = get(format!("{base}/workloads")).await;
        assert_eq!(page.status, 200, "{page:?}");
        page.body.contains(r#"<td class="num">2/2</td>"#).then_some(page)
    })
    .await;
    let html = &page.body;
    assert!(
        html.contains(&format!(r#"<a href="{base}/objects/deployments/web" id="deployments-web">web</a>"#)),
        "{html}"
    );
    assert!(html.contains(&format!(r#"<a href="{base}/objects/replicasets/web-"#)), "the ReplicaSet: {html}");
    let pods = Api::<Pod>::namespaced(admin.clone(), &namespace);
    let web_pods = pods.list(&ListParams::default().labels("app=web")).await.expect("pods").items;
    assert_eq!(web_pods.len(), 2);
    for web_pod in &web_pods {
        let name = web_pod.metadata.name.as_deref().expect("name");
        assert!(html.contains(&format!(r#"<tr data-name="{name}">"#)), "pod {name}: {html}");
        assert!(html.contains(&format!(r#"href="{base}/pods/{name}/logs""#)), "its logs: {html}");
    }
    assert!(html.contains("example.invalid/web:2") && html.contains(r#"sse-connect="/instances/"#), "{html}");
    assert!(html.contains(r#"<script src="/static/htmx-2.0.11.min.js" defer></script>"#), "{html}");
    assert!(!html.contains(&token_a) && !html.contains("<script>") && !html.contains("style="), "{html}");
    let policy = page.header("content-security-policy").expect("CSP");
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"), "{policy}");
    let htmx = get("/static/htmx-2.0.11.min.js".to_owned()).await;
    assert_eq!((htmx.status, htmx.header("cache-control")), (200, Some("public, max-age=31536000, immutable")));
    assert!(htmx.header("content-type").is_some_and(|t| t.starts_with("text/javascript")) && htmx.body.len() > 40_000);

    // One kind's section alone, and one object as YAML (without its managed fields); 404 for what is not there.
    let alerts = get(format!("{base}/alerts")).await;
    assert_eq!(alerts.status, 200, "{alerts:?}");
    let live_alerts =
        format!(r#"<section class="card" id="alerts" hx-get="{base}/alerts" hx-trigger="sse:pods, sse:events"#);
    assert!(alerts.body.starts_with(&live_alerts), "the overview's alerts, live: {}", alerts.body);
    let section = get(format!("{base}/workloads/deployments")).await;
    assert_eq!(section.status, 200);
    assert!(section.body.starts_with(r#"<section class="card live" id="kind-deployments""#), "{}", section.body);
    let yaml = get(format!("{base}/objects/deployments/web")).await;
    assert_eq!(yaml.status, 200, "{yaml:?}");
    assert!(yaml.body.contains("kind: Deployment") && yaml.body.contains("replicas: 2"), "{}", yaml.body);
    assert!(!yaml.body.contains("managedFields"), "{}", yaml.body);
    let sneaky = ["objects/deployments/web%2F..%2F..%2Fsecrets%2Fx", "pods/web%2F..%2Fx/logs"];
    for missing in
        ["objects/deployments/nothing", "objects/secrets/anything", "workloads/secrets"].iter().chain(&sneaky)
    {
        assert_eq!(get(format!("{base}/{missing}")).await.status, 404, "{missing}");
    }

    // Live: the stream says `pods` when the admin creates a pod, and again when it deletes it; nothing else leaks.
    let (head, stream) = EventStream::open(served.address, &format!("{base}/live"), &cookie).await;
    let mut first = stream.unwrap_or_else(|| panic!("an event stream: {head}"));
    assert!(head.to_ascii_lowercase().contains("content-security-policy"), "{head}");
    // The new watches say when they have caught up (the page reads every kind again once); then a new pod is news.
    first.until("event: pods\ndata: pods\n", Duration::from_secs(30)).await;
    pods.create(&PostParams::default(), &pod("probe-1")).await.expect("create a pod");
    first.until("event: pods\ndata: pods\n", Duration::from_secs(30)).await;
    pods.delete("probe-1", &DeleteParams::default().grace_period(0)).await.expect("delete the pod");
    first.until("event: pods\n", Duration::from_secs(30)).await;

    // Three viewers of one namespace: one watch per kind (the binding's `edit` may watch all eight), not three.
    let (_, second) = EventStream::open(served.address, &format!("{base}/live"), &cookie).await;
    let (_, third) = EventStream::open(served.address, &format!("{base}/live"), &cookie).await;
    assert!(second.is_some() && third.is_some());
    assert_eq!(watches_and_viewers(broker).await, (8, 3), "one watch per kind for three viewers");
    let (mut second, mut third) = (second.expect("second"), third.expect("third"));
    // The later viewers joined running watches: they read every kind again once, then hear what is new.
    for viewer in [&mut second, &mut third] {
        viewer.until("event: pods\n", Duration::from_secs(30)).await;
    }
    pods.create(&PostParams::default(), &pod("probe-2")).await.expect("create a pod");
    for viewer in [&mut first, &mut second, &mut third] {
        viewer.until("event: pods\n", Duration::from_secs(30)).await;
    }

    // Another instance's stream, YAML, workloads and logs: refused with A's session.
    for path in ["live", "workloads", "workloads/pods", "objects/deployments/web", "pods/web/logs", "alerts"] {
        let answer = get(format!("/instances/{b}/{path}")).await;
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
    }
    let anonymous = send(served.address, "GET", &format!("{base}/live"), &[], "").await;
    assert_eq!(anonymous.status, 401, "no stream without a session");

    // Logs: kwok's nodes keep none; the page says so, and the stream says so once and ends.
    let web_pod = web_pods[0].metadata.name.clone().expect("name");
    let logs = get(format!("{base}/pods/{web_pod}/logs")).await;
    assert_eq!(logs.status, 200, "{logs:?}");
    assert!(logs.body.contains(r#"<option value="web" selected>web</option>"#), "{}", logs.body);
    assert!(logs.body.contains("No logs: the container has not started, or its node keeps none."), "{}", logs.body);
    let followed = get(format!("{base}/pods/{web_pod}/logs/stream?container=web")).await;
    assert_eq!(followed.status, 200, "{followed:?}");
    assert!(followed.body.contains("event: lines\ndata: No logs"), "{}", followed.body);
    assert_eq!(get(format!("{base}/pods/{web_pod}/logs?container=nope")).await.status, 404);
    assert_eq!(get(format!("{base}/pods/nothing/logs")).await.status, 404);

    // Every viewer gone: every watch stopped.
    drop((first, second, third));
    eventually(Duration::from_secs(40), "no watch once no one views", || async {
        (watches_and_viewers(broker).await == (0, 0)).then_some(())
    })
    .await;

    // An instance whose broker RoleBinding is missing (made before the live view) gets it at its first viewer.
    bindings.delete("caas-broker-dashboard-watch", &DeleteParams::default()).await.expect("delete as admin");
    let (head, again) = EventStream::open(served.address, &format!("{base}/live"), &cookie).await;
    let mut again = again.unwrap_or_else(|| panic!("an event stream: {head}"));
    bindings.get("caas-broker-dashboard-watch").await.expect("made again at the first viewer");

    // Signing out ends the page's stream too (its session is checked every 15 s), and with it the watches.
    let same_site = [("cookie", cookie.as_str()), ("sec-fetch-site", "same-origin")];
    assert_eq!(send(served.address, "POST", "/logout", &same_site, "").await.status, 303);
    again.until_closed(Duration::from_secs(40)).await;
    eventually(Duration::from_secs(10), "no watch once signed out", || async {
        (watches_and_viewers(broker).await == (0, 0)).then_some(())
    })
    .await;

    broker.deprovision(&a, SMALL).await;
    broker.deprovision(&b, SMALL).await;
}

#[tokio::test]
async fn headless_chromium_sees_a_new_pod_appear_without_a_reload() {
    let _live = LIVE.lock().await;
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, token) = instance_with_binding(broker, "view").await;
    let namespace = broker.namespace(&id);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("live-{id}"));
    let probe = start_live_probe(&url, &token, &[("PROBE_POD", "arrives-live".to_owned())], &dir);
    // The page is open and listening once the dashboard counts a viewer; only then does the pod come.
    eventually(Duration::from_secs(60), "the browser's live page connected", || async {
        (gauge(broker, "caas_broker_dashboard_viewers").await == 1).then_some(())
    })
    .await;
    let pods = Api::<Pod>::namespaced(cluster().admin().await, &namespace);
    pods.create(&PostParams::default(), &pod("arrives-live")).await.expect("create the pod");
    let report = live_probe_report(probe).await;
    assert_eq!(report["finalUrl"], Value::String(format!("{url}/workloads")), "{report}");
    assert_eq!(report["appeared"], true, "{report}");
    assert_eq!(report["reloaded"], false, "swapped in place, not reloaded: {report}");
    assert_eq!(report["consoleErrors"], json!([]), "no policy violation or error in the page: {report}");
    assert_eq!(report["liveAtEnd"], true, "the page's live stream open at the end: {report}");
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn what_an_identity_may_not_list_is_not_allowed_and_the_rest_still_shows() {
    use caas_broker::tenant::objects::{Kind, Section, may_watch, read_all};
    use k8s_openapi::api::rbac::v1::Role;

    let admin = cluster().admin().await;
    let namespace = support::cluster::TestNamespace::create(&admin, "live-rbac").await;
    let name = &namespace.name;
    // An identity that may list and watch pods there, and nothing else.
    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), name);
    let account: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": "pods-only" } })).expect("sa");
    accounts.create(&PostParams::default(), &account).await.expect("create the account");
    let role: Role = serde_json::from_value(json!({ "metadata": { "name": "pods-only" }, "rules": [
        { "apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"] } ] }))
    .expect("role");
    Api::<Role>::namespaced(admin.clone(), name).create(&PostParams::default(), &role).await.expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({ "metadata": { "name": "pods-only" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods-only" },
        "subjects": [{ "kind": "ServiceAccount", "name": "pods-only", "namespace": name }] }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(admin.clone(), name).create(&PostParams::default(), &binding).await.expect("rb");
    Api::<Pod>::namespaced(admin.clone(), name).create(&PostParams::default(), &pod("seen")).await.expect("pod");
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "expirationSeconds": 600 } })).expect("request");
    let issued = accounts.create_token_request("pods-only", &PostParams::default(), &request).await.expect("token");
    let token = issued.status.and_then(|status| status.token).expect("token");
    let client = kube::Client::try_from(caas_broker::k8s::as_user(&cluster().admin_config().await, &token))
        .expect("the identity's client");

    // RBAC may take a moment to see the new binding: wait until pods are listed, then everything else is refused.
    let sections = eventually(Duration::from_secs(30), "pods listed for the identity", || async {
        let sections = read_all(&client, name).await.expect("the view reads, whatever is refused");
        matches!(&sections[3], (Kind::Pods, Section::Listed(rows)) if rows.len() == 1).then_some(sections)
    })
    .await;
    for (kind, section) in &sections {
        if *kind != Kind::Pods {
            assert_eq!(section, &Section::NotAllowed, "{kind:?}");
        }
    }
    assert!(may_watch(&client, name, Kind::Pods).await.expect("review"));
    assert!(!may_watch(&client, name, Kind::Deployments).await.expect("review"));
    assert!(!may_watch(&client, "default", Kind::Pods).await.expect("review"), "nowhere else");
}

#[tokio::test]
async fn one_sign_in_holds_at_most_its_streams_and_one_identity_at_most_its_share() {
    let _live = LIVE.lock().await;
    // The defaults: 8 streams per sign-in, 16 per identity.
    let served = serve().await;
    let broker = &served.broker;
    let (id, _, token) = instance_with_binding(broker, "view").await;
    let other = broker.bind(&id, &format!("{id}-other"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    let other_token = other.body["credentials"]["token"].as_str().expect("token").to_owned();
    let login = format!("/instances/{id}/login");
    let live = format!("/instances/{id}/live");
    let signed_in = |token: String| {
        let served = &served;
        let login = login.clone();
        async move { cookie_of(&sign_in(served, &login, &token, &served.origin).await) }
    };
    let open_many = |cookie: String, count: usize| {
        let (address, live) = (served.address, live.clone());
        async move {
            let opened =
                futures::future::join_all((0..count).map(|_| EventStream::open(address, &live, &cookie))).await;
            let (streams, refused): (Vec<_>, Vec<_>) = opened.into_iter().partition(|(_, stream)| stream.is_some());
            for (head, _) in &refused {
                assert!(head.starts_with("HTTP/1.1 429"), "a stream past the limit is refused with 429: {head}");
            }
            streams.into_iter().filter_map(|(_, stream)| stream).collect::<Vec<_>>()
        }
    };

    // 200 streams asked for at once by one sign-in: 8 are served, 192 refused.
    let first = signed_in(token.clone()).await;
    let streams = open_many(first.clone(), 200).await;
    assert_eq!(streams.len(), 8, "one sign-in holds at most 8 streams");
    // A second sign-in of the same identity gets the rest of the identity's 16, a third none.
    let second = open_many(signed_in(token.clone()).await, 10).await;
    assert_eq!(second.len(), 8, "a second sign-in of the identity holds its own 8");
    assert!(open_many(signed_in(token.clone()).await, 1).await.is_empty(), "the identity holds its 16 already");
    // Another identity of the same virtual cluster is not held back by the first.
    assert_eq!(open_many(signed_in(other_token).await, 1).await.len(), 1, "another identity opens its own");

    // Streams that close give their places back (the dashboard notices a closed connection at its next write).
    drop((streams, second));
    eventually(Duration::from_secs(60), "the dashboard noticed every stream closed", || async {
        (gauge(broker, "caas_broker_dashboard_viewers").await == 0).then_some(())
    })
    .await;
    assert_eq!(open_many(first, 200).await.len(), 8, "the sign-in's 8 places are free again");
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn unbinding_ends_the_live_stream_of_its_sign_in() {
    let _live = LIVE.lock().await;
    let served = serve().await;
    let broker = &served.broker;
    let (id, _, token) = instance_with_binding(broker, "view").await;
    let signed_in = sign_in(&served, &format!("/instances/{id}/login"), &token, &served.origin).await;
    let cookie = cookie_of(&signed_in);
    let (head, stream) = EventStream::open(served.address, &format!("/instances/{id}/live"), &cookie).await;
    let mut stream = stream.unwrap_or_else(|| panic!("the live stream opens: {head}"));
    let unbound = broker.unbind(&id, &format!("{id}-view"), SMALL).await;
    assert_eq!(unbound.status, axum::http::StatusCode::OK, "{unbound:?}");
    // The stream re-checks its user every 15 s: the revoked token is refused, and the stream ends.
    stream.until_closed(Duration::from_secs(25)).await;
    broker.deprovision(&id, SMALL).await;
}
