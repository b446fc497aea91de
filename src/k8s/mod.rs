//! The Kubernetes side: names and labels, the typed objects a tenant's virtual cluster is made of, and applying them
//! with server-side apply under the broker's one field manager.

pub mod access;
pub mod binding;
pub mod member;
pub mod names;
pub mod pod_metrics;
pub mod quota;
pub mod repository;
pub mod virtual_cluster;
pub mod watched;
pub mod workload;

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Server-side applies `object` (create or converge), taking ownership of every field it sets.
pub async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = object.meta().name.as_deref().unwrap_or_default();
    api.patch(name, &PatchParams::apply(names::FIELD_MANAGER).force(), &Patch::Apply(object)).await
}

/// Whether an apiserver error says the object does not exist.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Whether an apiserver error says the object already exists or changed underneath.
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// How bound applications reach the apiserver: its URL and the CA that signs its certificate.
#[derive(Debug, Clone)]
pub struct ClusterEndpoint {
    /// The apiserver URL.
    pub server: String,
    /// PEM of the CA bundle, when the apiserver's certificate is not publicly trusted.
    pub ca_pem: Option<String>,
}

impl ClusterEndpoint {
    /// The endpoint of the broker's own client configuration.
    pub fn from_config(config: &kube::Config) -> ClusterEndpoint {
        let ca_pem = config
            .root_cert
            .as_ref()
            .map(|certificates| certificates.iter().map(|der| pem("CERTIFICATE", der)).collect());
        ClusterEndpoint { server: config.cluster_url.to_string().trim_end_matches('/').to_owned(), ca_pem }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// A client configuration that reaches the same apiserver as `base` (its URL, CA and timeouts) but authenticates with
/// `token` only: what the dashboard uses to act as a signed-in user, so that Kubernetes' RBAC decides, not the broker's own
/// permissions. Nothing of `base`'s credentials (client certificate, token, exec plugin) is carried over.
pub fn as_user(base: &kube::Config, token: &str) -> kube::Config {
    let mut config = kube::Config::new(base.cluster_url.clone());
    config.root_cert = base.root_cert.clone();
    config.accept_invalid_certs = base.accept_invalid_certs;
    config.tls_server_name = base.tls_server_name.clone();
    config.proxy_url = base.proxy_url.clone();
    config.connect_timeout = base.connect_timeout;
    config.read_timeout = base.read_timeout;
    config.write_timeout = base.write_timeout;
    config.default_namespace = base.default_namespace.clone();
    config.auth_info = kube::config::AuthInfo { token: Some(token.to_owned().into()), ..Default::default() };
    config
}
