//! The dashboard served in-process over real HTTP, as the binary serves it, and what a tenant does first: a virtual
//! cluster with a binding, and a sign-in with its token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use caas_broker::config::Settings;
use caas_broker::lifecycle::Broker;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::broker::{SMALL, TestBroker};
use super::cluster::{cluster, eventually};
use super::http::{HttpAnswer, form_encode, send};

/// The broker under test with its dashboard served on a loopback port, and its domain (through which a test does what
/// a sign-in through a provider does).
pub struct Served {
    pub broker: TestBroker,
    pub domain: Arc<Broker>,
    pub address: SocketAddr,
    /// The dashboard's own origin, which its forms must come from.
    pub origin: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Served {
    /// A GET of `path` with the session `cookie`.
    pub async fn get(&self, path: &str, cookie: &str) -> HttpAnswer {
        send(self.address, "GET", path, &[("cookie", cookie)], "").await
    }

    /// A form post of `body` (already encoded) with the session `cookie`, from the dashboard's own origin, as its
    /// pages' forms post.
    pub async fn post_body(&self, path: &str, cookie: &str, body: &str) -> HttpAnswer {
        let headers = [
            ("cookie", cookie),
            ("origin", self.origin.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        send(self.address, "POST", path, &headers, body).await
    }

    /// A form post of `fields`, as [`Served::post_body`].
    pub async fn post(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> HttpAnswer {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect();
        self.post_body(path, cookie, &body.join("&")).await
    }
}

/// The dashboard on a free loopback port, its URL derived from the listener as the binary does (no
/// `dashboard.base_url`).
pub async fn serve() -> Served {
    serve_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard"), |_| {}).await
}

/// The dashboard on `listener`, with `configure` applied to the settings last.
pub async fn serve_on(listener: std::net::TcpListener, configure: impl FnOnce(&mut Settings)) -> Served {
    let address = listener.local_addr().expect("address");
    let broker = TestBroker::start(|settings| {
        settings.dashboard.base_url = None;
        settings.dashboard.listen = address;
        configure(settings);
    })
    .await;
    // One broker behind both faces, as in the binary: the dashboard's changes are the OSB API's own writes.
    let domain = broker.domain.clone();
    let cluster_config = cluster().admin_config().await;
    let app = caas_broker::server::dashboard_app(&broker.settings, domain.clone(), cluster_config, address);
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let server = tokio::spawn(async move {
        // As the binary serves it: with the client's address, which the sign-in limits count by.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app).await.expect("the dashboard serves");
    });
    let origin = broker.settings.dashboard_own_url(address);
    Served { broker, domain, address, origin, server }
}

/// Provisions a small virtual cluster and binds it with `role`; returns its id, dashboard URL and the binding's token.
pub async fn instance_with_binding(broker: &TestBroker, role: &str) -> (String, String, String) {
    instance_with_parameters(broker, role, json!({})).await
}

/// [`instance_with_binding`] with the virtual cluster's provision `parameters`.
pub async fn instance_with_parameters(
    broker: &TestBroker,
    role: &str,
    parameters: serde_json::Value,
) -> (String, String, String) {
    let id = format!("dash-{:08x}", rand::random::<u32>());
    let provisioned = broker.provision(&id, SMALL, parameters).await;
    let url = provisioned.body["dashboard_url"].as_str().expect("provision returns dashboard_url").to_owned();
    let bound = broker.bind(&id, &format!("{id}-{role}"), SMALL, json!({ "parameters": { "role": role } })).await;
    assert_eq!(bound.status, axum::http::StatusCode::CREATED, "{bound:?}");
    let token = bound.body["credentials"]["token"].as_str().expect("token").to_owned();
    (id, url, token)
}

/// `name=value` of the session cookie an answer sets.
pub fn cookie_of(answer: &HttpAnswer) -> String {
    let set = answer.header("set-cookie").expect("a session cookie");
    set.split(';').next().expect("name=value").to_owned()
}

/// Posts the sign-in form of `login_path` with `token`, from `origin`.
pub async fn sign_in(served: &Served, login_path: &str, token: &str, origin: &str) -> HttpAnswer {
    let body = format!("token={}", form_encode(token));
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", origin)];
    send(served.address, "POST", login_path, &headers, &body).await
}

/// The path of `url` on the dashboard at `origin`.
pub fn path_of(url: &str, origin: &str) -> String {
    url.strip_prefix(origin).unwrap_or_else(|| panic!("{url} is not on {origin}")).to_owned()
}

/// A pod of the tenant whose container crash-loops: made by the admin, run by a simulated node, then given the status
/// the kubelet writes for a container in CrashLoopBackOff (kwok's nodes run nothing that could crash).
pub async fn crash_looping_pod(namespace: &str) {
    let admin = cluster().admin().await;
    let pods = Api::<Pod>::namespaced(admin, namespace);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "web-1" },
        "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] }
    }))
    .expect("pod");
    pods.create(&PostParams::default(), &pod).await.expect("create the pod");
    eventually(Duration::from_secs(60), "the pod running on a simulated node", || async {
        let phase = pods.get("web-1").await.ok()?.status?.phase?;
        (phase == "Running").then_some(())
    })
    .await;
    let status = json!({ "status": { "containerStatuses": [{
        "name": "web", "image": "example.invalid/web:1", "imageID": "", "ready": false, "restartCount": 6,
        "started": false,
        "state": { "waiting": { "reason": "CrashLoopBackOff",
                                "message": "back-off 5m0s restarting failed container=web pod=web-1" } },
        "lastState": { "terminated": { "exitCode": 1, "reason": "Error" } }
    }]}});
    pods.patch_status("web-1", &PatchParams::default(), &Patch::Strategic(status)).await.expect("patch status");
}

