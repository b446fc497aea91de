//! A terminal into a container, on the real node (`tests/cluster/real-node.sh`): an `edit` binding opens one from the
//! workloads page in headless Chromium into a running busybox pod, types an `echo` of a random word and reads it back
//! from xterm.js's screen, shrinks the window and reads the new size from `stty size` in the pod, and downloads the
//! session log with the echo in it; then its unbind closes the open terminal, the page saying why, within the 15 s of
//! a stream's re-check. A `view` binding of the same instance sees no Terminal control, its terminal page is refused,
//! and so is a forged WebSocket upgrade with its session cookie (403), as is an upgrade from another origin or without
//! a sign-in, while the `edit` binding's own upgrade is taken (101). A terminal without input closes after the idle
//! time, and one into a shell the image lacks at once, each with the code that says so. A user whose role grants
//! ephemeral containers adds a debug container and its terminal runs there. Fails, naming the command to run, when
//! the real node is not there.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::broker::SMALL;
use support::browser::Probe;
use support::cluster::{cluster, eventually};
use support::dashboard::*;
use support::real_node::{NODE_TURN, assert_ready, image, node_pod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A WebSocket upgrade of `path` sent with `cookie` (none when empty) from `origin`: the answer's status and the
/// connection, its head read (what follows is the WebSocket's, after a 101).
async fn upgrade(served: &Served, path: &str, cookie: &str, origin: &str) -> (u16, tokio::net::TcpStream) {
    let mut stream = tokio::net::TcpStream::connect(served.address).await.expect("connect");
    let cookie = if cookie.is_empty() { String::new() } else { format!("cookie: {cookie}\r\n") };
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\norigin: {origin}\r\n{cookie}\r\n",
        served.address
    );
    stream.write_all(request.as_bytes()).await.expect("send the upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(1))), "the dashboard answered no head to an upgrade of {path}: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok());
    (status.unwrap_or_else(|| panic!("no status in {head:?}")), stream)
}

/// The status of [`upgrade`].
async fn upgrade_status(served: &Served, path: &str, cookie: &str, origin: &str) -> u16 {
    upgrade(served, path, cookie, origin).await.0
}

/// The dashboard's next WebSocket frame (never masked): its opcode and payload.
async fn next_frame(stream: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0; 2];
    stream.read_exact(&mut head).await.expect("a frame");
    let length = match head[1] & 0x7f {
        126 => usize::from(stream.read_u16().await.expect("length")),
        127 => usize::try_from(stream.read_u64().await.expect("length")).expect("a length that fits"),
        length => usize::from(length),
    };
    let mut payload = vec![0; length];
    stream.read_exact(&mut payload).await.expect("a frame's payload");
    (head[0] & 0x0f, payload)
}

