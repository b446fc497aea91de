//! A streaming session's life as the broker runs it, on the real node (`tests/cluster/real-node.sh`) with the session
//! image and its test app, driven through the OSB API as a platform drives it:
//!
//! - ready means visible: last_operation names the steps (starting the display, starting the application) and says
//!   `succeeded` only once the app's window is on the display and the stream answers (the pod's `session.ready`);
//! - the native client path: with the kubeconfig of a binding of the virtual cluster (what a tenant holds), `kubectl
//!   port-forward` to the session's VNC port and TigerVNC's viewer (under its own Xvfb) show the app's colour with the
//!   password from the session's Secret; the VNC port answers on the pod's loopback only, not on its IP;
//! - idle sessions sleep: a session without a viewer for its `idle_stop_minutes` is scaled to zero by the broker, its
//!   volume kept, GET instance says why, the metric counts it, and an update with state `running` wakes it.
//!
//! The node is shared machine-wide, so these tests take turns. They fail, naming the command to run, when the real
//! node or the session image is not there.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use caas_broker::config::Settings;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::broker::{Answer, MEDIUM, TestBroker};
use support::cluster::{cluster, eventually};
use support::real_node::{
    CPU_720P, NODE_TURN, STREAMING, assert_ready, body, id, image, kubectl, node_pod, on_the_real_node, virtual_cluster,
};

/// The colour the session's test app paints (tests/browser/colour_app.py), as RGB.
const APP_COLOUR: &str = "#ff00aa";
const APP_RGB: [u8; 3] = [0xff, 0x00, 0xaa];
/// The session's virtual display (the cpu-720p plan's).
const DISPLAY_SIZE: (u32, u32) = (1280, 720);

/// A broker whose workloads go to the real node and whose sessions run the session image with its test app.
async fn broker() -> TestBroker {
    assert_ready(&["streaming-session-test", "busybox"]).await;
    let session_image = image("streaming-session-test");
    TestBroker::start(move |settings: &mut Settings| {
        on_the_real_node(settings);
        settings.workloads.session_image = session_image;
    })
    .await
}

/// Provisions a cpu-720p session running the test app with `extra` parameters; its id. The app starts after a few
/// seconds, so that the step between the display and the app's window is long enough to be seen.
async fn provision_session(broker: &TestBroker, org: &str, cluster_id: &str, extra: Value) -> String {
    let session = id("ss");
    let app = format!("sleep 4 && exec python3 /opt/caas-test/colour_app.py '{APP_COLOUR}'");
    let mut parameters = json!({ "cluster_instance_id": cluster_id, "launch": { "command": ["sh", "-c", app] } });
    parameters.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
    let uri = format!("/v2/service_instances/{session}?accepts_incomplete=true");
    let accepted = broker.call(Method::PUT, &uri, Some(body(STREAMING, CPU_720P, org, parameters))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    session
}

/// Polls `last_operation` every 200 ms until the operation is no longer in progress, calling `seen` with each answer;
/// on time-out, says what it last answered.
async fn follow(broker: &TestBroker, instance: &str, operation: &str, limit: Duration, mut seen: impl FnMut(&Answer)) {
    let uri = format!("/v2/service_instances/{instance}/last_operation?operation={operation}");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let answer = broker.call(Method::GET, &uri, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        seen(&answer);
        if answer.body["state"] != "in progress" {
            assert_eq!(answer.body["state"], "succeeded", "{operation} of {instance}: {answer:?}");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {operation} of {instance}; it last answered {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn delete_session(broker: &TestBroker, session: &str) {
    let uri =
        format!("/v2/service_instances/{session}?service_id={STREAMING}&plan_id={CPU_720P}&accepts_incomplete=true");
    let answer = broker.call(Method::DELETE, &uri, None).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    let operation = answer.body["operation"].as_str().expect("operation").to_owned();
    follow(broker, session, &operation, Duration::from_secs(120), |_| {}).await;
}

/// The session's one pod and StatefulSet name.
fn names_of(session: &str) -> (String, String) {
    let name = caas_broker::k8s::names::short_label("session-", session, 50);
    (format!("{name}-0"), name)
}

/// Whether `file` exists in the session container of `pod`.
fn exists_in_session(namespace: &str, pod: &str, file: &str) -> bool {
    kubectl(&["exec", "-n", namespace, pod, "-c", "session", "--", "test", "-e", file]).0
}

/// A child process that is killed when it goes out of scope (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// A folder of its own for one test's files, kept when the test fails (its logs say what happened).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("caas-{name}-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// The first line of `child`'s stdout that `wanted` accepts (its value), within `limit`.
fn first_line<T: Send + 'static>(
    child: &mut Child,
    limit: Duration,
    what: &str,
    wanted: impl Fn(&str) -> Option<T> + Send + 'static,
) -> T {
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, answer) = std::sync::mpsc::channel();
    // Reads on after the line it wanted: a child writing to a closed pipe would be killed by SIGPIPE.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(value) = wanted(&line) {
                found.send(value).ok();
            }
        }
    });
    answer.recv_timeout(limit).unwrap_or_else(|_| panic!("no {what} within {limit:?}"))
}

