//! The BOSH release in `bosh-release/`: it builds (blobs prepared, `bosh create-release` with the BOSH CLI built from
//! its Go module), and its job templates render to files the real broker accepts, or refuses with exit code 78 naming
//! the key when a property is wrong; several clusters render into the configuration, their kubeconfigs into files
//! only their owner reads. Templates are rendered by `bosh-release/scripts/render-template.rb`, which implements the
//! part of the director's template API the jobs use; it needs Debian's `ruby` (`bosh-release/scripts/install-deps.sh`).
//! The first run builds the BOSH and cf CLIs and packs the blobs (a few minutes); later runs find them in
//! `$CAAS_CACHE_DIR` (default `.cache/`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_caas-broker");
/// The broker's exit code for invalid configuration (EX_CONFIG).
const EX_CONFIG: i32 = 78;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn release_dir() -> PathBuf {
    repo().join("bosh-release")
}

/// A fresh folder for one test, under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("caas-bosh-release-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `command` and panics with its output unless it succeeds.
fn run(command: &mut Command, what: &str) -> Output {
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    eprintln!("{what}: {:.1}s", started.elapsed().as_secs_f64());
    output
}

fn script(name: &str) -> Command {
    let mut command = Command::new("bash");
    command.arg(release_dir().join("scripts").join(name));
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

// --- the release builds -----------------------------------------------------------------------------------------

#[test]
fn release_builds_with_every_job_and_package() {
    let dir = scratch("create-release");
    run(&mut script("prepare-blobs.sh"), "prepare-blobs.sh");
    let tarball = dir.join("caas-broker.tgz");
    let tarball_arg = tarball.to_str().expect("utf-8 path");
    run(script("bosh-cli.sh").args(["create-release", "--force", "--tarball", tarball_arg]), "bosh create-release");
    assert!(tarball.is_file(), "{} was not written", tarball.display());

    let listing = text(&run(Command::new("tar").args(["tzf", tarball_arg]), "tar tzf").stdout);
    let entries: Vec<&str> = listing.lines().map(|l| l.trim_start_matches("./")).collect();
    for expected in [
        "release.MF",
        "jobs/caas-broker.tgz",
        "jobs/broker-registrar.tgz",
        "jobs/broker-deregistrar.tgz",
        "packages/caas-broker.tgz",
        "packages/caas-broker-crates.tgz",
        "packages/rust-toolchain.tgz",
        "packages/cf-cli.tgz",
    ] {
        assert!(entries.contains(&expected), "{expected} missing from the release:\n{listing}");
    }

    let manifest = text(&run(Command::new("tar").args(["xzf", tarball_arg, "-O", "release.MF"]), "release.MF").stdout);
    let manifest: Value = serde_norway::from_str(&manifest).expect("release.MF is YAML");
    assert_eq!(manifest["name"], "caas-broker");
    let named = |section: &str, name: &str| -> Value {
        manifest[section]
            .as_array()
            .and_then(|items| items.iter().find(|item| item["name"] == name))
            .unwrap_or_else(|| panic!("release.MF has no {section} entry {name}"))
            .clone()
    };
    assert_eq!(named("packages", "caas-broker")["dependencies"], json!(["rust-toolchain", "caas-broker-crates"]));
    assert_eq!(named("jobs", "caas-broker")["packages"], json!(["caas-broker"]));
    assert_eq!(named("jobs", "broker-registrar")["packages"], json!(["cf-cli"]));
    assert_eq!(named("jobs", "broker-deregistrar")["packages"], json!(["cf-cli"]));

    // The package carries the repository's own sources, not a stale copy.
    run(Command::new("tar").args(["xzf", tarball_arg, "-C"]).arg(&dir).arg("packages/caas-broker.tgz"), "unpack");
    let package = dir.join("package");
    std::fs::create_dir_all(&package).expect("mkdir");
    run(Command::new("tar").arg("xzf").arg(dir.join("packages/caas-broker.tgz")).arg("-C").arg(&package), "unpack");
    for file in ["Cargo.toml", "Cargo.lock", "src/main.rs", "catalog/catalog.yaml"] {
        let packaged = std::fs::read(package.join("caas-broker").join(file)).expect(file);
        let source = std::fs::read(repo().join(file)).expect(file);
        assert!(packaged == source, "the packaged {file} differs from the repository's");
    }
    assert!(package.join("packaging").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

// --- the templates render what the broker accepts -------------------------------------------------------------

/// Renders the templates of `job` with `input` (properties, links) into `out`; the output of the harness.
fn render(job: &str, input: &Value, out: &Path) -> Output {
    std::fs::create_dir_all(out).expect("mkdir");
    let input_file = out.with_extension("input.json");
    // JSON is YAML: the harness reads it as it reads a manifest excerpt.
    std::fs::write(&input_file, serde_json::to_vec_pretty(input).expect("json")).expect("write input");
    Command::new("ruby")
        .arg(release_dir().join("scripts/render-template.rb"))
        .arg(release_dir().join("jobs").join(job))
        .arg(&input_file)
        .arg(out)
        .output()
        .expect("run ruby (bosh-release/scripts/install-deps.sh installs it)")
}

/// Renders the caas-broker job and returns its config.yml, with the job's /var/vcap path moved to `out`, where the
/// files it names (kubeconfig, TLS, CA, catalog) were rendered.
fn render_broker_config(properties: Value, out: &Path) -> PathBuf {
    let rendered = render("caas-broker", &json!({ "properties": properties }), out);
    assert!(rendered.status.success(), "rendering failed:\n{}", text(&rendered.stderr));
    let config = out.join("config/config.yml");
    let yaml = std::fs::read_to_string(&config).expect("config.yml rendered");
    let moved = yaml.replace("/var/vcap/jobs/caas-broker", out.to_str().expect("utf-8 path"));
    std::fs::write(&config, moved).expect("write config");
    config
}

/// How a broker run ended: it exited (code and stderr), or it was serving after start-up (the /readyz status).
enum Outcome {
    Exited(Option<i32>, String),
    Serving { readyz: String },
}

/// Starts the real broker with `config`, KUBECONFIG pointing nowhere, and waits until it exits or answers /healthz.
/// The listen address is moved to a free loopback port by `CAAS_BROKER__LISTEN` unless `keep_listen` (for a
/// configuration whose `listen` is under test, which the variable would replace).
fn start_broker(config: &Path, scheme: &str, keep_listen: bool) -> Outcome {
    let port = free_port();
    let mut command = Command::new(BINARY);
    // The dashboard on a port of its own per broker, so that brokers started side by side do not collide.
    command.env("CAAS_BROKER__DASHBOARD__LISTEN", "127.0.0.1:0");
    if !keep_listen {
        command.env("CAAS_BROKER__LISTEN", format!("127.0.0.1:{port}"));
    }
    let mut broker = command
        .arg("--config")
        .arg(config)
        .env("KUBECONFIG", "/nonexistent/caas-broker-test.kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the broker");
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args(["-s", "-k", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("{scheme}://127.0.0.1:{port}{path}"))
            .output()
            .expect("curl");
        text(&out.stdout)
    };
    let started = Instant::now();
    loop {
        if let Some(status) = broker.try_wait().expect("wait") {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut broker.stderr.take().expect("stderr"), &mut stderr).expect("read");
            return Outcome::Exited(status.code(), stderr);
        }
        if curl("/healthz") == "200" {
            let readyz = curl("/readyz");
            broker.kill().expect("stop the broker");
            broker.wait().expect("reap the broker");
            return Outcome::Serving { readyz };
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the broker neither exited nor served within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A self-signed certificate and key for 127.0.0.1, PEM.
fn certificate(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=caas-broker"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "openssl req",
    );
    (std::fs::read_to_string(cert).expect("cert"), std::fs::read_to_string(key).expect("key"))
}

#[test]
fn minimal_properties_render_a_configuration_the_broker_accepts() {
    let dir = scratch("minimal");
    let config = render_broker_config(json!({ "auth": { "password": "a-long-test-password" } }), &dir.join("job"));
    let rendered: Value = serde_norway::from_str(&std::fs::read_to_string(&config).expect("read")).expect("YAML");
    assert_eq!(rendered["listen"], "0.0.0.0:8080");
    assert_eq!(rendered["auth"], json!({ "username": "broker", "password": "a-long-test-password" }));
    assert_eq!(rendered["log"], json!({ "format": "json", "level": "info" }));
    // The identity namespace is the broker's default, written out (as the broker namespace is).
    assert_eq!(rendered["kubernetes"]["broker_namespace"], "caas-broker-system");
    assert_eq!(rendered["kubernetes"]["identity_namespace"], "caas-broker-identities");
    assert!(rendered.get("tls").is_none() && rendered["kubernetes"].get("kubeconfig").is_none());
    // The broker requires the tenant guard of manifests/tenant-guard.yaml by default.
    assert_eq!(rendered["policy"]["tenant_guard"], "caas-broker");
    assert_eq!(rendered["policy"]["require_tenant_guard"], true);

    // No kubeconfig property and KUBECONFIG pointing nowhere: the configuration passes, reaching Kubernetes fails.
    match start_broker(&config, "http", false) {
        Outcome::Exited(code, stderr) => {
            assert_ne!(code, Some(EX_CONFIG), "the broker refused the rendered configuration:\n{stderr}");
            assert!(!stderr.contains("invalid configuration"), "{stderr}");
        }
        Outcome::Serving { .. } => {}
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_property_renders_a_configuration_the_broker_serves_with() {
    let dir = scratch("full");
    let (cert, key) = certificate(&dir);
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\", \
                      insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: not-a-real-token}\n\
                      contexts:\n- name: ctx\n  context: {cluster: c, user: u}\ncurrent-context: ctx\n";
    let catalog = std::fs::read_to_string(repo().join("catalog/catalog.yaml")).expect("catalog");
    let properties = json!({
        "bind_address": "0.0.0.0",
        "port": 8443,
        "external_url": "https://caas-broker.sys.example.com",
        "auth": { "username": "cloud-controller", "password": "a-long-test-password" },
        "catalog": catalog,
        "kubernetes": {
            "kubeconfig": kubeconfig,
            "context": "ctx",
            "namespace_prefix": "tenant-",
            "broker_namespace": "caas-system",
            "identity_namespace": "caas-identities",
            "request_timeout_seconds": 10,
            "public_server": "https://k8s.example.com:6443",
            "public_ca": cert,
        },
        "dashboard": {
            "base_url": "https://dashboard.example.com",
            "oidc": { "issuer": "https://keycloak.example.com/realms/k", "client_id": "caas", "client_secret": "s1",
                      "ca": cert },
            "cf_sso": { "issuer": "https://uaa.example.com/oauth/token", "client_secret": "s2",
                        "api_url": "https://api.example.com" },
        },
        "bindings": { "default_expiration_seconds": 3600, "max_expiration_seconds": 7200 },
        "workloads": { "session_image": "registry.example.com/session:2", "gpu_runtime_class": "nvidia",
                       "image_pull_policy": "IfNotPresent", "node_selector": ["pool=tenants"],
                       "tolerations": ["caas.dev/pool=tenants:NoSchedule"] },
        "limits": { "body_bytes": 65536, "sync_timeout_seconds": 20 },
        "policy": { "one_instance_per_organization": true, "tenant_guard": "site-guard", "require_tenant_guard": false },
        "ingress": { "domain": "apps.example.com" },
        "log": { "format": "human", "level": "caas_broker=debug,info" },
        "tls": { "certificate": cert, "private_key": key },
        "health": { "post_start_timeout_seconds": 30 },
    });
    let out = dir.join("job");
    let config = render_broker_config(properties, &out);
    let rendered: Value = serde_norway::from_str(&std::fs::read_to_string(&config).expect("read")).expect("YAML");
    let file = |name: &str| out.join("config").join(name).to_str().expect("utf-8").to_owned();
    assert_eq!(rendered["listen"], "0.0.0.0:8443");
    assert_eq!(rendered["catalog"], file("catalog.yml"));
    assert_eq!(rendered["kubernetes"]["kubeconfig"], file("kubeconfig"));
    assert_eq!(rendered["kubernetes"]["public_ca_file"], file("public-ca.pem"));
    assert_eq!(rendered["tls"], json!({ "cert": file("tls.crt"), "key": file("tls.key") }));
    assert_eq!(rendered["workloads"]["gpu_runtime_class"], "nvidia");
    assert_eq!(rendered["workloads"]["image_pull_policy"], "IfNotPresent");
    assert_eq!(rendered["dashboard"]["base_url"], "https://dashboard.example.com");
    assert_eq!(rendered["dashboard"]["listen"], "0.0.0.0:8081");
    let oidc = json!({ "issuer": "https://keycloak.example.com/realms/k", "client_id": "caas", "client_secret": "s1",
                       "scopes": "openid email", "user_claim": "email", "ca_file": file("oidc-ca.pem") });
    assert_eq!(rendered["dashboard"]["oidc"], oidc);
    let cf = json!({ "issuer": "https://uaa.example.com/oauth/token", "client_secret": "s2",
                     "api_url": "https://api.example.com",
                     "scopes": "openid cloud_controller_service_permissions.read" });
    assert_eq!(rendered["dashboard"]["cf_sso"], cf);
    assert_eq!(std::fs::read_to_string(file("oidc-ca.pem")).expect("CA").trim(), cert.trim());
    assert_eq!(rendered["workloads"]["node_selector"], json!(["pool=tenants"]));
    assert_eq!(rendered["workloads"]["tolerations"], json!(["caas.dev/pool=tenants:NoSchedule"]));
    assert_eq!(rendered["kubernetes"]["identity_namespace"], "caas-identities");
    assert_eq!(rendered["policy"]["one_instance_per_organization"], true);
    assert_eq!(rendered["policy"]["tenant_guard"], "site-guard");
    assert_eq!(rendered["policy"]["require_tenant_guard"], false);
    assert_eq!(rendered["ingress"]["domain"], "apps.example.com");
    assert_eq!(std::fs::read_to_string(file("tls.key")).expect("key").trim(), key.trim());

    let bpm: Value =
        serde_norway::from_str(&std::fs::read_to_string(out.join("config/bpm.yml")).expect("bpm.yml")).expect("YAML");
    assert_eq!(bpm["processes"][0]["executable"], "/var/vcap/packages/caas-broker/bin/caas-broker");
    assert_eq!(bpm["processes"][0]["args"], json!(["--config", "/var/vcap/jobs/caas-broker/config/config.yml"]));
    let post_start = std::fs::read_to_string(out.join("bin/post-start")).expect("post-start");
    assert!(post_start.contains("url='https://127.0.0.1:8443/readyz'") && post_start.contains("timeout=30"));
    run(Command::new("bash").arg("-n").arg(out.join("bin/post-start")), "bash -n post-start");

    // The kubeconfig names an apiserver that does not answer: the broker starts and serves, but is not ready, which
    // is what post-start waits on.
    match start_broker(&config, "https", false) {
        Outcome::Serving { readyz } => assert_eq!(readyz, "503", "/readyz without a reachable apiserver"),
        Outcome::Exited(code, stderr) => {
            panic!("the broker exited ({code:?}) instead of serving with the rendered configuration:\n{stderr}")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rendered pre-start of the job rendered into `out`, its job paths moved there.
fn moved_pre_start(out: &Path) -> PathBuf {
    let pre_start = out.join("bin/pre-start");
    let script = std::fs::read_to_string(&pre_start)
        .expect("pre-start")
        .replace("/var/vcap/jobs/caas-broker", out.to_str().expect("utf-8 path"));
    std::fs::write(&pre_start, script).expect("write pre-start");
    pre_start
}

/// With `tenant_guard.kubeconfig` (an operator's credentials), the rendered pre-start installs the guard the
/// configuration names, with the identity namespace in its conditions, into the real cluster, and the broker's own
/// check then finds it in force; without it, pre-start applies nothing and says the guard must already be there.
#[test]
fn pre_start_installs_the_tenant_guard_with_the_operators_kubeconfig() {
    let dir = scratch("pre-start");
    let cluster = support::cluster::cluster();
    let guard = format!("bosh-{:06x}", rand::random::<u32>() & 0xffffff);
    let operator = std::fs::read_to_string(&cluster.kubeconfig).expect("the admin kubeconfig");
    let properties = json!({
        "auth": { "password": "a-long-test-password" },
        "kubernetes": { "identity_namespace": "bosh-identities" },
        "policy": { "tenant_guard": guard },
        "tenant_guard": { "kubeconfig": operator },
    });
    let out = dir.join("job");
    render_broker_config(properties, &out);
    let pre_start = out.join("bin/pre-start");
    run(Command::new("bash").arg("-n").arg(&pre_start), "bash -n pre-start");
    // The job's paths, moved to where the test rendered and built them.
    let script = std::fs::read_to_string(&pre_start)
        .expect("pre-start")
        .replace("/var/vcap/packages/caas-broker/bin/caas-broker", BINARY)
        .replace("/var/vcap/jobs/caas-broker", out.to_str().expect("utf-8 path"));
    std::fs::write(&pre_start, script).expect("write pre-start");
    let applied = text(&run(Command::new("bash").arg(&pre_start), "pre-start").stdout);
    assert!(applied.contains(&format!("the tenant guard {guard} is in force")), "{applied}");
    let cleanup = || {
        for suffix in caas_broker::lifecycle::tenant_guard::POLICY_SUFFIXES {
            for kind in ["validatingadmissionpolicybinding", "validatingadmissionpolicy"] {
                cluster.kubectl(
                    &cluster.kubeconfig,
                    &["delete", kind, &format!("{guard}-{suffix}"), "--ignore-not-found"],
                );
            }
        }
    };
    for suffix in caas_broker::lifecycle::tenant_guard::POLICY_SUFFIXES {
        let name = format!("{guard}-{suffix}");
        let (ok, out, err) =
            cluster.kubectl(&cluster.kubeconfig, &["get", "validatingadmissionpolicy", &name, "-o", "json"]);
        if !ok {
            cleanup();
            panic!("pre-start did not install {name}: {err}");
        }
        let policy: Value = serde_json::from_str(&out).expect("policy JSON");
        assert_eq!(
            policy["metadata"]["labels"]["caas-broker.io/guard-version"],
            caas_broker::lifecycle::tenant_guard::GUARD_VERSION
        );
        let (ok, out, _) =
            cluster.kubectl(&cluster.kubeconfig, &["get", "validatingadmissionpolicybinding", &name, "-o", "json"]);
        assert!(ok, "pre-start did not install the binding {name}");
        let binding: Value = serde_json::from_str(&out).expect("binding JSON");
        assert_eq!(binding["spec"]["policyName"], name.as_str());
        if suffix == "tenant-guard" {
            assert!(policy.to_string().contains("system:serviceaccount:bosh-identities:"), "{policy}");
        }
    }
    // Applying again (the next deploy) is fine.
    run(Command::new("bash").arg(&pre_start), "pre-start again");
    cleanup();

    // Without the property nothing is applied.
    let plain = dir.join("plain");
    render_broker_config(json!({ "auth": { "password": "a-long-test-password" } }), &plain);
    let said = text(&run(Command::new("bash").arg(moved_pre_start(&plain)), "pre-start without kubeconfig").stdout);
    assert!(said.contains("must already be installed"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Several clusters: the clusters property goes into config.yml in the broker's keys, and the rendered pre-start
/// writes each other cluster's kubeconfig and CA where config.yml names them, readable by their owner alone.
#[test]
fn several_clusters_render_into_the_configuration_and_private_files() {
    let dir = scratch("clusters");
    let kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: gpu-east\n";
    let ca = "-----BEGIN CERTIFICATE-----\nnot-a-real-ca\n-----END CERTIFICATE-----\n";
    let properties = json!({
        "auth": { "password": "a-long-test-password" },
        "clusters": [
            { "name": "home", "home": true, "labels": { "region": "kr-central" } },
            { "name": "gpu-east", "kubeconfig": kubeconfig, "context": "admin@gpu-east",
              "labels": { "region": "kr-east", "gpu": true }, "weight": 2, "cordoned": true,
              "public_server": "https://gpu-east.example.com:6443", "public_ca": ca },
        ],
    });
    let out = dir.join("job");
    let config = render_broker_config(properties, &out);
    let rendered: Value = serde_norway::from_str(&std::fs::read_to_string(&config).expect("read")).expect("YAML");
    let file = |name: &str| out.join("config/clusters").join(name).to_str().expect("utf-8").to_owned();
    let expected = json!([
        { "name": "home", "home": true, "labels": { "region": "kr-central" } },
        { "name": "gpu-east", "kubeconfig": file("gpu-east/kubeconfig"), "context": "admin@gpu-east",
          "labels": { "region": "kr-east", "gpu": "true" }, "weight": 2, "cordoned": true,
          "public_server": "https://gpu-east.example.com:6443", "public_ca_file": file("gpu-east/public-ca.pem") },
    ]);
    assert_eq!(rendered["clusters"], expected, "the clusters of config.yml");
    // The texts are not in config.yml, which names files only.
    let text_of_config = std::fs::read_to_string(&config).expect("read");
    assert!(!text_of_config.contains("not-a-real-ca") && !text_of_config.contains("current-context"));

    // pre-start writes the files, 0600 in a 0700 folder.
    let pre_start = moved_pre_start(&out);
    run(Command::new("bash").arg("-n").arg(&pre_start), "bash -n pre-start");
    run(Command::new("bash").arg(&pre_start), "pre-start");
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &str| std::fs::metadata(path).expect(path).permissions().mode() & 0o777;
    assert_eq!(std::fs::read_to_string(file("gpu-east/kubeconfig")).expect("kubeconfig"), kubeconfig);
    assert_eq!(std::fs::read_to_string(file("gpu-east/public-ca.pem")).expect("CA"), ca);
    assert_eq!(mode(&file("gpu-east/kubeconfig")), 0o600);
    assert_eq!(mode(&file("gpu-east/public-ca.pem")), 0o600);
    assert_eq!(mode(&file("gpu-east")), 0o700);
    assert!(!Path::new(&file("home")).exists(), "the home's credentials are kubernetes.kubeconfig");
    // The next deploy writes them afresh: a cluster taken out of the list leaves nothing behind.
    std::fs::write(out.join("config/cluster-files"), "").expect("empty the list");
    run(Command::new("bash").arg(&pre_start), "pre-start with no clusters");
    assert!(!Path::new(&file("gpu-east")).exists(), "a removed cluster's credentials stayed");

    // Without the property: no clusters key, no files.
    let plain = dir.join("plain");
    let config = render_broker_config(json!({ "auth": { "password": "a-long-test-password" } }), &plain);
    let rendered: Value = serde_norway::from_str(&std::fs::read_to_string(&config).expect("read")).expect("YAML");
    assert!(rendered.get("clusters").is_none(), "{rendered}");
    assert_eq!(std::fs::read_to_string(plain.join("config/cluster-files")).expect("cluster-files"), "");

    // A name that cannot name a folder stops rendering, naming the property; pre-start refuses a forged line.
    for name in ["../etc", "Gpu", ""] {
        let properties = json!({ "auth": { "password": "a-long-test-password" },
                                 "clusters": [{ "name": name, "kubeconfig": kubeconfig }] });
        let rendered = render("caas-broker", &json!({ "properties": properties }), &dir.join("bad"));
        let stderr = text(&rendered.stderr);
        assert!(!rendered.status.success() && stderr.contains("clusters: name"), "name {name:?}: {stderr}");
    }
    std::fs::write(out.join("config/cluster-files"), "x/../../kubeconfig YQ==\n").expect("forge a line");
    let forged = Command::new("bash").arg(&pre_start).output().expect("run pre-start");
    assert!(!forged.status.success() && text(&forged.stderr).contains("not a cluster's file"), "{forged:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn wrong_properties_are_refused_by_the_broker_naming_the_key() {
    let dir = scratch("wrong");
    let cases = [
        (json!({ "port": "eighty" }), "listen"),
        (json!({ "kubernetes": { "namespace_prefix": "Tenant_" } }), "kubernetes.namespace_prefix"),
        (json!({ "kubernetes": { "identity_namespace": "Not_Valid" } }), "kubernetes.identity_namespace"),
        (json!({ "log": { "format": "xml" } }), "log.format"),
        (json!({ "limits": { "sync_timeout_seconds": 600 } }), "limits.sync_timeout_seconds"),
        (json!({ "tls": { "certificate": "only half of the pair" } }), "tls.key"),
    ];
    for (i, (mut properties, key)) in cases.into_iter().enumerate() {
        properties["auth"] = json!({ "password": "a-long-test-password" });
        let config = render_broker_config(properties.clone(), &dir.join(format!("case{i}")));
        match start_broker(&config, "http", key == "listen") {
            Outcome::Exited(code, stderr) => {
                assert_eq!(code, Some(EX_CONFIG), "{properties}: expected exit code 78, got {code:?}:\n{stderr}");
                assert!(
                    stderr.contains("invalid configuration") && stderr.contains(key),
                    "{properties}: the refusal should name {key}:\n{stderr}"
                );
            }
            Outcome::Serving { .. } => panic!("{properties}: the broker accepted a wrong property"),
        }
    }
    // A required property without a value stops rendering, as on the director.
    let rendered = render("caas-broker", &json!({ "properties": {} }), &dir.join("no-password"));
    assert!(!rendered.status.success());
    assert!(text(&rendered.stderr).contains("Can't find property 'auth.password'"), "{}", text(&rendered.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

// --- the errands ----------------------------------------------------------------------------------------------

/// The variables an errand's rendered env file sets, as bash sees them after sourcing it.
fn sourced(env_file: &Path, names: &[&str]) -> String {
    let script = format!("set -eu; source '{}'; declare -p {}", env_file.display(), names.join(" "));
    text(&run(Command::new("bash").args(["-c", &script]), "source the errand's env").stdout)
}

#[test]
fn errands_render_from_the_broker_link_and_their_properties() {
    let dir = scratch("errands");
    let registrar = dir.join("registrar");
    let rendered = render(
        "broker-registrar",
        &json!({
            "properties": {
                "cf": { "api_url": "https://api.sys.example.com", "username": "admin", "password": "it's a secret" },
                "broker": { "organizations": ["org-a", "org b"] },
            },
            "links": { "caas-broker": {
                "job": "caas-broker",
                "address": "q-s0.caas-broker.default.caas-broker.bosh",
                "properties": { "port": 8443, "auth": { "password": "a-long-test-password" },
                                "tls": { "certificate": "PEM", "private_key": "never shared" } },
            } },
        }),
        &registrar,
    );
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    run(Command::new("bash").arg("-n").arg(registrar.join("bin/run")), "bash -n broker-registrar");
    let env = registrar.join("config/registrar.env");
    let vars = sourced(
        &env,
        &[
            "BROKER_URL",
            "BROKER_USERNAME",
            "BROKER_PASSWORD",
            "CF_AUTH_SECRET",
            "BROKER_SERVICES",
            "BROKER_ORGANIZATIONS",
        ],
    );
    for expected in [
        r#"BROKER_URL="https://q-s0.caas-broker.default.caas-broker.bosh:8443""#,
        r#"BROKER_USERNAME="broker""#,
        r#"BROKER_PASSWORD="a-long-test-password""#,
        r#"CF_AUTH_SECRET="it's a secret""#,
        r#"BROKER_SERVICES=([0]="caas" [1]="streaming-session" [2]="container-app")"#,
        r#"BROKER_ORGANIZATIONS=([0]="org-a" [1]="org b")"#,
    ] {
        assert!(vars.contains(expected), "{expected} not in:\n{vars}");
    }
    assert!(!std::fs::read_to_string(&env).expect("env").contains("never shared"), "the TLS key must not be linked");

    let deregistrar = dir.join("deregistrar");
    let rendered = render(
        "broker-deregistrar",
        &json!({ "properties": {
            "cf": { "api_url": "https://api.sys.example.com", "client_id": "registrar", "client_secret": "s3cret" },
            "broker": { "purge": true },
        } }),
        &deregistrar,
    );
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    run(Command::new("bash").arg("-n").arg(deregistrar.join("bin/run")), "bash -n broker-deregistrar");
    let vars = sourced(
        &deregistrar.join("config/deregistrar.env"),
        &["CF_AUTH_CLIENT_CREDENTIALS", "CF_AUTH_ID", "BROKER_PURGE"],
    );
    for expected in [r#"CF_AUTH_CLIENT_CREDENTIALS="true""#, r#"CF_AUTH_ID="registrar""#, r#"BROKER_PURGE="true""#] {
        assert!(vars.contains(expected), "{expected} not in:\n{vars}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
