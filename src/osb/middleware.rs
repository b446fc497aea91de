//! What every OSB request goes through before its handler, in the order the conformance checkers expect:
//! request identity and logging span first (so even a 401 echoes the id), then HTTP Basic auth (401), then the
//! `X-Broker-API-Version` check (412).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use subtle::ConstantTimeEq;
use tracing::Instrument;

use super::OsbError;
use super::version::{API_VERSION, ApiVersion};

/// Request identity header, echoed on every response.
pub const REQUEST_IDENTITY: HeaderName = HeaderName::from_static("x-broker-api-request-identity");

/// The HTTP Basic credentials platforms must present.
pub struct Credentials {
    expected: Vec<u8>,
}

impl Credentials {
    /// Credentials for `username:password`.
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials { expected: format!("{username}:{password}").into_bytes() }
    }

    /// Compares in constant time, so the comparison leaks nothing about how much of a guess was right.
    fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let presented = authorization
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")))
            .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok())
            .unwrap_or_default();
        bool::from(presented.ct_eq(&self.expected))
    }
}

/// Opens the request's logging span with its request identity, logs the outcome, and echoes the identity.
pub async fn request_context(request: Request, next: Next) -> Response {
    let identity = request.headers().get(&REQUEST_IDENTITY).cloned();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = identity.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), millis = elapsed.as_millis() as u64, "answered");
    });
    let metrics = crate::metrics::global();
    let labels =
        crate::metrics::HttpLabels { route: route.clone(), method: method.clone(), status: response.status().as_u16() };
    metrics.http_requests.get_or_create(&labels).inc();
    metrics.http_duration.get_or_create(&crate::metrics::RouteLabels { route, method }).observe(elapsed.as_secs_f64());
    if let Some(identity) = identity {
        response.headers_mut().insert(REQUEST_IDENTITY, identity);
    }
    response
}

/// 401 unless the request carries the broker's credentials.
pub async fn authenticate(State(credentials): State<Arc<Credentials>>, request: Request, next: Next) -> Response {
    if !credentials.accepts(request.headers().get(axum::http::header::AUTHORIZATION)) {
        let mut response = OsbError::Unauthorized.into_response();
        response
            .headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"caas-broker\""));
        return response;
    }
    next.run(request).await
}

/// 412 unless `X-Broker-API-Version` is a 2.x version.
pub async fn require_api_version(request: Request, next: Next) -> Response {
    let version = request.headers().get(&API_VERSION).and_then(|value| value.to_str().ok()).unwrap_or_default();
    if ApiVersion::parse(version).is_none() {
        return super::version::unsupported(version).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_compared_exactly() {
        let credentials = Credentials::new("broker", "s3cret-pass");
        let header = |user_pass: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("header")
        };
        assert!(credentials.accepts(Some(&header("broker:s3cret-pass"))));
        assert!(!credentials.accepts(Some(&header("broker:s3cret-pas"))));
        assert!(!credentials.accepts(Some(&header("broker:s3cret-pass2"))));
        assert!(!credentials.accepts(Some(&HeaderValue::from_static("Bearer x"))));
        assert!(!credentials.accepts(None));
    }
}