/// The share of the pixels of an XWD image (what Xvfb's `-fbdir` keeps of its screen) within a small distance of
/// `rgb`, or `None` while the file is not a 24/32-bit TrueColor image yet.
fn colour_share(xwd: &[u8], rgb: [u8; 3]) -> Option<f64> {
    let word = |at: usize| Some(u32::from_be_bytes(xwd.get(at..at + 4)?.try_into().ok()?));
    let (header, width, height) = (word(0)? as usize, word(16)? as usize, word(20)? as usize);
    let (lsb_first, bits, line) = (word(28)? == 0, word(44)?, word(48)? as usize);
    let masks = [word(56)?, word(60)?, word(64)?];
    let colours = word(76)? as usize;
    if bits != 32 || width == 0 || height == 0 {
        return None;
    }
    let pixels = xwd.get(header + colours * 12..)?;
    let mut matching = 0usize;
    for row in 0..height {
        for column in 0..width {
            let at = row * line + column * 4;
            let bytes: [u8; 4] = pixels.get(at..at + 4)?.try_into().ok()?;
            let pixel = if lsb_first { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) };
            let channel = |mask: u32| ((pixel & mask) >> mask.trailing_zeros()) as u8;
            let close = masks.iter().zip(rgb).all(|(mask, want)| channel(*mask).abs_diff(want) <= 24);
            matching += usize::from(close);
        }
    }
    Some(matching as f64 / (width * height) as f64)
}

