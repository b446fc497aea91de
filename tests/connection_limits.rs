//! The broker binary's listeners as a stranger finds them, with no credentials: a connection that sends half a request
//! head, nothing at all, or sits idle after an answer is closed after the head timeout, on the OSB listener and the
//! dashboard's alike; a request body that stalls is answered 408; and past the connection cap new connections wait
//! until a held one closes instead of piling up. `/metrics` answers only with the broker's credentials, or on a
//! listener of its own when one is configured.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::cluster::cluster;
use support::http::curl;

const BINARY: &str = env!("CARGO_BIN_EXE_caas-broker");

/// The head timeout the brokers of these tests run with.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// A broker binary on free loopback ports, stopped when dropped.
struct Running {
    child: Child,
    osb: SocketAddr,
    dashboard: SocketAddr,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address")
}

/// Starts the binary with the head timeout of [`HEAD_TIMEOUT`], `env` on top, and waits until both listeners answer.
fn start(name: &str, env: &[(&str, String)]) -> Running {
    let (osb, dashboard) = (free_address(), free_address());
    let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("connection-limits-{name}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let mut command = Command::new(BINARY);
    command
        .env("KUBECONFIG", &cluster().kubeconfig)
        .env("CAAS_BROKER__LISTEN", osb.to_string())
        .env("CAAS_BROKER__DASHBOARD__LISTEN", dashboard.to_string())
        .env("CAAS_BROKER__LIMITS__HEADER_TIMEOUT_SECONDS", HEAD_TIMEOUT.as_secs().to_string())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file);
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("start the broker");
    let running = Running { child, osb, dashboard, log };
    let started = Instant::now();
    for address in [osb, dashboard] {
        let path = if address == osb { "/healthz" } else { "/dashboard.css" };
        while curl(&[&format!("http://{address}{path}")]).0 != "200" {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the broker did not answer on {address} within 30 s (log: {})",
                running.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    running
}

/// Waits until the server closes `connection` (end of stream or reset), reading whatever it sends; panics when it is
/// still open after `limit`.
fn closed_within(connection: &mut TcpStream, limit: Duration, what: &str) {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed()).unwrap_or_else(|| panic!("{what}: still open after {limit:?}"));
        connection.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("read timeout");
        match connection.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("{what}: still open after {limit:?}")
            }
            // Reset by the server: closed too.
            Err(_) => return,
        }
    }
}

#[test]
fn stalled_idle_and_slow_connections_are_closed_on_both_listeners() {
    let broker = start("stalled", &[]);
    for (listener, address) in [("OSB", broker.osb), ("dashboard", broker.dashboard)] {
        // Half a request head, never finished; a connection that sends nothing; one kept alive after its answer.
        let mut half = TcpStream::connect(address).expect("connect");
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").expect("send half a head");
        let mut silent = TcpStream::connect(address).expect("connect");
        let mut idle = TcpStream::connect(address).expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("send a request");
        let mut answer = [0u8; 1024];
        let count = idle.read(&mut answer).expect("an answer");
        assert!(String::from_utf8_lossy(&answer[..count]).starts_with("HTTP/1.1 "), "{listener}: answered");
        let limit = Duration::from_secs(30);
        for (connection, what) in [(&mut half, "half a head"), (&mut silent, "nothing sent"), (&mut idle, "idle")] {
            closed_within(connection, limit, &format!("{listener}: {what} (log: {})", broker.log.display()));
        }
    }
    // A body that stalls half way: the broker answers 408 instead of waiting for the rest.
    let mut slow = TcpStream::connect(broker.osb).expect("connect");
    let head = "PUT /v2/service_instances/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YnJva2VyOmJyb2tlci1kZXYtcGFzc3dvcmQ=\r\nX-Broker-API-Version: 2.17\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"service_id\":";
    slow.write_all(head.as_bytes()).expect("send half a body");
    slow.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "a stalled body is answered 408: {answer}");
    assert!(answer.contains(r#""error":"RequestTimeout""#), "with an OSB error body: {answer}");
}

#[test]
fn past_the_connection_cap_new_connections_wait_until_one_closes() {
    let broker = start("cap", &[("CAAS_BROKER__LIMITS__MAX_CONNECTIONS", "16".to_owned())]);
    // Sixteen connections that send nothing hold every place until the head timeout closes them.
    let mut held: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(broker.osb).expect("connect")).collect();
    let asked = Instant::now();
    let mut waiting = TcpStream::connect(broker.osb).expect("the kernel still queues a connection");
    waiting.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("send");
    waiting.set_read_timeout(Some(Duration::from_secs(60))).expect("read timeout");
    let mut answer = Vec::new();
    waiting.read_to_end(&mut answer).expect("an answer within 60 s");
    let waited = asked.elapsed();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    // Answered only once a held connection had been closed: not before the head timeout, and after a close.
    assert!(waited >= HEAD_TIMEOUT.mul_f32(0.9), "answered after {waited:?}, while every place was held");
    let mut closed = 0;
    for connection in &mut held {
        connection.set_nonblocking(true).expect("non-blocking");
        closed += usize::from(matches!(connection.read(&mut [0u8; 16]), Ok(0)));
    }
    assert!(closed >= 1, "the waiting connection was answered while all 16 were still open");
}

#[test]
fn metrics_need_the_brokers_credentials_or_a_listener_of_their_own() {
    let broker = start("metrics-auth", &[]);
    let url = format!("http://{}/metrics", broker.osb);
    assert_eq!(curl(&[&url]).0, "401", "no credentials");
    assert_eq!(curl(&["-u", "broker:wrong-password", &url]).0, "401", "wrong credentials");
    let (status, metrics) = curl(&["-u", "broker:broker-dev-password", &url]);
    assert_eq!(status, "200");
    assert!(metrics.contains("caas_broker_http_requests_total"), "{metrics}");

    let own = free_address();
    let broker = start("metrics-listener", &[("CAAS_BROKER__METRICS__LISTEN", own.to_string())]);
    let (status, metrics) = curl(&[&format!("http://{own}/metrics")]);
    assert_eq!(status, "200", "the scraper's own listener needs no credentials");
    assert!(metrics.contains("caas_broker_http_requests_total"), "{metrics}");
    let osb_metrics = format!("http://{}/metrics", broker.osb);
    let (status, _) = curl(&["-u", "broker:broker-dev-password", "-H", "X-Broker-API-Version: 2.17", &osb_metrics]);
    assert_eq!(status, "404", "and /metrics is then not on the OSB listener");
}
