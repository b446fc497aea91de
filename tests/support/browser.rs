//! A headless Chromium probe (`tests/browser/*.mjs`, run by node with playwright-core) driven from a test: its JSON
//! lines read on a thread of their own while the test's runtime serves the dashboard to the browser, a line sent to
//! it when the test has checked something mid-way, and its last line taken as its report.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cluster::repo_root;

/// What a probe may take at most, all steps together.
pub const PROBE_PATIENCE: Duration = Duration::from_secs(300);

/// A running probe.
pub struct Probe {
    child: Child,
    to_probe: ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Probe {
    /// Starts `tests/browser/<script>` with `envs` (secrets go there, never on a command line).
    pub fn start(script: &str, envs: &[(&str, &std::ffi::OsStr)]) -> Probe {
        let mut child = spawn(script, envs, Stdio::piped());
        let to_probe = child.stdin.take().expect("the probe's stdin");
        let from_probe = child.stdout.take().expect("the probe's stdout");
        let stderr = child.stderr.take().expect("the probe's stderr");
        let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let (lines_tx, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(from_probe).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Probe { child, to_probe, lines, stderr }
    }

    /// The probe's next JSON line; panics with its error output when it stopped or said no JSON.
    pub async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(PROBE_PATIENCE, self.lines.recv()).await.ok().flatten();
        match line.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(value)) => value,
            _ => {
                self.child.kill().ok();
                let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
                panic!("the browser probe stopped: {}", stderr.join().unwrap_or_default())
            }
        }
    }

    /// Tells the probe to go on.
    pub fn go_on(&mut self) {
        writeln!(self.to_probe, "go").expect("tell the probe");
    }

    /// The probe's report (its last line), once it exited successfully.
    pub async fn report(mut self) -> Value {
        let report = self.next().await;
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("wait").expect("the probe's exit");
        assert!(status.success(), "the browser probe failed ({status}): {}", self.stderr.join().unwrap_or_default());
        report
    }
}

/// Runs `tests/browser/<script>` with `envs` to its end (stdin closed: a probe that asks nothing of the test), waited
/// for off this runtime, which serves the dashboard to the browser meanwhile; killed after `limit`. Its report (its
/// stdout, one JSON object); panics with its error output, naming `screenshots`, when it failed.
pub async fn run_to_end(
    script: &str,
    envs: &[(&str, &std::ffi::OsStr)],
    limit: Duration,
    screenshots: &std::path::Path,
) -> Value {
    let output = output_within(spawn(script, envs, Stdio::null()), limit).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser probe failed (screenshots in {}): {stderr}", screenshots.display());
    serde_json::from_slice(&output.stdout).expect("the probe's JSON report")
}

/// `tests/browser/<script>` started by node with `envs` (secrets go there, never on a command line) and `stdin`, its
/// output piped.
fn spawn(script: &str, envs: &[(&str, &std::ffi::OsStr)], stdin: Stdio) -> Child {
    let mut command = Command::new("node");
    command.arg(repo_root().join("tests/browser").join(script)).current_dir(repo_root().join("tests/browser"));
    for (name, value) in envs {
        command.env(name, value);
    }
    command
        .env("CHROMIUM", "/usr/bin/chromium")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (tests/browser/install-deps.sh installs it and playwright-core)")
}

/// What `probe` wrote once it ended, killed after `limit`; waited for off this runtime, which serves the dashboard to
/// the browser meanwhile.
pub async fn output_within(mut probe: Child, limit: Duration) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + limit;
        while probe.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        probe.kill().ok();
        probe.wait_with_output()
    })
    .await
    .expect("probe thread")
    .expect("the probe's output")
}
