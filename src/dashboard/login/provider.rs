//! One OpenID Connect provider as the dashboard uses it (the generic one, and UAA for Cloud Foundry): the
//! authorization code flow with PKCE (S256), `state` and `nonce`, the code exchanged on the server with the client
//! secret, and the ID token verified by the `openidconnect` crate (signature against the provider's JWKS, issuer,
//! audience, expiry, nonce, and the access token's hash when the token carries one). Every call out has a timeout and
//! follows no redirect; the discovery document (endpoints, keys) is kept a few minutes, so that key rotation is seen.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::Value;

/// How long one call to a provider (or the Cloud Controller) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a discovery document is used before it is read again.
const METADATA_LIFETIME: Duration = Duration::from_secs(300);

/// The client the discovery document makes (an authorization endpoint; the token endpoint as discovered).
type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// Why a sign-in through a provider did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The provider (or the Cloud Controller) did not answer, or answered with a server error: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The provider refused, or what came back did not pass the checks (a replayed code, a forged token).
    #[error("{0}")]
    Refused(String),
}

/// Why a provider cannot be set up (the sign-in through it is then off).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The CA file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no certificate that parses.
    #[error("{} holds no PEM certificate: {source}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// No HTTP client could be made (the TLS backend failed).
    #[error("cannot make an HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The issuer is not a URL.
    #[error("issuer {issuer:?}: {source}")]
    Issuer {
        /// As configured.
        issuer: String,
        /// Why.
        #[source]
        source: openidconnect::url::ParseError,
    },
    /// The redirect URI is not a URL.
    #[error("redirect {redirect:?}: {source}")]
    Redirect {
        /// As configured or derived.
        redirect: String,
        /// Why.
        #[source]
        source: openidconnect::url::ParseError,
    },
    /// Cloud Foundry's sign-in has no client id to use.
    #[error("neither dashboard.cf_sso.client_id nor the catalog's dashboard_client names the client")]
    NoClientId,
}

/// An HTTP client for calls out of the dashboard: a timeout, no redirects (they would open the door to SSRF), and the
/// CA of `ca_file` trusted beside the public roots.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, SetupError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(CALL_TIMEOUT)
        .connect_timeout(Duration::from_secs(5));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| SetupError::ReadCa { path: path.to_owned(), source })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|source| SetupError::NoCertificate { path: path.to_owned(), source })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(SetupError::HttpClient)
}

/// What the browser is sent to the provider with, and what the callback must match.
pub struct Started {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The `state` the callback must bring back.
    pub state: CsrfToken,
    /// The `nonce` the ID token must carry.
    pub nonce: Nonce,
    /// The PKCE verifier of the challenge sent.
    pub verifier: PkceCodeVerifier,
}

/// A verified sign-in.
pub struct Verified {
    /// The ID token's `sub`.
    pub subject: String,
    /// Every claim of the verified ID token.
    pub claims: Value,
    /// The access token, for a call made as the user (the Cloud Controller's); never logged or shown.
    pub access_token: String,
}

/// A provider the dashboard signs users in with.
pub struct Provider {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    scopes: Vec<Scope>,
    redirect: RedirectUrl,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

impl Provider {
    /// A provider at `issuer` (discovered on first use), for the client `client_id`, asking for `scopes`
    /// (space-separated; `openid` is added when missing), sending users back to `redirect_uri`.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        scopes: &str,
        redirect_uri: &str,
        http: reqwest::Client,
    ) -> Result<Provider, SetupError> {
        let mut scopes: Vec<Scope> = scopes.split_whitespace().map(|s| Scope::new(s.to_owned())).collect();
        // The crate adds `openid` itself; listing it twice would send it twice.
        scopes.retain(|scope| scope.as_str() != "openid");
        Ok(Provider {
            issuer: IssuerUrl::new(issuer.to_owned())
                .map_err(|source| SetupError::Issuer { issuer: issuer.to_owned(), source })?,
            client_id: ClientId::new(client_id.to_owned()),
            client_secret: ClientSecret::new(client_secret.to_owned()),
            scopes,
            redirect: RedirectUrl::new(redirect_uri.to_owned())
                .map_err(|source| SetupError::Redirect { redirect: redirect_uri.to_owned(), source })?,
            http,
            metadata: tokio::sync::Mutex::new(None),
        })
    }

