//! The local control plane as tests see it: started once per test process by `tests/cluster/cluster.sh up`
//! (idempotent, and safe when several test binaries call it at once), then reached with the admin kubeconfig.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, ServiceAccount};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Where the running control plane is: the admin kubeconfig and the kubectl of the same release.
pub struct Cluster {
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The kubectl built from the same Kubernetes release as the apiserver.
    pub kubectl: PathBuf,
    /// Its state folder, when not the script's default.
    pub state_dir: Option<PathBuf>,
}

/// The repository root, so tests find the cluster script wherever cargo runs them from.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Brings the control plane up once per test process and says where it is.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::up(None))
}

/// A second control plane, for tests of several clusters: its state beside the first one's (`cluster-b`), brought up
/// once per test process; [`Cluster::down`] stops it and [`Cluster::up`] starts it again with the same ports.
pub fn second_cluster() -> &'static Cluster {
    static SECOND: OnceLock<Cluster> = OnceLock::new();
    SECOND.get_or_init(|| {
        let cache = cluster().kubeconfig.parent().and_then(Path::parent).expect("the cache folder");
        Cluster::up(Some(&cache.join("cluster-b")))
    })
}

impl Cluster {
    /// Starts the control plane whose state is in `state_dir` (the script's default when `None`; idempotent) and
    /// says where it is.
    pub fn up(state_dir: Option<&Path>) -> Cluster {
        let run = |command: &str| {
            let mut script = Command::new("bash");
            script.arg(repo_root().join("tests/cluster/cluster.sh")).arg(command);
            if let Some(dir) = state_dir {
                script.env("CAAS_CLUSTER_DIR", dir);
            }
            script
        };
        let up = run("up").status().expect("run cluster.sh up");
        assert!(up.success(), "cluster.sh up failed: see the message above");
        let env = run("env").output().expect("run cluster.sh env");
        assert!(env.status.success(), "cluster.sh env failed");
        let env = String::from_utf8(env.stdout).expect("cluster.sh env prints UTF-8");
        let value = |key: &str| {
            env.lines()
                .find_map(|line| line.strip_prefix(&format!("export {key}=")))
                .unwrap_or_else(|| panic!("cluster.sh env does not print {key}"))
                .to_owned()
        };
        let bin_dir = value("PATH").split(':').next().expect("PATH has a first entry").to_owned();
        Cluster {
            kubeconfig: PathBuf::from(value("KUBECONFIG")),
            kubectl: Path::new(&bin_dir).join("kubectl"),
            state_dir: state_dir.map(Path::to_owned),
        }
    }

    /// Starts this control plane again after [`Cluster::down`], with the same state and ports.
    pub fn start_again(&self) {
        let again = Cluster::up(self.state_dir.as_deref());
        assert_eq!(again.kubeconfig, self.kubeconfig, "the same control plane");
    }

    /// Stops this control plane's processes, its state kept (`cluster.sh down`).
    pub fn down(&self) {
        let mut script = Command::new("bash");
        script.arg(repo_root().join("tests/cluster/cluster.sh")).arg("down");
        if let Some(dir) = &self.state_dir {
            script.env("CAAS_CLUSTER_DIR", dir);
        }
        assert!(script.status().expect("run cluster.sh down").success(), "cluster.sh down failed: see above");
    }
}

impl Cluster {
    /// A client with the admin credentials.
    pub async fn admin_config(&self) -> Config {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).expect("read the admin kubeconfig");
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("admin kubeconfig is valid")
    }

    /// A client with the admin credentials.
    pub async fn admin(&self) -> Client {
        Client::try_from(self.admin_config().await).expect("admin client")
    }

    /// Runs the real kubectl with the given kubeconfig, returning (success, stdout, stderr).
    pub fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> (bool, String, String) {
        let out =
            Command::new(&self.kubectl).arg("--kubeconfig").arg(kubeconfig).args(args).output().expect("run kubectl");
        let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
        (out.status.success(), text(out.stdout), text(out.stderr))
    }
}

/// A throwaway namespace for one test, deleted when it goes out of scope (also when the test fails).
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
}

impl TestNamespace {
    /// Creates a namespace with a unique name starting with `prefix`, and waits for its default ServiceAccount, which
    /// the ServiceAccount admission plugin needs before it admits pods.
    pub async fn create(client: &Client, prefix: &str) -> TestNamespace {
        let name = format!("t-{prefix}-{:08x}", rand::random::<u32>());
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "caas-broker.test/throwaway": "true" } }
        }))
        .expect("namespace literal");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the test namespace");
        let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &name);
        eventually(Duration::from_secs(30), "the default ServiceAccount", || async {
            accounts.get_opt("default").await.ok().flatten().map(|_| ())
        })
        .await;
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await; kubectl deletes without waiting for the namespace to finish terminating.
        let cluster = cluster();
        let (ok, _, err) = cluster
            .kubectl(&cluster.kubeconfig, &["delete", "namespace", &self.name, "--wait=false", "--ignore-not-found"]);
        if !ok {
            eprintln!("could not delete test namespace {}: {err}", self.name);
        }
    }
}

/// Polls `probe` until it returns `Some`, or panics after `limit` naming what it waited for.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes a namespace and waits until the namespace controller has removed it.
pub async fn delete_namespace_and_wait(client: &Client, name: &str) {
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.delete(name, &DeleteParams::default()).await.expect("delete namespace");
    eventually(Duration::from_secs(60), "the namespace to disappear", || async {
        match namespaces.get_opt(name).await.expect("get namespace") {
            None => Some(()),
            Some(_) => None,
        }
    })
    .await;
}

/// A volume reserved for one claim (`claim` in `namespace`), for sessions on the simulated nodes, which no
/// provisioner serves: its claim reference keeps concurrent tests from taking each other's volume. It has the
/// cluster's default StorageClass when there is one (the real node's provisioner), since a claim gets that class and
/// binds only to a volume of the same class.
pub async fn reserve_volume(client: &Client, name: &str, namespace: &str, claim: &str) {
    let classes =
        Api::<StorageClass>::all(client.clone()).list(&Default::default()).await.expect("list storage classes");
    let default = classes.items.into_iter().find(|class| {
        class
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
            .map(String::as_str)
            == Some("true")
    });
    let volume: PersistentVolume = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name },
        "spec": { "capacity": { "storage": "10Gi" }, "accessModes": ["ReadWriteOnce"],
                  "storageClassName": default.and_then(|class| class.metadata.name).unwrap_or_default(),
                  "claimRef": { "namespace": namespace, "name": claim },
                  "persistentVolumeReclaimPolicy": "Delete", "hostPath": { "path": format!("/tmp/{name}") } }
    }))
    .expect("pv");
    Api::<PersistentVolume>::all(client.clone()).create(&PostParams::default(), &volume).await.expect("create pv");
}
