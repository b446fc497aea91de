//! The Helm chart in `manifests/helm/caas-broker` renders what `manifests/` holds and installs on a real control plane.
//!
//! helm is built from its Go module by `manifests/helm/helm.sh` on first use (cached by version). The chart must lint
//! cleanly; with default values it must render the manifests' objects (same names for the release `caas-broker`, the
//! identity namespace, the same ClusterRole and Role rules, both tenant guard policies, two replicas, the probes) with
//! configuration the broker itself accepts (the rendered environment goes through `caas-broker config check`); it must
//! apply (server-side dry run, then a real install into a fresh namespace under Pod Security `restricted`) with the
//! pods Ready, keep its generated password on upgrade, and leave nothing behind on uninstall; values must show in the
//! render. A list of several clusters must render into the broker's configuration file, with each other cluster's
//! kubeconfig Secret mounted where that file says, and a list the broker would refuse must stop the render.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::cluster::{cluster, eventually, repo_root};

const CHART: &str = "manifests/helm/caas-broker";
const DEV_PASSWORD: &str = "broker-dev-password";

// --- helm and rendering -----------------------------------------------------------------------------------------------

/// Builds helm once per test process (through the script, which also serialises concurrent builds) and reports how long
/// it took, so a cold run shows the build.
fn helm_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let started = Instant::now();
        // The script's progress and, on failure, the tail of the build log and its path go straight to the output.
        let out = helm_command()
            .arg("--build-only")
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run manifests/helm/helm.sh");
        assert!(out.status.success(), "helm.sh --build-only failed: see its message above");
        let binary = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(binary.is_file(), "helm.sh --build-only printed {binary:?}, which is not a file");
        eprintln!("helm ready after {:.1?}: {}", started.elapsed(), binary.display());
    });
}

/// `manifests/helm/helm.sh` with helm's own state (repositories, cache) kept under the target folder.
fn helm_command() -> Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("manifests/helm/helm.sh"))
        .current_dir(repo_root())
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    command
}

/// Runs helm with `args`, returning (success, stdout, stderr).
fn helm(args: &[&str]) -> (bool, String, String) {
    helm_built();
    let out = helm_command().args(args).output().expect("run manifests/helm/helm.sh");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// `helm template` of the chart as release `release` in `namespace`, with `--set` values; the rendered YAML.
fn render(release: &str, namespace: &str, sets: &[&str]) -> String {
    let mut args = vec!["template", release, CHART, "--namespace", namespace];
    for set in sets {
        args.extend(["--set", set]);
    }
    let (ok, out, err) = helm(&args);
    assert!(ok, "helm {args:?} failed:\n{err}");
    out
}

/// The documents of a YAML stream, as JSON values (empty documents left out).
fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|document| serde::Deserialize::deserialize(document).expect("a YAML document"))
        .filter(|document: &Value| !document.is_null())
        .collect()
}

fn manifests(files: &[&str]) -> Vec<Value> {
    files
        .iter()
        .flat_map(|file| {
            let path = repo_root().join("manifests").join(file);
            documents(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
        })
        .collect()
}

/// The one object of `kind` among `objects`.
fn only<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind}, found {}", found.len());
    found[0]
}

/// The one object of `kind` named `name` among `objects`.
fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind && o["metadata"]["name"] == name).collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} {name}, found {}", found.len());
    found[0]
}

/// The tenant guard's matchCondition: which ServiceAccounts count as tenant credentials.
fn guard_condition(objects: &[Value], policy: &str) -> String {
    let conditions = &named(objects, "ValidatingAdmissionPolicy", policy)["spec"]["matchConditions"];
    conditions[0]["expression"].as_str().expect("a matchCondition expression").to_owned()
}

fn kinds(objects: &[Value]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for object in objects {
        *kinds.entry(object["kind"].as_str().expect("kind").to_owned()).or_insert(0) += 1;
    }
    kinds
}

/// (kind, namespace, name) of every object.
fn identities(objects: &[Value]) -> BTreeSet<(String, String, String)> {
    objects
        .iter()
        .map(|o| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&o["kind"]), text(&o["metadata"]["namespace"]), text(&o["metadata"]["name"]))
        })
        .collect()
}

fn broker_container(deployment: &Value) -> &Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().expect("containers");
    containers.iter().find(|c| c["name"] == "broker").expect("a container named broker")
}

/// The container's literal environment variables.
fn literal_env(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?.to_owned(), e["value"].as_str()?.to_owned())))
        .collect()
}

fn decoded(secret: &Value, key: &str) -> String {
    let data = secret["data"][key].as_str().unwrap_or_else(|| panic!("Secret has no data.{key}: {secret}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).expect("base64 in Secret data");
    String::from_utf8(bytes).expect("UTF-8 Secret value")
}

/// The environment the broker container would start with: literal values, and Secret references resolved against the
/// rendered Secret (or `fallback` for a Secret the chart did not render). Panics on any other kind of reference.
fn container_env(objects: &[Value], fallback: &BTreeMap<&str, &str>) -> Vec<(String, String)> {
    let container = broker_container(only(objects, "Deployment"));
    let secrets: Vec<&Value> = objects.iter().filter(|o| o["kind"] == "Secret").collect();
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let name = e["name"].as_str().expect("env name").to_owned();
            if let Some(value) = e["value"].as_str() {
                return (name, value.to_owned());
            }
            let reference = &e["valueFrom"]["secretKeyRef"];
            let (secret, key) = (reference["name"].as_str(), reference["key"].as_str().expect("secretKeyRef key"));
            let value = match secrets.iter().find(|s| s["metadata"]["name"].as_str() == secret) {
                Some(rendered) => decoded(rendered, key),
                None => fallback.get(key).unwrap_or_else(|| panic!("{name} refers to {e}, not rendered")).to_string(),
            };
            (name, value)
        })
        .collect()
}

