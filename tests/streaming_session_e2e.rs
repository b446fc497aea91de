//! The streaming-session image's scripts (`images/streaming-session/`), run on this host without a container or the
//! cluster: the session entrypoint serves an X application through x11vnc and noVNC, and headless Chromium
//! (`tests/browser/novnc_probe.mjs`) sees the application with the right password only; the time to the first frame
//! and the frame rate are measured and printed. Also the session's lifecycle (app exit, a component dying, SIGTERM)
//! and the SteamCMD init step's command line.
//!
//! Host tools come from `tests/browser/install-deps.sh`; when one is missing these tests fail and say so.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const INSTALL_SCRIPT: &str = "tests/browser/install-deps.sh";
/// The colour the test application paints (tests/browser/colour_app.py); the probe looks for it.
const APP_COLOUR: &str = "#ff00aa";

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn entrypoint() -> PathBuf {
    root().join("images/streaming-session/entrypoint.sh")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Fails (never skips) when this host lacks what the session or the browser probe needs.
fn require_host_tools() {
    let mut missing: Vec<String> = ["Xvfb", "xdpyinfo", "x11vnc", "websockify", "openbox", "node", "bash"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .map(str::to_owned)
        .collect();
    if !chromium().is_file() {
        missing.push(format!("chromium ({})", chromium().display()));
    }
    if !Path::new("/usr/share/novnc/vnc.html").is_file() {
        missing.push("noVNC (/usr/share/novnc)".to_owned());
    }
    let tkinter = Command::new("/usr/bin/python3").args(["-c", "import tkinter"]).stderr(Stdio::null()).status();
    if !tkinter.is_ok_and(|status| status.success()) {
        missing.push("python3-tk (/usr/bin/python3 with tkinter)".to_owned());
    }
    if !root().join("tests/browser/node_modules/playwright-core/package.json").is_file() {
        missing.push("playwright-core (tests/browser/node_modules)".to_owned());
    }
    assert!(
        missing.is_empty(),
        "missing on this host: {}; install them with `bash {INSTALL_SCRIPT}` (as root, Debian)",
        missing.join(", ")
    );
}

/// A directory for one test's files, removed afterwards unless the test failed (then its path is printed).
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("caas-{label}-{:016x}", rand::random::<u64>()));
        fs::create_dir_all(&dir).expect("create the test directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// One session at a time: the tests that start one would otherwise compete for the CPU with the measured one.
fn one_session_at_a_time() -> MutexGuard<'static, ()> {
    static SESSIONS: Mutex<()> = Mutex::new(());
    SESSIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Two distinct free loopback ports.
fn free_ports() -> (u16, u16) {
    loop {
        let (a, b) = (free_port(), free_port());
        if a != b {
            return (a, b);
        }
    }
}

/// An X display number that no server uses; tests running at once start from different numbers.
fn free_display() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = 100 + (std::process::id() % 200) + NEXT.fetch_add(7, Ordering::Relaxed);
    (start..start + 300)
        .find(|n| {
            !Path::new(&format!("/tmp/.X{n}-lock")).exists() && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .expect("a free X display number")
}

fn write_secret(path: &Path, content: &str) {
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).expect("create file");
    writeln!(file, "{content}").expect("write file");
}

/// Sends `signal` to a process (`target` = "PID") or a process group (`target` = "-PGID"), by bash's `kill`.
fn kill(signal: &str, target: &str) {
    let _ = Command::new("bash").args(["-c", r#"kill -s "$1" -- "$2" 2>/dev/null"#, "kill", signal, target]).status();
}

/// Live (not zombie) processes whose process group is `pgid`, as "pid command" lines.
fn group_members(pgid: u32) -> Vec<String> {
    live_processes().filter(|(_, group, _)| *group == pgid).map(|(pid, _, cmd)| format!("{pid} {cmd}")).collect()
}

/// Live processes whose command line mentions `needle` (a path unique to one test), as (pid, command).
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    live_processes().filter(|(_, _, cmd)| cmd.contains(needle)).map(|(pid, _, cmd)| (pid, cmd)).collect()
}

/// Every live process as (pid, process group, command line), read from /proc.
fn live_processes() -> impl Iterator<Item = (u32, u32, String)> {
    fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        let state = fields.next()?;
        let pgrp: u32 = fields.nth(1)?.parse().ok()?;
        if state == "Z" || state == "X" {
            return None;
        }
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end().to_owned();
        Some((pid, pgrp, cmd))
    })
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process started in a process group of its own; dropping it stops the whole group (SIGTERM, then SIGKILL),
/// also when an assertion failed, and any process that still mentions `also_kill` (e.g. Chromium's profile path).
struct Group {
    child: Child,
    status: Option<ExitStatus>,
    also_kill: Option<String>,
}

impl Group {
    fn spawn(name: &'static str, command: &mut Command) -> Self {
        let child = command.process_group(0).spawn().unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { child, status: None, also_kill: None }
    }

    fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the process has ended (never panics: it also runs in `Drop`).
    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_status().is_some());
        self.status
    }

    /// SIGTERM to the group leader alone, as Kubernetes stops a container; its exit status.
    fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.try_status().is_none() {
            kill("TERM", &self.pgid().to_string());
        }
        self.wait_timeout(timeout)
    }

    fn stop_everything(&mut self) {
        let group = format!("-{}", self.pgid());
        for signal in ["TERM", "KILL"] {
            if self.try_status().is_none() || !group_members(self.pgid()).is_empty() {
                kill(signal, &group);
            }
            if let Some(needle) = &self.also_kill {
                for (pid, _) in processes_mentioning(needle) {
                    kill(signal, &pid.to_string());
                }
            }
            let needle = self.also_kill.clone();
            let gone = wait_until(Duration::from_secs(5), || {
                self.try_status().is_some()
                    && group_members(self.pgid()).is_empty()
                    && needle.as_deref().is_none_or(|n| processes_mentioning(n).is_empty())
            });
            if gone {
                return;
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop_everything();
        let _ = self.child.wait();
    }
}

/// A streaming session run by the image's entrypoint on this host.
struct Session {
    process: Group,
    dir: PathBuf,
    display: u32,
    novnc_port: u16,
}

impl Session {
    fn start(dir: &Path, password: &str, app_command: &str) -> Self {
        let (vnc_port, novnc_port) = free_ports();
        let display = free_display();
        let password_file = dir.join("vnc-password");
        write_secret(&password_file, password);
        let log = fs::File::create(dir.join("session.log")).expect("create the session log");
        let process = Group::spawn(
            "the session entrypoint",
            Command::new("bash")
                .arg(entrypoint())
                .current_dir(dir)
                .env("DISPLAY_NUMBER", display.to_string())
                .env("RESOLUTION", "1280x720x24")
                .env("VNC_PORT", vnc_port.to_string())
                .env("NOVNC_PORT", novnc_port.to_string())
                .env("NOVNC_LISTEN", "127.0.0.1")
                .env("VNC_PASSWORD_FILE", &password_file)
                .env("APP_COMMAND", app_command)
                .env("STATE_DIR", dir.join("state"))
                .env("STOP_TIMEOUT", "5")
                .env_remove("DISPLAY")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        );
        Self { process, dir: dir.to_owned(), display, novnc_port }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("session.log")).unwrap_or_default()
    }

    /// The session's output, its components' logs and the display's window tree: what a failed test shows.
    fn diagnosis(&self) -> String {
        let mut text = format!("--- session output\n{}", self.log());
        for component in ["xvfb", "wm", "x11vnc", "websockify"] {
            let log = fs::read_to_string(self.state_file(&format!("{component}.log"))).unwrap_or_default();
            text += &format!("--- {component}.log\n{log}");
        }
        let tree =
            Command::new("xwininfo").args(["-display", &format!(":{}", self.display), "-root", "-tree"]).output();
        text += &format!(
            "--- xwininfo -root -tree\n{}",
            tree.map_or_else(
                |e| e.to_string(),
                |out| { String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr) }
            )
        );
        text
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.dir.join("state").join(name)
    }

    /// Waits until noVNC's page is served (websockify starts once x11vnc listens).
    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_status() {
                panic!("the session exited ({status}) before it was ready:\n{}", self.log());
            }
            if http_status(self.novnc_port, "/vnc.html") == Some(200) {
                return;
            }
            assert!(Instant::now() < deadline, "the session was not ready after {timeout:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// After the session ended: none of its processes is left, nor its X server's lock and socket.
    fn assert_nothing_left(&self) {
        let pgid = self.process.pgid();
        assert!(
            wait_until(Duration::from_secs(5), || group_members(pgid).is_empty()),
            "processes of the session are left: {:?}",
            group_members(pgid)
        );
        let lock = PathBuf::from(format!("/tmp/.X{}-lock", self.display));
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{}", self.display));
        assert!(!lock.exists() && !socket.exists(), "Xvfb left {} or {}", lock.display(), socket.display());
    }
}

