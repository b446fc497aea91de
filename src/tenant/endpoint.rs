//! The endpoint tester: a request made *by the server* to a Service or Ingress of the signed-in tenant's own
//! namespace, never to a URL the user types. It goes through the apiserver's service proxy
//! (`/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}`) with the user's own client, which confines it by
//! construction:
//! - the namespace is the session's, never the form's; the target must be a Service (or an Ingress's backend
//!   Service) that the user can read there, named by a DNS label, with a port it declares;
//! - RBAC decides (`services/proxy`: `edit` and `admin` have it, `view` does not);
//! - the apiserver proxies only to the Service's endpoints, and refuses loopback and link-local addresses itself;
//!   tenants cannot write Endpoints or EndpointSlices (`edit` and `admin` only read them) and Pod Security keeps
//!   their pods off the host network, so a Service's endpoints are the tenant's own pods; Services without a
//!   selector (hand-made endpoints) or naming an outside host (`ExternalName`) are refused here all the same, so no
//!   endpoint can be pointed at the host, the apiserver or a metadata address;
//! - the path cannot climb out of the proxy (`..`, encoded slashes or dots are refused);
//! - headers that mean something to the apiserver (impersonation, authorization, hop-by-hop) are refused; the
//!   user's token itself never reaches the app, as the apiserver drops the `Authorization` header once it has
//!   authenticated the request.
//!
//! The request has a timeout and its answer a size cap.

use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Client};
use percent_encoding::utf8_percent_encode;

use super::apps::user_error;
use crate::k8s::names::DnsLabel;
use crate::lifecycle::{Error, URL_COMPONENT};

/// Longest a tried request may take, answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer's body kept; the rest is dropped and the answer says it was cut.
pub const MAX_BODY: usize = 256 * 1024;
/// Longest request body sent.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// The methods a test request may use.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Why a tried request was not made or got no answer from the app.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TryError {
    /// The form asks for something outside what the tester may reach, or malformed; nothing was sent.
    #[error("{0}")]
    Refused(String),
    /// The target has no ready pod behind it: nothing could answer.
    #[error("{0}")]
    NoReadyEndpoint(String),
    /// Kubernetes refused the user (RBAC).
    #[error("{0}")]
    Denied(String),
    /// The target did not answer in time or the connection failed.
    #[error("{0}")]
    Failed(String),
}

/// A target the user may choose: a Service (with its ports) or an Ingress (with its hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetChoice {
    /// `service` or `ingress`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// The ports a Service declares (by number); empty for an Ingress, whose rule names its backend's port.
    pub ports: Vec<i32>,
}

/// What a test request is sent to, in the session's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryTarget {
    /// A Service, at a port it declares (`None`: no port given).
    Service {
        /// Its name.
        name: String,
        /// The port.
        port: Option<i32>,
    },
    /// The backend Service of the Ingress's rule that serves the path.
    Ingress {
        /// Its name.
        name: String,
    },
}

/// A test request as the user asked for it; [`try_request`] checks every part before anything is sent.
#[derive(Debug, Clone)]
pub struct TryRequest {
    /// What it is sent to.
    pub target: TryTarget,
    /// One of [`METHODS`].
    pub method: String,
    /// Path (and query) on the target, starting with `/`.
    pub path: String,
    /// `Name: value` lines.
    pub headers: String,
    /// The request body.
    pub body: String,
}

/// What the target answered.
#[derive(Debug, Clone)]
pub struct TryAnswer {
    /// The HTTP status.
    pub status: u16,
    /// Time to the full answer (or the cap).
    pub latency: Duration,
    /// The answer's headers.
    pub headers: Vec<(String, String)>,
    /// The body as text (pretty-printed when it is JSON).
    pub body: String,
    /// Whether the body was JSON.
    pub json: bool,
    /// Whether the body was longer than [`MAX_BODY`] and cut.
    pub truncated: bool,
}

/// The path (and query) to send, checked: it starts with `/`, holds only visible ASCII, and no segment climbs
/// (`..`, `.`) or hides a slash, a backslash or a dot in an escape.
pub fn checked_path(path: &str) -> Result<String, TryError> {
    let path = if path.trim().is_empty() { "/" } else { path.trim() };
    let refuse = |why: &str| Err(TryError::Refused(format!("the path {why}")));
    if !path.starts_with('/') || path.len() > 2048 {
        return refuse("must start with / and be at most 2048 characters");
    }
    if !path.bytes().all(|b| b.is_ascii_graphic()) || path.contains(['\\', '#']) {
        return refuse("may hold only visible ASCII characters, without \\ or #");
    }
    let lower = path.to_ascii_lowercase();
    if ["%2f", "%5c", "%2e", "%00", "%25"].iter().any(|escape| lower.contains(escape)) {
        return refuse("may not hide a slash, backslash, dot, NUL or % in an escape");
    }
    let route = path.split('?').next().unwrap_or_default();
    if route.split('/').any(|segment| segment == ".." || segment == ".") {
        return refuse("may not climb with . or ..");
    }
    Ok(path.to_owned())
}