/// Runs the broker's own configuration check (`caas-broker config check`) with exactly `env`: the chart's
/// environment variables must name real keys (every section denies unknown fields) with valid values.
fn broker_config_check(env: &[(String, String)]) -> (bool, String) {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("helm-empty-config-{}.yaml", std::process::id()));
    std::fs::write(&file, "{}\n").expect("write an empty configuration file");
    let out = Command::new(env!("CARGO_BIN_EXE_caas-broker"))
        .args(["config", "check"])
        .arg(&file)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run caas-broker config check");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && text.contains("OK"), text)
}

// --- (a) lint ---------------------------------------------------------------------------------------------------------

#[test]
fn chart_lints_cleanly() {
    let (ok, out, err) = helm(&["lint", "--strict", CHART]);
    assert!(ok, "helm lint --strict failed:\n{out}\n{err}");
    assert!(out.contains("1 chart(s) linted, 0 chart(s) failed"), "unexpected lint summary:\n{out}");
    assert!(!out.contains("[WARNING]") && !out.contains("[ERROR]"), "lint found problems:\n{out}");

    // With the other branches of the templates taken too.
    let (ok, out, err) = helm(&[
        "lint",
        "--strict",
        CHART,
        "--set",
        "auth.existingSecret=my-credentials,tenantGuard.enabled=false,podDisruptionBudget.enabled=false",
        "--set",
        "networkPolicy.enabled=false,topologySpread=false,log.level=debug,kubernetes.publicServer=https://k.example",
        "--set",
        "identityNamespace.create=false,kubernetes.identityNamespace=my-identities",
    ]);
    assert!(ok && out.contains("0 chart(s) failed"), "helm lint with other values failed:\n{out}\n{err}");
}

// --- (b) default render ----------------------------------------------------------------------------------------------

