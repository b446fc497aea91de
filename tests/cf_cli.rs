//! The broker as a Cloud Foundry user meets it: a real Cloud Foundry API (Korifi, started by `tests/cf/cf-api.sh` on a
//! control plane of its own) and the real cf CLI drive the `caas-broker` binary, which serves the tenants' cluster
//! (the shared dev cluster of the other tests). Every step is a cf command as a user types it; the assertions read
//! the CLI's output and the tenants' cluster.
//!
//! When it fails, the message names the command, its output and where the logs are: the broker's log (a file under
//! the cargo target's tmp folder), Korifi's (`tests/cf/cf-api.sh logs korifi-controllers`, `... korifi-api`).

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::{cluster, repo_root};
use support::http::curl;

const BINARY: &str = env!("CARGO_BIN_EXE_caas-broker");
const PASSWORD: &str = "cf-cli-test-broker-password";
/// Ports korifi-controllers v0.18.0 always listens on (it ignores its flags).
const KORIFI_PORTS: [u16; 3] = [8080, 8081, 9443];
/// Names of what a run registers in Cloud Foundry, so a later run can clear what a killed one left.
const NAME_PREFIX: &str = "cf-cli-test-";

/// The Cloud Foundry API as `tests/cf/cf-api.sh env` describes it, and a cf CLI home of this test's own.
struct Cf {
    bin: PathBuf,
    api: String,
    kubeconfig: String,
    home: PathBuf,
    logs: String,
    broker_log: PathBuf,
}

/// What a command printed.
struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `command` until it exits or `limit` passes (then kills it), collecting what it printed.
fn run_with_limit(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_string(&mut text).ok();
            }
            text
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a command") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap_or_default();
    let mut stderr = stderr.join().unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n[killed after {limit:?}]"));
    }
    Output { ok: status.is_some_and(|s| s.success()), stdout, stderr }
}

