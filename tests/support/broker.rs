//! A broker for one test: the real router with its own namespace prefix, driven in-process over the real control
//! plane, and an OSB client that sends what Cloud Foundry sends.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use caas_broker::catalog::Catalog;
use caas_broker::config::Settings;
use caas_broker::k8s::ClusterEndpoint;
use kube::Client;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::cluster::cluster;

/// Ids of the built-in catalog.
pub const CAAS: &str = "df246006-e192-4292-807d-2b0ec6395bdf";
/// Plan micro.
pub const MICRO: &str = "df58fe54-eee6-45f5-98f9-df0e3c12640f";
/// Plan small.
pub const SMALL: &str = "7d749e64-5d0a-4bb1-899c-03fd6ff4547f";
/// Plan medium.
pub const MEDIUM: &str = "c289eefb-9d8c-46de-a684-c03d17301076";

/// The broker under test.
pub struct TestBroker {
    pub app: Router,
    /// The broker behind `app`, which a dashboard served beside it shares (as the binary's two faces do).
    pub domain: std::sync::Arc<caas_broker::lifecycle::Broker>,
    pub client: Client,
    pub endpoint: ClusterEndpoint,
    pub settings: Settings,
    pub prefix: String,
}

/// An OSB answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestBroker {
    /// A broker with default settings, its own namespace prefix, and `configure` applied.
    pub async fn start(configure: impl FnOnce(&mut Settings)) -> TestBroker {
        TestBroker::start_with_catalog(Catalog::built_in(), configure).await
    }

    /// Like [`TestBroker::start`], serving `catalog`.
    pub async fn start_with_catalog(catalog: Catalog, configure: impl FnOnce(&mut Settings)) -> TestBroker {
        let config = cluster().admin_config().await;
        TestBroker::start_with_config(config, catalog, configure)
    }

    /// A broker that reaches the cluster with `config` (for example the credentials of the broker's ServiceAccount).
    pub fn start_with_config(
        config: kube::Config,
        catalog: Catalog,
        configure: impl FnOnce(&mut Settings),
    ) -> TestBroker {
        let endpoint = ClusterEndpoint::from_config(&config);
        let client = Client::try_from(config).expect("client");
        let mut settings = Settings::load(None).expect("default settings");
        let prefix = format!("t{:05x}-", rand::random::<u32>() & 0xfffff);
        settings.kubernetes.namespace_prefix = prefix.clone();
        settings.dashboard.base_url = Some("https://dashboard.example.test".to_owned());
        configure(&mut settings);
        let domain = caas_broker::server::broker(&settings, catalog, client.clone(), endpoint.clone()).expect("broker");
        let app = caas_broker::server::osb_app(&settings, domain.clone());
        TestBroker { app, domain, client, endpoint, settings, prefix }
    }

    /// Replaces the broker with a new one of the same configuration, as a restart would (only the cluster remains).
    pub fn restart(&mut self) {
        let endpoint = self.endpoint.clone();
        self.domain = caas_broker::server::broker(&self.settings, Catalog::built_in(), self.client.clone(), endpoint)
            .expect("broker");
        self.app = caas_broker::server::osb_app(&self.settings, self.domain.clone());
    }

    /// The namespace the broker uses for an instance id.
    pub fn namespace(&self, instance_id: &str) -> String {
        caas_broker::k8s::names::namespace(&self.prefix, instance_id)
    }

    /// Sends a request with Cloud Foundry's headers and credentials, declaring the newest API version.
    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let request = osb_request(method, uri, body.map(|b| b.to_string()), &[]);
        send(&self.app, request).await
    }

    /// Like [`TestBroker::call`], declaring OSB API `version`.
    pub async fn call_as(&self, version: &str, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let request = osb_request(method, uri, body.map(|b| b.to_string()), &[("x-broker-api-version", version)]);
        send(&self.app, request).await
    }

    /// Sends a raw request as given.
    pub async fn raw(&self, request: Request<Body>) -> Answer {
        send(&self.app, request).await
    }

    /// A sample of the broker's `/metrics`, by the start of its line (the registry is the process's: the brokers of
    /// one test binary share it).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let request = osb_request(Method::GET, "/metrics", None, &[]);
        let text = self.raw(request).await.body.as_str().unwrap_or_default().to_owned();
        super::http::sample(&text, name)
    }

    /// Whether this broker's copy of its records answers, for every kind of record (what `caas_broker_cache_synced`
    /// shows, read from this broker itself: the registry behind `/metrics` is shared by the brokers of one process).
    pub fn records_copy_synced(&self) -> bool {
        self.domain.cache_figures().iter().all(|(_, figures)| figures.synced)
    }

    /// Provisions `instance_id` of the caas service with `plan` and waits until `last_operation` says succeeded.
    pub async fn provision(&self, instance_id: &str, plan: &str, parameters: Value) -> Answer {
        let uri = format!("/v2/service_instances/{instance_id}?accepts_incomplete=true");
        let answer = self.call(Method::PUT, &uri, Some(provision_body(plan, "org-1", parameters))).await;
        assert!(
            answer.status == StatusCode::CREATED || answer.status == StatusCode::ACCEPTED,
            "provision answered {answer:?}"
        );
        if answer.status == StatusCode::ACCEPTED {
            self.wait_for_state(instance_id, "provision", "succeeded").await;
        }
        answer
    }

    /// Polls last_operation until it reports `state`, panicking on any other final state.
    pub async fn wait_for_state(&self, instance_id: &str, operation: &str, state: &str) -> Answer {
        let uri = format!("/v2/service_instances/{instance_id}/last_operation?operation={operation}");
        super::cluster::eventually(std::time::Duration::from_secs(60), &format!("{operation} {state}"), || async {
            let answer = self.call(Method::GET, &uri, None).await;
            assert_eq!(answer.status, StatusCode::OK, "last_operation answered {answer:?}");
            let now = answer.body["state"].as_str().unwrap_or_default().to_owned();
            if now == state {
                return Some(answer);
            }
            assert_eq!(now, "in progress", "last_operation went to {answer:?}");
            None
        })
        .await
    }

    /// Binds with these parameters (and any extra body fields).
    pub async fn bind(&self, instance_id: &str, binding_id: &str, plan: &str, extra: Value) -> Answer {
        let mut body = json!({
            "service_id": CAAS,
            "plan_id": plan,
            "bind_resource": { "app_guid": "app-1" },
            "context": { "platform": "cloudfoundry", "organization_guid": "org-1", "space_guid": "space-1" }
        });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        let uri = format!("/v2/service_instances/{instance_id}/service_bindings/{binding_id}");
        self.call(Method::PUT, &uri, Some(body)).await
    }

    /// Unbinds.
    pub async fn unbind(&self, instance_id: &str, binding_id: &str, plan: &str) -> Answer {
        let uri = format!(
            "/v2/service_instances/{instance_id}/service_bindings/{binding_id}?service_id={CAAS}&plan_id={plan}"
        );
        self.call(Method::DELETE, &uri, None).await
    }

    /// Deprovisions and waits until the namespace is gone.
    pub async fn deprovision(&self, instance_id: &str, plan: &str) {
        let uri =
            format!("/v2/service_instances/{instance_id}?service_id={CAAS}&plan_id={plan}&accepts_incomplete=true");
        let answer = self.call(Method::DELETE, &uri, None).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{answer:?}");
        self.wait_for_state(instance_id, "deprovision", "succeeded").await;
        self.assert_no_identities_left(instance_id).await;
    }

    /// Nothing of a deleted instance is left in the identity namespace (its owner's and bindings' ServiceAccounts).
    pub async fn assert_no_identities_left(&self, instance_id: &str) {
        let identities = &self.settings.kubernetes.identity_namespace;
        let admin = cluster().admin().await;
        let accounts = kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin, identities);
        let selector = format!("caas-broker.io/instance={}", caas_broker::k8s::names::label_value(instance_id));
        let left = accounts.list_metadata(&kube::api::ListParams::default().labels(&selector)).await;
        let left: Vec<_> = left.expect("list identities").items.into_iter().filter_map(|a| a.metadata.name).collect();
        assert!(left.is_empty(), "identities of deleted instance {instance_id} left in {identities}: {left:?}");
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        // Whatever a failed test left behind: every namespace with this broker's prefix.
        let cluster = cluster();
        let (_, names, _) = cluster.kubectl(&cluster.kubeconfig, &["get", "namespaces", "-o", "name"]);
        let mine: Vec<&str> =
            names.lines().filter(|name| name.trim_start_matches("namespace/").starts_with(&self.prefix)).collect();
        if !mine.is_empty() {
            let mut args = vec!["delete", "--wait=false", "--ignore-not-found"];
            args.extend(mine);
            cluster.kubectl(&cluster.kubeconfig, &args);
        }
    }
}

