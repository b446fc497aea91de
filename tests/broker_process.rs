//! The `caas-broker` binary as operators run it: configuration from the environment, TLS, JSON logs with the request
//! identity, probes, graceful shutdown on SIGTERM, refusal of invalid configuration, and `catalog check`.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::cluster::cluster;
use support::http::curl;

const BINARY: &str = env!("CARGO_BIN_EXE_caas-broker");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

#[test]
fn serves_tls_logs_json_and_stops_gracefully() {
    let cluster = cluster();
    let pki = cluster.kubeconfig.parent().expect("state dir").join("pki");
    let port = free_port();
    let mut broker = Command::new(BINARY)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
        .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
        .env("CAAS_BROKER__TLS__CERT", pki.join("serving.crt"))
        .env("CAAS_BROKER__TLS__KEY", pki.join("serving.key"))
        .env("CAAS_BROKER__LOG__FORMAT", "json")
        .env("CAAS_BROKER__AUTH__PASSWORD", "a-long-test-password")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the broker");
    let base = format!("https://127.0.0.1:{port}");
    let ca = pki.join("ca.crt");
    let ca = ca.to_str().expect("path");
    let started = Instant::now();
    while curl(&["--cacert", ca, &format!("{base}/healthz")]).0 != "200" {
        assert!(started.elapsed() < Duration::from_secs(20), "the broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(curl(&["--cacert", ca, &format!("{base}/readyz")]).0, "200");
    let (status, body) = curl(&[
        "--cacert",
        ca,
        "-u",
        "broker:a-long-test-password",
        "-H",
        "X-Broker-API-Version: 2.15",
        "-H",
        "X-Broker-API-Request-Identity: trace-me-42",
        &format!("{base}/v2/catalog"),
    ]);
    assert_eq!(status, "200");
    assert!(body.contains("\"name\":\"caas\""));
    let (status, _) = curl(&[
        "--cacert",
        ca,
        "-u",
        "broker:broker-dev-password",
        "-H",
        "X-Broker-API-Version: 2.15",
        &format!("{base}/v2/catalog"),
    ]);
    assert_eq!(status, "401", "the configured password replaces the default");

    // A provision and a bind through the process: the token must not reach the log.
    let osb = |method: &str, path: &str, body: Option<&str>| {
        let url = format!("{base}{path}");
        let mut args =
            vec!["--cacert", ca, "-u", "broker:a-long-test-password", "-H", "X-Broker-API-Version: 2.17", "-X", method];
        if let Some(body) = body {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        args.push(&url);
        curl(&args)
    };
    let instance = format!("proc-{:08x}", rand::random::<u32>());
    let plan = "df58fe54-eee6-45f5-98f9-df0e3c12640f";
    let service = "df246006-e192-4292-807d-2b0ec6395bdf";
    let provision =
        format!(r#"{{"service_id":"{service}","plan_id":"{plan}","organization_guid":"o","space_guid":"s"}}"#);
    let (status, body) = osb("PUT", &format!("/v2/service_instances/{instance}"), Some(&provision));
    assert_eq!(status, "201", "{body}");
    let bind = format!(r#"{{"service_id":"{service}","plan_id":"{plan}"}}"#);
    let (status, body) =
        osb("PUT", &format!("/v2/service_instances/{instance}/service_bindings/{instance}-b"), Some(&bind));
    assert_eq!(status, "201", "{body}");
    let bound: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let token = bound["credentials"]["token"].as_str().expect("token").to_owned();
    // Metrics: requests by route and status, operations by plan and outcome, apiserver latencies, instances.
    let (status, _) = curl(&["--cacert", ca, &format!("{base}/metrics")]);
    assert_eq!(status, "401", "/metrics answers only with the broker's credentials");
    let (status, metrics) = curl(&["--cacert", ca, "-u", "broker:a-long-test-password", &format!("{base}/metrics")]);
    assert_eq!(status, "200");
    let sample = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no sample {prefix} in:\n{metrics}"))
    };
    assert_eq!(sample(r#"caas_broker_http_requests_total{route="/v2/catalog",method="GET",status="200"}"#), 1.0);
    assert_eq!(sample(r#"caas_broker_http_requests_total{route="/v2/catalog",method="GET",status="401"}"#), 1.0);
    let provisioned =
        r#"caas_broker_osb_operations_total{operation="provision",service="caas",plan="micro",outcome="succeeded"}"#;
    assert_eq!(sample(provisioned), 1.0);
    let bound = r#"caas_broker_osb_operations_total{operation="bind",service="caas",plan="micro",outcome="succeeded"}"#;
    assert_eq!(sample(bound), 1.0);
    assert!(
        sample(r#"caas_broker_kubernetes_request_duration_seconds_count{method="PATCH",status="201"}"#) >= 6.0,
        "{metrics}"
    );
    assert!(sample(r#"caas_broker_instances{service="caas",plan="micro"}"#) >= 1.0);
    let query = format!("service_id={service}&plan_id={plan}");
    assert_eq!(
        osb("DELETE", &format!("/v2/service_instances/{instance}/service_bindings/{instance}-b?{query}"), None).0,
        "200"
    );
    assert_eq!(osb("DELETE", &format!("/v2/service_instances/{instance}?{query}"), None).0, "200");

    let pid = broker.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = broker.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the broker did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let mut logs = String::new();
    broker.stdout.take().expect("stdout").read_to_string(&mut logs).expect("read logs");
    let answered: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["message"] == "answered" && line["span"]["request_id"] == "trace-me-42")
        .collect();
    assert_eq!(answered.len(), 1, "one JSON log line for the request, with its identity: {logs}");
    assert_eq!(answered[0]["status"], 200);
    assert!(!logs.contains("a-long-test-password"), "the password must never be logged");
    assert!(!logs.contains(&token), "a binding's token must never be logged");
    let mut errors = String::new();
    broker.stderr.take().expect("stderr").read_to_string(&mut errors).expect("read stderr");
    assert!(!errors.contains(&token));
}

/// The `command` of manifest.yml, run as Cloud Foundry runs it (a shell, `PORT` set, the app directory as working
/// directory with the binary, the catalog and a kubeconfig), serves the health check the manifest names.
#[test]
fn the_cf_push_manifest_command_starts_the_broker() {
    let manifest: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(support::cluster::repo_root().join("manifest.yml")).expect("manifest.yml"),
    )
    .expect("YAML");
    let app = &manifest["applications"][0];
    let command = app["command"].as_str().expect("command");
    let endpoint = app["health-check-http-endpoint"].as_str().expect("health check endpoint");
    let dir = std::env::temp_dir().join(format!("cf-push-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("catalog")).expect("push dir");
    std::fs::copy(BINARY, dir.join("caas-broker")).expect("binary");
    std::fs::copy(support::cluster::repo_root().join("catalog/catalog.yaml"), dir.join("catalog/catalog.yaml"))
        .expect("catalog");
    std::fs::copy(&cluster().kubeconfig, dir.join("kubeconfig")).expect("kubeconfig");
    let port = free_port();
    // Cloud Foundry's launcher runs the command with bash, which replaces itself with the last simple command.
    let mut child = Command::new("bash");
    child.arg("-c").arg(command).current_dir(&dir).env("PORT", port.to_string());
    for (key, value) in app["env"].as_object().expect("env") {
        child.env(key, value.as_str().expect("string"));
    }
    // The dashboard's port: 8081 in a container of its own, but any free one on a machine that may already run
    // something on 8081 (the Cloud Foundry API's controllers do).
    child.env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0");
    let mut child =
        child.env("CAAS_BROKER__AUTH__PASSWORD", "pushed-password").stdout(Stdio::null()).spawn().expect("run");
    let started = Instant::now();
    let mut status = String::new();
    while started.elapsed() < Duration::from_secs(20) {
        status = curl(&[&format!("http://127.0.0.1:{port}{endpoint}")]).0;
        if status == "200" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let catalog = curl(&[
        "-u",
        "broker:pushed-password",
        "-H",
        "X-Broker-API-Version: 2.15",
        &format!("http://127.0.0.1:{port}/v2/catalog"),
    ]);
    child.kill().ok();
    child.wait().ok();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(status, "200", "the manifest's health check answers");
    assert_eq!(catalog.0, "200", "the catalog is served with the pushed configuration");
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let output =
        Command::new(BINARY).env("CAAS_BROKER__LIMITS__SYNC_TIMEOUT_SECONDS", "600").output().expect("run the broker");
    assert_eq!(output.status.code(), Some(78));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("limits.sync_timeout_seconds"), "{message}");

    let output = Command::new(BINARY).env("CAAS_BROKER__LISTEN", "0.0.0.0:8080").output().expect("run");
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("auth.password"));

    let file = std::env::temp_dir().join(format!("config-{}.yaml", std::process::id()));
    std::fs::write(&file, "listen: \"127.0.0.1:9999\"\nauth:\n  password: long-enough-secret\n").expect("write");
    let output = Command::new(BINARY).args(["config", "check"]).arg(&file).output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::write(&file, "listen: nowhere\n").expect("write");
    let output = Command::new(BINARY).args(["config", "check"]).arg(&file).output().expect("run");
    assert_eq!(output.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen"));
}

#[test]
fn catalog_check_names_each_problem() {
    let good = support::cluster::repo_root().join("catalog/catalog.yaml");
    let output = Command::new(BINARY).args(["catalog", "check"]).arg(&good).output().expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OK (3 services, 10 plans)"));

    let broken = std::env::temp_dir().join(format!("catalog-{}.yaml", std::process::id()));
    let text = std::fs::read_to_string(&good).expect("read").replacen("limits.memory: 2Gi", "limits.memory: 2 gigs", 1);
    std::fs::write(&broken, text).expect("write");
    let output = Command::new(BINARY).args(["catalog", "check"]).arg(&broken).output().expect("run");
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(
            "service caas, plan small: broker.quota[\"limits.memory\"]: \"2 gigs\" is not a Kubernetes quantity"
        ),
        "{message}"
    );
}

/// The binary expecting a tenant guard that is not installed (named apart from the one `cluster.sh up` installs, so
/// nothing shared is touched): `/readyz` answers 503 naming what is missing, and the log says so at start, once, not
/// at each probe (it repeats once a minute).
#[test]
fn a_missing_tenant_guard_is_said_in_the_log_once_and_fails_readiness() {
    let cluster = cluster();
    let port = free_port();
    let absent = format!("absent-{:06x}", rand::random::<u32>() & 0xffffff);
    let mut broker = Command::new(BINARY)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
        .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
        .env("CAAS_BROKER__LOG__FORMAT", "json")
        .env("CAAS_BROKER__POLICY__TENANT_GUARD", &absent)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the broker");
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while curl(&[&format!("{base}/healthz")]).0 != "200" {
        assert!(started.elapsed() < Duration::from_secs(20), "the broker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Probes across more than one cached verdict (5 s): each is refused, the log does not repeat.
    let deadline = Instant::now() + Duration::from_secs(7);
    while Instant::now() < deadline {
        let (status, body) = curl(&[&format!("{base}/readyz")]);
        assert_eq!(status, "503", "/readyz without the guard: {body}");
        assert!(body.contains(&format!("ValidatingAdmissionPolicy {absent}-tenant-guard: missing")), "{body}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let pid = broker.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let mut log = String::new();
    broker.stdout.take().expect("stdout").read_to_string(&mut log).expect("read the log");
    broker.wait().expect("reap the broker");
    let said: Vec<&str> = log.lines().filter(|line| line.contains("refusing provision and bind, not ready")).collect();
    assert_eq!(said.len(), 1, "the missing guard is said once a minute, not at each probe:\n{log}");
    assert!(said[0].contains(&format!("{absent}-no-gpu-env")), "the log names what is missing: {}", said[0]);
}