#[tokio::test]
async fn a_session_is_ready_when_its_app_is_visible_and_a_native_client_sees_it_through_port_forward() {
    let _turn = NODE_TURN.lock().await;
    let broker = broker().await;
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(&broker, &org, MEDIUM).await;
    let started = Instant::now();
    let session = provision_session(&broker, &org, &cluster_id, json!({ "idle_stop_minutes": 0 })).await;
    let (pod, _) = names_of(&session);

    // (a) The steps, in order, and `succeeded` only with the app's window on the display.
    let mut steps: Vec<String> = Vec::new();
    follow(&broker, &session, "provision", Duration::from_secs(300), |answer| {
        let step = answer.body["description"].as_str().unwrap_or_default();
        let step = step.split(';').next().unwrap_or_default().to_owned();
        if steps.last() != Some(&step) {
            println!("{:6.1} s  {} {step}", started.elapsed().as_secs_f64(), answer.body["state"]);
            steps.push(step);
        }
    })
    .await;
    println!("streaming session: succeeded {:.1} s after the provision request", started.elapsed().as_secs_f64());
    assert!(
        exists_in_session(&namespace, &pod, "/tmp/session/session.ready"),
        "succeeded before the session said its app was visible (steps: {steps:?})"
    );
    let order = ["starting the display", "starting the application", "1 of 1 pods ready"];
    let seen: Vec<&str> = steps.iter().map(String::as_str).filter(|s| order.contains(s)).collect();
    assert!(
        seen.ends_with(&["starting the application", "1 of 1 pods ready"]),
        "the app's start (4 s) was not reported as its own step before succeeded: {steps:?}"
    );
    let positions: Vec<usize> = seen.iter().filter_map(|s| order.iter().position(|o| o == s)).collect();
    assert!(positions.is_sorted(), "the steps went backwards: {steps:?}");

    // (b) The native client: the tenant's kubeconfig, port-forward to the VNC port, TigerVNC's viewer.
    let bound = broker
        .bind(&cluster_id, &format!("{cluster_id}-edit"), MEDIUM, json!({ "parameters": { "role": "edit" } }))
        .await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    let dir = scratch("native-client");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, bound.body["credentials"]["kubeconfig"].as_str().expect("a kubeconfig"))
        .expect("write the kubeconfig");
    let tenant = |args: &[&str]| cluster().kubectl(&kubeconfig, args);
    let secret = format!("{}-vnc", names_of(&session).1);
    let template = "go-template={{.data.password | base64decode}}";
    let (ok, password, error) = tenant(&["get", "secret", "-n", &namespace, &secret, "-o", template]);
    assert!(ok && !password.is_empty(), "the tenant cannot read the session's password: {error}");
    let password_file = dir.join("passwd");
    let stored = Command::new("x11vnc").arg("-storepasswd").arg(&password).arg(&password_file).output();
    assert!(stored.is_ok_and(|o| o.status.success()), "x11vnc -storepasswd failed (tests/browser/install-deps.sh)");

    let forward_log = dir.join("port-forward.log");
    let mut forward = Killed(
        Command::new(&cluster().kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["port-forward", "-n", &namespace, &format!("pod/{pod}"), ":5900"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&forward_log).expect("log"))
            .spawn()
            .expect("run kubectl port-forward"),
    );
    let port: u16 = first_line(&mut forward.0, Duration::from_secs(30), "port-forward", |line| {
        // "Forwarding from 127.0.0.1:43121 -> 5900"
        line.strip_prefix("Forwarding from 127.0.0.1:")?.split_whitespace().next()?.parse().ok()
    });
    let (width, height) = DISPLAY_SIZE;
    let mut xvfb = Killed(
        Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0", &format!("{width}x{height}x24"), "-fbdir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("xvfb.log")).expect("log"))
            .spawn()
            .expect("run Xvfb"),
    );
    let display: u32 =
        first_line(&mut xvfb.0, Duration::from_secs(30), "Xvfb display", |line| line.trim().parse().ok());
    let viewer_log = dir.join("viewer.log");
    let opened = Instant::now();
    let _viewer = Killed(
        Command::new("xtigervncviewer")
            .arg("-display")
            .arg(format!(":{display}"))
            .arg("-passwd")
            .arg(&password_file)
            .args(["-FullScreen", "-ReconnectOnError=0", "-AlertOnFatalError=0", &format!("127.0.0.1::{port}")])
            .stdout(std::fs::File::create(dir.join("viewer.out")).expect("log"))
            .stderr(std::fs::File::create(&viewer_log).expect("log"))
            .spawn()
            .expect("run xtigervncviewer (tests/browser/install-deps.sh installs tigervnc-viewer)"),
    );
    let screen = dir.join("Xvfb_screen0");
    let share = eventually(
        Duration::from_secs(30),
        &format!("the app's colour in the viewer (logs in {})", dir.display()),
        || async { colour_share(&std::fs::read(&screen).ok()?, APP_RGB).filter(|share| *share > 0.8) },
    )
    .await;
    println!(
        "native client through kubectl port-forward: the app's colour on {:.1}% of the viewer's screen {:.0} ms after \
         it started",
        share * 100.0,
        opened.elapsed().as_secs_f64() * 1000.0
    );
    drop(forward);

    // The VNC port answers on the pod's loopback only: another pod of the namespace reaches the stream port, not it.
    let session_ip = Api::<Pod>::namespaced(broker.client.clone(), &namespace)
        .get(&pod)
        .await
        .expect("the session's pod")
        .status
        .and_then(|s| s.pod_ip)
        .expect("a pod IP");
    let probe = Api::<Pod>::namespaced(broker.client.clone(), &namespace);
    probe
        .create(&PostParams::default(), &node_pod("prober", json!({}), "sleep 3600"))
        .await
        .expect("create the probing pod");
    eventually(Duration::from_secs(90), "the probing pod to run", || async {
        let status = probe.get("prober").await.ok()?.status?;
        status.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    let answer = |port: u16, send: &str| {
        // Input held open for 2 s: busybox's nc stops reading when its input ends.
        let script = format!("(printf '{send}'; sleep 2) | nc -w 3 {session_ip} {port}");
        kubectl(&["exec", "-n", &namespace, "prober", "--", "sh", "-c", &script]).1
    };
    let stream = answer(6080, "GET / HTTP/1.0\\r\\n\\r\\n");
    assert!(stream.starts_with("HTTP/"), "the stream port does not answer from another pod: {stream:?}");
    let vnc = answer(5900, "");
    assert!(!vnc.contains("RFB"), "the VNC port answers on the pod's IP: {vnc:?}");
    probe.delete("prober", &DeleteParams::default()).await.expect("delete the probing pod");

    delete_session(&broker, &session).await;
    broker.deprovision(&cluster_id, MEDIUM).await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_session_without_a_viewer_sleeps_with_its_volume_and_wakes_on_state_running() {
    let _turn = NODE_TURN.lock().await;
    let broker = broker().await;
    let org = id("org");
    let (cluster_id, namespace) = virtual_cluster(&broker, &org, MEDIUM).await;
    let provisioned = Instant::now();
    let session = provision_session(&broker, &org, &cluster_id, json!({ "idle_stop_minutes": 1 })).await;
    let (pod, name) = names_of(&session);
    follow(&broker, &session, "provision", Duration::from_secs(300), |_| {}).await;
    let stops = "caas_broker_session_idle_stops_total";
    let saved = "caas_broker_session_idle_saved_pod_hours_total";
    let (stops_before, saved_before) =
        (broker.metric(stops).await.expect("idle stops counted"), broker.metric(saved).await.expect("saved hours"));

    // Nobody connects: after a minute the session stops itself and the broker scales it to zero.
    let sets = Api::<StatefulSet>::namespaced(broker.client.clone(), &namespace);
    eventually(Duration::from_secs(180), "the session scaled to zero for want of a viewer", || async {
        (sets.get(&name).await.expect("the StatefulSet").spec.and_then(|s| s.replicas) == Some(0)).then_some(())
    })
    .await;
    let slept_after = provisioned.elapsed().as_secs_f64();
    println!("streaming session without a viewer: scaled to zero {slept_after:.1} s after the provision request");
    assert!(slept_after >= 60.0, "stopped after {slept_after:.1} s, before its minute without a viewer");
    assert_eq!(broker.metric(stops).await, Some(stops_before + 1.0), "the idle stop is counted");
    let pods = Api::<Pod>::namespaced(broker.client.clone(), &namespace);
    eventually(Duration::from_secs(60), "the session's pod to be gone", || async {
        pods.get_opt(&pod).await.expect("read the pod").is_none().then_some(())
    })
    .await;
    let claims = Api::<PersistentVolumeClaim>::namespaced(broker.client.clone(), &namespace);
    let claim = claims.get(&format!("data-{pod}")).await.expect("the session's volume is kept");
    let volume = claim.spec.and_then(|s| s.volume_name).expect("a bound claim");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    assert_eq!(fetched.status, StatusCode::OK, "{fetched:?}");
    let labels = &fetched.body["metadata"]["labels"];
    assert_eq!(labels["state"], "stopped after 1 minute without a viewer", "{}", fetched.body);
    assert_eq!(labels["idle_stopped_after_minutes"], "1", "{}", fetched.body);

    // Woken as the dashboard's Open wakes it: on its volume, and succeeded once the app is visible again.
    let woken = Instant::now();
    let uri = format!("/v2/service_instances/{session}?accepts_incomplete=true");
    let wake = json!({ "service_id": STREAMING, "parameters": { "state": "running" } });
    let answer = broker.call(Method::PATCH, &uri, Some(wake)).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
    follow(&broker, &session, "update", Duration::from_secs(180), |_| {}).await;
    println!("streaming session woken: succeeded {:.1} s after the update", woken.elapsed().as_secs_f64());
    assert!(exists_in_session(&namespace, &pod, "/tmp/session/session.ready"), "succeeded before the app was visible");
    let claim = claims.get(&format!("data-{pod}")).await.expect("the session's volume");
    assert_eq!(claim.spec.and_then(|s| s.volume_name), Some(volume), "woken on the same volume");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    assert!(fetched.body["metadata"]["labels"].get("state").is_none(), "still said to sleep: {}", fetched.body);
    let saved_now = broker.metric(saved).await.expect("saved hours");
    assert!(saved_now > saved_before, "the time asleep is not counted: {saved_before} then {saved_now}");
    let selector = format!("caas-broker.io/instance={}", caas_broker::k8s::names::label_value(&session));
    let running = pods.list(&ListParams::default().labels(&selector)).await.expect("pods").items;
    assert_eq!(running.len(), 1, "one pod again");

    delete_session(&broker, &session).await;
    broker.deprovision(&cluster_id, MEDIUM).await;
}

#[test]
fn the_xwd_reader_counts_the_colour_it_is_asked_for() {
    // A 2x2 LSB-first 32-bit TrueColor XWD with no colormap: three pixels of the colour, one black.
    let mut xwd = Vec::new();
    let header = [
        100,
        7,
        2,
        24,
        2,
        2,
        0,
        0,
        32,
        0,
        32,
        32,
        8,
        4,
        0x00ff_0000,
        0x0000_ff00,
        0x0000_00ff,
        8,
        256,
        0,
        2,
        2,
        0,
        0,
        0,
    ];
    for value in header {
        xwd.extend_from_slice(&u32::to_be_bytes(value));
    }
    for pixel in [0x00ff_00aa_u32, 0x00ff_00aa, 0x0000_0000, 0x00f0_08a0] {
        xwd.extend_from_slice(&pixel.to_le_bytes());
    }
    assert_eq!(colour_share(&xwd, APP_RGB), Some(0.75));
    assert_eq!(colour_share(&xwd[..40], APP_RGB), None, "a file still being written");
}