/// The HTTP status of GET `path` on 127.0.0.1:`port`, if it answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 64];
    let read = stream.read(&mut head).ok()?;
    let line = String::from_utf8_lossy(&head[..read]).into_owned();
    line.split_whitespace().nth(1)?.parse().ok()
}

fn number(report: &serde_json::Value, pointer: &str) -> f64 {
    report.pointer(pointer).and_then(serde_json::Value::as_f64).unwrap_or_else(|| panic!("no {pointer} in {report}"))
}

#[test]
fn novnc_shows_the_app_to_the_right_password_only_and_measures_the_stream() {
    require_host_tools();
    let _one = one_session_at_a_time();
    let dir = TempDir::new("streaming-e2e");
    // 12 characters, of which VNC uses the first 8; the wrong one differs in each of those.
    let password = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
    let wrong_password: String =
        password.chars().map(|c| if c == '0' { '1' } else { '0' }).collect::<String>() + "-wrong";
    let app = root().join("tests/browser/colour_app.py");
    let app_ready = dir.0.join("app-ready");
    let app_command = format!("exec /usr/bin/python3 '{}' '{APP_COLOUR}' '{}'", app.display(), app_ready.display());
    let mut session = Session::start(&dir.0, &password, &app_command);
    let started = Instant::now();
    session.wait_ready(Duration::from_secs(20));
    // The measurement is of the stream, not of the app's start-up: wait until it has painted its window.
    wait_until(Duration::from_secs(60), || app_ready.exists() || session.process.try_status().is_some());
    assert!(app_ready.exists(), "the app did not paint its window:\n{}", session.diagnosis());
    println!("streaming session up, app painted, after {} ms", started.elapsed().as_millis());

    let profile = dir.0.join("chromium-profile");
    let shots = dir.0.join("screenshots");
    fs::create_dir_all(&profile).expect("profile dir");
    fs::create_dir_all(&shots).expect("screenshot dir");
    let mut probe = Group::spawn(
        "the noVNC probe (node)",
        Command::new("node")
            .arg(root().join("tests/browser/novnc_probe.mjs"))
            .current_dir(root().join("tests/browser"))
            .env("PROBE_BASE_URL", format!("http://127.0.0.1:{}", session.novnc_port))
            .env("PROBE_PASSWORD", &password)
            .env("PROBE_WRONG_PASSWORD", &wrong_password)
            .env("PROBE_COLOUR", APP_COLOUR)
            .env("PROBE_USER_DATA_DIR", &profile)
            .env("PROBE_OUT_DIR", &shots)
            .env("PROBE_MEASURE_MS", "5000")
            .env("CHROMIUM", chromium())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.0.join("probe.json")).expect("probe output"))
            .stderr(fs::File::create(dir.0.join("probe.log")).expect("probe log")),
    );
    probe.also_kill = Some(profile.to_string_lossy().into_owned());
    let status = probe.wait_timeout(Duration::from_secs(75));
    let probe_log = fs::read_to_string(dir.0.join("probe.log")).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the noVNC probe failed ({status:?}):\n{probe_log}\n{}",
        session.diagnosis()
    );
    drop(probe);
    assert!(processes_mentioning(&profile.to_string_lossy()).is_empty(), "Chromium processes are left");

    let output = fs::read_to_string(dir.0.join("probe.json")).expect("probe output");
    let report: serde_json::Value = serde_json::from_str(output.trim())
        .unwrap_or_else(|e| panic!("the probe printed no JSON ({e}): {output}\n{probe_log}"));

    let wrong = &report["wrong"];
    let refusal = wrong["status"].as_str().unwrap_or_default();
    assert!(
        refusal.contains("rejected") || refusal.contains("failed"),
        "noVNC did not report the refused password: {wrong}"
    );
    assert_eq!(wrong["appFrameSeen"], false, "a wrong password showed the app: {wrong}");
    assert!(number(&report, "/wrong/pageColourShare") < 0.01, "a wrong password showed the app's colour: {wrong}");

    let right = &report["right"];
    let share = number(&report, "/right/canvasColourShare");
    let first_frame_ms = number(&report, "/right/timeToFirstFrameMs");
    let fps = number(&report, "/right/framesPerSecond");
    let updates_per_second = number(&report, "/right/canvasUpdatesPerSecond");
    let seconds = number(&report, "/right/measuredSeconds");
    assert!(share > 0.8, "the app's colour covers only {:.1}% of the canvas: {right}", share * 100.0);
    assert!(first_frame_ms > 0.0, "no first frame: {right}");
    assert!(fps > 0.0, "the canvas did not change while the app animated: {right}");
    println!(
        "streaming session: time to first frame {first_frame_ms:.0} ms (navigation start to the first canvas frame \
         showing the app; page loaded at {:.0} ms, first canvas update at {:.0} ms)",
        number(&report, "/right/timeToDomContentLoadedMs"),
        number(&report, "/right/timeToFirstCanvasUpdateMs"),
    );
    println!(
        "streaming session: frame rate {fps:.1} frames/s (distinct canvas frames; {updates_per_second:.1} canvas \
         updates/s over {seconds:.1} s); the app's colour covers {:.1}% of the canvas; {}",
        share * 100.0,
        report["browserVersion"].as_str().map_or_else(String::new, |v| format!("Chromium {v}"))
    );

    // The password reached neither the session's output nor its components' logs.
    let mut logs = vec![(dir.0.join("session.log"), session.log())];
    for entry in fs::read_dir(dir.0.join("state")).expect("state dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            logs.push((entry.path(), fs::read_to_string(entry.path()).unwrap_or_default()));
        }
    }
    for (path, text) in &logs {
        assert!(!text.contains(&password[..8]), "{} shows the VNC password", path.display());
    }
    assert!(session.log().contains("only the first 8 characters"), "no warning about the long password");

    // SIGTERM to the entrypoint alone stops the whole session, as when Kubernetes stops the pod.
    let status = session.process.terminate(Duration::from_secs(15));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(143),
        "SIGTERM did not stop the session cleanly:\n{}",
        session.log()
    );
    session.assert_nothing_left();
}

