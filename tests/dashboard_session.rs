//! A streaming session's own dashboard page against the real control plane: a session placed in a virtual cluster on
//! the simulated nodes shows its states as they change (waiting for its volume and node, then ready; stopped after
//! stop; ready again after start, seen without a reload by headless Chromium), its plan and resolution; an `edit` binding stops and starts it through the broker
//! (so the platform reads the same state), sees the password on demand and opens noVNC through the session's Ingress
//! with the password in the URL's fragment only; a `view` binding sees no control, and its forged stop, password,
//! open, noVNC and Selkies proxy requests are refused; the page's live part (its state and controls) is served alone; the proxy reaches nothing but the session's noVNC port; the session is
//! not found from another virtual cluster. (Open through the proxy, seen by Chromium: `tests/real_node.rs`.)

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, Secret};
use kube::Api;
use serde_json::json;
use support::broker::*;
use support::cluster::eventually;
use support::dashboard::*;
use support::http::{HttpAnswer, send};

const STREAMING: &str = "9d24743d-2818-4042-bdf2-2ec0927842b2";
const CPU_720P: &str = "40fd48d3-6eca-489c-bde5-0254076bc445";

/// A signed-in visitor of one virtual cluster's dashboard.
struct Visitor<'a> {
    served: &'a Served,
    cookie: String,
    overview: String,
}

impl Visitor<'_> {
    async fn get(&self, path: &str) -> HttpAnswer {
        self.served.get(path, &self.cookie).await
    }

    /// Posts a form from the dashboard's own origin, as the page's forms do.
    async fn post(&self, path: &str, form: &str) -> HttpAnswer {
        self.served.post_body(path, &self.cookie, form).await
    }

    /// The page of `session` under this visitor's own virtual cluster.
    fn session_page(&self, session: &str) -> String {
        format!("{}/sessions/{session}", self.overview)
    }

    /// Waits until the session's page shows `what`.
    async fn sees(&self, session: &str, what: &str) -> HttpAnswer {
        let page = self.session_page(session);
        eventually(Duration::from_secs(90), &format!("the session page showing {what:?}"), || async {
            let answer = self.get(&page).await;
            (answer.status == 200 && answer.body.contains(what)).then_some(answer)
        })
        .await
    }
}

async fn visitor<'a>(served: &'a Served, url: &str, token: &str) -> Visitor<'a> {
    let overview = path_of(url, &served.origin);
    let signed_in = sign_in(served, &format!("{overview}/login"), token, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    Visitor { served, cookie: cookie_of(&signed_in), overview }
}

async fn replicas(sets: &Api<StatefulSet>, name: &str) -> Option<i32> {
    sets.get(name).await.expect("get the session's StatefulSet").spec.and_then(|spec| spec.replicas)
}

