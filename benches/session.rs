//! A streaming session in the browser, Selkies beside noVNC measured in the same run on this host: the session
//! entrypoint (`images/streaming-session/entrypoint.sh`) at 1280x720 with the test app (`tests/browser/colour_app.py`:
//! a full-screen colour, a bar sweeping ~60 times a second, a colour per key), and headless Chromium driven by
//! `tests/browser/selkies_probe.mjs` (`PROBE_ENGINE=selkies` or `novnc`) measuring, for each engine:
//!
//! - the time from navigation start (opening the page) to the first frame showing the app, the app already running;
//! - the animation's frames per second as the page presents them (frames that differ from the previous one);
//! - the bitrate: bytes received on the browser's connections to the stream's port, per second;
//! - input-to-photon latency: a key press ("2" and "1" alternately, `BENCH_SESSION_PRESSES` times) to the first
//!   presented frame in the colour it leads to, p50 and p95.
//!
//! The engines take turns, `BENCH_SESSION_ROUNDS` rounds (default 3) of one session each, and each figure is the
//! median of the rounds with their range: the two cores are shared with whatever else runs, and one round can land on
//! a busy moment. Run with `cargo bench --bench session` (host tools: `bash tests/browser/install-deps.sh`). It
//! asserts nothing and prints a Markdown report; docs/benchmarks.md keeps the latest one.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const APP_COLOUR: &str = "#ff00aa";

fn size(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A session run by the entrypoint in a process group of its own, stopped with the group when dropped.
struct Session {
    child: Child,
    port: u16,
}

impl Session {
    fn start(dir: &Path, engine: &str, display: u32, password: &str) -> Self {
        let (port, vnc_port) = (free_port(), free_port());
        let password_file = dir.join("password");
        fs::write(&password_file, format!("{password}\n")).expect("write the password");
        let app_ready = dir.join("app-ready");
        let app = Path::new(ROOT).join("tests/browser/colour_app.py");
        let log = fs::File::create(dir.join("session.log")).expect("session log");
        let child = Command::new("bash")
            .arg(Path::new(ROOT).join("images/streaming-session/entrypoint.sh"))
            .env("STREAM_PROTOCOL", engine)
            .env("STREAM_PORT", port.to_string())
            .env("STREAM_LISTEN", "127.0.0.1")
            .env("VNC_PORT", vnc_port.to_string())
            .env("DISPLAY_NUMBER", display.to_string())
            .env("RESOLUTION", "1280x720x24")
            .env("VNC_PASSWORD_FILE", &password_file)
            .env("STATE_DIR", dir.join("state"))
            .env(
                "APP_COMMAND",
                format!("exec /usr/bin/python3 '{}' '{APP_COLOUR}' '{}'", app.display(), app_ready.display()),
            )
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the entrypoint");
        let session = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !dir.join("state/session.ready").exists() {
            assert!(Instant::now() < deadline, "the {engine} session was not ready; see {}", dir.display());
            std::thread::sleep(Duration::from_millis(100));
        }
        session
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let kill = |signal: &str| {
            let _ = Command::new("kill").args([signal, "--", &group]).stderr(Stdio::null()).status();
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        kill("-KILL");
        let _ = self.child.wait();
    }
}

/// Runs the probe against one engine's session; its JSON report.
fn measure(engine: &str, display: u32, presses: u32, measure_ms: u32) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("caas-bench-session-{engine}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("profile")).expect("bench dir");
    let password = format!("{:016x}", rand::random::<u64>());
    let session = Session::start(&dir, engine, display, &password);
    let out = Command::new("node")
        .arg(Path::new(ROOT).join("tests/browser/selkies_probe.mjs"))
        .current_dir(Path::new(ROOT).join("tests/browser"))
        .env("PROBE_ENGINE", engine)
        .env("PROBE_BASE_URL", format!("http://127.0.0.1:{}", session.port))
        .env("PROBE_TOKEN", &password)
        .env("PROBE_WRONG_TOKEN", "wrong")
        .env("PROBE_COLOUR", APP_COLOUR)
        .env("PROBE_USER_DATA_DIR", dir.join("profile"))
        .env("PROBE_OUT_DIR", &dir)
        .env("PROBE_MEASURE_MS", measure_ms.to_string())
        .env("PROBE_LATENCY_SAMPLES", presses.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run the probe");
    drop(session);
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!("the {engine} probe printed no report ({e}): {}", String::from_utf8_lossy(&out.stderr))
    });
    let _ = fs::remove_dir_all(&dir);
    report
}

/// A figure of every round's report: "median (min–max)", with `digits` decimals.
fn figure(reports: &[serde_json::Value], pointer: &str, digits: usize) -> String {
    let mut values: Vec<f64> =
        reports.iter().filter_map(|r| r.pointer(pointer).and_then(serde_json::Value::as_f64)).collect();
    if values.is_empty() {
        return "-".to_owned();
    }
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    if values.len() == 1 {
        return format!("{median:.digits$}");
    }
    format!("{median:.digits$} ({:.digits$}–{:.digits$})", values[0], values[values.len() - 1])
}

/// The machine's 1-minute load average: the cores are shared, and the figures move with what else runs.
fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn main() {
    let presses = size("BENCH_SESSION_PRESSES", 30);
    let measure_ms = size("BENCH_SESSION_MEASURE_MS", 10_000);
    let rounds = size("BENCH_SESSION_ROUNDS", 3);
    let load_before = load();
    let engines = [("selkies", 180), ("novnc", 181)];
    let mut reports: Vec<Vec<serde_json::Value>> = vec![Vec::new(); engines.len()];
    for _ in 0..rounds {
        for (i, (engine, display)) in engines.into_iter().enumerate() {
            reports[i].push(measure(engine, display, presses, measure_ms));
        }
    }
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let chromium = reports[0][0]["browserVersion"].as_str().unwrap_or("?").to_owned();
    println!("## Streaming session in the browser: Selkies and noVNC (1280x720, software encoding)\n");
    println!(
        "Machine: {} cores ({cpu}; load average {load_before} before the run, {} after); session, app and \
         headless Chromium {chromium} on the same host; {rounds} rounds, each engine in turn; per round {presses} key \
         presses and {} s of animation. Each cell: the median of the rounds (their range).\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load(),
        measure_ms / 1000
    );
    println!(
        "| engine | first frame after opening the page (ms) | frames/s | key press → colour change p50 (ms) | p95 (ms) \
         | bitrate (kbit/s) |"
    );
    println!("|---|---|---|---|---|---|");
    for ((engine, _), runs) in engines.iter().zip(&reports) {
        let seen: u64 =
            runs.iter().filter_map(|r| r.pointer("/right/keys/samples").and_then(serde_json::Value::as_u64)).sum();
        let unseen = u64::from(presses) * runs.len() as u64 - seen;
        println!(
            "| {engine} | {} | {} | {} | {} | {} |{}",
            figure(runs, "/right/timeToFirstFrameMs", 0),
            figure(runs, "/right/framesPerSecond", 1),
            figure(runs, "/right/keys/p50Ms", 0),
            figure(runs, "/right/keys/p95Ms", 0),
            figure(runs, "/right/bitrateKbps", 0),
            if unseen > 0 { format!(" ({unseen} key presses never showed)") } else { String::new() },
        );
    }
}
