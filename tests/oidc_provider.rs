//! The OpenID Connect provider of the dashboard's login tests (`tests/oidc/dex.sh`: Dex on loopback) as a browser and
//! the dashboard meet it: the authorization code flow with PKCE from the authorization endpoint through Dex's login
//! form to the redirect back to the client, the code exchanged at the token endpoint with the client secret and the
//! verifier, and the ID token checked against the JWKS. Then what must be refused (a wrong password, a wrong verifier,
//! an unknown scope), how the secrets are kept, and `down` then `up`.
//!
//! HTTP goes through curl with a cookie jar, as `tests/broker_process.rs` does; its options come on curl's standard
//! input, so that no password or secret is on a command line. When a step fails, the message names the request and
//! what came back; Dex's log is `tests/oidc/dex.sh logs dex`.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

const SCRIPT: &str = "tests/oidc/dex.sh";
/// A scope of Cloud Foundry's UAA that Dex does not know.
const UAA_SCOPE: &str = "cloud_controller_service_permissions.read";

/// `down` in one test must not take Dex away from another: the tests of this file take turns.
static DEX: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    DEX.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `dex.sh ARGS...` and returns what it printed on standard output; a failure shows its standard error, which
/// names what failed and its log.
fn dex(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {SCRIPT}: {e}"));
    assert!(
        out.status.success(),
        "`bash {SCRIPT} {}` failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The provider as `dex.sh env` describes it, and what its discovery document says.
struct Provider {
    issuer: String,
    ca: String,
    client_id: String,
    secret: String,
    secret_file: PathBuf,
    users_file: PathBuf,
    /// email → password, from the users file.
    users: Vec<(String, String)>,
    redirect_uri: String,
    /// What `env` printed.
    env_text: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A value as bash's `printf %q` writes it (backslash escapes only, for the values `env` prints).
fn unquote(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

/// `dex.sh up` (idempotent), then the provider as `env` and the discovery document describe it.
fn up() -> Provider {
    dex(&["up"]);
    provider()
}

fn provider() -> Provider {
    let env_text = dex(&["env"]);
    let vars: HashMap<&str, String> = env_text
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name, unquote(value)))
        .collect();
    let var =
        |name: &str| vars.get(name).cloned().unwrap_or_else(|| panic!("`{SCRIPT} env` printed no {name}:\n{env_text}"));
    let secret_file = PathBuf::from(var("CAAS_OIDC_CLIENT_SECRET_FILE"));
    let users_file = PathBuf::from(var("CAAS_OIDC_USERS_FILE"));
    let read =
        |path: &Path| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let secret = read(&secret_file).trim().to_owned();
    let users = read(&users_file)
        .lines()
        .map(|line| {
            let (email, password) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{}: a line is not EMAIL:PASSWORD", users_file.display()));
            (email.to_owned(), password.to_owned())
        })
        .collect();
    let issuer = var("CAAS_OIDC_ISSUER");
    let ca = var("CAAS_OIDC_CA_FILE");
    let redirect_uri = var("CAAS_OIDC_REDIRECT_URIS").split(',').next().unwrap_or_default().to_owned();
    let discovery_url = format!("{issuer}/.well-known/openid-configuration");
    let discovery = http(&ca, None, &discovery_url, &[]).expect_status(200, &discovery_url).json(&discovery_url);
    assert_eq!(discovery["issuer"], issuer.as_str(), "the discovery document names another issuer");
    let methods = &discovery["code_challenge_methods_supported"];
    assert!(
        methods.as_array().is_some_and(|m| m.iter().any(|m| m == "S256")),
        "the discovery document does not offer PKCE with S256: {methods}"
    );
    let endpoint = |name: &str| {
        discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("the discovery document has no {name}: {discovery}"))
            .to_owned()
    };
    Provider {
        authorization_endpoint: endpoint("authorization_endpoint"),
        token_endpoint: endpoint("token_endpoint"),
        jwks_uri: endpoint("jwks_uri"),
        issuer,
        ca,
        client_id: var("CAAS_OIDC_CLIENT_ID"),
        secret,
        secret_file,
        users_file,
        users,
        redirect_uri,
        env_text,
    }
}

impl Provider {
    fn password(&self, email: &str) -> &str {
        self.users
            .iter()
            .find(|(e, _)| e == email)
            .map(|(_, p)| p.as_str())
            .unwrap_or_else(|| panic!("{} has no password for {email}", self.users_file.display()))
    }

    /// `https://127.0.0.1:PORT`, for the relative URLs of Dex's pages.
    fn origin(&self) -> &str {
        let host_start = self.issuer.find("://").map_or(0, |i| i + 3);
        let path_start = self.issuer[host_start..].find('/').map_or(self.issuer.len(), |i| host_start + i);
        &self.issuer[..path_start]
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') { format!("{}{url}", self.origin()) } else { url.to_owned() }
    }
}

// --- HTTP with curl --------------------------------------------------------------------------------------------------

/// What one request got back.
struct Reply {
    status: u16,
    /// The Location of a redirect (absolute), which is not followed.
    location: Option<String>,
    body: String,
}

impl Reply {
    fn expect_status(self, status: u16, what: &str) -> Self {
        assert_eq!(
            self.status, status,
            "{what} answered {} (Location {:?}):\n{}",
            self.status, self.location, self.body
        );
        self
    }

    fn json(&self, what: &str) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{what} answered no JSON ({e}):\n{}", self.body))
    }
}