#[test]
fn session_ends_with_the_app_and_its_exit_status() {
    require_host_tools();
    let _one = one_session_at_a_time();
    let dir = TempDir::new("streaming-app-exit");
    // The app runs on the display until the test tells it to quit, then exits 7.
    let quit = dir.0.join("quit");
    let app = format!("xdpyinfo >/dev/null && until [ -e '{}' ]; do sleep 0.1; done; exit 7", quit.display());
    let mut session = Session::start(&dir.0, "app-exit", &app);
    session.wait_ready(Duration::from_secs(20));
    fs::write(&quit, "").expect("tell the app to quit");
    let status = session.process.wait_timeout(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(7), "the session did not end with the app:\n{}", session.log());
    assert!(session.log().contains("the app exited with status 7"), "{}", session.log());
    session.assert_nothing_left();
}

#[test]
fn session_stops_and_says_so_when_a_component_dies() {
    require_host_tools();
    let _one = one_session_at_a_time();
    let dir = TempDir::new("streaming-component");
    let mut session = Session::start(&dir.0, "component", "exec sleep 600");
    session.wait_ready(Duration::from_secs(20));
    let pid = fs::read_to_string(session.state_file("x11vnc.pid")).expect("x11vnc.pid");
    kill("KILL", pid.trim());
    let status = session.process.wait_timeout(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "the session went on without x11vnc:\n{}", session.log());
    assert!(session.log().contains("x11vnc exited unexpectedly"), "the log does not name x11vnc:\n{}", session.log());
    session.assert_nothing_left();
}

