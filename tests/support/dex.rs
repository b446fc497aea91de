//! The OpenID Connect provider of the tests (`tests/oidc/dex.sh`: Dex on loopback) as a test meets it: started with
//! the redirect URIs it must know, described by `dex.sh env`, and logged in to as a browser does.

use std::time::Duration;

use super::http::form_encode;

/// The test provider as `dex.sh env` describes it.
pub struct Dex {
    pub issuer: String,
    pub ca_file: std::path::PathBuf,
    pub client_id: String,
    pub secret: String,
    /// email → password.
    pub users: std::collections::HashMap<String, String>,
    /// The first redirect URI Dex knows for the client: the dashboard's base URL is made to match it.
    pub redirect_uri: String,
    pub http: reqwest::Client,
}

fn dex_script(args: &[&str], redirect_uris: Option<&str>) -> Result<String, String> {
    let mut command = std::process::Command::new("bash");
    command.arg("tests/oidc/dex.sh").args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    command.stdin(std::process::Stdio::null());
    match redirect_uris {
        Some(uris) => command.env("CAAS_OIDC_REDIRECT_URIS", uris),
        None => command.env_remove("CAAS_OIDC_REDIRECT_URIS"),
    };
    let out = command.output().map_err(|e| format!("cannot run dex.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!("dex.sh {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn env_vars(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.replace('\\', "")))
        .collect()
}

/// Dex up, keeping the redirect URIs it has (so that `up` does not restart it under another test), then described.
pub fn dex() -> Dex {
    dex_knowing(None)
}

/// The redirect URIs Dex knows (from its state, running or not).
fn known_redirect_uris() -> Vec<String> {
    let known = dex_script(&["env"], None).ok().map(|text| env_vars(&text)).unwrap_or_default();
    known
        .get("CAAS_OIDC_REDIRECT_URIS")
        .map(|uris| uris.split(',').filter(|uri| !uri.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A loopback listener for a dashboard Dex sends its users back to (`<its URL>/auth/callback`), and Dex knowing it:
/// a port Dex already knows from an earlier run when one is free, so that runs do not grow Dex's list and restart it,
/// otherwise a new one. Never the README's dashboard port (8081).
pub fn listener_known_to_dex() -> (std::net::TcpListener, Dex) {
    for uri in known_redirect_uris() {
        let Some(address) = uri.strip_prefix("http://127.0.0.1:").and_then(|rest| rest.strip_suffix("/auth/callback"))
        else {
            continue;
        };
        if address == "8081" {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(format!("127.0.0.1:{address}")) {
            return (listener, dex_knowing(None));
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a dashboard for Dex");
    let address = listener.local_addr().expect("address");
    (listener, dex_knowing(Some(&format!("http://{address}/auth/callback"))))
}

/// Dex up, knowing the redirect URI `also` besides those it has (a change restarts it), then described.
pub fn dex_knowing(also: Option<&str>) -> Dex {
    let mut uris = known_redirect_uris();
    if let Some(uri) = also.filter(|uri| !uris.iter().any(|known| known == uri)) {
        uris.push(uri.to_owned());
    }
    let uris = uris.join(",");
    dex_script(&["up"], Some(&uris).filter(|uris| !uris.is_empty()).map(String::as_str))
        .unwrap_or_else(|e| panic!("{e}"));
    let vars = env_vars(&dex_script(&["env"], None).unwrap_or_else(|e| panic!("{e}")));
    let var = |name: &str| vars.get(name).cloned().unwrap_or_else(|| panic!("dex.sh env printed no {name}"));
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let users = read(&var("CAAS_OIDC_USERS_FILE"))
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(email, password)| (email.to_owned(), password.to_owned()))
        .collect();
    let ca_file = std::path::PathBuf::from(var("CAAS_OIDC_CA_FILE"));
    let ca = reqwest::Certificate::from_pem(read(&var("CAAS_OIDC_CA_FILE")).as_bytes()).expect("Dex's CA");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client");
    Dex {
        issuer: var("CAAS_OIDC_ISSUER"),
        ca_file,
        client_id: var("CAAS_OIDC_CLIENT_ID"),
        secret: read(&var("CAAS_OIDC_CLIENT_SECRET_FILE")).trim().to_owned(),
        users,
        redirect_uri: var("CAAS_OIDC_REDIRECT_URIS").split(',').next().unwrap_or_default().to_owned(),
        http,
    }
}

impl Dex {
    /// The dashboard's base URL that makes its callback the redirect URI Dex knows.
    pub fn base_url(&self) -> String {
        self.redirect_uri
            .strip_suffix("/auth/callback")
            .unwrap_or_else(|| panic!("Dex's redirect URI {} is not a dashboard's /auth/callback", self.redirect_uri))
            .to_owned()
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            let origin_end = self.issuer.find("/dex").expect("the issuer's path");
            format!("{}{location}", &self.issuer[..origin_end])
        } else {
            location.to_owned()
        }
    }

    /// A browser at Dex from the dashboard's redirect `authorization_url` to the redirect back to the dashboard: its
    /// path and query (on the dashboard), after logging in as `email`.
    pub async fn log_in(&self, authorization_url: &str, email: &str) -> String {
        let mut cookies: Vec<String> = Vec::new();
        let mut url = authorization_url.to_owned();
        let mut posted = false;
        for _ in 0..12 {
            let answer = self.http.get(&url).header("cookie", cookies.join("; ")).send().await.expect("Dex answers");
            remember(&mut cookies, &answer);
            let status = answer.status().as_u16();
            if (300..400).contains(&status) {
                let location = answer.headers()["location"].to_str().expect("location").to_owned();
                if let Some(back) = location.strip_prefix(&self.base_url()) {
                    return back.to_owned();
                }
                url = self.absolute(&location);
                continue;
            }
            let page = answer.text().await.expect("page");
            assert_eq!(status, 200, "{url}: {page}");
            assert!(!posted, "Dex showed a page after the login: {page}");
            let action = form_action(&page);
            let password = self.users.get(email).unwrap_or_else(|| panic!("no password for {email}"));
            let body = format!("login={}&password={}", form_encode(email), form_encode(password));
            let answer = self
                .http
                .post(self.absolute(&action))
                .header("cookie", cookies.join("; "))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("Dex takes the login");
            remember(&mut cookies, &answer);
            let location = answer.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_owned);
            let location = location.unwrap_or_else(|| panic!("the login of {email} was not accepted"));
            if let Some(back) = location.strip_prefix(&self.base_url()) {
                return back.to_owned();
            }
            url = self.absolute(&location);
            posted = true;
        }
        panic!("more than 12 steps at Dex from {authorization_url}");
    }
}

fn remember(cookies: &mut Vec<String>, answer: &reqwest::Response) {
    for value in answer.headers().get_all("set-cookie") {
        if let Some(pair) = value.to_str().ok().and_then(|v| v.split(';').next()) {
            let name = pair.split('=').next().unwrap_or_default().to_owned();
            cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            cookies.push(pair.to_owned());
        }
    }
}

/// The action of a page's first form, its HTML entities undone.
fn form_action(html: &str) -> String {
    let form = &html[html.find("<form").unwrap_or_else(|| panic!("no form in {html}"))..];
    let (_, rest) = form.split_once("action=\"").expect("the form's action");
    let (action, _) = rest.split_once('"').expect("the form's action");
    action.replace("&amp;", "&").replace("&#43;", "+")
}

impl Dex {
    /// The dashboard's settings for signing members in through this provider.
    pub fn oidc_settings(&self) -> caas_broker::config::OidcSettings {
        caas_broker::config::OidcSettings {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.secret.clone(),
            scopes: "openid email profile".to_owned(),
            user_claim: "email".to_owned(),
            ca_file: Some(self.ca_file.clone()),
        }
    }

    /// The dashboard's settings for Cloud Foundry's sign-on with this provider as UAA and the Cloud Controller at
    /// `api_url`. Dex refuses UAA's scopes (`cloud_controller_service_permissions.read`): scopes are configuration.
    pub fn cf_sso_settings(&self, api_url: &str) -> caas_broker::config::CfSsoSettings {
        caas_broker::config::CfSsoSettings {
            issuer: self.issuer.clone(),
            client_id: Some(self.client_id.clone()),
            client_secret: self.secret.clone(),
            scopes: "openid email profile".to_owned(),
            api_url: api_url.to_owned(),
            ca_file: Some(self.ca_file.clone()),
        }
    }
}
