//! What a bound application gets: the apiserver's URL and CA, its namespace, a bound token, and a kubeconfig that
//! works as it is with kubectl or any Kubernetes client.

use base64::Engine;
use serde_json::{Value, json};

use super::model::{BindingMetadata, Endpoint};
use crate::k8s::ClusterEndpoint;

/// A token issued by the TokenRequest API.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// When it was issued.
    pub issued_at: jiff::Timestamp,
    /// When the apiserver stops accepting it.
    pub expires_at: jiff::Timestamp,
}

/// The credentials object of a binding.
pub fn credentials(endpoint: &ClusterEndpoint, namespace: &str, role: &str, user: &str, token: &IssuedToken) -> Value {
    let ca_data = endpoint.ca_pem.as_ref().map(|pem| base64::engine::general_purpose::STANDARD.encode(pem));
    json!({
        "server": endpoint.server,
        "certificate_authority_data": ca_data,
        "namespace": namespace,
        "role": role,
        "token": token.token,
        "expires_at": timestamp(token.expires_at),
        "kubeconfig": kubeconfig(endpoint, namespace, user, &token.token),
    })
}

/// A kubeconfig with one context: this cluster, this namespace, this token.
pub fn kubeconfig(endpoint: &ClusterEndpoint, namespace: &str, user: &str, token: &str) -> String {
    let mut cluster = json!({ "server": endpoint.server });
    if let Some(pem) = &endpoint.ca_pem {
        cluster["certificate-authority-data"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
    }
    let document = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "caas", "cluster": cluster }],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{ "name": namespace, "context": { "cluster": "caas", "user": user, "namespace": namespace } }],
        "current-context": namespace,
    });
    serde_norway::to_string(&document).unwrap_or_default()
}

/// The apiserver as a binding endpoint.
pub fn endpoints(endpoint: &ClusterEndpoint) -> Vec<Endpoint> {
    let without_scheme = endpoint.server.split_once("://").map_or(endpoint.server.as_str(), |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (host, port.to_owned()),
        _ => (authority, "443".to_owned()),
    };
    vec![Endpoint { host: host.trim_matches(['[', ']']).to_owned(), ports: vec![port], protocol: "tcp".to_owned() }]
}

/// Expiry and the moment to rotate: when four fifths of the lifetime have passed.
pub fn metadata(token: &IssuedToken) -> BindingMetadata {
    let lifetime = token.expires_at.as_second() - token.issued_at.as_second();
    let renew = jiff::Timestamp::from_second(token.expires_at.as_second() - lifetime / 5).unwrap_or(token.expires_at);
    BindingMetadata { expires_at: timestamp(token.expires_at), renew_before: timestamp(renew) }
}

/// ISO 8601 in UTC as the OSB specification writes it (`yyyy-mm-ddThh:mm:ss.sZ`).
pub fn timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> IssuedToken {
        IssuedToken {
            token: "t".to_owned(),
            issued_at: jiff::Timestamp::from_second(1_700_000_000).expect("ts"),
            expires_at: jiff::Timestamp::from_second(1_700_003_600).expect("ts"),
        }
    }

    #[test]
    fn metadata_renews_at_four_fifths_of_the_lifetime() {
        let metadata = metadata(&token());
        assert_eq!(metadata.expires_at, "2023-11-14T23:13:20.000Z");
        assert_eq!(metadata.renew_before, "2023-11-14T23:01:20.000Z");
    }

    #[test]
    fn endpoints_name_host_and_port() {
        let endpoint = |server: &str| ClusterEndpoint { server: server.to_owned(), ca_pem: None };
        assert_eq!(endpoints(&endpoint("https://127.0.0.1:6443"))[0].ports, ["6443"]);
        assert_eq!(endpoints(&endpoint("https://api.example.com"))[0].host, "api.example.com");
        assert_eq!(endpoints(&endpoint("https://api.example.com"))[0].ports, ["443"]);
        assert_eq!(endpoints(&endpoint("https://[::1]:6443"))[0].host, "::1");
    }

    #[test]
    fn kubeconfig_is_yaml_with_the_namespace_as_context() {
        let endpoint = ClusterEndpoint { server: "https://127.0.0.1:6443".to_owned(), ca_pem: Some("PEM".to_owned()) };
        let text = kubeconfig(&endpoint, "caas-x", "binding", "secret-token");
        let parsed: Value = serde_norway::from_str(&text).expect("YAML");
        assert_eq!(parsed["current-context"], "caas-x");
        assert_eq!(parsed["contexts"][0]["context"]["namespace"], "caas-x");
        assert_eq!(parsed["users"][0]["user"]["token"], "secret-token");
        assert_eq!(parsed["clusters"][0]["cluster"]["certificate-authority-data"], "UEVN");
    }
}