#[test]
fn entrypoint_refuses_an_incomplete_configuration() {
    let dir = TempDir::new("streaming-config");
    let password_file = dir.0.join("pw");
    write_secret(&password_file, "sekrit-password");
    let run = |vars: &[(&str, &Path)]| {
        let mut command = Command::new("bash");
        command.arg(entrypoint()).env("STATE_DIR", dir.0.join("state")).env_remove("APP_COMMAND");
        command.env_remove("VNC_PASSWORD_FILE");
        for (name, value) in vars {
            command.env(name, value);
        }
        let output = command.stdin(Stdio::null()).output().expect("run the entrypoint");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, err) = run(&[("VNC_PASSWORD_FILE", &password_file)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("APP_COMMAND is required"), "{err}");
    let (code, err) = run(&[("APP_COMMAND", Path::new("xterm"))]);
    assert_eq!(code, Some(1));
    assert!(err.contains("VNC_PASSWORD_FILE is required"), "{err}");
    let (code, err) = run(&[
        ("APP_COMMAND", Path::new("xterm")),
        ("VNC_PASSWORD_FILE", &password_file),
        ("RESOLUTION", Path::new("big")),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("RESOLUTION must be"), "{err}");
    assert!(!err.contains("sekrit"), "the password was printed: {err}");
}

fn steamcmd_install(args: &[&str], vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = Command::new("bash");
    command.arg(root().join("images/streaming-session/steamcmd-install.sh")).args(args);
    for name in ["STEAM_APP_ID", "INSTALL_DIR", "STEAM_USERNAME", "STEAM_PASSWORD", "STEAMCMD"] {
        command.env_remove(name);
    }
    command.env("STEAMCMD", "/usr/games/steamcmd");
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.stdin(Stdio::null()).output().expect("run steamcmd-install.sh");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn steamcmd_dry_run_prints_the_command_without_the_password() {
    let (code, out, err) = steamcmd_install(
        &["--dry-run"],
        &[
            ("STEAM_APP_ID", "2472840"),
            ("INSTALL_DIR", "/home/steam/app"),
            ("STEAM_USERNAME", "player_one"),
            ("STEAM_PASSWORD", "hunter2 with spaces"),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        "/usr/games/steamcmd +@NoPromptForPassword 1 +force_install_dir /home/steam/app +login player_one *** \
         +app_update 2472840 validate +quit"
    );
    assert!(!out.contains("hunter2") && !err.contains("hunter2"));

    let (code, out, err) =
        steamcmd_install(&["--dry-run"], &[("STEAM_APP_ID", "1007"), ("INSTALL_DIR", "/data/my app")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        r"/usr/games/steamcmd +@NoPromptForPassword 1 +force_install_dir /data/my\ app +login anonymous +app_update 1007 validate +quit"
    );
}

#[test]
fn steamcmd_install_validates_its_input() {
    for app_id in ["", "10a7", "1007; rm -rf /", "-1", "12345678901"] {
        let (code, _, err) = steamcmd_install(&["--dry-run"], &[("STEAM_APP_ID", app_id), ("INSTALL_DIR", "/data")]);
        assert_eq!(code, Some(1), "STEAM_APP_ID={app_id:?} was accepted");
        assert!(err.contains("STEAM_APP_ID must be"), "{err}");
    }
    let (code, _, err) = steamcmd_install(&["--dry-run"], &[("STEAM_APP_ID", "1007")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("INSTALL_DIR is required"), "{err}");
    let (code, _, err) =
        steamcmd_install(&["--dry-run"], &[("STEAM_APP_ID", "1007"), ("INSTALL_DIR", "/d"), ("STEAM_PASSWORD", "x")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("without STEAM_USERNAME"), "{err}");
    let (code, _, _) = steamcmd_install(&["--bogus"], &[]);
    assert_eq!(code, Some(2));
}

#[test]
fn steamcmd_install_passes_the_login_to_steamcmd_and_checks_the_manifest() {
    let dir = TempDir::new("steamcmd");
    // A stand-in for SteamCMD that records its arguments and installs the app's manifest.
    let fake = dir.0.join("steamcmd");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&fake)
        .and_then(|mut file| {
            file.write_all(
                b"#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n\
                  mkdir -p \"$4/steamapps\" && : > \"$4/steamapps/appmanifest_$9.acf\"\n",
            )
        })
        .expect("write the fake steamcmd");
    let install_dir = dir.0.join("app");
    let install_dir = install_dir.to_str().expect("path");
    let mut command = Command::new("bash");
    command.arg(root().join("images/streaming-session/steamcmd-install.sh"));
    command
        .env("STEAM_APP_ID", "1007")
        .env("INSTALL_DIR", install_dir)
        .env("STEAM_USERNAME", "player_one")
        .env("STEAM_PASSWORD", "pa ss")
        .env("STEAMCMD", &fake);
    let output = command.stdin(Stdio::null()).output().expect("run steamcmd-install.sh");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(!err.contains("pa ss") && !String::from_utf8_lossy(&output.stdout).contains("pa ss"));
    let args = fs::read_to_string(dir.0.join("args")).expect("the fake steamcmd ran");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "+@NoPromptForPassword",
            "1",
            "+force_install_dir",
            install_dir,
            "+login",
            "player_one",
            "pa ss",
            "+app_update",
            "1007",
            "validate",
            "+quit"
        ]
    );

    // A SteamCMD that "succeeds" without installing anything is a failure, after the configured attempts.
    let (code, _, err) = steamcmd_install(
        &[],
        &[
            ("STEAM_APP_ID", "1007"),
            ("INSTALL_DIR", dir.0.join("empty").to_str().expect("path")),
            ("STEAMCMD", "true"),
            ("STEAMCMD_ATTEMPTS", "2"),
            ("STEAMCMD_RETRY_DELAY", "0"),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("appmanifest_1007.acf is missing") && err.contains("after 2 attempts"), "{err}");
}