impl Cf {
    /// Brings the Cloud Foundry API up (building Korifi and the cf CLI on first use) and logs a fresh cf home in.
    fn start(broker_log: PathBuf) -> Cf {
        let script = repo_root().join("tests/cf/cf-api.sh");
        let up = Command::new("bash").arg(&script).arg("up").status().expect("run tests/cf/cf-api.sh up");
        assert!(up.success(), "tests/cf/cf-api.sh up failed: see its message above (logs: tests/cf/cf-api.sh logs)");
        let env = Command::new("bash").arg(&script).arg("env").output().expect("run tests/cf/cf-api.sh env");
        assert!(env.status.success(), "tests/cf/cf-api.sh env failed: {}", String::from_utf8_lossy(&env.stderr));
        let env = String::from_utf8(env.stdout).expect("UTF-8");
        let value = |key: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(&format!("export {key}=")))
                .unwrap_or_else(|| panic!("tests/cf/cf-api.sh env does not print {key}"))
                .to_owned()
        };
        let bin_dir = value("PATH").split(':').next().expect("PATH has a first entry").to_owned();
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cf-home-{}", std::process::id()));
        std::fs::create_dir_all(&home).expect("cf home");
        let cf = Cf {
            bin: Path::new(&bin_dir).join("cf"),
            api: value("CF_API"),
            kubeconfig: value("CF_KUBECONFIG"),
            home,
            logs: value("CF_API_LOGS"),
            broker_log,
        };
        cf.ok(&["api", &cf.api, "--skip-ssl-validation"]);
        cf.ok(&["auth", &value("CF_USERNAME")]);
        cf
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("CF_HOME", &self.home)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("CF_COLOR", "false")
            .env("CF_DIAL_TIMEOUT", "15");
        command
    }

    /// Runs `cf ARGS` (at most `limit`).
    fn run_for(&self, args: &[&str], limit: Duration) -> Output {
        run_with_limit(self.command(args), limit)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_for(args, Duration::from_secs(180))
    }

    /// Where to look when something fails.
    fn logs(&self) -> String {
        format!(
            "logs: the broker's {}; Korifi's {}/korifi-controllers.log and {}/korifi-api.log \
             (tests/cf/cf-api.sh logs korifi-controllers)",
            self.broker_log.display(),
            self.logs,
            self.logs
        )
    }

    /// Runs `cf ARGS`, which must succeed; returns what it printed on stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.ok,
            "cf {} failed\n--- stdout\n{}\n--- stderr\n{}\n{}",
            args.join(" "),
            out.stdout,
            out.stderr,
            self.logs()
        );
        out.stdout
    }

    /// `cf curl PATH`, parsed.
    fn curl(&self, path: &str) -> Value {
        let text = self.ok(&["curl", path]);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("cf curl {path} printed no JSON ({e}): {text}"))
    }

    /// The GUID of a service instance (`cf service NAME --guid`).
    fn guid(&self, instance: &str) -> String {
        let guid = self.ok(&["service", instance, "--guid"]).trim().to_owned();
        assert!(!guid.is_empty(), "cf service {instance} --guid printed nothing");
        guid
    }

    /// Polls the instance's last operation (`cf curl`) until its state is final, and returns it.
    fn last_operation(&self, guid: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let instance = self.curl(&format!("/v3/service_instances/{guid}"));
            let operation = instance["last_operation"].clone();
            if operation["state"] == "succeeded" || operation["state"] == "failed" {
                return operation;
            }
            assert!(Instant::now() < deadline, "instance {guid} still {operation} after {limit:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The row of `cf services` for an instance (name, offering, plan, bound apps, last operation, broker).
    fn services_row(&self, instance: &str) -> String {
        let out = self.ok(&["services"]);
        out.lines()
            .find(|line| line.split_whitespace().next() == Some(instance))
            .unwrap_or_else(|| panic!("cf services does not list {instance}:\n{out}"))
            .to_owned()
    }
}

/// The broker binary on a free loopback port (not one of Korifi's), serving the tenants' cluster with a namespace
/// prefix of its own; stopped and its namespaces deleted on drop.
struct Broker {
    child: Child,
    port: u16,
    prefix: String,
    log: PathBuf,
}

impl Broker {
    fn start() -> Broker {
        let port = loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
            if !KORIFI_PORTS.contains(&port) {
                break port;
            }
        };
        let prefix = format!("cf{:05x}-", rand::random::<u32>() & 0xfffff);
        let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cf-cli-broker-{}.log", std::process::id()));
        let file = std::fs::File::create(&log).expect("broker log");
        let child = Command::new(BINARY)
            .env("KUBECONFIG", &cluster().kubeconfig)
            .env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"))
            .env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0")
            .env("CAAS_BROKER__AUTH__PASSWORD", PASSWORD)
            .env("CAAS_BROKER__KUBERNETES__NAMESPACE_PREFIX", &prefix)
            .env("CAAS_BROKER__LOG__FORMAT", "json")
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start the broker");
        let broker = Broker { child, port, prefix, log };
        let started = Instant::now();
        while !broker.healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the broker did not start; its log is {:?}",
                broker.log
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        broker
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn healthy(&self) -> bool {
        curl(&[&format!("{}/healthz", self.url())]).0 == "200"
    }

    /// An OSB request as Korifi sends it (API version 2.17, no identity headers).
    fn osb(&self, method: &str, path: &str, body: Option<&Value>) -> (String, Value) {
        let url = format!("{}{path}", self.url());
        let auth = format!("broker:{PASSWORD}");
        let mut args = vec!["-u", &auth, "-H", "X-Broker-API-Version: 2.17", "-X", method];
        let body = body.map(Value::to_string);
        if let Some(body) = &body {
            args.extend(["-H", "Content-Type: application/json", "-d", body]);
        }
        args.push(&url);
        let (status, text) = curl(&args);
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn namespace(&self, instance_id: &str) -> String {
        caas_broker::k8s::names::namespace(&self.prefix, instance_id)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        let cluster = cluster();
        let (_, names, _) = cluster.kubectl(&cluster.kubeconfig, &["get", "namespaces", "-o", "name"]);
        let mine: Vec<&str> =
            names.lines().filter(|n| n.trim_start_matches("namespace/").starts_with(&self.prefix)).collect();
        if !mine.is_empty() {
            let mut args = vec!["delete", "--wait=false", "--ignore-not-found"];
            args.extend(mine);
            cluster.kubectl(&cluster.kubeconfig, &args);
        }
    }
}

/// Says where the logs are when the test fails anywhere (not only in a cf command).
struct LogsOnFailure(String);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("cf_cli failed; {}", self.0);
        }
    }
}