/// The value of the broker's gauge `name` on its metrics endpoint (e.g. `caas_broker_dashboard_viewers`: how many live
/// pages are connected, which tells a test that a browser's page listens).
pub async fn gauge(broker: &TestBroker, name: &str) -> i64 {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let request = super::broker::osb_request(axum::http::Method::GET, "/metrics", None, &[]);
    let answer = broker.app.clone().oneshot(request).await.expect("metrics");
    let body = answer.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

/// `tests/browser/live_probe.mjs` started in headless Chromium: it signs in at `url` with `token` and waits on a live
/// page for what `page` (the probe's variables: `PROBE_POD`, or `PROBE_PAGE` and `PROBE_SELECTOR`) names; its profile
/// and screenshot in `dir`. See [`live_probe_report`].
pub fn start_live_probe(url: &str, token: &str, page: &[(&str, String)], dir: &std::path::Path) -> std::process::Child {
    std::fs::create_dir_all(dir).expect("probe directory");
    std::process::Command::new("node")
        .arg(super::cluster::repo_root().join("tests/browser/live_probe.mjs"))
        .current_dir(super::cluster::repo_root().join("tests/browser"))
        .env("PROBE_URL", url)
        .env("PROBE_TOKEN", token)
        .envs(page.iter().map(|(name, value)| (name, value)))
        .env("PROBE_USER_DATA_DIR", dir.join("profile"))
        .env("PROBE_SCREENSHOT", dir.join("live.png"))
        .env("CHROMIUM", "/usr/bin/chromium")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run node (tests/browser/install-deps.sh installs it and playwright-core)")
}

/// The live probe's JSON report once it ends (killed after 90 s), waited for off this runtime, which serves the
/// dashboard to the browser meanwhile.
pub async fn live_probe_report(probe: std::process::Child) -> serde_json::Value {
    let output = super::browser::output_within(probe, Duration::from_secs(90)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser probe failed: {stderr}");
    serde_json::from_slice(&output.stdout).expect("the probe's JSON report")
}