#[tokio::test]
async fn a_session_page_shows_its_states_and_lets_only_whom_kubernetes_allows_act_and_see_the_password() {
    let served = serve().await;
    let broker = &served.broker;
    let (cluster_id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewer = broker
        .bind(&cluster_id, &format!("{cluster_id}-view"), SMALL, json!({ "parameters": { "role": "view" } }))
        .await;
    assert_eq!(viewer.status, StatusCode::CREATED, "{viewer:?}");
    let view_token = viewer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let namespace = broker.namespace(&cluster_id);

    // A noVNC session (Open sends the browser to its page) with a SteamCMD step and an Ingress, placed in this virtual
    // cluster; no volume for it yet. A Selkies session's page frames its stream instead (tests/real_node.rs).
    let session = format!("ss-{:08x}", rand::random::<u32>());
    let host = format!("{session}.play.example.test");
    let body = json!({ "service_id": STREAMING, "plan_id": CPU_720P, "organization_guid": "org-1",
                       "space_guid": "space-1", "context": { "platform": "cloudfoundry", "organization_guid": "org-1" },
                       "parameters": { "steam_app_id": 1007, "ingress_host": host, "resolution": "1600x900",
                                       "cluster_instance_id": cluster_id, "protocol": "novnc" } });
    let accepted =
        broker.call(Method::PUT, &format!("/v2/service_instances/{session}?accepts_incomplete=true"), Some(body)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    let name = caas_broker::k8s::names::short_label("session-", &session, 50);
    let sets = Api::<StatefulSet>::namespaced(broker.client.clone(), &namespace);
    let editor = visitor(&served, &url, &edit_token).await;

    // The overview links to the session's page, which shows it waiting (for its volume, so for a node), its plan
    // and resolution, in the platform's words.
    let overview = editor.get(&editor.overview).await;
    assert!(overview.body.contains(&format!(r#"href="{}""#, editor.session_page(&session))), "{}", overview.body);
    let waiting = editor.sees(&session, "waiting for").await;
    assert!(waiting.body.contains("streaming-session / cpu-720p"), "{}", waiting.body);
    assert!(waiting.body.contains(r#"<dd id="resolution">1600x900</dd>"#), "{}", waiting.body);
    assert!(!waiting.body.contains("<script>") && !waiting.body.contains("style="), "{}", waiting.body);

    // Given a volume, the simulated node runs it: ready, as the platform reads it too.
    let volume = format!("pv-{session}");
    support::cluster::reserve_volume(&broker.client, &volume, &namespace, &format!("data-{name}-0")).await;
    let ready = editor.sees(&session, "1 of 1 pods ready").await;
    assert!(ready.body.contains("<strong>Ready</strong>"), "{}", ready.body);
    assert_eq!(
        broker.wait_for_state(&session, "provision", "succeeded").await.body["description"],
        "1 of 1 pods ready"
    );
    for control in [r#"value="stop""#, r#"value="restart""#, r#"id="reveal""#, r#"id="open""#] {
        assert!(ready.body.contains(control), "an editor gets {control}: {}", ready.body);
    }
    assert!(ready.body.contains(&format!("/pods/{name}-0/logs/stream?container=steamcmd")), "{}", ready.body);

    // The password: only on demand, and the one in the session's Secret.
    let secret = Api::<Secret>::namespaced(broker.client.clone(), &namespace).get(&format!("{name}-vnc")).await;
    let password = String::from_utf8(secret.expect("secret").data.expect("data")["password"].0.clone()).expect("utf8");
    assert!(!ready.body.contains(&password), "not shown before it is asked for");
    let revealed = editor.post(&format!("{}/password", editor.session_page(&session)), "").await;
    assert_eq!(revealed.status, 200, "{revealed:?}");
    assert!(revealed.body.contains(&format!(r#"<code id="password">{password}</code>"#)), "{}", revealed.body);
    assert_eq!(revealed.header("cache-control"), Some("no-store"));

    // Open: to the Ingress's noVNC page, the password in the fragment only (no query a server would log).
    let opened = editor.post(&format!("{}/open", editor.session_page(&session)), "").await;
    assert_eq!(opened.status, 303, "{opened:?}");
    let location = opened.header("location").expect("location");
    assert_eq!(location, format!("https://{host}/vnc.html#autoconnect=1&resize=remote&password={password}"));
    assert!(!location.contains('?'));

    // A viewer: the page, no control, and every forged request refused with nothing changed or shown.
    let reader = visitor(&served, &url, &view_token).await;
    let page = reader.get(&reader.session_page(&session)).await;
    assert_eq!(page.status, 200, "{page:?}");
    for control in [r#"name="action""#, r#"id="reveal""#, r#"id="open""#] {
        assert!(!page.body.contains(control), "a viewer gets no {control}: {}", page.body);
    }
    let forged = reader.post(&reader.session_page(&session), "action=stop").await;
    assert_eq!(forged.status, 403, "{forged:?}");
    for what in ["password", "open"] {
        let refused = reader.post(&format!("{}/{what}", reader.session_page(&session)), "").await;
        assert_eq!(refused.status, 403, "{what}: {refused:?}");
        assert!(!refused.body.contains(&password) && refused.header("location").is_none(), "{refused:?}");
    }
    assert_eq!(replicas(&sets, &name).await, Some(1), "nothing changed");
    // The noVNC proxy is the apiserver's service proxy as the viewer, which RBAC refuses them.
    let proxied = reader.get(&format!("{}/novnc/vnc.html", reader.session_page(&session))).await;
    assert_eq!(proxied.status, 403, "{proxied:?}");
    // Nothing but the session's noVNC port is reachable through it, whoever asks, and nobody unsigned.
    let escape = editor.get(&format!("{}/novnc/app/%2e%2e/%2e%2e/%2e%2e/secrets", editor.session_page(&session))).await;
    assert_eq!(escape.status, 404, "{escape:?}");
    let novnc = format!("{}/novnc/vnc.html", editor.session_page(&session));
    assert_eq!(send(served.address, "GET", &novnc, &[], "").await.status, 401);
    // Another site's page cannot open the noVNC WebSocket with the member's cookie.
    let socket = format!("{}/novnc/websockify", editor.session_page(&session));
    let handshake = [
        ("cookie", editor.cookie.as_str()),
        ("origin", "https://evil.example"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    assert_eq!(send(served.address, "GET", &socket, &handshake, "").await.status, 403);
    // The same for a Selkies stream: its files and its WebSocket, which carries the password the dashboard reads as
    // the member, are the apiserver's service proxy as the viewer (refused), reach nothing but the stream port, and
    // are refused to nobody signed in and to another site's page.
    let stream = format!("{}/stream", reader.session_page(&session));
    for asset in ["index.html", "api/status", "api/websockets"] {
        let refused = reader.get(&format!("{stream}/{asset}")).await;
        assert_eq!(refused.status, 403, "{asset}: {refused:?}");
        assert!(!refused.body.contains(&password), "{refused:?}");
        assert_eq!(send(served.address, "GET", &format!("{stream}/{asset}"), &[], "").await.status, 401, "{asset}");
    }
    let escape = editor.get(&format!("{stream}/assets/%2e%2e/%2e%2e/%2e%2e/secrets")).await;
    assert_eq!(escape.status, 404, "{escape:?}");
    assert_eq!(send(served.address, "GET", &format!("{stream}/api/websockets"), &handshake, "").await.status, 403);

    // Another virtual cluster's member does not find the session; this cluster's member is not theirs to ask about.
    let (other_id, other_url, other_token) = instance_with_binding(broker, "edit").await;
    let stranger = visitor(&served, &other_url, &other_token).await;
    assert_eq!(stranger.get(&stranger.session_page(&session)).await.status, 404);
    assert_eq!(stranger.get(&format!("{}/novnc/vnc.html", stranger.session_page(&session))).await.status, 404);
    assert_eq!(stranger.get(&format!("{}/stream/index.html", stranger.session_page(&session))).await.status, 404);
    for (path, form) in [("", "action=stop"), ("/password", ""), ("/open", "")] {
        let refused = stranger.post(&format!("{}{path}", stranger.session_page(&session)), form).await;
        assert_eq!(refused.status, 404, "{path}: {refused:?}");
        assert!(!refused.body.contains(&password) && refused.header("location").is_none(), "{refused:?}");
    }
    assert_eq!(editor.get(&stranger.session_page(&session)).await.status, 403);
    assert_eq!(editor.get(&editor.session_page("no-such-session")).await.status, 404);
    assert_eq!(editor.post(&editor.session_page(&session), "action=delete").await.status, 400);
    assert_eq!(replicas(&sets, &name).await, Some(1), "nothing changed");

    // Stop: the broker's update, so the platform reads it; the page says stopped and offers start.
    let stopped = editor.post(&editor.session_page(&session), "action=stop").await;
    assert_eq!(
        (stopped.status, stopped.header("location")),
        (303, Some(format!("{}?done=stop", editor.session_page(&session)).as_str()))
    );
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    assert_eq!(fetched.body["parameters"]["state"], "stopped", "{fetched:?}");
    let page = editor.sees(&session, "stopped; the volume is kept").await;
    assert!(page.body.contains("<strong>Stopped</strong>") && page.body.contains(r#"value="start""#), "{}", page.body);
    assert!(!page.body.contains(r#"value="stop""#), "{}", page.body);
    assert_eq!(replicas(&sets, &name).await, Some(0));
    // A WebSocket to the stopped session: a page that says it does not answer (not a hang, not a tunnel to nothing).
    let handshake = [
        ("cookie", editor.cookie.as_str()),
        ("origin", served.origin.as_str()),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let unanswered = send(served.address, "GET", &socket, &handshake, "").await;
    assert!([502, 503].contains(&unanswered.status), "{unanswered:?}");
    assert!(unanswered.body.contains("does not answer"), "{}", unanswered.body);
    let stream_socket = format!("{}/stream/api/websockets", editor.session_page(&session));
    let unanswered = send(served.address, "GET", &stream_socket, &handshake, "").await;
    assert!([502, 503].contains(&unanswered.status), "{unanswered:?}");
    assert!(unanswered.body.contains("does not answer") && !unanswered.body.contains(&password), "{}", unanswered.body);
    // The page's live part, re-read when the live stream says pods or StatefulSets changed, says the same alone.
    let card = editor.get(&format!("{}/card", editor.session_page(&session))).await;
    assert_eq!(card.status, 200, "{card:?}");
    assert!(card.body.starts_with(r#"<section class="card wide" id="session""#), "{}", card.body);
    assert!(card.body.contains("stopped; the volume is kept") && card.body.contains(r#"value="start""#));
    assert_eq!(stranger.get(&format!("{}/card", stranger.session_page(&session))).await.status, 404);

    // Start, watched in headless Chromium: the open page turns ready without a reload (the live stream).
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("session-{session}"));
    let page = [
        ("PROBE_PAGE", format!("/sessions/{session}")),
        ("PROBE_SELECTOR", r#"#state:has-text("1 of 1 pods ready")"#.to_owned()),
    ];
    let probe = start_live_probe(&url, &edit_token, &page, &dir);
    eventually(Duration::from_secs(60), "the browser's session page connected", || async {
        (gauge(broker, "caas_broker_dashboard_viewers").await == 1).then_some(())
    })
    .await;
    assert_eq!(editor.post(&editor.session_page(&session), "action=start").await.status, 303);
    let report = live_probe_report(probe).await;
    assert_eq!(report["finalUrl"], format!("{url}/sessions/{session}"), "{report}");
    assert_eq!((&report["appeared"], &report["reloaded"]), (&json!(true), &json!(false)), "{report}");
    assert_eq!(report["consoleErrors"], json!([]), "no policy violation or error in the page: {report}");
    assert_eq!(report["liveAtEnd"], true, "the page's live stream open at the end: {report}");
    assert_eq!(replicas(&sets, &name).await, Some(1));

    let delete =
        format!("/v2/service_instances/{session}?service_id={STREAMING}&plan_id={CPU_720P}&accepts_incomplete=true");
    let deleting = broker.call(Method::DELETE, &delete, None).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED, "{deleting:?}");
    let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
    broker.wait_for_state(&session, &operation, "succeeded").await;
    Api::<PersistentVolume>::all(broker.client.clone()).delete(&volume, &Default::default()).await.ok();
    broker.deprovision(&other_id, SMALL).await;
    broker.deprovision(&cluster_id, SMALL).await;
}
