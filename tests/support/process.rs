//! The broker binary as a process of its own, and what the benchmarks read of a process from `/proc`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::cluster;

/// Starts the broker binary against the cluster on a free port, for the namespaces named `prefix`…, with `env` added
/// (`CAAS_BROKER__…` settings), and waits until `/healthz` answers; the process and its port.
pub fn start_broker(prefix: &str, env: &[(&str, &str)]) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let binary = env!("CARGO_BIN_EXE_caas-broker");
    let process = Command::new(binary)
        .env("KUBECONFIG", &cluster().kubeconfig)
        .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
        .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
        .env("CAAS_BROKER__KUBERNETES__NAMESPACE_PREFIX", prefix)
        .env("CAAS_BROKER__LOG__LEVEL", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new("curl").args(["-sf", &healthz]).output().is_ok_and(|out| out.status.success()) {
        assert!(Instant::now() < deadline, "the broker binary did not answer {healthz} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (process, port)
}

/// The resident set of process `pid` (`self` for this one), in MiB.
pub fn rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}