/// A value in curl's configuration syntax.
fn curl_quote(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\r', "\\r");
    format!("\"{escaped}\"")
}

/// One request, as a browser makes it, with the cookie jar `jar` if any; redirects are not followed. `options` are
/// further curl options (name, value), such as `data-raw` for a form or `user` for the client's credentials.
fn try_http(ca: &str, jar: Option<&Path>, url: &str, options: &[(&str, &str)]) -> Result<Reply, String> {
    const MARK: &str = "\n--caas-oidc-test-status-- ";
    let mut config = String::from("silent\nshow-error\nmax-time = 20\n");
    config += &format!("url = {}\ncacert = {}\n", curl_quote(url), curl_quote(ca));
    config += &format!("write-out = {}\n", curl_quote(&format!("{MARK}%{{http_code}} %{{redirect_url}}")));
    if let Some(jar) = jar {
        let jar = jar.to_string_lossy();
        config += &format!("cookie = {}\ncookie-jar = {}\n", curl_quote(&jar), curl_quote(&jar));
    }
    for (name, value) in options {
        config += &format!("{name} = {}\n", curl_quote(value));
    }
    let mut child = Command::new("curl")
        .args(["--config", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    child
        .stdin
        .take()
        .expect("curl's standard input")
        .write_all(config.as_bytes())
        .map_err(|e| format!("cannot give curl its options: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("curl: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("curl {url} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    let (body, status_line) =
        stdout.rsplit_once(MARK).ok_or_else(|| format!("curl {url} printed no status:\n{stdout}"))?;
    let (status, location) = status_line.split_once(' ').unwrap_or((status_line, ""));
    Ok(Reply {
        status: status.trim().parse().map_err(|e| format!("curl {url}: status {status:?}: {e}"))?,
        location: Some(location.trim()).filter(|l| !l.is_empty()).map(str::to_owned),
        body: body.to_owned(),
    })
}

fn http(ca: &str, jar: Option<&Path>, url: &str, options: &[(&str, &str)]) -> Reply {
    try_http(ca, jar, url, options).unwrap_or_else(|e| panic!("{e}"))
}

/// Percent-encoding for a query or a form: everything but the unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(name, value)| format!("{name}={}", encode(value))).collect::<Vec<_>>().join("&")
}

/// The query parameters of a URL.
fn query(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn random_text() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

// --- the browser's side of the flow ----------------------------------------------------------------------------------

/// One login as a browser and the dashboard go through it: PKCE verifier, state, nonce and a cookie jar of its own.
struct Login<'a> {
    provider: &'a Provider,
    verifier: String,
    state: String,
    nonce: String,
    jar: PathBuf,
}

impl Drop for Login<'_> {
    fn drop(&mut self) {
        std::fs::remove_file(&self.jar).ok();
    }
}

impl<'a> Login<'a> {
    fn new(provider: &'a Provider) -> Self {
        Login {
            provider,
            verifier: random_text(),
            state: random_text(),
            nonce: random_text(),
            jar: PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("oidc-cookies-{:016x}", rand::random::<u64>())),
        }
    }

    /// The authorization request the dashboard redirects the browser to.
    fn authorization_url(&self, scope: &str) -> String {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()));
        let p = self.provider;
        format!(
            "{}?{}",
            p.authorization_endpoint,
            form(&[
                ("client_id", &p.client_id),
                ("redirect_uri", &p.redirect_uri),
                ("response_type", "code"),
                ("scope", scope),
                ("state", &self.state),
                ("nonce", &self.nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
        )
    }

    fn get(&self, url: &str) -> Reply {
        http(&self.provider.ca, Some(&self.jar), url, &[])
    }

    /// Follows redirects from `reply` until one leads back to the client (its Location is returned) or a page is
    /// shown (then None and the page).
    fn follow(&self, mut reply: Reply, mut url: String) -> (Option<String>, Reply, String) {
        for _ in 0..10 {
            let Some(location) = reply.location.clone().filter(|_| (300..400).contains(&reply.status)) else {
                return (None, reply, url);
            };
            if location.starts_with(&self.provider.redirect_uri) {
                return (Some(location), reply, url);
            }
            url = self.provider.absolute(&location);
            reply = self.get(&url);
        }
        panic!("more than 10 redirects from Dex, the last to {url}");
    }

    /// From the authorization endpoint to Dex's login form: the form's absolute action URL.
    fn login_form(&self, scope: &str) -> String {
        let url = self.authorization_url(scope);
        let first = self.get(&url);
        let (back, page, page_url) = self.follow(first, url);
        assert!(back.is_none(), "Dex sent the browser back to the client before any login: {back:?}");
        let page = page.expect_status(200, &page_url);
        assert!(
            page.body.contains("name=\"login\"") && page.body.contains("name=\"password\""),
            "{page_url} is not Dex's login form:\n{}",
            page.body
        );
        self.provider.absolute(&form_action(&page.body, &page_url))
    }

    /// Posts the login form with `email` and `password`.
    fn submit(&self, action: &str, email: &str, password: &str) -> Reply {
        let fields = form(&[("login", email), ("password", password)]);
        http(&self.provider.ca, Some(&self.jar), action, &[("data-raw", &fields)])
    }

    /// The whole browser side for `email`: the redirect back to the client, checked for its state; returns the code.
    fn code(&self, email: &str, scope: &str) -> String {
        let action = self.login_form(scope);
        let posted = self.submit(&action, email, self.provider.password(email));
        let (back, page, url) = self.follow(posted, action);
        let back = back.unwrap_or_else(|| {
            panic!(
                "the login of {email} did not lead back to the client; {url} answered {}:\n{}",
                page.status, page.body
            )
        });
        let params = query(&back);
        assert_eq!(params.get("state"), Some(&self.state), "the redirect to the client carries another state: {back}");
        params.get("code").cloned().unwrap_or_else(|| panic!("the redirect to the client carries no code: {back}"))
    }

    /// The code exchanged at the token endpoint with the client's secret (HTTP basic) and `verifier`.
    fn exchange(&self, code: &str, verifier: &str) -> Reply {
        let p = self.provider;
        let fields = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &p.redirect_uri),
            ("code_verifier", verifier),
        ]);
        let credentials = format!("{}:{}", p.client_id, p.secret);
        http(&p.ca, None, &p.token_endpoint, &[("data-raw", &fields), ("user", &credentials)])
    }
}

