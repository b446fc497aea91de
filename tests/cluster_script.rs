//! Proof that `tests/cluster/cluster.sh up`, the README's first command, brings up one healthy control plane whatever
//! the timing: when a component takes long to exec its binary, when two `up` run at once on the same state folder,
//! and when every core is busy; and that a component that dies at start stops `up` with a message naming it and its
//! log, with the end of that log.
//!
//! Each test starts its own cluster in a temporary state folder (`CAAS_CLUSTER_DIR`; the ports are random, so it
//! runs beside the development cluster) from the shared binary cache (`CAAS_CACHE_DIR`), and stops it with
//! `cluster.sh down` when it ends, also when it fails. A failed test keeps its folder, with the components' logs in
//! `logs/` and the output of each `cluster.sh` run in `runs/`. The tests run one at a time: each wants the machine.
//!
//! The timing is made certain with the script's test hook `CAAS_CLUSTER_WRAPPER`, a command put in front of every
//! component's binary: here a wrapper that sleeps before it execs the binary (the window in which `up` used to die
//! silently), and one that makes kube-scheduler exit at once.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const COMPONENTS: [&str; 6] =
    ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "metrics-server"];

/// A warm `up` takes about 6 s; a cold one builds the control plane first (about 10 min on 2 cores).
const UP_LIMIT: Duration = Duration::from_secs(20 * 60);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/cluster.sh")
}

/// The binaries are shared with the development cluster and CI, as `.ci/run` and `tests/run.sh` do.
fn cache_dir() -> PathBuf {
    match std::env::var_os("CAAS_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache"),
    }
}

/// One test at a time: each starts a whole control plane, and one of them loads every core.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one run of `cluster.sh` did.
struct Run {
    status: ExitStatus,
    stderr: String,
    /// Where its stdout and stderr are kept.
    output: PathBuf,
}

/// A started `cluster.sh` run, its output going to files in the state folder's `runs/`.
struct Running {
    child: Child,
    output: PathBuf,
    what: String,
}

impl Running {
    fn wait(mut self, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for cluster.sh") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {limit:?}; its output is in {}", self.what, self.output.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = fs::read_to_string(self.output.with_extension("stderr")).unwrap_or_default();
        Run { status, stderr, output: self.output }
    }
}

/// A control plane in its own temporary state folder; dropping it runs `cluster.sh down` (also when the test
/// panics), and removes the folder unless the test failed.
struct TestCluster {
    dir: PathBuf,
    runs: std::cell::Cell<u32>,
}