/// What this test registered in Cloud Foundry: removed on drop, also when the test fails (before the broker stops).
struct Registered<'a> {
    cf: &'a Cf,
    org: String,
    broker: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        clear(self.cf, &self.org, &self.broker);
    }
}

/// Best effort: the org (and with it its spaces, apps and service instances), then the broker.
fn clear(cf: &Cf, org: &str, broker: &str) {
    let limit = Duration::from_secs(120);
    if !broker.is_empty() {
        let guid = cf.curl(&format!("/v3/service_brokers?names={broker}"))["resources"][0]["guid"].clone();
        if let Some(guid) = guid.as_str() {
            purge_offerings(cf, |of| of == guid);
        }
    }
    for (what, name) in [("delete-org", org), ("delete-service-broker", broker)] {
        if name.is_empty() {
            continue;
        }
        let deleted = cf.run_for(&[what, name, "-f"], limit);
        if !deleted.ok {
            eprintln!("cleanup: cf {what} {name}: {}{}", deleted.stdout, deleted.stderr);
        }
    }
}

/// Purges the service offerings (with their plans) whose broker's GUID `matches`. Korifi v0.18.0 keeps a deleted
/// broker's offerings, listed with no broker, and a later broker's offerings of the same names then need `-b`.
fn purge_offerings(cf: &Cf, matches: impl Fn(&str) -> bool) {
    let offerings = cf.curl("/v3/service_offerings?per_page=5000");
    for offering in offerings["resources"].as_array().cloned().unwrap_or_default() {
        let broker = offering["relationships"]["service_broker"]["data"]["guid"].as_str().unwrap_or_default();
        if matches(broker) {
            let path = format!("/v3/service_offerings/{}?purge=true", offering["guid"].as_str().unwrap_or_default());
            let purged = cf.run(&["curl", "-X", "DELETE", &path]);
            if !purged.ok {
                eprintln!("cleanup: cf curl -X DELETE {path}: {}{}", purged.stdout, purged.stderr);
            }
        }
    }
}

/// What an earlier, killed run left registered: its broker no longer answers. A run in progress elsewhere (another
/// worktree against the same Korifi) has a live broker, and its org and broker are left alone. The leftover org's
/// instances are purged (their broker cannot deprovision them), then the org and the broker are deleted.
fn clear_leftovers(cf: &Cf) {
    let ours = |path: &str| -> Vec<Value> {
        let listed = cf.curl(path)["resources"].as_array().cloned().unwrap_or_default();
        listed.into_iter().filter(|item| item["name"].as_str().is_some_and(|n| n.starts_with(NAME_PREFIX))).collect()
    };
    let brokers = ours("/v3/service_brokers?per_page=5000");
    let live = |name: &str| {
        brokers.iter().any(|b| {
            b["name"] == name && b["url"].as_str().is_some_and(|url| curl(&[&format!("{url}/healthz")]).0 == "200")
        })
    };
    for org in ours("/v3/organizations?per_page=5000") {
        let (name, guid) = (org["name"].as_str().unwrap_or_default(), org["guid"].as_str().unwrap_or_default());
        let broker = name.replacen("org-", "", 1);
        if live(&broker) {
            continue;
        }
        let instances = cf.curl(&format!("/v3/service_instances?organization_guids={guid}&per_page=5000"));
        for instance in instances["resources"].as_array().cloned().unwrap_or_default() {
            let path = format!("/v3/service_instances/{}?purge=true", instance["guid"].as_str().unwrap_or_default());
            cf.run(&["curl", "-X", "DELETE", &path]);
        }
        clear(cf, name, "");
    }
    for broker in &brokers {
        let name = broker["name"].as_str().unwrap_or_default();
        if !live(name) {
            clear(cf, "", name);
        }
    }
    // Offerings of brokers deleted before this test purged them (see purge_offerings).
    let all = cf.curl("/v3/service_brokers?per_page=5000")["resources"].as_array().cloned().unwrap_or_default();
    let known: Vec<&str> = all.iter().filter_map(|b| b["guid"].as_str()).collect();
    purge_offerings(cf, |broker| !known.contains(&broker));
}