/// Header names the apiserver acts on, or that belong to the connection rather than the request.
const REFUSED_HEADERS: [&str; 10] = [
    "authorization",
    "proxy-authorization",
    "host",
    "connection",
    "upgrade",
    "te",
    "transfer-encoding",
    "content-length",
    "keep-alive",
    "expect",
];

/// `Name: value` lines as headers, refusing those the apiserver acts on (see [`REFUSED_HEADERS`], `Impersonate-*`,
/// `X-Remote-*`).
pub fn checked_headers(text: &str) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, TryError> {
    let mut headers = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let refused = || TryError::Refused(format!("the header line {line:?} is not Name: value"));
        let (name, value) = line.split_once(':').ok_or_else(refused)?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| refused())?;
        let value = http::HeaderValue::from_str(value.trim()).map_err(|_| refused())?;
        let lower = name.as_str();
        if REFUSED_HEADERS.contains(&lower) || lower.starts_with("impersonate-") || lower.starts_with("x-remote-") {
            return Err(TryError::Refused(format!("the header {lower} may not be sent through the tester")));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// The Services and Ingresses of `namespace` the user can read, for the tester's choice. Services without a selector
/// or of type `ExternalName` are left out: see the module.
pub async fn targets(user: &Client, namespace: &str) -> Result<Vec<TargetChoice>, Error> {
    let all = ListParams::default();
    let (services, ingresses) =
        (Api::<Service>::namespaced(user.clone(), namespace), Api::<Ingress>::namespaced(user.clone(), namespace));
    let (services, ingresses) = tokio::join!(services.list(&all), ingresses.list(&all));
    let mut choices: Vec<TargetChoice> = services
        .map_err(user_error)?
        .items
        .iter()
        .filter(|service| proxiable(service).is_ok())
        .map(|service| TargetChoice {
            kind: "service",
            name: service.metadata.name.clone().unwrap_or_default(),
            ports: service.spec.iter().flat_map(|s| s.ports.iter().flatten()).map(|p| p.port).collect(),
        })
        .collect();
    // An identity that may see Services but not Ingresses still gets its Services.
    choices.extend(ingresses.map(|list| list.items).unwrap_or_default().into_iter().map(|ingress| TargetChoice {
        kind: "ingress",
        name: ingress.metadata.name.unwrap_or_default(),
        ports: Vec::new(),
    }));
    Ok(choices)
}

/// Whether the apiserver's proxy of `service` can only reach the tenant's own pods.
fn proxiable(service: &Service) -> Result<(), TryError> {
    let spec = service.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        return Err(TryError::Refused("an ExternalName Service points outside the namespace".to_owned()));
    }
    if spec.and_then(|s| s.selector.as_ref()).is_none_or(|selector| selector.is_empty()) {
        return Err(TryError::Refused(
            "a Service without a selector has hand-made endpoints, which may point anywhere".to_owned(),
        ));
    }
    Ok(())
}

/// Sends `request`, as the user, to its target in `namespace` (the session's), and reads the answer.
pub async fn try_request(user: &Client, namespace: &str, request: &TryRequest) -> Result<TryAnswer, TryError> {
    let (TryTarget::Service { name, .. } | TryTarget::Ingress { name }) = &request.target;
    if !DnsLabel::is_valid(name) {
        return Err(TryError::Refused(format!("{name:?} is not a Service or Ingress name of this namespace")));
    }
    let method = request.method.trim().to_ascii_uppercase();
    let method = METHODS
        .iter()
        .find(|allowed| **allowed == method)
        .ok_or_else(|| TryError::Refused(format!("the method must be one of {}", METHODS.join(", "))))?;
    let path = checked_path(&request.path)?;
    let headers = checked_headers(&request.headers)?;
    if request.body.len() > MAX_REQUEST_BODY {
        return Err(TryError::Refused(format!("the body may be at most {MAX_REQUEST_BODY} bytes")));
    }
    let (service, port) = match &request.target {
        TryTarget::Service { name, port } => (name.clone(), *port),
        TryTarget::Ingress { name } => ingress_backend(user, namespace, name, &path).await?,
    };
    let service_object = Api::<Service>::namespaced(user.clone(), namespace)
        .get_opt(&service)
        .await
        .map_err(denied_or_failed)?
        .ok_or_else(|| TryError::Refused(format!("there is no Service {service} in this namespace")))?;
    proxiable(&service_object)?;
    let declared: Vec<i32> =
        service_object.spec.iter().flat_map(|s| s.ports.iter().flatten()).map(|p| p.port).collect();
    let port = port
        .filter(|port| declared.contains(port))
        .ok_or_else(|| TryError::Refused(format!("the port must be one Service {service} declares: {declared:?}")))?;
    ready_endpoint(user, namespace, &service).await?;
    let uri = format!(
        "/api/v1/namespaces/{}/services/{}:{port}/proxy{path}",
        utf8_percent_encode(namespace, URL_COMPONENT),
        utf8_percent_encode(&service, URL_COMPONENT)
    );
    let mut sent = http::Request::builder().method(*method).uri(uri);
    for (name, value) in headers {
        sent = sent.header(name, value);
    }
    let sent = sent
        .body(kube::client::Body::from(request.body.clone().into_bytes()))
        .map_err(|error| TryError::Refused(error.to_string()))?;
    let started = Instant::now();
    match tokio::time::timeout(TIMEOUT, send(user, sent)).await {
        Ok(answer) => answer.map(|mut answer| {
            answer.latency = started.elapsed();
            answer
        }),
        Err(_) => Err(TryError::Failed(format!("no answer within {} seconds", TIMEOUT.as_secs()))),
    }
}