impl TestCluster {
    fn new(name: &str) -> TestCluster {
        let dir = std::env::temp_dir().join(format!(
            "caas-cluster-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        fs::create_dir_all(dir.join("runs")).expect("create the test's state folder");
        TestCluster { dir, runs: std::cell::Cell::new(0) }
    }

    /// Writes an executable shell script into the state folder and returns its path.
    fn script_file(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write the wrapper");
        let status = Command::new("chmod").arg("+x").arg(&path).status().expect("run chmod");
        assert!(status.success(), "chmod +x {} failed", path.display());
        path
    }

    /// Starts `cluster.sh ARGS` against this state folder, with `env` added.
    fn spawn(&self, args: &[&str], env: &[(&str, &Path)]) -> Running {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let label: String =
            args.join("-").chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let output = self.dir.join("runs").join(format!("{n}-{label}"));
        let file = |extension: &str| fs::File::create(output.with_extension(extension)).expect("create an output file");
        let mut command = Command::new("bash");
        command
            .arg(script())
            .args(args)
            .env("CAAS_CACHE_DIR", cache_dir())
            .env("CAAS_CLUSTER_DIR", &self.dir)
            .env_remove("CAAS_CLUSTER_WRAPPER")
            .stdin(Stdio::null())
            .stdout(file("stdout"))
            .stderr(file("stderr"));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("start cluster.sh");
        Running {
            child,
            output,
            what: format!("cluster.sh {} (CAAS_CLUSTER_DIR={})", args.join(" "), self.dir.display()),
        }
    }

    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        self.spawn(args, env).wait(UP_LIMIT)
    }

    /// `cluster.sh up` that must succeed.
    fn up(&self, env: &[(&str, &Path)]) -> Run {
        let run = self.run(&["up"], env);
        assert!(
            run.status.success(),
            "cluster.sh up failed ({}):\n{}\nits output is in {}.*, the components' logs in {}",
            run.status,
            run.stderr,
            run.output.display(),
            self.logs().display()
        );
        run
    }

    fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// `cluster.sh status` as component → pid (None when it says "stopped").
    fn status(&self) -> BTreeMap<String, Option<u32>> {
        let run = self.run(&["status"], &[]);
        assert!(run.status.success(), "cluster.sh status failed: {}", run.stderr);
        let stdout = fs::read_to_string(run.output.with_extension("stdout")).expect("read the status output");
        stdout
            .lines()
            .map(|line| {
                let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
                let pid = rest
                    .strip_prefix("running (pid ")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .map(|pid| pid.parse().unwrap_or_else(|_| panic!("status line {line:?} has no pid")));
                (name.to_owned(), pid)
            })
            .collect()
    }

    /// Asserts that every component runs, once, as the pid `status` names, with its own binary, that the apiserver
    /// answers /readyz, and that it serves the metrics API through metrics-server, with no figures for kwok's nodes
    /// (they have no kubelet); returns the pids.
    fn assert_healthy(&self) -> BTreeMap<String, u32> {
        let status = self.status();
        let mut pids = BTreeMap::new();
        for component in COMPONENTS {
            let pid = status.get(component).copied().flatten().unwrap_or_else(|| {
                panic!("{component} is not running: status says {status:?}; logs in {}", self.logs().display())
            });
            let exe =
                fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_else(|e| panic!("{component} pid {pid}: {e}"));
            assert_eq!(
                exe.file_name().and_then(|name| name.to_str()),
                Some(component),
                "{component}'s pid {pid} runs {}",
                exe.display()
            );
            let copies = processes_of(&exe, &self.dir);
            assert_eq!(
                copies,
                vec![pid],
                "{component} of this cluster must run once, as pid {pid}; logs in {}",
                self.logs().display()
            );
            pids.insert(component.to_owned(), pid);
        }
        let readyz = self.run(&["kubectl", "get", "--raw", "/readyz"], &[]);
        let answer = fs::read_to_string(readyz.output.with_extension("stdout")).unwrap_or_default();
        assert!(
            readyz.status.success() && answer.trim() == "ok",
            "the apiserver's /readyz answered {answer:?} ({}): {}; its log is {}",
            readyz.status,
            readyz.stderr,
            self.logs().join("kube-apiserver.log").display()
        );
        assert_eq!(self.guard(), expected_guard(), "up installs the tenant guard of manifests/tenant-guard.yaml");
        let nodes = self.run(&["kubectl", "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"], &[]);
        let answer = fs::read_to_string(nodes.output.with_extension("stdout")).unwrap_or_default();
        let list: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        assert!(
            nodes.status.success() && list["kind"] == "NodeMetricsList" && list["items"] == serde_json::json!([]),
            "the metrics API answered {answer:?} ({}): {}; metrics-server's log is {}",
            nodes.status,
            nodes.stderr,
            self.logs().join("metrics-server.log").display()
        );
        pids
    }

    /// The tenant guard's policies and bindings in this cluster (those labelled with a guard version), by name.
    fn guard(&self) -> Vec<String> {
        let mut names = Vec::new();
        for kind in ["validatingadmissionpolicies", "validatingadmissionpolicybindings"] {
            let args = ["kubectl", "get", kind, "-l", "caas-broker.io/guard-version=2", "-o", "name"];
            let listed = self.run(&args, &[]);
            assert!(listed.status.success(), "kubectl get {kind}: {}", listed.stderr);
            let out = fs::read_to_string(listed.output.with_extension("stdout")).unwrap_or_default();
            names.extend(out.lines().map(str::to_owned));
        }
        names.sort();
        names
    }

    fn down(&self) -> Run {
        self.run(&["down"], &[])
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let down = self.down();
        if !down.status.success() {
            eprintln!("cluster.sh down failed for {}: {}", self.dir.display(), down.stderr);
        }
        if std::thread::panicking() || !down.status.success() {
            eprintln!("kept {} for its logs (logs/) and cluster.sh output (runs/)", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The pids of processes running `exe` whose command line names the state folder `dir` (every component's does:
/// its data folder, certificates or kubeconfig), so other clusters on the machine do not count.
fn processes_of(exe: &Path, dir: &Path) -> Vec<u32> {
    let dir = dir.to_string_lossy();
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe))
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir))
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The process exists and has not exited: an exited process stays a zombie until init reaps it.
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    !matches!(state, Some(Some('Z')) | None)
}

/// A wrapper that records which component it started, then sleeps before it execs the binary: the recorded pid is
/// a shell, not the component, for a whole second.
fn slow_exec_wrapper(cluster: &TestCluster) -> PathBuf {
    let marks = cluster.dir.join("wrapped");
    fs::create_dir_all(&marks).expect("create the wrapper's marks folder");
    cluster.script_file(
        "slow-exec.sh",
        &format!("echo \"$$\" >>\"{}/$(basename \"$1\")\"\nsleep 1\nexec \"$@\"\n", marks.display()),
    )
}

/// Every component went through the wrapper (so the slow exec really happened) exactly once.
fn assert_all_wrapped(cluster: &TestCluster) {
    for component in COMPONENTS {
        let mark = cluster.dir.join("wrapped").join(component);
        let starts = fs::read_to_string(&mark).unwrap_or_default();
        assert_eq!(
            starts.lines().count(),
            1,
            "{component} must have been started once through CAAS_CLUSTER_WRAPPER (marks in {}: {starts:?})",
            mark.display()
        );
    }
}

/// `up` waits until each component's pid runs its binary: with a wrapper that sleeps 1 s before it execs, `up` still
/// brings up a healthy cluster, says what it started, and `down` then stops every component it recorded.
#[test]
fn up_waits_until_each_component_runs_its_binary() {
    let _serial = serial();
    let cluster = TestCluster::new("slow-exec");
    let wrapper = slow_exec_wrapper(&cluster);
    let run = cluster.up(&[("CAAS_CLUSTER_WRAPPER", &wrapper)]);
    assert_all_wrapped(&cluster);
    for component in COMPONENTS {
        assert!(
            run.stderr.contains(&format!("started {component} (pid")),
            "up does not say it started {component}:\n{}",
            run.stderr
        );
    }
    let pids = cluster.assert_healthy();

    // An operator (or a stale cluster) lost a policy: the next `up` on the running cluster puts it back.
    let deleted = cluster.run(&["kubectl", "delete", "validatingadmissionpolicy", "caas-broker-no-gpu-env"], &[]);
    assert!(deleted.status.success(), "kubectl delete: {}", deleted.stderr);
    assert_ne!(cluster.guard(), expected_guard());
    let again = cluster.up(&[]);
    assert!(again.status.success(), "the second up failed: {}", again.stderr);
    assert_eq!(cluster.guard(), expected_guard(), "up on a running cluster re-applies the guard");

    let down = cluster.down();
    assert!(down.status.success(), "cluster.sh down failed: {}", down.stderr);
    for (component, pid) in pids {
        assert!(!alive(pid), "{component} (pid {pid}) still runs after down");
    }
    assert!(cluster.status().values().all(Option::is_none), "status after down: {:?}", cluster.status());
}

/// The names [`TestCluster::guard`] lists when the whole guard is installed.
fn expected_guard() -> Vec<String> {
    let mut names: Vec<String> = caas_broker::lifecycle::tenant_guard::POLICY_SUFFIXES
        .iter()
        .flat_map(|suffix| {
            [
                format!("validatingadmissionpolicy.admissionregistration.k8s.io/caas-broker-{suffix}"),
                format!("validatingadmissionpolicybinding.admissionregistration.k8s.io/caas-broker-{suffix}"),
            ]
        })
        .collect();
    names.sort();
    names
}

/// A component that exits at start (kube-scheduler, through a wrapper that prints a message and exits 3) stops `up`
/// with a failure whose message names the component, its exit status and its log, and shows the end of that log.
#[test]
fn a_component_that_dies_at_start_is_reported_with_its_log() {
    let _serial = serial();
    let cluster = TestCluster::new("dies");
    let wrapper = cluster.script_file(
        "scheduler-dies.sh",
        "case \"$1\" in */kube-scheduler) echo 'test wrapper: kube-scheduler refuses to start' >&2; exit 3;; esac\nexec \"$@\"\n",
    );
    let run = cluster.run(&["up"], &[("CAAS_CLUSTER_WRAPPER", &wrapper)]);
    let log = cluster.logs().join("kube-scheduler.log");
    assert!(!run.status.success(), "up must fail when kube-scheduler dies; it said:\n{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("kube-scheduler")
            && last.contains("exited with status 3")
            && last.contains(&*log.to_string_lossy()),
        "up's last line must name kube-scheduler, its exit status and its log {}; it said:\n{}",
        log.display(),
        run.stderr
    );
    assert!(
        run.stderr.contains("test wrapper: kube-scheduler refuses to start"),
        "up must show the end of kube-scheduler's log; it said:\n{}",
        run.stderr
    );
    let status = cluster.status();
    assert_eq!(status.get("kube-scheduler"), Some(&None), "status after the failed up: {status:?}");
}

/// Two `up` at once on the same state folder (each component slow to exec, so they overlap) both succeed and leave
/// one cluster: the same pids as `status` names, each component running once.
#[test]
fn two_ups_at_once_leave_one_healthy_cluster() {
    let _serial = serial();
    let cluster = TestCluster::new("twice");
    let wrapper = slow_exec_wrapper(&cluster);
    let first = cluster.spawn(&["up"], &[("CAAS_CLUSTER_WRAPPER", &wrapper)]);
    let second = cluster.spawn(&["up"], &[("CAAS_CLUSTER_WRAPPER", &wrapper)]);
    for run in [first.wait(UP_LIMIT), second.wait(UP_LIMIT)] {
        assert!(
            run.status.success(),
            "one of two concurrent ups failed ({}):\n{}\nits output is in {}.*, the logs in {}",
            run.status,
            run.stderr,
            run.output.display(),
            cluster.logs().display()
        );
    }
    assert_all_wrapped(&cluster);
    cluster.assert_healthy();
}

/// Busy loops on every core for as long as the value lives.
struct BusyCores(Vec<Child>);

impl BusyCores {
    fn start() -> BusyCores {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        BusyCores(
            (0..cores)
                .map(|_| Command::new("sh").args(["-c", "while :; do :; done"]).spawn().expect("start a busy loop"))
                .collect(),
        )
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `up` while a busy loop runs on every core (the fork-to-exec window is longest then) still ends with a healthy
/// cluster.
#[test]
fn up_with_every_core_busy_ends_healthy() {
    let _serial = serial();
    let cluster = TestCluster::new("busy");
    let busy = BusyCores::start();
    cluster.up(&[]);
    cluster.assert_healthy();
    drop(busy);
}