/// `VCAP_SERVICES` as `cf env` prints it.
fn vcap_services(env: &str) -> Value {
    let start = env.find("VCAP_SERVICES: ").unwrap_or_else(|| panic!("cf env shows no VCAP_SERVICES:\n{env}"));
    let text = &env[start + "VCAP_SERVICES: ".len()..];
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("VCAP_SERVICES is not JSON:\n{env}"))
}

/// The real kubectl with a tenant's kubeconfig text.
fn kubectl_as(kubeconfig: &str, name: &str, args: &[&str]) -> (bool, String, String) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.kubeconfig", std::process::id()));
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    let cluster = cluster();
    let answer = cluster.kubectl(&path, args);
    std::fs::remove_file(&path).ok();
    answer
}

/// The admin's kubectl on the tenants' cluster, JSON output.
fn admin_json(args: &[&str]) -> Value {
    let cluster = cluster();
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (ok, out, err) = cluster.kubectl(&cluster.kubeconfig, &all);
    assert!(ok, "kubectl {} failed: {err}", args.join(" "));
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Polls until `probe` holds, or panics naming `what`.
fn eventually(limit: Duration, what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !probe() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_cf_user_gets_a_virtual_cluster_workloads_and_credentials_through_the_cf_cli() {
    let cluster = cluster();
    let broker = Broker::start();
    let cf = Cf::start(broker.log.clone());
    let _logs = LogsOnFailure(cf.logs());
    clear_leftovers(&cf);
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xffffff);
    let mut registered =
        Registered { cf: &cf, org: format!("{NAME_PREFIX}org-{suffix}"), broker: format!("{NAME_PREFIX}{suffix}") };
    let (org, broker_name) = (registered.org.clone(), registered.broker.clone());

    // The operator registers the broker and opens its services.
    let (status, catalog) = broker.osb("GET", "/v2/catalog", None);
    assert_eq!(status, "200", "{catalog}");
    let services = catalog["services"].as_array().expect("services").clone();
    cf.ok(&["create-service-broker", &broker_name, "broker", PASSWORD, &broker.url()]);
    let brokers = cf.ok(&["service-brokers"]);
    assert!(
        brokers.lines().any(|l| l.contains(&broker_name) && l.contains(&broker.url())),
        "cf service-brokers lists {broker_name} at {}:\n{brokers}",
        broker.url()
    );
    for service in &services {
        let name = service["name"].as_str().expect("name");
        cf.ok(&["enable-service-access", name, "-b", &broker_name]);
    }
    cf.ok(&["create-org", &org]);
    cf.ok(&["create-space", "dev", "-o", &org]);
    cf.ok(&["target", "-o", &org, "-s", "dev"]);

    // The marketplace shows every service and plan with its description.
    let marketplace = cf.ok(&["marketplace", "-b", &broker_name]);
    for service in &services {
        let (name, description) =
            (service["name"].as_str().expect("name"), service["description"].as_str().expect("d"));
        assert!(
            marketplace.lines().any(|l| l.starts_with(name) && l.contains(description)),
            "cf marketplace shows {name} with its description {description:?}:\n{marketplace}"
        );
        let plans = cf.ok(&["marketplace", "-e", name, "-b", &broker_name]);
        for plan in service["plans"].as_array().expect("plans") {
            let (plan, description) = (plan["name"].as_str().expect("name"), plan["description"].as_str().expect("d"));
            assert!(
                plans.lines().any(|l| l.trim_start().starts_with(plan) && l.contains(description)),
                "cf marketplace -e {name} shows plan {plan} with its description {description:?}:\n{plans}"
            );
        }
    }

    // A virtual cluster: its namespace, with the small plan's quota, appears in the tenants' cluster.
    let created = cf.ok(&["create-service", "caas", "small", "my-cluster", "-b", &broker_name, "--wait"]);
    assert!(created.contains("OK"), "{created}");
    let row = cf.services_row("my-cluster");
    assert!(row.contains("create succeeded"), "cf services: {row}");
    let cluster_guid = cf.guid("my-cluster");
    let namespace = broker.namespace(&cluster_guid);
    let quota = admin_json(&["get", "resourcequota", "caas-quota", "-n", &namespace]);
    assert_eq!(quota["spec"]["hard"]["limits.memory"], "2Gi", "{quota}");
    let labels = admin_json(&["get", "namespace", &namespace])["metadata"]["labels"].clone();
    let org_guid = cf.curl(&format!("/v3/organizations?names={org}"))["resources"][0]["guid"].clone();
    assert_eq!(labels["caas-broker.io/organization"], org_guid, "{labels}");

    // An app bound to it finds a kubeconfig in VCAP_SERVICES that works in its namespace and nowhere else.
    cf.ok(&["create-app", "my-app"]);
    cf.ok(&["bind-service", "my-app", "my-cluster", "--wait"]);
    let row = cf.services_row("my-cluster");
    assert!(row.contains("my-app"), "cf services: {row}");
    let env = cf.ok(&["env", "my-app"]);
    let vcap = vcap_services(&env);
    let entry = &vcap["caas"][0];
    // Korifi leaves out `plan` and the catalog's `tags`, which Cloud Foundry's Cloud Controller includes.
    assert_eq!((&entry["name"], &entry["label"]), (&json!("my-cluster"), &json!("caas")), "{vcap}");
    let credentials = &entry["credentials"];
    assert_eq!((&credentials["namespace"], &credentials["role"]), (&json!(namespace), &json!("edit")), "{vcap}");
    let kubeconfig = credentials["kubeconfig"].as_str().expect("kubeconfig in the credentials");
    let (ok, _, err) = kubectl_as(kubeconfig, "app", &["create", "configmap", "from-my-app", "-n", &namespace]);
    assert!(ok, "the bound kubeconfig creates in its namespace: {err}");
    let (ok, out, err) = kubectl_as(kubeconfig, "app", &["get", "configmaps", "-n", &namespace]);
    assert!(ok && out.contains("from-my-app"), "{out}{err}");
    let (ok, _, err) = kubectl_as(kubeconfig, "app", &["get", "pods", "-n", "default"]);
    assert!(!ok && err.to_lowercase().contains("forbidden"), "another namespace is forbidden: {err}");
    let (ok, _, err) = kubectl_as(kubeconfig, "app", &["get", "namespaces"]);
    assert!(!ok && err.to_lowercase().contains("forbidden"), "cluster scope is forbidden: {err}");

    // A service key with the view role reads and cannot write.
    cf.ok(&["create-service-key", "my-cluster", "viewer", "-c", r#"{"role":"view"}"#, "--wait"]);
    let key = cf.ok(&["service-key", "my-cluster", "viewer"]);
    let key: Value = serde_json::Deserializer::from_str(&key[key.find('{').unwrap_or_else(|| panic!("{key}"))..])
        .into_iter::<Value>()
        .next()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("cf service-key printed no JSON: {key}"));
    let key = if key.get("credentials").is_some() { key["credentials"].clone() } else { key };
    assert_eq!(key["role"], "view", "{key}");
    let viewer = key["kubeconfig"].as_str().expect("kubeconfig in the key");
    let (ok, out, err) = kubectl_as(viewer, "viewer", &["get", "configmaps", "-n", &namespace]);
    assert!(ok && out.contains("from-my-app"), "{out}{err}");
    let (ok, _, err) = kubectl_as(viewer, "viewer", &["create", "configmap", "from-viewer", "-n", &namespace]);
    assert!(!ok && err.to_lowercase().contains("forbidden"), "view cannot write: {err}");

    // A container app placed in that cluster (the org's only one): its Deployment runs there.
    let app_parameters = r#"{"image":"registry.example/acme/api:1.0","port":8080,"replicas":1}"#;
    cf.ok(&["create-service", "container-app", "small", "my-api", "-b", &broker_name, "-c", app_parameters, "--wait"]);
    let row = cf.services_row("my-api");
    assert!(row.contains("create succeeded"), "cf services: {row}");
    let api_guid = cf.guid("my-api");
    let selector = format!("caas-broker.io/instance={api_guid}");
    let deployments = items(&admin_json(&["get", "deployments", "-n", &namespace, "-l", &selector]));
    assert_eq!(deployments.len(), 1, "one Deployment of my-api in {namespace}");
    // Ready when the broker said so; polled, because the shared cluster's simulated nodes miss heartbeats under load
    // and their pods turn unready for a few seconds.
    eventually(Duration::from_secs(120), "my-api's pod to be ready", || {
        items(&admin_json(&["get", "deployments", "-n", &namespace, "-l", &selector]))[0]["status"]["readyReplicas"]
            == 1
    });

    // Bad parameters: the user learns what to fix. Korifi drops the body of a synchronous refusal (its last
    // operation says "failed" with no description); Cloud Foundry's Cloud Controller shows that body, so the test
    // reads it from the broker for the very request Korifi sent.
    let bad = json!({ "image": "registry.example/acme/api:1.0", "port": "eighty" });
    let out =
        cf.run(&["create-service", "container-app", "small", "bad-api", "-b", &broker_name, "-c", &bad.to_string()]);
    assert!(out.ok, "cf create-service is accepted before the broker is asked: {}{}", out.stdout, out.stderr);
    let bad_guid = cf.guid("bad-api");
    let operation = cf.last_operation(&bad_guid, Duration::from_secs(300));
    assert_eq!(operation["state"], "failed", "{operation}");
    let row = cf.services_row("bad-api");
    assert!(row.contains("create failed"), "cf services: {row}");
    let mut message = operation["description"].as_str().unwrap_or_default().to_owned();
    if message.is_empty() {
        let app = &services.iter().find(|s| s["name"] == "container-app").expect("container-app")["plans"];
        let plan = app.as_array().expect("plans").iter().find(|p| p["name"] == "small").expect("small");
        let space_guid = cf.curl(&format!("/v3/spaces?names=dev&organization_guids={}", org_guid.as_str().expect("g")))
            ["resources"][0]["guid"]
            .clone();
        let request = json!({ "service_id": services.iter().find(|s| s["name"] == "container-app").expect("app")["id"],
            "plan_id": plan["id"], "organization_guid": org_guid, "space_guid": space_guid, "parameters": bad });
        let (status, answer) =
            broker.osb("PUT", &format!("/v2/service_instances/{bad_guid}?accepts_incomplete=true"), Some(&request));
        assert_eq!(status, "400", "{answer}");
        message = answer["description"].as_str().unwrap_or_default().to_owned();
        eprintln!("Korifi shows no description for the refused create; the broker answered: {message}");
    }
    assert!(message.contains("port") && message.contains("integer"), "the message names the field to fix: {message}");
    // Where an operator on Korifi finds it: the broker's log, by the instance's GUID.
    let log = std::fs::read_to_string(&broker.log).expect("the broker's log");
    assert!(
        log.lines().any(|l| l.contains("request refused") && l.contains(&bad_guid) && l.contains("parameters.port")),
        "the broker logs the refusal of {bad_guid} with its reason ({})",
        broker.log.display()
    );
    // The failed instance exists only in Cloud Foundry: purge it.
    cf.ok(&["purge-service-instance", "bad-api", "-f"]);
    let services_left = cf.ok(&["services"]);
    assert!(!services_left.contains("bad-api"), "cf services still lists bad-api:\n{services_left}");

    // The app's pod leaves room for a streaming session: delete it, then place a session in the same cluster.
    cf.ok(&["delete-service", "my-api", "-f", "--wait"]);
    eventually(Duration::from_secs(60), "my-api's Deployment to go", || {
        items(&admin_json(&["get", "deployments", "-n", &namespace, "-l", &selector])).is_empty()
    });
    let session_parameters = r#"{"steam_app_id":1007,"resolution":"1280x720"}"#;
    cf.ok(&[
        "create-service",
        "streaming-session",
        "cpu-720p",
        "my-game",
        "-b",
        &broker_name,
        "-c",
        session_parameters,
    ]);
    let session_guid = cf.guid("my-game");
    // The simulated nodes have no storage provisioner: a volume reserved for the session's claim.
    let claim = format!("data-{}-0", caas_broker::k8s::names::short_label("session-", &session_guid, 50));
    let volume = format!("{}pv", broker.prefix);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the cluster client");
    runtime.block_on(async {
        support::cluster::reserve_volume(&cluster.admin().await, &volume, &namespace, &claim).await
    });
    // Korifi polls with a growing back-off (its polls came 80 s apart here): give it time to see what the broker says.
    let operation = cf.last_operation(&session_guid, Duration::from_secs(420));
    assert_eq!(operation["state"], "succeeded", "{operation}\n{}", cf.logs());
    let session_selector = format!("caas-broker.io/instance={session_guid}");
    let sets = items(&admin_json(&["get", "statefulsets", "-n", &namespace, "-l", &session_selector]));
    assert_eq!(sets.len(), 1, "one StatefulSet of my-game in {namespace}");
    eventually(Duration::from_secs(60), "my-game's pod to be ready", || {
        let sets = items(&admin_json(&["get", "statefulsets", "-n", &namespace, "-l", &session_selector]));
        sets[0]["status"]["readyReplicas"] == 1
    });
    let row = cf.services_row("my-game");
    assert!(row.contains("create succeeded"), "cf services: {row}");
    cf.ok(&["delete-service", "my-game", "-f", "--wait"]);
    eventually(Duration::from_secs(60), "my-game's objects to go", || {
        items(&admin_json(&["get", "statefulsets,services,secrets,pvc", "-n", &namespace, "-l", &session_selector]))
            .is_empty()
    });
    cluster.kubectl(&cluster.kubeconfig, &["delete", "pv", &volume, "--ignore-not-found", "--wait=false"]);

    // Unbind, delete the key and the cluster: nothing of it is left in the tenants' cluster.
    cf.ok(&["unbind-service", "my-app", "my-cluster", "--wait"]);
    let (ok, _, err) = kubectl_as(kubeconfig, "app", &["get", "configmaps", "-n", &namespace]);
    assert!(!ok && err.contains("Unauthorized"), "an unbound token is revoked: {err}");
    cf.ok(&["delete-service-key", "my-cluster", "viewer", "-f", "--wait"]);
    cf.ok(&["delete-service", "my-cluster", "-f", "--wait"]);
    eventually(Duration::from_secs(120), &format!("namespace {namespace} to go"), || {
        !cluster.kubectl(&cluster.kubeconfig, &["get", "namespace", &namespace]).0
    });
    let (_, names, _) = cluster.kubectl(&cluster.kubeconfig, &["get", "namespaces", "-o", "name"]);
    assert!(!names.contains(&broker.prefix), "namespaces of this broker left: {names}");
    for guid in [&cluster_guid, &api_guid, &session_guid] {
        let selector = format!("caas-broker.io/instance={}", caas_broker::k8s::names::label_value(guid));
        let left = items(&admin_json(&["get", "serviceaccounts,rolebindings,secrets", "-A", "-l", &selector]));
        assert!(left.is_empty(), "objects of instance {guid} left: {left:?}");
    }
    let services_left = cf.ok(&["services"]);
    assert!(!services_left.contains("my-cluster"), "cf services still lists my-cluster:\n{services_left}");

    // The operator removes the broker; the org goes too. Korifi keeps a deleted broker's offerings (listed with no
    // broker), so its operator purges them first.
    let broker_guid = cf.curl(&format!("/v3/service_brokers?names={broker_name}"))["resources"][0]["guid"].clone();
    for service in &services {
        cf.ok(&["purge-service-offering", service["name"].as_str().expect("name"), "-b", &broker_name, "-f"]);
    }
    let offerings = cf.curl("/v3/service_offerings?per_page=5000");
    let left: Vec<&Value> = offerings["resources"]
        .as_array()
        .expect("offerings")
        .iter()
        .filter(|o| o["relationships"]["service_broker"]["data"]["guid"] == broker_guid)
        .collect();
    assert!(left.is_empty(), "offerings of {broker_name} left after purging: {left:?}");
    cf.ok(&["delete-service-broker", &broker_name, "-f"]);
    let brokers = cf.ok(&["service-brokers"]);
    assert!(!brokers.contains(&broker_name), "cf service-brokers still lists {broker_name}:\n{brokers}");
    cf.ok(&["delete-org", &org, "-f"]);
    (registered.org, registered.broker) = (String::new(), String::new());
}