#[test]
fn default_render_is_the_manifests() {
    let rendered = documents(&render("caas-broker", "caas-broker-system", &[]));
    let plain = manifests(&["namespace.yaml", "rbac.yaml", "deployment.yaml", "tenant-guard.yaml"]);

    // The same objects under the same names (release "caas-broker" in "caas-broker-system"), plus the credentials Secret
    // that manifests/deployment.yaml asks the operator to create by hand, less the broker's own namespace, which helm
    // installs into rather than makes (the identity namespace it does make).
    let mut expected = identities(&plain);
    assert!(expected.remove(&("Namespace".into(), String::new(), "caas-broker-system".into())));
    expected.insert(("Secret".into(), "caas-broker-system".into(), "caas-broker-credentials".into()));
    assert_eq!(identities(&rendered), expected, "rendered objects differ from manifests/");
    let expected_kinds: BTreeMap<String, usize> = [
        ("ClusterRole", 2),
        ("ClusterRoleBinding", 1),
        ("Deployment", 1),
        ("Namespace", 1),
        ("NetworkPolicy", 1),
        ("PodDisruptionBudget", 1),
        ("Role", 2),
        ("RoleBinding", 2),
        ("Secret", 1),
        ("Service", 1),
        ("ServiceAccount", 1),
        ("ValidatingAdmissionPolicy", 6),
        ("ValidatingAdmissionPolicyBinding", 6),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(kinds(&rendered), expected_kinds);

    // RBAC: identical rules, bound to the release's ServiceAccount.
    for (kind, name) in [
        ("ClusterRole", "caas-broker"),
        ("ClusterRole", "caas-broker-dashboard-watch"),
        ("Role", "caas-broker-records"),
        ("Role", "caas-broker-identities"),
    ] {
        let plain_rules = &named(&plain, kind, name)["rules"];
        assert!(plain_rules.as_array().is_some_and(|r| !r.is_empty()), "no rules parsed for {kind} {name}");
        assert_eq!(&named(&rendered, kind, name)["rules"], plain_rules, "{kind} {name} rules differ");
    }
    for (kind, name) in [
        ("ClusterRoleBinding", "caas-broker"),
        ("RoleBinding", "caas-broker-records"),
        ("RoleBinding", "caas-broker-identities"),
    ] {
        let (binding, plain_binding) = (named(&rendered, kind, name), named(&plain, kind, name));
        assert_eq!(binding["subjects"], plain_binding["subjects"], "{kind} {name} subjects");
        assert_eq!(binding["roleRef"], plain_binding["roleRef"], "{kind} {name} roleRef");
    }

    // The identity namespace carries the manifests' labels (Pod Security "restricted"), but for managed-by: helm sets
    // it to "Helm" on everything it installs, whatever the template says (see templates/identity-namespace.yaml).
    let identity_labels = &named(&rendered, "Namespace", "caas-broker-identities")["metadata"]["labels"];
    let plain_labels = named(&plain, "Namespace", "caas-broker-identities")["metadata"]["labels"].as_object();
    for (key, value) in plain_labels.expect("labels of the identity namespace in manifests/namespace.yaml") {
        if key != "app.kubernetes.io/managed-by" {
            assert_eq!(&identity_labels[key], value, "label {key} of the identity namespace");
        }
    }
    assert_eq!(identity_labels["app.kubernetes.io/managed-by"], "Helm");

    // The Deployment: replicas, probes, resources, security, the credentials Secret the manifests name.
    let (deployment, plain_deployment) = (only(&rendered, "Deployment"), only(&plain, "Deployment"));
    assert_eq!(deployment["spec"]["replicas"], 2);
    let (broker, plain_broker) = (broker_container(deployment), broker_container(plain_deployment));
    assert_eq!(broker["readinessProbe"]["httpGet"], json!({ "path": "/readyz", "port": "http" }));
    assert_eq!(broker["livenessProbe"]["httpGet"], json!({ "path": "/healthz", "port": "http" }));
    for field in ["readinessProbe", "livenessProbe", "resources", "securityContext", "image", "args"] {
        assert_eq!(broker[field], plain_broker[field], "container {field} differs from manifests/deployment.yaml");
    }
    assert_eq!(broker["ports"][0]["containerPort"], 8080);
    assert_eq!(broker["ports"].as_array().map(Vec::len), Some(1), "no dashboard port unless dashboard.baseUrl is set");
    let pod = &deployment["spec"]["template"]["spec"];
    let plain_pod = &plain_deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"], plain_pod["securityContext"]);
    assert_eq!(pod["serviceAccountName"], "caas-broker");
    assert_eq!(pod["topologySpreadConstraints"][0]["topologyKey"], "kubernetes.io/hostname");
    let secret_refs: BTreeSet<String> = broker["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(secret_refs, BTreeSet::from(["caas-broker-credentials".to_owned()]));
    let env = literal_env(broker);
    assert_eq!(env.get("CAAS_BROKER__KUBERNETES__BROKER_NAMESPACE").map(String::as_str), Some("caas-broker-system"));
    let identity_namespace = env.get("CAAS_BROKER__KUBERNETES__IDENTITY_NAMESPACE").map(String::as_str);
    assert_eq!(identity_namespace, Some("caas-broker-identities"), "the identity namespace is always passed");
    let watch_role = env.get("CAAS_BROKER__KUBERNETES__DASHBOARD_WATCH_ROLE").map(String::as_str);
    assert_eq!(watch_role, Some("caas-broker-dashboard-watch"), "the dashboard's watch role is always passed");
    assert_eq!(env.get("CAAS_BROKER__LISTEN").map(String::as_str), Some("0.0.0.0:8080"));
    assert!(!env.contains_key("CAAS_BROKER__DASHBOARD__LISTEN"), "the dashboard stays on the pod's loopback: {env:?}");
    assert_eq!(env.get("CAAS_BROKER__LOG__FORMAT").map(String::as_str), Some("json"));
    assert!(!env.contains_key("CAAS_BROKER__DASHBOARD__BASE_URL"), "no dashboard unless asked: {env:?}");

    // A generated password (none given): long, and not the development one.
    let password = decoded(only(&rendered, "Secret"), "password");
    assert_eq!(password.len(), 32, "generated password {password:?}");
    assert_eq!(decoded(only(&rendered, "Secret"), "username"), "broker");

    // Service, PodDisruptionBudget, NetworkPolicy, tenant guard: the manifests' specs (selectors aside: the chart's
    // also carry the release, so that two releases do not select each other's pods).
    let service = only(&rendered, "Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(service["spec"]["ports"].as_array().map(Vec::len), Some(1), "no dashboard port unless it is served");
    assert_eq!(only(&rendered, "PodDisruptionBudget")["spec"]["minAvailable"], 1);
    let (policy, plain_policy) = (only(&rendered, "NetworkPolicy"), only(&plain, "NetworkPolicy"));
    for field in ["policyTypes", "ingress", "egress"] {
        assert_eq!(policy["spec"][field], plain_policy["spec"][field], "NetworkPolicy {field}");
    }
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(
        selector,
        &json!({ "app.kubernetes.io/name": "caas-broker", "app.kubernetes.io/instance": "caas-broker" })
    );
    assert_eq!(&service["spec"]["selector"], selector, "the Service selects the broker pods");
    let budget = &only(&rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"];
    assert_eq!(budget, selector, "the PodDisruptionBudget selects the broker pods");
    assert_eq!(&policy["spec"]["podSelector"]["matchLabels"], selector, "the NetworkPolicy selects the broker pods");
    assert_eq!(&deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"], "caas-broker");
    for kind in ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] {
        for suffix in caas_broker::lifecycle::tenant_guard::POLICY_SUFFIXES {
            let name = format!("caas-broker-{suffix}");
            assert_eq!(named(&rendered, kind, &name)["spec"], named(&plain, kind, &name)["spec"], "{kind} {name} spec");
            let version = &named(&rendered, kind, &name)["metadata"]["labels"]["caas-broker.io/guard-version"];
            assert_eq!(version, caas_broker::lifecycle::tenant_guard::GUARD_VERSION, "{kind} {name} guard version");
        }
    }
    // The broker is told the guard's name, and requires it.
    assert_eq!(env.get("CAAS_BROKER__POLICY__TENANT_GUARD").map(String::as_str), Some("caas-broker"));
    assert_eq!(env.get("CAAS_BROKER__POLICY__REQUIRE_TENANT_GUARD").map(String::as_str), Some("true"));

    // The broker accepts the configuration the chart gives it.
    let (ok, text) = broker_config_check(&container_env(&rendered, &BTreeMap::new()));
    assert!(ok, "caas-broker config check refused the chart's environment: {text}");
}

#[test]
fn render_follows_release_name_and_namespace() {
    let yaml = render("helm-x", "elsewhere", &[]);
    assert!(!yaml.contains("caas-broker-system"), "the render hard-codes the manifests' namespace:\n{yaml}");
    let objects = documents(&yaml);
    // The identity namespace follows the release too, so that two releases never share (or fight over) it.
    let identities_of_release = "helm-x-caas-broker-identities";
    for object in &objects {
        let name = object["metadata"]["name"].as_str().expect("name");
        let kind = object["kind"].as_str().expect("kind");
        assert!(name.starts_with("helm-x-caas-broker"), "{kind} {name} does not carry the release name");
        let cluster_scoped = ["ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "Namespace"]
            .iter()
            .any(|k| kind.starts_with(k));
        let namespace = &object["metadata"]["namespace"];
        if cluster_scoped {
            assert!(namespace.is_null(), "{kind} is cluster-scoped but has namespace {namespace}");
        } else if kind.starts_with("Role") && name == identities_of_release {
            assert_eq!(namespace, identities_of_release, "{kind} {name} belongs in the identity namespace");
        } else {
            assert_eq!(namespace, "elsewhere", "{kind} {name}");
        }
    }
    named(&objects, "ClusterRole", "helm-x-caas-broker");
    let watch_role = named(&objects, "ClusterRole", "helm-x-caas-broker-dashboard-watch");
    assert!(watch_role["rules"].as_array().is_some_and(|rules| !rules.is_empty()), "{watch_role}");
    let broker_role = named(&objects, "ClusterRole", "helm-x-caas-broker");
    let binds = broker_role["rules"].as_array().expect("rules").iter().any(|rule| {
        rule["verbs"] == json!(["bind"]) && rule["resourceNames"] == json!(["helm-x-caas-broker-dashboard-watch"])
    });
    assert!(binds, "the broker may bind the release's watch role: {broker_role}");
    let env = literal_env(broker_container(only(&objects, "Deployment")));
    let passed = env.get("CAAS_BROKER__KUBERNETES__DASHBOARD_WATCH_ROLE").map(String::as_str);
    assert_eq!(passed, Some("helm-x-caas-broker-dashboard-watch"), "the broker binds the release's watch role");
    assert_eq!(only(&objects, "ClusterRoleBinding")["subjects"][0]["namespace"], "elsewhere");
    assert_eq!(only(&objects, "Namespace")["metadata"]["name"], identities_of_release);
    assert_eq!(named(&objects, "RoleBinding", identities_of_release)["subjects"][0]["namespace"], "elsewhere");
    let condition = guard_condition(&objects, "helm-x-caas-broker-tenant-guard");
    assert!(condition.contains("'system:serviceaccount:helm-x-caas-broker-identities:'"), "{condition}");
    let env = literal_env(broker_container(only(&objects, "Deployment")));
    assert_eq!(env.get("CAAS_BROKER__KUBERNETES__BROKER_NAMESPACE").map(String::as_str), Some("elsewhere"));
    let identity_namespace = env.get("CAAS_BROKER__KUBERNETES__IDENTITY_NAMESPACE").map(String::as_str);
    assert_eq!(identity_namespace, Some(identities_of_release));
    // The broker checks for the release's own guard.
    assert_eq!(env.get("CAAS_BROKER__POLICY__TENANT_GUARD").map(String::as_str), Some("helm-x-caas-broker"));
}

// --- (d) values -------------------------------------------------------------------------------------------------------

#[test]
fn values_show_in_the_render() {
    let password = "s3cret-from-values-0123";
    let objects = documents(&render(
        "caas-broker",
        "brokers",
        &[
            "replicas=3",
            &format!("auth.password={password}"),
            "dashboard.baseUrl=https://d.example",
            "kubernetes.identityNamespace=broker-identities",
        ],
    ));
    let deployment = only(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    // The identity namespace given: made, the broker's Role there, the guard and the broker told.
    assert_eq!(only(&objects, "Namespace")["metadata"]["name"], "broker-identities");
    for kind in ["Role", "RoleBinding"] {
        assert_eq!(named(&objects, kind, "caas-broker-identities")["metadata"]["namespace"], "broker-identities");
    }
    for policy in ["caas-broker-tenant-guard", "caas-broker-no-token-minting"] {
        let condition = guard_condition(&objects, policy);
        assert!(condition.contains("'system:serviceaccount:broker-identities:'"), "{policy}: {condition}");
    }
    let secret = only(&objects, "Secret");
    assert_eq!(secret["metadata"]["name"], "caas-broker-credentials");
    assert_eq!(decoded(secret, "password"), password);
    assert_eq!(decoded(secret, "username"), "broker");
    let env = literal_env(broker_container(deployment));
    assert_eq!(env.get("CAAS_BROKER__DASHBOARD__BASE_URL").map(String::as_str), Some("https://d.example"));
    // With a base URL the dashboard is served from the pod: its listener, container port, Service port and
    // NetworkPolicy port.
    assert_eq!(env.get("CAAS_BROKER__DASHBOARD__LISTEN").map(String::as_str), Some("0.0.0.0:8081"));
    let ports = &broker_container(deployment)["ports"];
    assert_eq!(ports[1], json!({ "name": "dashboard", "containerPort": 8081, "protocol": "TCP" }));
    let service = only(&objects, "Service");
    assert_eq!(
        service["spec"]["ports"][1],
        json!({ "name": "dashboard", "port": 8081, "targetPort": "dashboard", "protocol": "TCP" })
    );
    let allowed = &only(&objects, "NetworkPolicy")["spec"]["ingress"][0]["ports"];
    assert_eq!(allowed[1], json!({ "port": 8081, "protocol": "TCP" }));
    let identity_namespace = env.get("CAAS_BROKER__KUBERNETES__IDENTITY_NAMESPACE").map(String::as_str);
    assert_eq!(identity_namespace, Some("broker-identities"));
    let resolved = container_env(&objects, &BTreeMap::new());
    assert!(resolved.contains(&("CAAS_BROKER__AUTH__PASSWORD".into(), password.into())), "{resolved:?}");
    let (ok, text) = broker_config_check(&resolved);
    assert!(ok, "caas-broker config check refused: {text}");

    // Every optional setting becomes its CAAS_BROKER__ variable, and the broker accepts them all.
    let objects = documents(&render(
        "caas-broker",
        "brokers",
        &[
            "kubernetes.namespacePrefix=tenant-",
            "kubernetes.publicServer=https://api.example:6443",
            "workloads.sessionImage=registry.example/session:2",
            "workloads.imagePullPolicy=IfNotPresent",
            "workloads.nodeSelector[0]=pool=tenants",
            "workloads.nodeSelector[1]=type=real",
            "workloads.tolerations[0]=caas.dev/pool=tenants:NoSchedule",
            "workloads.tolerations[1]=gpu",
            "log.format=human,log.level=debug",
            "policy.oneInstancePerOrganization=true",
            "auth.existingSecret=platform-credentials",
            "tenantGuard.enabled=false",
            "tenantGuard.name=operators-guard",
            "tenantGuard.required=false",
            "ingress.domain=apps.example.com",
            "identityNamespace.create=false",
        ],
    ));
    let env = literal_env(broker_container(only(&objects, "Deployment")));
    for (name, value) in [
        ("CAAS_BROKER__KUBERNETES__NAMESPACE_PREFIX", "tenant-"),
        ("CAAS_BROKER__KUBERNETES__PUBLIC_SERVER", "https://api.example:6443"),
        ("CAAS_BROKER__WORKLOADS__SESSION_IMAGE", "registry.example/session:2"),
        ("CAAS_BROKER__WORKLOADS__IMAGE_PULL_POLICY", "IfNotPresent"),
        ("CAAS_BROKER__WORKLOADS__NODE_SELECTOR", "pool=tenants,type=real"),
        ("CAAS_BROKER__WORKLOADS__TOLERATIONS", "caas.dev/pool=tenants:NoSchedule,gpu"),
        ("CAAS_BROKER__LOG__FORMAT", "human"),
        ("CAAS_BROKER__LOG__LEVEL", "debug"),
        ("CAAS_BROKER__POLICY__ONE_INSTANCE_PER_ORGANIZATION", "true"),
        ("CAAS_BROKER__POLICY__TENANT_GUARD", "operators-guard"),
        ("CAAS_BROKER__POLICY__REQUIRE_TENANT_GUARD", "false"),
        ("CAAS_BROKER__INGRESS__DOMAIN", "apps.example.com"),
    ] {
        assert_eq!(env.get(name).map(String::as_str), Some(value), "{name} in {env:?}");
    }
    // An existing Secret: the chart makes none and refers to it; no tenant guard when disabled; an identity namespace
    // the operator makes: no Namespace, but the broker's Role in it all the same.
    assert!(!objects.iter().any(|o| o["kind"] == "Secret"), "a Secret was rendered despite auth.existingSecret");
    assert!(!objects.iter().any(|o| o["kind"] == "Namespace"), "a Namespace was rendered despite create=false");
    assert_eq!(named(&objects, "Role", "caas-broker-identities")["metadata"]["namespace"], "caas-broker-identities");
    assert!(!objects.iter().any(|o| o["kind"].as_str().is_some_and(|k| k.starts_with("ValidatingAdmissionPolicy"))));
    let refs: BTreeSet<&str> = broker_container(only(&objects, "Deployment"))["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str())
        .collect();
    assert_eq!(refs, BTreeSet::from(["platform-credentials"]));
    let fallback = BTreeMap::from([("username", "platform"), ("password", "platform-password")]);
    let (ok, text) = broker_config_check(&container_env(&objects, &fallback));
    assert!(ok, "caas-broker config check refused: {text}");

    // The check is not a formality: a misspelt key is refused by the broker, so the chart's names are the real ones.
    let objects = documents(&render(
        "caas-broker",
        "brokers",
        &["extraEnv[0].name=CAAS_BROKER__DASHBOARD__BASEURL,extraEnv[0].value=x"],
    ));
    let (ok, text) = broker_config_check(&container_env(&objects, &BTreeMap::new()));
    assert!(!ok && text.contains("baseurl"), "a misspelt configuration key was accepted: {text}");

    // Values the broker would refuse stop the render with a message naming them.
    for (set, key) in [
        ("auth.password=short", "auth.password"),
        (&format!("auth.password={DEV_PASSWORD}") as &str, "auth.password"),
        ("log.format=xml", "log.format"),
        ("kubernetes.namespacePrefix=Not_Valid", "kubernetes.namespacePrefix"),
        ("kubernetes.publicServer=http://plain", "kubernetes.publicServer"),
        ("kubernetes.identityNamespace=Not_Valid", "kubernetes.identityNamespace"),
        // The release namespace ("default" here): the guard would take the broker's own ServiceAccount for a tenant's.
        ("kubernetes.identityNamespace=default", "kubernetes.identityNamespace"),
    ] {
        let (ok, _, err) = helm(&["template", "caas-broker", CHART, "--set", set]);
        assert!(!ok && err.contains(key), "--set {set} should fail naming {key}: {err}");
    }
}

// --- (e) several clusters ---------------------------------------------------------------------------------------------

/// Two clusters as docs/operations.md ("Several clusters") sets them up: the home (the cluster the chart is installed
/// on) and one reached through a kubeconfig Secret, with its own public apiserver and CA.
const TWO_CLUSTERS: &str = r#"
clusters:
  - name: home
    home: true
    labels: { region: kr-central }
  - name: gpu-east
    kubeconfigSecret: gpu-east-kubeconfig
    context: admin@gpu-east
    labels: { region: kr-east, gpu: true }
    weight: 2
    cordoned: false
    publicServer: https://gpu-east.example.com:6443
    caSecret: gpu-east-ca
"#;

/// `helm template` of the chart as release "caas-broker" in "brokers" with `values` as a values file, then `sets`.
fn render_with_values(name: &str, values: &str, sets: &[&str]) -> (bool, String, String) {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("helm-values-{name}-{}.yaml", std::process::id()));
    std::fs::write(&file, values).expect("write a values file");
    let mut args = vec!["template", "caas-broker", CHART, "--namespace", "brokers", "-f", file.to_str().expect("path")];
    for set in sets {
        args.extend(["--set", set]);
    }
    let result = helm(&args);
    let _ = std::fs::remove_file(&file);
    result
}

#[test]
fn several_clusters_render_into_the_configuration_file_and_mounts() {
    let (ok, out, err) = render_with_values("two", TWO_CLUSTERS, &[]);
    assert!(ok, "rendering two clusters failed:\n{err}");
    let objects = documents(&out);

    // The list goes into the broker's configuration file, in the broker's keys; label values as strings, a non-home
    // cluster's kubeconfig and CA at the paths their Secrets are mounted on.
    let config_map = named(&objects, "ConfigMap", "caas-broker-config");
    assert_eq!(config_map["metadata"]["namespace"], "brokers");
    let file: Value = serde_norway::from_str(config_map["data"]["config.yaml"].as_str().expect("data.config.yaml"))
        .expect("the configuration file is YAML");
    let expected = json!({ "clusters": [
        { "name": "home", "home": true, "labels": { "region": "kr-central" } },
        { "name": "gpu-east", "kubeconfig": "/etc/caas-broker/clusters/gpu-east/kubeconfig", "context": "admin@gpu-east",
          "labels": { "region": "kr-east", "gpu": "true" }, "weight": 2, "cordoned": false,
          "public_server": "https://gpu-east.example.com:6443",
          "public_ca_file": "/etc/caas-broker/clusters/gpu-east/ca.crt" },
    ] });
    assert_eq!(file, expected, "the rendered configuration file");

    // The broker reads that file, mounted read-only, and each Secret's key where the file says.
    let deployment = only(&objects, "Deployment");
    let broker = broker_container(deployment);
    let env = literal_env(broker);
    assert_eq!(env.get("CAAS_BROKER_CONFIG").map(String::as_str), Some("/etc/caas-broker/config.yaml"));
    let mounts = broker["volumeMounts"].as_array().expect("volumeMounts");
    assert_eq!(mounts.len(), 2, "the file and one Secret volume (none for the home): {mounts:?}");
    assert_eq!(
        mounts[0],
        json!({ "name": "config", "mountPath": "/etc/caas-broker/config.yaml", "subPath": "config.yaml", "readOnly": true })
    );
    assert_eq!(
        mounts[1],
        json!({ "name": "cluster-gpu-east", "mountPath": "/etc/caas-broker/clusters/gpu-east", "readOnly": true })
    );
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().expect("volumes");
    assert_eq!(volumes[0], json!({ "name": "config", "configMap": { "name": "caas-broker-config" } }));
    let sources = &volumes[1]["projected"]["sources"];
    assert_eq!(volumes[1]["name"], "cluster-gpu-east");
    assert_eq!(
        sources,
        &json!([
            { "secret": { "name": "gpu-east-kubeconfig", "items": [{ "key": "kubeconfig", "path": "kubeconfig" }] } },
            { "secret": { "name": "gpu-east-ca", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
        ])
    );
    for (source, key) in [(0, "kubeconfig"), (1, "public_ca_file")] {
        let mounted = format!(
            "{}/{}",
            mounts[1]["mountPath"].as_str().expect("path"),
            sources[source]["secret"]["items"][0]["path"].as_str().expect("path")
        );
        assert_eq!(file["clusters"][1][key], mounted.as_str(), "{key} is where its Secret is mounted");
    }
    // A cordon (or any other change to the list) rolls the pods, which read the file when they start.
    let annotation = |objects: &[Value]| {
        only(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/clusters"].clone()
    };
    let (ok, cordoned, err) = render_with_values("cordoned", TWO_CLUSTERS, &["clusters[1].cordoned=true"]);
    assert!(ok, "{err}");
    let cordoned = documents(&cordoned);
    assert!(annotation(&objects).is_string(), "no checksum/clusters annotation");
    assert_ne!(annotation(&objects), annotation(&cordoned), "a cordon must roll the broker");
    let (ok, out, err) = helm(&["lint", "--strict", CHART, "--set", "clusters[0].name=home,clusters[0].home=true"]);
    assert!(ok && out.contains("0 chart(s) failed"), "helm lint with clusters failed:\n{out}\n{err}");

    // Without clusters: no file, no mounts, as before (default_render_is_the_manifests checks the whole render).
    let plain = documents(&render("caas-broker", "brokers", &[]));
    assert!(!plain.iter().any(|o| o["kind"] == "ConfigMap"), "a ConfigMap without clusters");
    let broker = broker_container(only(&plain, "Deployment"));
    assert!(broker["volumeMounts"].is_null() && !literal_env(broker).contains_key("CAAS_BROKER_CONFIG"));
}

#[test]
fn a_list_of_clusters_the_broker_would_refuse_stops_the_render() {
    let other = "kubeconfigSecret: east-kubeconfig";
    for (values, says) in [
        (
            format!("clusters:\n- {{ name: a, {other} }}\n- {{ name: b, {other} }}"),
            "exactly one entry must have home: true",
        ),
        (
            "clusters:\n- { name: a, home: true }\n- { name: b, home: true }".into(),
            "exactly one entry must have home: true",
        ),
        (
            "clusters:\n- { name: a, home: true }\n- { name: b }".into(),
            "clusters[1] (b) is not the home: it needs kubeconfigSecret",
        ),
        (
            format!("clusters:\n- {{ name: a, home: true }}\n- {{ name: a, {other} }}"),
            "clusters[1].name \"a\" is used twice",
        ),
        ("clusters:\n- { name: Home, home: true }".into(), "clusters[0].name must be 1 to 40 of [a-z0-9-]"),
        (format!("clusters:\n- {{ name: a, home: true, {other} }}"), "clusters[0] (a) is the home"),
        (
            format!("clusters:\n- {{ name: a, home: true }}\n- {{ name: b, {other}, publicServer: 'http://b' }}"),
            "clusters[1].publicServer must be an https:// URL",
        ),
    ] {
        let (ok, _, err) = render_with_values("bad", &values, &[]);
        assert!(!ok && err.contains(says), "{values}\nshould fail saying {says:?}, got: {err}");
    }
}

// --- (c) the real control plane ---------------------------------------------------------------------------------------

/// A release and its namespace on the test control plane; uninstalled and deleted when dropped (also on failure), with
/// the identity namespace the chart makes.
struct Release {
    name: String,
    namespace: String,
    identity_namespace: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let cluster = cluster();
        let kubeconfig = cluster.kubeconfig.to_str().expect("kubeconfig path");
        let (ok, _, err) =
            helm(&["uninstall", &self.name, "-n", &self.namespace, "--kubeconfig", kubeconfig, "--ignore-not-found"]);
        if !ok {
            eprintln!("could not uninstall release {}: {err}", self.name);
        }
        for namespace in [&self.namespace, &self.identity_namespace] {
            let (ok, _, err) = cluster.kubectl(
                &cluster.kubeconfig,
                &["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"],
            );
            if !ok {
                eprintln!("could not delete namespace {namespace}: {err}");
            }
        }
    }
}

/// Whether `kubectl get` finds the object.
fn exists(args: &[&str]) -> bool {
    let cluster = cluster();
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend(["-o", "name", "--ignore-not-found"]);
    let (ok, out, err) = cluster.kubectl(&cluster.kubeconfig, &full);
    assert!(ok, "kubectl {full:?}: {err}");
    !out.trim().is_empty()
}

fn can_i(namespace: &str, account: &str, args: &[&str]) -> bool {
    let cluster = cluster();
    let user = format!("system:serviceaccount:{namespace}:{account}");
    let mut full = vec!["auth", "can-i", "--as", &user];
    full.extend_from_slice(args);
    let (_, out, err) = cluster.kubectl(&cluster.kubeconfig, &full);
    // "no" exits 1 too: insist on an answer, so that an error cannot pass for a refusal.
    match out.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl {full:?} gave no answer: {other} {err}"),
    }
}

async fn ready_pods(client: &kube::Client, namespace: &str, release: &str) -> Vec<Pod> {
    let selector = format!("app.kubernetes.io/name=caas-broker,app.kubernetes.io/instance={release}");
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let list = pods.list(&ListParams::default().labels(&selector)).await.expect("list pods");
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .collect()
}

#[tokio::test]
async fn installs_on_the_control_plane_and_uninstalls_cleanly() {
    let cluster = cluster();
    helm_built();
    let client = cluster.admin().await;
    let kubeconfig = cluster.kubeconfig.to_str().expect("kubeconfig path").to_owned();
    let suffix = format!("{:08x}", rand::random::<u32>());
    let name = format!("helm-test-{suffix}");
    let fullname = format!("{name}-caas-broker");
    // The default identity namespace follows the release: this one's own, beside the development broker's.
    let release = Release {
        name,
        namespace: format!("caas-helm-{suffix}"),
        identity_namespace: format!("{fullname}-identities"),
    };
    let (name, namespace) = (release.name.as_str(), release.namespace.as_str());
    let identity_namespace = release.identity_namespace.as_str();

    // The broker's namespace as manifests/namespace.yaml makes it: Pod Security "restricted" enforced, so the pods are
    // admitted only if the chart's security contexts are right.
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": namespace, "labels": {
        "app.kubernetes.io/name": "caas-broker", "pod-security.kubernetes.io/enforce": "restricted" } } }))
    .expect("namespace literal");
    Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.expect("create the namespace");

    // Server-side dry run of the render: every object is admitted, none is created. A dry run does not make the
    // identity namespace, so the objects that go into it are tried in the release namespace instead.
    let yaml = render(name, namespace, &[]);
    let objects: Vec<Value> = documents(&yaml)
        .into_iter()
        .map(|mut object| {
            if object["metadata"]["namespace"] == identity_namespace {
                object["metadata"]["namespace"] = json!(namespace);
            }
            object
        })
        .collect();
    let stream: Vec<String> = objects.iter().map(Value::to_string).collect();
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("helm-render-{suffix}.yaml"));
    std::fs::write(&file, stream.join("\n---\n")).expect("write the render");
    let (ok, out, err) =
        cluster.kubectl(&cluster.kubeconfig, &["apply", "--dry-run=server", "-f", file.to_str().expect("path")]);
    assert!(ok, "server-side dry run of the render failed:\n{err}");
    let dry_run_lines = out.lines().filter(|l| l.ends_with("(server dry run)")).count();
    assert_eq!(dry_run_lines, objects.len(), "not every object went through the dry run:\n{out}");
    assert!(!exists(&["clusterrole", &fullname]), "the dry run created the ClusterRole");
    assert!(!exists(&["namespace", identity_namespace]), "the dry run created the identity namespace");
    let _ = std::fs::remove_file(&file);

    // The real install; helm waits for the Deployment, then the cluster says so too.
    let started = Instant::now();
    let (ok, out, err) =
        helm(&["install", name, CHART, "-n", namespace, "--kubeconfig", &kubeconfig, "--wait", "--timeout", "180s"]);
    assert!(ok, "helm install failed:\n{out}\n{err}");
    eprintln!("helm install --wait took {:.1?}", started.elapsed());
    assert!(out.contains("STATUS: deployed"), "helm install output:\n{out}");
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace);
    let deployment = deployments.get(&fullname).await.expect("the Deployment exists");
    assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let pods = eventually(Duration::from_secs(60), "two Ready broker pods", || async {
        let pods = ready_pods(&client, namespace, name).await;
        (pods.len() == 2).then_some(pods)
    })
    .await;
    for pod in &pods {
        let spec = pod.spec.as_ref().expect("pod spec");
        assert!(spec.node_name.as_deref().is_some_and(|n| n.starts_with("kwok-node-")), "pod not on a node: {spec:?}");
        assert_eq!(spec.service_account_name.as_deref(), Some(fullname.as_str()));
        let env = spec.containers[0].env.as_ref().expect("env");
        let broker_ns = env.iter().find(|e| e.name == "CAAS_BROKER__KUBERNETES__BROKER_NAMESPACE").expect("env var");
        assert_eq!(broker_ns.value.as_deref(), Some(namespace));
        let identities = env.iter().find(|e| e.name == "CAAS_BROKER__KUBERNETES__IDENTITY_NAMESPACE").expect("env var");
        assert_eq!(identities.value.as_deref(), Some(identity_namespace));
    }

    // Every object is there, cluster-scoped ones under the release's name, with the manifests' rules.
    for (kind, object) in [
        ("serviceaccount", fullname.clone()),
        ("service", fullname.clone()),
        ("poddisruptionbudget", fullname.clone()),
        ("networkpolicy", fullname.clone()),
        ("role", format!("{fullname}-records")),
        ("rolebinding", format!("{fullname}-records")),
        ("secret", format!("{fullname}-credentials")),
    ] {
        assert!(exists(&[kind, &object, "-n", namespace]), "{kind} {object} missing in {namespace}");
    }
    let (ok, out, err) = cluster.kubectl(&cluster.kubeconfig, &["get", "clusterrole", &fullname, "-o", "json"]);
    assert!(ok, "get clusterrole {fullname}: {err}");
    let live: Value = serde_json::from_str(&out).expect("clusterrole JSON");
    // The manifests' rules, but for the watch role the broker may bind, which is named after the release.
    let plain_rules = named(&manifests(&["rbac.yaml"]), "ClusterRole", "caas-broker")["rules"].to_string();
    let watch_role = format!("{fullname}-dashboard-watch");
    let expected: Value =
        serde_json::from_str(&plain_rules.replace("\"caas-broker-dashboard-watch\"", &format!("\"{watch_role}\"")))
            .expect("rules");
    assert_eq!(live["rules"], expected, "live ClusterRole rules");
    assert!(exists(&["clusterrole", &watch_role]), "the release's watch role");
    assert!(exists(&["clusterrolebinding", &fullname]));
    let guard = format!("{fullname}-tenant-guard");
    let no_legacy_tokens = format!("{fullname}-no-legacy-tokens");
    let no_token_minting = format!("{fullname}-no-token-minting");
    for policy in [&guard, &no_legacy_tokens, &no_token_minting] {
        assert!(
            exists(&["validatingadmissionpolicy", policy]) && exists(&["validatingadmissionpolicybinding", policy])
        );
    }
    for suffix in caas_broker::lifecycle::tenant_guard::POLICY_SUFFIXES {
        let policy = format!("{fullname}-{suffix}");
        assert!(
            exists(&["validatingadmissionpolicy", &policy]) && exists(&["validatingadmissionpolicybinding", &policy]),
            "the release's {policy}"
        );
    }

    // The identity namespace, under Pod Security "restricted", with the broker's Role and its rules. Its managed-by
    // label is helm's, whatever the chart renders: the day helm leaves it alone, render the manifests' instead.
    let (ok, out, err) = cluster.kubectl(&cluster.kubeconfig, &["get", "namespace", identity_namespace, "-o", "json"]);
    assert!(ok, "get namespace {identity_namespace}: {err}");
    let live: Value = serde_json::from_str(&out).expect("namespace JSON");
    let labels = &live["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted", "{labels}");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm", "{labels}");
    let identities = format!("{fullname}-identities");
    let (ok, out, err) =
        cluster.kubectl(&cluster.kubeconfig, &["get", "role", &identities, "-n", identity_namespace, "-o", "json"]);
    assert!(ok, "get role {identities} -n {identity_namespace}: {err}");
    let live: Value = serde_json::from_str(&out).expect("role JSON");
    let plain = manifests(&["rbac.yaml"]);
    assert_eq!(live["rules"], named(&plain, "Role", "caas-broker-identities")["rules"], "live identities Role rules");
    assert!(exists(&["rolebinding", &identities, "-n", identity_namespace]));

    // The ServiceAccount has what the broker needs and not more.
    assert!(can_i(namespace, &fullname, &["create", "namespaces"]));
    assert!(can_i(namespace, &fullname, &["bind", "clusterroles/admin"]));
    assert!(can_i(namespace, &fullname, &["bind", &format!("clusterroles/{fullname}-dashboard-watch")]));
    assert!(!can_i(namespace, &fullname, &["watch", "pods", "-n", "default"]), "no watch outside tenant namespaces");
    assert!(can_i(namespace, &fullname, &["list", "configmaps", "-n", namespace]));
    assert!(!can_i(namespace, &fullname, &["list", "configmaps", "-n", "default"]));
    assert!(!can_i(namespace, &fullname, &["bind", "clusterroles/cluster-admin"]));
    assert!(!can_i(namespace, &fullname, &["create", "clusterrolebindings"]));
    // ServiceAccounts and their tokens: in the identity namespace only.
    assert!(can_i(namespace, &fullname, &["create", "serviceaccounts", "-n", identity_namespace]));
    assert!(can_i(
        namespace,
        &fullname,
        &["create", "serviceaccounts", "--subresource=token", "-n", identity_namespace]
    ));
    assert!(!can_i(namespace, &fullname, &["create", "serviceaccounts", "-n", "default"]));
    assert!(!can_i(namespace, &fullname, &["create", "serviceaccounts", "--subresource=token", "-n", "default"]));

    // An upgrade keeps the generated password and applies new values.
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let password = |secret: Secret| secret.data.and_then(|mut d| d.remove("password")).map(|b| b.0).expect("password");
    let before = password(secrets.get(&format!("{fullname}-credentials")).await.expect("secret"));
    assert_eq!(before.len(), 32);
    let (ok, out, err) = helm(&[
        "upgrade",
        name,
        CHART,
        "-n",
        namespace,
        "--kubeconfig",
        &kubeconfig,
        "--reuse-values",
        "--set",
        "replicas=3",
        "--wait",
        "--timeout",
        "180s",
    ]);
    assert!(ok, "helm upgrade failed:\n{out}\n{err}");
    let after = password(secrets.get(&format!("{fullname}-credentials")).await.expect("secret"));
    assert_eq!(before, after, "the upgrade changed the generated password");
    eventually(Duration::from_secs(60), "three Ready broker pods", || async {
        (ready_pods(&client, namespace, name).await.len() == 3).then_some(())
    })
    .await;

    // Uninstall removes everything the chart made, cluster-scoped objects included.
    let (ok, out, err) = helm(&["uninstall", name, "-n", namespace, "--kubeconfig", &kubeconfig, "--wait"]);
    assert!(ok, "helm uninstall failed:\n{out}\n{err}");
    for (kind, object) in [
        ("clusterrole", fullname.clone()),
        ("clusterrolebinding", fullname.clone()),
        ("validatingadmissionpolicy", guard.clone()),
        ("validatingadmissionpolicybinding", guard.clone()),
        ("validatingadmissionpolicy", no_legacy_tokens.clone()),
        ("validatingadmissionpolicybinding", no_legacy_tokens.clone()),
    ] {
        assert!(!exists(&[kind, &object]), "{kind} {object} left after uninstall");
    }
    eventually(Duration::from_secs(60), "the identity namespace to go", || async {
        (!exists(&["namespace", identity_namespace])).then_some(())
    })
    .await;
    for kind in
        ["deployment", "service", "serviceaccount", "poddisruptionbudget", "networkpolicy", "role", "rolebinding"]
    {
        let selector = format!("app.kubernetes.io/instance={name}");
        assert!(!exists(&[kind, "-n", namespace, "-l", &selector]), "{kind} left in {namespace} after uninstall");
    }
    assert!(!exists(&["secret", &format!("{fullname}-credentials"), "-n", namespace]), "credentials left");
    let (ok, out, _) =
        cluster.kubectl(&cluster.kubeconfig, &["get", "secrets", "-n", namespace, "-l", "owner=helm", "-o", "name"]);
    assert!(ok && out.trim().is_empty(), "helm release records left: {out}");
    eventually(Duration::from_secs(60), "the broker pods to go", || async {
        let pods = Api::<Pod>::namespaced(client.clone(), namespace);
        let selector = format!("app.kubernetes.io/instance={name}");
        pods.list(&ListParams::default().labels(&selector)).await.ok().filter(|l| l.items.is_empty()).map(|_| ())
    })
    .await;
}