/// A provision body as Cloud Foundry sends it.
pub fn provision_body(plan: &str, organization: &str, parameters: Value) -> Value {
    json!({
        "service_id": CAAS,
        "plan_id": plan,
        "organization_guid": organization,
        "space_guid": "space-1",
        "context": {
            "platform": "cloudfoundry",
            "organization_guid": organization,
            "organization_name": "acme",
            "space_guid": "space-1",
            "space_name": "dev",
            "instance_name": "my-cluster"
        },
        "parameters": parameters,
        "maintenance_info": { "version": "2.0.0" }
    })
}

/// The originating identity header value of a Cloud Foundry user.
pub fn cf_identity(user_id: &str) -> String {
    let json = json!({ "user_id": user_id }).to_string();
    format!("cloudfoundry {}", base64::engine::general_purpose::STANDARD.encode(json))
}

/// A request with the broker's credentials, API version 2.17 (answers then carry every field the broker has; older
/// versions are the subject of `osb_versions.rs`) and a request identity; `extra` headers replace or add.
pub fn osb_request(method: Method, uri: &str, body: Option<String>, extra: &[(&str, &str)]) -> Request<Body> {
    let credentials = base64::engine::general_purpose::STANDARD.encode("broker:broker-dev-password");
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Basic {credentials}"))
        .header("x-broker-api-version", "2.17")
        .header("x-broker-api-request-identity", "req-1234");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let mut request = builder.body(body.map(Body::from).unwrap_or_else(Body::empty)).expect("request");
    for (name, value) in extra {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
        request.headers_mut().insert(name, value.parse().expect("header value"));
    }
    request
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Answer { status, headers, body }
}

/// A client that authenticates with a binding's kubeconfig, exactly as an application would.
pub async fn client_from_kubeconfig(kubeconfig: &str) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("the binding's kubeconfig parses");
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.expect("kubeconfig is usable");
    Client::try_from(config).expect("client")
}

/// The tenant guard (ValidatingAdmissionPolicies from `manifests/`), in force: `tests/cluster/cluster.sh up`
/// installs it as an operator does and waits until it is, so this only makes sure the cluster is up.
pub fn install_tenant_guard() {
    cluster();
}
