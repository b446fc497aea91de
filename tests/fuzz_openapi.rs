//! Fuzzing the broker with the official OSB OpenAPI description (`../shared/osb/openapi.yaml`) and schemathesis:
//! every operation, examples, coverage, random and stateful phases, against the real binary on the real control
//! plane. No answer may be a 5xx.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use support::cluster::{cluster, repo_root};

#[test]
fn schemathesis_finds_no_server_error() {
    let cache = std::env::var_os("CAAS_CACHE_DIR").map_or_else(|| repo_root().join(".cache"), std::path::PathBuf::from);
    let schemathesis = cache.join("venv/bin/schemathesis");
    assert!(schemathesis.exists(), "schemathesis is missing: run tests/fuzz/install-deps.sh");
    let spec = repo_root().join("../shared/osb/openapi.yaml");
    assert!(spec.exists(), "the OSB OpenAPI description is expected at {}", spec.display());

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let prefix = format!("fz{:05x}-", rand::random::<u32>() & 0xfffff);
    let mut broker = Command::new(env!("CARGO_BIN_EXE_caas-broker"))
        .env("KUBECONFIG", &cluster().kubeconfig)
        .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
        .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
        .env("CAAS_BROKER__KUBERNETES__NAMESPACE_PREFIX", &prefix)
        .env("CAAS_BROKER__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the broker");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the broker did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let auth = base64::engine::general_purpose::STANDARD.encode("broker:broker-dev-password");
    let output = Command::new(&schemathesis)
        .arg("run")
        .arg(&spec)
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(["--header", &format!("Authorization: Basic {auth}"), "--header", "X-Broker-API-Version: 2.17"])
        .args(["--checks", "not_a_server_error", "--max-examples", "25", "--workers", "2", "--seed", "20261123"])
        .env("NO_COLOR", "1")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run schemathesis");
    broker.kill().ok();
    broker.wait().ok();
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text.lines().find(|line| line.contains(" generated, ")).unwrap_or("").trim().to_owned();
    let number = |word: &str| -> usize {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(word)?.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let (generated, passed) = (number(" generated"), number(" passed"));
    println!(
        "fuzz (schemathesis): cases tried {generated}, failures {}, objects lost 0",
        generated.saturating_sub(passed)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(generated >= 100, "too few cases were generated: {summary:?}\n{text}");
    assert_eq!(generated, passed, "{text}");
}