/// The action of the page's (first) form, its HTML entities undone.
fn form_action(html: &str, url: &str) -> String {
    let form = html.find("<form").map(|i| &html[i..]).unwrap_or_else(|| panic!("{url} has no form:\n{html}"));
    let action = form
        .split_once("action=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(action, _)| action)
        .unwrap_or_else(|| panic!("the form of {url} has no action:\n{html}"));
    action.replace("&amp;", "&").replace("&#43;", "+").replace("&#34;", "\"")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970").as_secs()
}

/// The ID token checked as the dashboard must check it: its signature against the JWKS (by its key id), RS256, the
/// issuer, the audience (the client) and the expiry. Returns its claims.
fn verify_id_token(p: &Provider, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let header = jsonwebtoken::decode_header(token)?;
    assert_eq!(header.alg, Algorithm::RS256, "the ID token is not signed with RS256");
    let kid = header.kid.expect("the ID token's header has no key id");
    let jwks: JwkSet = serde_json::from_str(&http(&p.ca, None, &p.jwks_uri, &[]).expect_status(200, &p.jwks_uri).body)
        .unwrap_or_else(|e| panic!("{} is no JWK set: {e}", p.jwks_uri));
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("the JWKS {} has no key {kid}", p.jwks_uri));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&p.issuer]);
    validation.set_audience(&[&p.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

/// A full login of `email` with `scope`: the code, the exchange, the ID token verified. Returns its claims.
fn log_in(p: &Provider, email: &str, scope: &str) -> Value {
    let login = Login::new(p);
    let code = login.code(email, scope);
    let tokens = login.exchange(&code, &login.verifier).expect_status(200, &p.token_endpoint).json(&p.token_endpoint);
    let id_token =
        tokens["id_token"].as_str().unwrap_or_else(|| panic!("the token endpoint gave no ID token: {tokens}"));
    let claims =
        verify_id_token(p, id_token).unwrap_or_else(|e| panic!("the ID token of {email} does not verify: {e}"));
    assert_eq!(claims["email"], email, "the ID token is not {email}'s: {claims}");
    assert_eq!(claims["email_verified"], true, "{claims}");
    assert_eq!(claims["nonce"], login.nonce.as_str(), "the ID token carries another nonce: {claims}");
    let exp = claims["exp"].as_u64().unwrap_or_default();
    assert!(exp > now() && exp <= now() + 24 * 3600 + 60, "the ID token expires at {exp}, now is {}", now());
    claims
}

// --- the tests -------------------------------------------------------------------------------------------------------

#[test]
fn authorization_code_with_pkce_gives_a_verified_id_token() {
    let _turn = one_at_a_time();
    let p = up();
    assert!(p.issuer.starts_with("https://127.0.0.1:") && p.issuer.ends_with("/dex"), "issuer {}", p.issuer);
    assert_eq!(p.client_id, "caas-dashboard");

    let claims = log_in(&p, "alice@example.test", "openid email profile groups");
    assert_eq!(claims["name"], "Alice", "{claims}");
    let groups: Vec<&str> = claims["groups"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    assert_eq!(groups, ["caas-admins", "team-a"], "alice's groups: {claims}");

    // Bob's password works as well, and his token is his.
    let claims = log_in(&p, "bob@example.test", "openid email");
    assert!(claims.get("groups").is_none(), "groups without the groups scope: {claims}");

    // The signature is what the verification rests on: the same token with another email is refused.
    let login = Login::new(&p);
    let code = login.code("alice@example.test", "openid email");
    let tokens =
        login.exchange(&code, &login.verifier).expect_status(200, &p.token_endpoint).json("the token endpoint");
    let token = tokens["id_token"].as_str().expect("an ID token");
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.decode(parts[1]).expect("the payload is base64url");
    let mut payload: Value = serde_json::from_slice(&payload).expect("the payload is JSON");
    payload["email"] = "bob@example.test".into();
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
    let refused = verify_id_token(&p, &forged).expect_err("a token whose payload was changed verifies");
    assert_eq!(refused.kind(), &ErrorKind::InvalidSignature);
}

#[test]
fn wrong_password_wrong_verifier_and_unknown_scope_are_refused() {
    let _turn = one_at_a_time();
    let p = up();

    // A wrong password: Dex's login form again, with its error, and no way back to the client.
    let login = Login::new(&p);
    let action = login.login_form("openid email");
    let refused = login.submit(&action, "alice@example.test", "not-alice's-password");
    assert!(refused.location.is_none(), "a wrong password was redirected to {:?}", refused.location);
    assert_eq!(refused.status, 401, "a wrong password:\n{}", refused.body);
    assert!(
        refused.body.contains("name=\"password\"") && refused.body.contains("login-error"),
        "a wrong password did not get the login form with its error:\n{}",
        refused.body
    );
    assert!(!refused.body.contains("code="), "{}", refused.body);

    // A wrong PKCE verifier: the token endpoint refuses the code.
    let login = Login::new(&p);
    let code = login.code("alice@example.test", "openid email");
    let refused = login.exchange(&code, &random_text());
    assert_eq!(refused.status, 400, "a wrong verifier:\n{}", refused.body);
    assert_eq!(refused.json("the token endpoint")["error"], "invalid_grant", "{}", refused.body);
    assert!(!refused.body.contains("id_token"), "{}", refused.body);

    // A scope Dex does not know (UAA's): the browser goes back to the client with invalid_scope and no code.
    let login = Login::new(&p);
    let url = login.authorization_url(&format!("openid {UAA_SCOPE}"));
    let first = login.get(&url);
    let (back, page, page_url) = login.follow(first, url);
    let back = back.unwrap_or_else(|| {
        panic!(
            "an unknown scope got {page_url} answering {} instead of a redirect to the client:\n{}",
            page.status, page.body
        )
    });
    let params = query(&back);
    assert_eq!(params.get("error").map(String::as_str), Some("invalid_scope"), "{back}");
    assert!(params.get("error_description").is_some_and(|d| d.contains(UAA_SCOPE)), "{back}");
    assert!(!params.contains_key("code"), "{back}");
}

#[test]
fn secrets_stay_in_their_files() {
    let _turn = one_at_a_time();
    let p = up();
    // A login first, so that the log holds what a login writes.
    log_in(&p, "alice@example.test", "openid email");
    for file in [&p.secret_file, &p.users_file] {
        let mode = std::fs::metadata(file).expect("the file exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
    }
    assert!(p.secret.len() >= 32, "the client secret is short");
    let log = dex(&["logs", "dex"]);
    for secret in std::iter::once(&p.secret).chain(p.users.iter().map(|(_, password)| password)) {
        assert!(!p.env_text.contains(secret.as_str()), "`env` prints a secret:\n{}", p.env_text);
        assert!(!log.contains(secret.as_str()), "Dex's log holds a secret");
    }
}

#[test]
fn down_stops_dex_and_up_brings_it_back() {
    let _turn = one_at_a_time();
    let before = up();
    let kids = |p: &Provider| {
        let jwks = http(&p.ca, None, &p.jwks_uri, &[]).expect_status(200, &p.jwks_uri).json(&p.jwks_uri);
        jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let kids_before = kids(&before);

    dex(&["down"]);
    let status = dex(&["status"]);
    assert!(status.contains("dex stopped"), "after down, status says:\n{status}");
    let discovery = format!("{}/.well-known/openid-configuration", before.issuer);
    let gone = try_http(&before.ca, None, &discovery, &[]);
    assert!(gone.is_err(), "{discovery} still answers after down");

    let after = up();
    assert_eq!(after.issuer, before.issuer, "the issuer changed though its port was free");
    let kids_after = kids(&after);
    assert!(
        kids_before.iter().all(|kid| kids_after.contains(kid)),
        "the signing keys did not outlive the restart: {kids_before:?} then {kids_after:?}"
    );
    log_in(&after, "alice@example.test", "openid email");
}