/// Reads the dashboard's WebSocket frames until its close frame; the close code.
async fn close_code(stream: &mut tokio::net::TcpStream) -> u16 {
    loop {
        if let (0x8, payload) = next_frame(stream).await {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// Sends `text` (under 126 bytes) as a browser does: one masked text frame.
async fn send_text(stream: &mut tokio::net::TcpStream, text: &str) {
    let mask = [0x5a, 0x17, 0xc3, 0x08];
    let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).expect("a short text")];
    frame.extend(mask);
    frame.extend(text.bytes().enumerate().map(|(at, byte)| byte ^ mask[at % 4]));
    stream.write_all(&frame).await.expect("send a frame");
}

/// A busybox pod `shell` in `namespace` on the real node, once it runs.
async fn running_shell(namespace: &str) {
    let pods = Api::<Pod>::namespaced(cluster().admin().await, namespace);
    let mut shell = node_pod("shell", json!({ "app": "shell" }), "exec sleep 3600");
    let resources =
        json!({ "requests": { "cpu": "50m", "memory": "16Mi" }, "limits": { "cpu": "200m", "memory": "32Mi" } });
    shell.spec.as_mut().expect("spec").containers[0].resources =
        Some(serde_json::from_value(resources).expect("resources"));
    pods.create(&PostParams::default(), &shell).await.expect("create the pod");
    eventually(Duration::from_secs(90), "the pod `shell` to run on the real node", || async {
        let status = pods.get("shell").await.ok()?.status?;
        status.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_editor_types_into_a_pods_shell_in_chromium_a_viewer_cannot_and_an_unbind_closes_it() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&["busybox"]).await;
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let bound = broker.bind(&id, &format!("{id}-view"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    assert_eq!(bound.status, axum::http::StatusCode::CREATED, "{bound:?}");
    let view_token = bound.body["credentials"]["token"].as_str().expect("token").to_owned();
    let namespace = broker.namespace(&id);

    running_shell(&namespace).await;

    // The view binding: no control, no page, no upgrade.
    let base = format!("/instances/{id}");
    let (origin, socket) = (served.origin.clone(), format!("{base}/terminal/shell/socket"));
    let view = cookie_of(&sign_in(&served, &format!("{base}/login"), &view_token, &origin).await);
    let workloads = served.get(&format!("{base}/workloads"), &view).await;
    assert!(workloads.body.contains(r#"<tr data-name="shell">"#), "the viewer sees the pod: {}", workloads.body);
    assert!(!workloads.body.contains(r#"class="terminal""#), "but no Terminal control: {}", workloads.body);
    assert_eq!(served.get(&format!("{base}/terminal/shell"), &view).await.status, 403);
    assert_eq!(upgrade_status(&served, &socket, &view, &origin).await, 403, "a viewer's forged upgrade");
    let edit = cookie_of(&sign_in(&served, &format!("{base}/login"), &edit_token, &origin).await);
    assert_eq!(upgrade_status(&served, &socket, &edit, "https://evil.example").await, 403, "from another origin");
    assert_eq!(upgrade_status(&served, &socket, "", &origin).await, 403, "without a sign-in");
    assert_eq!(upgrade_status(&served, &socket, &edit, &origin).await, 101, "the editor's own upgrade is taken");
    let editor_page = served.get(&format!("{base}/workloads"), &edit).await;
    assert!(
        editor_page.body.contains(&format!(r#"href="{base}/terminal/shell" id="pods-shell-terminal">Terminal</a>"#)),
        "{}",
        editor_page.body
    );

    // The editor, in Chromium.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-terminal-{id}"));
    std::fs::create_dir_all(&dir).expect("probe directory");
    let word = format!("{:016x}", rand::random::<u64>());
    let profile = dir.join("profile");
    let mut probe = Probe::start(
        "terminal_probe.mjs",
        &[
            ("PROBE_URL", url.as_ref()),
            ("PROBE_TOKEN", edit_token.as_ref()),
            ("PROBE_POD", "shell".as_ref()),
            ("PROBE_WORD", word.as_ref()),
            ("PROBE_USER_DATA_DIR", profile.as_os_str()),
            ("SCREENSHOT_DIR", dir.as_os_str()),
        ],
    );
    let ready = probe.next().await;
    assert_eq!(ready["ready"], true, "{ready}");
    probe.go_on();
    let unbound = broker.unbind(&id, &format!("{id}-edit"), SMALL).await;
    assert!(unbound.status.is_success(), "{unbound:?}");
    let report = probe.report().await;
    eprintln!("probe report: {report}");

    assert_eq!(report["focusAfterRerender"], "pods-shell-terminal", "a live re-render keeps the focus: {report}");
    assert_eq!(report["labels"], json!(["Container", "Shell"]), "each choice is labelled: {report}");
    assert_eq!(report["rowsWhiteSpace"], "pre", "xterm.js's own rules apply under the policy: {report}");
    assert_eq!(report["echoed"], format!("hello-{word}"), "{report}");
    let (before, after) = (report["sizeBefore"].as_str().unwrap_or_default(), &report["sizeAfter"]);
    assert_eq!(report["pageSizeBefore"], before, "the shell reads the page's size: {report}");
    assert_ne!(report["pageSizeAfter"], before, "a smaller window is a smaller terminal: {report}");
    assert_eq!(after, &report["pageSizeAfter"], "and the shell reads the new size: {report}");
    assert_eq!(report["logHasEcho"], true, "the session log holds the echo: {report}");
    assert!(report["logName"].as_str().is_some_and(|name| name.starts_with("shell-main-")), "{report}");
    let closed_after = report["closedAfterMs"].as_u64().unwrap_or(u64::MAX);
    eprintln!("the terminal closed {closed_after} ms after the unbind began");
    assert!(closed_after < 15_000, "an unbind closes the terminal within 15 s: {report}");
    assert_eq!(report["closeCode"], "4003", "closed for the unbind: {report}");
    assert_eq!(
        report["closedStatus"], "Closed: your sign-in ended, or your identity may no longer open terminals here.",
        "{report}"
    );
    assert_eq!(report["consoleErrors"], json!([]), "no policy violation or error in the page: {report}");
    eprintln!("screenshots: {}", dir.display());
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn a_terminal_without_input_closes_after_the_idle_time_saying_so() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&["busybox"]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = serve_on(listener, |settings| settings.dashboard.terminal_idle_seconds = 10).await;
    let broker = &served.broker;
    let (id, _, token) = instance_with_binding(broker, "edit").await;
    running_shell(&broker.namespace(&id)).await;
    let base = format!("/instances/{id}");
    let edit = cookie_of(&sign_in(&served, &format!("{base}/login"), &token, &served.origin).await);
    let bash = format!("{base}/terminal/shell/socket?shell=%2Fbin%2Fbash");
    let (status, mut socket) = upgrade(&served, &bash, &edit, &served.origin).await;
    assert_eq!(status, 101);
    let code = tokio::time::timeout(Duration::from_secs(30), close_code(&mut socket)).await.expect("a close in time");
    assert_eq!(code, 4005, "busybox has no bash: the page says the shell could not be started");
    let began = std::time::Instant::now();
    let (status, mut socket) = upgrade(&served, &format!("{base}/terminal/shell/socket"), &edit, &served.origin).await;
    assert_eq!(status, 101, "the editor's upgrade is taken");
    let code = tokio::time::timeout(Duration::from_secs(60), close_code(&mut socket)).await.expect("a close in time");
    let after = began.elapsed();
    eprintln!("the idle terminal closed after {after:?} with code {code}");
    assert_eq!(code, 4001, "closed for want of input");
    assert!((Duration::from_secs(10)..Duration::from_secs(30)).contains(&after), "after the idle time: {after:?}");
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn a_user_allowed_ephemeral_containers_debugs_a_pod_and_its_terminal_reaches_the_debug_container() {
    let _turn = NODE_TURN.lock().await;
    assert_ready(&["busybox"]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = serve_on(listener, |settings| settings.dashboard.debug_image = image("busybox")).await;
    let broker = &served.broker;
    let (id, _, token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&id);
    running_shell(&namespace).await;
    let base = format!("/instances/{id}");
    let edit = cookie_of(&sign_in(&served, &format!("{base}/login"), &token, &served.origin).await);
    let page = served.get(&format!("{base}/terminal/shell"), &edit).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("terminal-debug"), "`edit` may not add ephemeral containers: no Debug: {}", page.body);
    let refused = served.post(&format!("{base}/terminal/shell/debug"), &edit, &[("target", "main")]).await;
    assert_eq!(refused.status, 403, "nor may it post one: {}", refused.body);

    // An operator's role that grants it, bound to the binding's identity.
    let admin = cluster().admin().await;
    let role: Role = serde_json::from_value(json!({
        "metadata": { "name": "debugger" },
        "rules": [{ "apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": ["patch"] }]
    }))
    .expect("role");
    Api::<Role>::namespaced(admin.clone(), &namespace).create(&PostParams::default(), &role).await.expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "debugger" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debugger" },
        "subjects": [{ "kind": "ServiceAccount", "name": format!("caas-binding-{id}-edit"),
                       "namespace": "caas-broker-identities" }]
    }))
    .expect("role binding");
    Api::<RoleBinding>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("role binding");

    let page = served.get(&format!("{base}/terminal/shell"), &edit).await;
    assert!(
        page.body.contains(r#"<form method="post" action="#) && page.body.contains("terminal-debug"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"<label for="target">"#), "the Debug form is labelled: {}", page.body);
    let added = served.post(&format!("{base}/terminal/shell/debug"), &edit, &[("target", "main")]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let location = added.header("location").expect("where the terminal opens").to_owned();
    let name = location.split("container=").nth(1).expect("the debug container's name").to_owned();
    assert!(name.starts_with("debug-"), "{location}");
    let pod = Api::<Pod>::namespaced(admin, &namespace).get("shell").await.expect("the pod");
    let status = pod.status.and_then(|s| s.ephemeral_container_statuses).unwrap_or_default();
    let debugger = status.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} in {status:?}"));
    assert!(debugger.state.as_ref().and_then(|s| s.running.as_ref()).is_some(), "it runs: {debugger:?}");
    let terminal = served.get(&location, &edit).await;
    assert!(terminal.body.contains(&format!(r#"<option value="{name}" selected>"#)), "{}", terminal.body);

    // Its terminal: a shell in the debug container, which runs as nobody and sees the target's processes.
    let socket = format!("{base}/terminal/shell/socket?container={name}");
    let (status, mut stream) = upgrade(&served, &socket, &edit, &served.origin).await;
    assert_eq!(status, 101);
    send_text(&mut stream, r#"{"input":"echo uid=$(id -u) sleeps=$(pidof sleep | wc -w)\n"}"#).await;
    let mut seen = String::new();
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (opcode, payload) = next_frame(&mut stream).await;
            assert_ne!(opcode, 0x8, "the terminal closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&payload));
            if let Some(line) = seen.lines().find(|line| line.starts_with("uid=")) {
                return line.trim().to_owned();
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no answer from the debug container's shell: {seen:?}"));
    eprintln!("the debug container's shell says: {answer}");
    assert_eq!(answer, "uid=65534 sleeps=2", "nobody, seeing its own sleep and the target's");
    broker.deprovision(&id, SMALL).await;
}
