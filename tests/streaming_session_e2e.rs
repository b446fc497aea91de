//! The streaming-session image's scripts (`images/streaming-session/`), run on this host without a container or the
//! cluster. The session entrypoint serves an X application through Selkies: headless Chromium
//! (`tests/browser/selkies_probe.mjs`) sees the application, hears its tone, changes it with a key and an emulated
//! gamepad, with the right token only; the TigerVNC viewer sees it through x11vnc on the loopback interface. Through
//! noVNC (`tests/browser/novnc_probe.mjs`) it is seen with the right password only. The time to the first frame, the
//! frame rate, the bitrate and the input latency are measured and printed. Also the session's readiness (only once
//! the app's window is viewable), its idle stop, its lifecycle (app exit, a component dying, SIGTERM) and the
//! SteamCMD init step's command line.
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
/// The colours the test application turns on the key "2" and on a gamepad button.
const KEY_COLOUR: &str = "#00c0ff";
const GAMEPAD_COLOUR: &str = "#20e020";

fn root() -> &'static Path {
    Path::new(ROOT)
}

fn entrypoint() -> PathBuf {
    root().join("images/streaming-session/entrypoint.sh")
}

/// The Selkies command the entrypoint runs: `SELKIES`, else where the image and `tests/browser/install-deps.sh` put it.
fn selkies() -> PathBuf {
    std::env::var_os("SELKIES").map_or_else(|| PathBuf::from("/opt/selkies/bin/selkies"), PathBuf::from)
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Fails (never skips) when this host lacks what the session or the browser probe needs.
fn require_host_tools() {
    let tools = [
        "Xvfb",
        "xdpyinfo",
        "xprop",
        "xwininfo",
        "x11vnc",
        "websockify",
        "openbox",
        "pulseaudio",
        "pacat",
        "xtigervncviewer",
        "ss",
        "node",
        "bash",
        "gcc",
    ];
    let mut missing: Vec<String> = tools.into_iter().filter(|tool| !on_path(tool)).map(str::to_owned).collect();
    if !chromium().is_file() {
        missing.push(format!("chromium ({})", chromium().display()));
    }
    if !selkies().is_file() {
        missing.push(format!("Selkies ({})", selkies().display()));
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

/// Selkies' joystick interposer (`images/streaming-session/js-interposer/`) compiled by this host's gcc into `dir`, as
/// the image's build stage compiles it: the library the entrypoint preloads into the app (`GAMEPAD_INTERPOSER`), so
/// that the app reads the browser's gamepad from /dev/input/js0 as a game does.
fn build_interposer(dir: &Path) -> PathBuf {
    let library = dir.join("selkies_joystick_interposer.so");
    let output = Command::new("gcc")
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(root().join("images/streaming-session/js-interposer/joystick_interposer.c"))
        .args(["-ldl", "-pthread"])
        .output()
        .expect("run gcc");
    assert!(
        output.status.success(),
        "gcc could not compile the joystick interposer ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    library
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

/// What serves the browser on the session's stream port (`STREAM_PROTOCOL`).
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Selkies,
    Novnc,
}

/// A streaming session run by the image's entrypoint on this host.
struct Session {
    process: Group,
    dir: PathBuf,
    display: u32,
    stream_port: u16,
    vnc_port: u16,
    protocol: Protocol,
}

impl Session {
    fn start(dir: &Path, password: &str, app_command: &str) -> Self {
        Self::start_with(dir, password, app_command, Protocol::Selkies, &[])
    }

    /// A session with `protocol` and extra environment variables.
    fn start_with(
        dir: &Path,
        password: &str,
        app_command: &str,
        protocol: Protocol,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let (vnc_port, stream_port) = free_ports();
        let display = free_display();
        let password_file = dir.join("vnc-password");
        write_secret(&password_file, password);
        let log = fs::File::create(dir.join("session.log")).expect("create the session log");
        let interposer = if protocol == Protocol::Selkies { Some(build_interposer(dir)) } else { None };
        let process = Group::spawn(
            "the session entrypoint",
            Command::new("bash")
                .arg(entrypoint())
                .current_dir(dir)
                .env("DISPLAY_NUMBER", display.to_string())
                .env("RESOLUTION", "1280x720x24")
                .env("VNC_PORT", vnc_port.to_string())
                .env("STREAM_PORT", stream_port.to_string())
                .env("STREAM_LISTEN", "127.0.0.1")
                .env("STREAM_PROTOCOL", if protocol == Protocol::Selkies { "selkies" } else { "novnc" })
                .env("SELKIES", selkies())
                .env("TERMINATION_LOG", dir.join("termination-log"))
                .envs(interposer.iter().map(|library| ("GAMEPAD_INTERPOSER", library)))
                .envs(extra_env.iter().copied())
                .env("VNC_PASSWORD_FILE", &password_file)
                .env("APP_COMMAND", app_command)
                .env("STATE_DIR", dir.join("state"))
                .env("STOP_TIMEOUT", "5")
                .env_remove("DISPLAY")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
        );
        Self { process, dir: dir.to_owned(), display, stream_port, vnc_port, protocol }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("session.log")).unwrap_or_default()
    }

    /// The session's output, its components' logs and the display's window tree: what a failed test shows.
    fn diagnosis(&self) -> String {
        let mut text = format!("--- session output\n{}", self.log());
        for component in ["xvfb", "wm", "pulseaudio", "x11vnc", "websockify", "selkies"] {
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

    /// Waits until the stream's page is served (noVNC's or Selkies').
    fn wait_ready(&mut self, timeout: Duration) {
        let page = if self.protocol == Protocol::Selkies { "/" } else { "/vnc.html" };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.try_status() {
                panic!("the session exited ({status}) before it was ready:\n{}", self.log());
            }
            if http_status(self.stream_port, page) == Some(200) {
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
    let mut session = Session::start_with(&dir.0, &password, &app_command, Protocol::Novnc, &[]);
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
            .env("PROBE_BASE_URL", format!("http://127.0.0.1:{}", session.stream_port))
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

/// The share of display `display`'s screen in `colour`, read by `tests/browser/x_colour_share.py`.
fn display_colour_share(display: u32, colour: &str) -> Result<f64, String> {
    let out = Command::new("/usr/bin/python3")
        .arg(root().join("tests/browser/x_colour_share.py"))
        .args([&format!(":{display}"), colour])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|_| format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// TigerVNC's viewer, full screen on an Xvfb of its own, connected to the session's x11vnc on the loopback interface
/// with the password from a file in VNC's password format (made by `x11vnc -storepasswd`, as the entrypoint makes its
/// own): the native client's path. Returns the share of the viewer's screen in the app's colour once it exceeds 95 %,
/// or fails saying what the viewer logged.
fn tigervnc_sees_the_app(session: &Session, password: &str) -> f64 {
    let dir = session.dir.join("tigervnc");
    fs::create_dir_all(&dir).expect("viewer dir");
    let passwd = dir.join("passwd");
    let mut store = Command::new("x11vnc")
        .args(["-storepasswd", passwd.to_str().expect("path")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("x11vnc -storepasswd");
    write!(store.stdin.take().expect("stdin"), "{password}\n{password}\ny\n").expect("write the password");
    assert!(store.wait().is_ok_and(|s| s.success()) && passwd.is_file(), "x11vnc -storepasswd made no file");
    let display = free_display();
    let _xvfb = Group::spawn(
        "the viewer's Xvfb",
        Command::new("Xvfb")
            .args([&format!(":{display}"), "-screen", "0", "1280x720x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("xvfb.log")).expect("log")),
    );
    let display_up = || Command::new("xdpyinfo").args(["-display", &format!(":{display}")]).output();
    assert!(
        wait_until(Duration::from_secs(10), || display_up().is_ok_and(|o| o.status.success())),
        "the viewer's Xvfb :{display} did not start"
    );
    let _viewer = Group::spawn(
        "xtigervncviewer",
        Command::new("xtigervncviewer")
            .env("DISPLAY", format!(":{display}"))
            .arg("-passwd")
            .arg(&passwd)
            .args(["-FullScreen", "-Shared", &format!("127.0.0.1::{}", session.vnc_port)])
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("viewer.log")).expect("log")),
    );
    let mut share = 0.0;
    let seen = wait_until(Duration::from_secs(20), || {
        share = display_colour_share(display, APP_COLOUR).unwrap_or(0.0);
        share > 0.95
    });
    let viewer_log = fs::read_to_string(dir.join("viewer.log")).unwrap_or_default();
    assert!(seen, "TigerVNC's viewer shows the app's colour on {:.1}% of its screen:\n{viewer_log}", share * 100.0);
    share
}

#[test]
fn selkies_streams_the_app_with_sound_keys_and_gamepad_to_the_right_token_only() {
    require_host_tools();
    let _one = one_session_at_a_time();
    let dir = TempDir::new("selkies-e2e");
    let password = format!("{:024x}", rand::random::<u128>() & ((1 << 96) - 1));
    let wrong_password: String = password.chars().rev().collect::<String>() + "-wrong";
    let app = root().join("tests/browser/colour_app.py");
    let app_ready = dir.0.join("app-ready");
    let app_command = format!("exec /usr/bin/python3 '{}' '{APP_COLOUR}' '{}'", app.display(), app_ready.display());
    // As in the pod, where an empty volume is mounted at /dev/input for it.
    let devices = dir.0.join("input");
    fs::create_dir(&devices).expect("create the gamepad device folder");
    let devices_env = [("GAMEPAD_DEVICES", devices.to_str().expect("a UTF-8 path"))];
    let mut session = Session::start_with(&dir.0, &password, &app_command, Protocol::Selkies, &devices_env);
    let started = Instant::now();
    session.wait_ready(Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(30), || session.state_file("session.ready").exists()
            || session.process.try_status().is_some()),
        "session.ready did not appear:\n{}",
        session.diagnosis()
    );
    assert!(app_ready.exists(), "session.ready appeared before the app painted its window:\n{}", session.diagnosis());
    println!(
        "selkies session ready (app window viewable, stream accepting) after {} ms",
        started.elapsed().as_millis()
    );

    let profile = dir.0.join("chromium-profile");
    let shots = dir.0.join("screenshots");
    fs::create_dir_all(&profile).expect("profile dir");
    fs::create_dir_all(&shots).expect("screenshot dir");
    let mut probe = Group::spawn(
        "the Selkies probe (node)",
        Command::new("node")
            .arg(root().join("tests/browser/selkies_probe.mjs"))
            .current_dir(root().join("tests/browser"))
            .env("PROBE_BASE_URL", format!("http://127.0.0.1:{}", session.stream_port))
            .env("PROBE_TOKEN", &password)
            .env("PROBE_WRONG_TOKEN", &wrong_password)
            .env("PROBE_COLOUR", APP_COLOUR)
            .env("PROBE_KEY_COLOUR", KEY_COLOUR)
            .env("PROBE_GAMEPAD_COLOUR", GAMEPAD_COLOUR)
            .env("PROBE_USER_DATA_DIR", &profile)
            .env("PROBE_OUT_DIR", &shots)
            .env("PROBE_MEASURE_MS", "5000")
            .env("PROBE_LATENCY_SAMPLES", "6")
            .env("CHROMIUM", chromium())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.0.join("probe.json")).expect("probe output"))
            .stderr(fs::File::create(dir.0.join("probe.log")).expect("probe log")),
    );
    probe.also_kill = Some(profile.to_string_lossy().into_owned());
    let status = probe.wait_timeout(Duration::from_secs(150));
    let probe_log = fs::read_to_string(dir.0.join("probe.log")).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "the Selkies probe failed ({status:?}):\n{probe_log}\n{}",
        session.diagnosis()
    );
    drop(probe);
    let output = fs::read_to_string(dir.0.join("probe.json")).expect("probe output");
    let report: serde_json::Value = serde_json::from_str(output.trim())
        .unwrap_or_else(|e| panic!("the probe printed no JSON ({e}): {output}\n{probe_log}"));

    // No token: the handshake is refused; a wrong one: the socket is closed at once. Neither page shows the app.
    let missing = &report["refused"]["missing"];
    assert_eq!(missing["handshake"]["status"], 401, "a handshake without a token was not refused: {missing}");
    let wrong = &report["refused"]["wrong"];
    let wrong_refused = wrong["handshake"]["status"] == 101 && !wrong["handshake"]["closeCode"].is_null()
        || wrong["handshake"]["status"].as_u64().is_some_and(|s| s >= 400);
    assert!(wrong_refused, "a handshake with a wrong token was accepted: {wrong}");
    for refused in [missing, wrong] {
        assert_eq!(refused["appFrameSeen"], false, "a page without the right token showed the app: {refused}");
        assert!(number(refused, "/pageColourShare") < 0.01, "a page without the right token shows the app: {refused}");
    }

    let right = &report["right"];
    assert_eq!(right["handshake"]["status"], 101, "the right token's handshake: {right}");
    assert!(right["handshake"]["closeCode"].is_null(), "the right token's socket was closed: {right}");
    let share = number(&report, "/right/colourShare");
    assert!(share > 0.95, "the app's colour covers only {:.1}% of the stream's element: {right}", share * 100.0);
    let peak_hz = number(&report, "/right/audio/peakHz");
    assert!((peak_hz - 440.0).abs() < 12.0, "the page's loudest sound is at {peak_hz:.0} Hz, not 440 Hz: {right}");
    let keys = &right["keys"];
    assert_eq!(keys["samples"], 6, "not every key press changed the app's colour in the stream: {keys}");
    assert_eq!(right["gamepad"]["colourChanged"], true, "the gamepad's button did not change the colour: {right}");
    // It reached the app as a game gets it: from /dev/input/js0, which the preloaded interposer connects to Selkies.
    // The devices the interposer serves are listed for games that look for them in the folder.
    let mut listed: Vec<String> = fs::read_dir(&devices)
        .expect("the device folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into())
        .collect();
    listed.sort();
    assert_eq!(listed, ["event1000", "event1001", "event1002", "event1003", "js0", "js1", "js2", "js3"]);
    assert!(
        session.log().contains("gamepad: opened /dev/input/js0"),
        "the app did not read the gamepad from /dev/input/js0:\n{}",
        session.diagnosis()
    );
    let fps = number(&report, "/right/framesPerSecond");
    assert!(fps > 0.0, "the stream did not change while the app animated: {right}");
    println!(
        "selkies session: first frame {:.0} ms after navigation start (page loaded at {:.0} ms); {fps:.1} frames/s; \
         {:.0} kbit/s; the app covers {:.1}% of the {}; tone peak {peak_hz:.1} Hz at {:.0} dB",
        number(&report, "/right/timeToFirstFrameMs"),
        number(&report, "/right/timeToDomContentLoadedMs"),
        number(&report, "/right/bitrateKbps"),
        share * 100.0,
        right["streamElement"].as_str().unwrap_or("?"),
        number(&report, "/right/audio/peakDb"),
    );
    println!(
        "selkies session: key press to colour change p50 {:.0} ms, p95 {:.0} ms ({} presses); gamepad button to colour \
         change {:.0} ms; {}",
        number(keys, "/p50Ms"),
        number(keys, "/p95Ms"),
        keys["samples"],
        number(&report, "/right/gamepad/latencyMs"),
        report["browserVersion"].as_str().map_or_else(String::new, |v| format!("Chromium {v}"))
    );

    // The native client's path: TigerVNC's viewer on the loopback port with the password.
    let viewer_share = tigervnc_sees_the_app(&session, &password);
    println!("selkies session: TigerVNC's viewer shows the app on {:.1}% of its screen", viewer_share * 100.0);

    // The password reached neither the session's output nor its components' logs.
    let mut logs = vec![(dir.0.join("session.log"), session.log())];
    for entry in fs::read_dir(dir.0.join("state")).expect("state dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            logs.push((entry.path(), fs::read_to_string(entry.path()).unwrap_or_default()));
        }
    }
    for (path, text) in &logs {
        assert!(!text.contains(&password[..8]), "{} shows the password", path.display());
    }

    let status = session.process.terminate(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(143), "SIGTERM did not stop the session:\n{}", session.log());
    session.assert_nothing_left();
    assert!(!session.state_file("selkies-tokens.json").exists(), "the tokens file outlived the session");
}

#[test]
fn session_is_ready_only_once_the_app_window_is_viewable() {
    require_host_tools();
    let _one = one_session_at_a_time();
    let dir = TempDir::new("streaming-ready");
    let app_ready = dir.0.join("app-ready");
    let mapping = dir.0.join("app-ready.mapping");
    // The app asks for its window to be mapped 4 s after it starts.
    let app_command = format!(
        "exec /usr/bin/python3 '{}' '{APP_COLOUR}' '{}' 4",
        root().join("tests/browser/colour_app.py").display(),
        app_ready.display()
    );
    let mut session = Session::start(&dir.0, "ready-order", &app_command);
    let started = Instant::now();
    let (mut display_at, mut session_at, mut app_at) = (None, None, None);
    let all_seen = wait_until(Duration::from_secs(60), || {
        let now = started.elapsed();
        if display_at.is_none() && session.state_file("display.ready").exists() {
            display_at = Some(now);
        }
        if app_at.is_none() && app_ready.exists() {
            app_at = Some(now);
        }
        if session_at.is_none() && session.state_file("session.ready").exists() {
            session_at = Some(now);
            // The app creates this file before it asks for the map: no window of it can be viewable before.
            assert!(mapping.exists(), "session.ready appeared before the app's window was even mapped");
        }
        (session_at.is_some() && app_at.is_some()) || session.process.try_status().is_some()
    });
    assert!(all_seen && session_at.is_some(), "session.ready did not appear:\n{}", session.diagnosis());
    let (display_at, session_at) = (display_at.expect("display.ready"), session_at.expect("session.ready"));
    let app_at = app_at.expect("the app saw its window viewable");
    println!(
        "display.ready after {display_at:?}, the app's window viewable after {app_at:?}, session.ready after {session_at:?}"
    );
    // The app polls its window every 50 ms, so it may see it viewable a little after the session did.
    assert!(
        display_at < app_at && app_at <= session_at + Duration::from_secs(1),
        "out of order:\n{}",
        session.diagnosis()
    );
    assert!(
        session_at - display_at >= Duration::from_secs(3),
        "session.ready came too early:\n{}",
        session.diagnosis()
    );
    // The window fills the display: no decoration, no band.
    let share = display_colour_share(session.display, APP_COLOUR).expect("read the session's display");
    assert!(share > 0.95, "the app's colour covers {:.1}% of the display:\n{}", share * 100.0, session.diagnosis());
    let status = session.process.terminate(Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(143), "{}", session.log());
    assert!(!session.state_file("session.ready").exists(), "session.ready outlived the session");
}

#[test]
fn session_without_a_viewer_stops_itself_after_its_idle_time() {
    require_host_tools();
    let _one = one_session_at_a_time();
    let dir = TempDir::new("streaming-idle");
    let mut session =
        Session::start_with(&dir.0, "idle-stop", "exec sleep 600", Protocol::Selkies, &[("IDLE_STOP_MINUTES", "1")]);
    let started = Instant::now();
    let status = session.process.wait_timeout(Duration::from_secs(120));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the idle session did not stop with 0:\n{}",
        session.diagnosis()
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(60), "it stopped after {elapsed:?}, before its minute");
    let message = fs::read_to_string(dir.0.join("termination-log")).expect("the termination log");
    assert_eq!(message, "idle-stop: no viewer for 1 minutes\n");
    assert!(session.log().contains("idle-stop: no viewer for 1 minutes"), "{}", session.log());
    println!("idle session stopped itself after {elapsed:?}");
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
    for (name, value, message) in [
        ("STREAM_PROTOCOL", "rdp", "STREAM_PROTOCOL must be selkies or novnc"),
        ("VIDEO_ENCODER", "quicksync", "VIDEO_ENCODER must be software or nvenc"),
        ("IDLE_STOP_MINUTES", "soon", "IDLE_STOP_MINUTES must be a number of minutes"),
        ("GAMEPAD_INTERPOSER", "interposer.so", "GAMEPAD_INTERPOSER must be an absolute path"),
        ("GAMEPAD_INTERPOSER", "/a.so:/b.so", "GAMEPAD_INTERPOSER must be an absolute path without spaces or colons"),
        (
            "GAMEPAD_INTERPOSER",
            "/nonexistent/interposer.so",
            "GAMEPAD_INTERPOSER: /nonexistent/interposer.so does not exist",
        ),
    ] {
        let (code, err) = run(&[
            ("APP_COMMAND", Path::new("xterm")),
            ("VNC_PASSWORD_FILE", &password_file),
            (name, Path::new(value)),
        ]);
        assert_eq!(code, Some(1), "{name}={value} was accepted: {err}");
        assert!(err.contains(message), "{err}");
    }
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