    /// The HTTP client of calls to this provider (and to services that trust the same CA).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn client(&self) -> Result<Client, LoginError> {
        let mut cached = self.metadata.lock().await;
        let fresh = cached.as_ref().filter(|(read_at, _)| read_at.elapsed() < METADATA_LIFETIME);
        let metadata = match fresh {
            Some((_, metadata)) => metadata.clone(),
            None => {
                let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
                    .await
                    .map_err(|e| LoginError::Unavailable(format!("discovery at {}: {e}", self.issuer.as_str())))?;
                *cached = Some((Instant::now(), metadata.clone()));
                metadata
            }
        };
        Ok(CoreClient::from_provider_metadata(metadata, self.client_id.clone(), Some(self.client_secret.clone()))
            .set_redirect_uri(self.redirect.clone()))
    }

    /// Starts a sign-in: where to send the browser, and what its return must match.
    pub async fn start(&self) -> Result<Started, LoginError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scopes(self.scopes.iter().cloned())
            .set_pkce_challenge(challenge)
            .url();
        Ok(Started { url: url.to_string(), state, nonce, verifier })
    }

    /// Finishes a sign-in: exchanges `code` with the verifier and checks the ID token against `nonce`.
    pub async fn finish(&self, code: &str, nonce: &Nonce, verifier: PkceCodeVerifier) -> Result<Verified, LoginError> {
        let client = self.client().await?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| LoginError::Unavailable(format!("the provider names no token endpoint: {e}")))?;
        let answer = request.set_pkce_verifier(verifier).request_async(&self.http).await.map_err(|error| {
            match error {
                // The provider answered, and said no (a used or forged code, a wrong verifier).
                openidconnect::RequestTokenError::ServerResponse(refusal) => {
                    LoginError::Refused(format!("the provider refused the code: {}", refusal.error()))
                }
                other => LoginError::Unavailable(format!("the code exchange failed: {other}")),
            }
        })?;
        let id_token = answer.id_token().ok_or_else(|| LoginError::Refused("no ID token came back".to_owned()))?;
        let verifier = client.id_token_verifier();
        let claims = id_token.claims(&verifier, nonce).map_err(|e| LoginError::Refused(format!("ID token: {e}")))?;
        if let Some(expected) = claims.access_token_hash() {
            let refused = |e: String| LoginError::Refused(format!("access token hash: {e}"));
            let algorithm = id_token.signing_alg().map_err(|e| refused(e.to_string()))?;
            let key = id_token.signing_key(&verifier).map_err(|e| refused(e.to_string()))?;
            let actual = AccessTokenHash::from_token(answer.access_token(), algorithm, key)
                .map_err(|e| refused(e.to_string()))?;
            if actual != *expected {
                return Err(refused("it does not match the access token".to_owned()));
            }
        }
        Ok(Verified {
            subject: claims.subject().as_str().to_owned(),
            claims: payload(&id_token.to_string())?,
            access_token: answer.access_token().secret().clone(),
        })
    }
}

/// The claims of an ID token the crate has already verified: its payload, for claims beyond the standard ones.
fn payload(compact: &str) -> Result<Value, LoginError> {
    let refused = || LoginError::Refused("the ID token's payload is not JSON".to_owned());
    let encoded = compact.split('.').nth(1).ok_or_else(refused)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).map_err(|_| refused())?;
    serde_json::from_slice(&bytes).map_err(|_| refused())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_of_a_compact_token_is_read() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"email":"a@b.test","n":1}"#);
        let value = payload(&format!("e30.{claims}.sig")).expect("payload");
        assert_eq!(value["email"], "a@b.test");
        assert!(matches!(payload("not-a-token"), Err(LoginError::Refused(_))));
        assert!(matches!(payload("a.!!!.c"), Err(LoginError::Refused(_))));
    }

    #[test]
    fn openid_is_not_asked_for_twice() {
        let http = http_client(None).expect("client");
        let provider =
            Provider::new("https://id.example.test", "c", "s", "openid email  profile", "https://d.test/cb", http)
                .expect("provider");
        let scopes: Vec<&str> = provider.scopes.iter().map(|s| s.as_str()).collect();
        assert_eq!(scopes, ["email", "profile"]);
    }
}