async fn send(user: &Client, request: http::Request<kube::client::Body>) -> Result<TryAnswer, TryError> {
    let response = user.send(request).await.map_err(|error| TryError::Failed(error.to_string()))?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| TryError::Failed(error.to_string()))?;
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
            if bytes.len() > MAX_BODY {
                bytes.truncate(MAX_BODY);
                truncated = true;
                break;
            }
        }
    }
    // The apiserver's own answers (not the app's) come as Status objects: RBAC's refusal, or the proxy's failure to
    // reach a pod, are said as such.
    if (status == 403 || status >= 500) && is_status_object(&bytes) {
        let said: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let message = said["message"].as_str().unwrap_or("no message").to_owned();
        return Err(if status == 403 { TryError::Denied(message) } else { TryError::Failed(message) });
    }
    let json = headers.iter().any(|(name, value)| name == "content-type" && value.contains("json"));
    let pretty = json
        .then(|| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .flatten()
        .and_then(|value| serde_json::to_string_pretty(&value).ok());
    Ok(TryAnswer {
        status,
        latency: Duration::ZERO,
        headers,
        json: pretty.is_some(),
        body: pretty.unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
        truncated,
    })
}

fn is_status_object(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|value| value["kind"] == "Status" && value["apiVersion"] == "v1")
}

fn denied_or_failed(error: kube::Error) -> TryError {
    match user_error(error) {
        Error::Denied { message, .. } => TryError::Denied(message),
        other => TryError::Failed(other.to_string()),
    }
}

/// The backend Service and port of the Ingress rule path that serves `path` (the longest matching prefix).
async fn ingress_backend(
    user: &Client,
    namespace: &str,
    name: &str,
    path: &str,
) -> Result<(String, Option<i32>), TryError> {
    let ingress = Api::<Ingress>::namespaced(user.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(denied_or_failed)?
        .ok_or_else(|| TryError::Refused(format!("there is no Ingress {name} in this namespace")))?;
    let route = path.split('?').next().unwrap_or("/");
    let backend = ingress
        .spec
        .iter()
        .flat_map(|spec| spec.rules.iter().flatten())
        .filter_map(|rule| rule.http.as_ref())
        .flat_map(|http| http.paths.iter())
        .filter(|rule| route.starts_with(rule.path.as_deref().unwrap_or("/")))
        .max_by_key(|rule| rule.path.as_deref().unwrap_or("/").len())
        .and_then(|rule| rule.backend.service.clone())
        .ok_or_else(|| TryError::Refused(format!("Ingress {name} has no Service backend for {route}")))?;
    let port = backend.port.and_then(|port| port.number);
    Ok((backend.name, port))
}

/// Refuses a Service with no ready endpoint, saying so, rather than letting the proxy answer 503.
async fn ready_endpoint(user: &Client, namespace: &str, service: &str) -> Result<(), TryError> {
    let selector = format!("kubernetes.io/service-name={service}");
    let slices = Api::<EndpointSlice>::namespaced(user.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(denied_or_failed)?;
    let ready = slices
        .items
        .iter()
        .flat_map(|slice| slice.endpoints.iter().flatten())
        .any(|endpoint| endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false));
    if ready {
        Ok(())
    } else {
        Err(TryError::NoReadyEndpoint(format!(
            "Service {service} has no ready pod behind it yet: nothing can answer (see the app's progress and its pods)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_climb_or_hide_slashes() {
        assert_eq!(checked_path("").as_deref(), Ok("/"));
        assert_eq!(checked_path("/api/items?page=2").as_deref(), Ok("/api/items?page=2"));
        for bad in ["/../../api", "/a/./b", "/a%2f..%2fb", "/%2E%2E/x", "/a\\b", "no-slash", "/a b", "/x?%25"] {
            assert!(matches!(checked_path(bad), Err(TryError::Refused(_))), "{bad}");
        }
    }

    #[test]
    fn headers_the_apiserver_acts_on_are_refused() {
        let ok = checked_headers("Accept: application/json\nX-Trace: 1").expect("ok");
        assert_eq!(ok.len(), 2);
        for bad in ["Authorization: Bearer x", "Impersonate-User: admin", "X-Remote-User: a", "Host: x", "nocolon"] {
            assert!(matches!(checked_headers(bad), Err(TryError::Refused(_))), "{bad}");
        }
    }
}
