//! A streaming session as the tenant signed in to its virtual cluster sees it: where it stands (the same words the
//! platform's `last_operation` gives), its plan and resolution, the pod whose SteamCMD step installs it, and where a
//! browser reaches its noVNC page. Only sessions placed in the tenant's own virtual cluster are found; the VNC password
//! is read with the tenant's own client, so Kubernetes decides who sees it (whoever may `get secrets` there).

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use percent_encoding::utf8_percent_encode;

use super::apps::user_error;
use crate::k8s::workload::{STREAM_PORT, StreamProtocol, VNC_PASSWORD_KEY};
use crate::lifecycle::model::LastOperation;
use crate::lifecycle::{Broker, Error, Result, Tenant, URL_COMPONENT};

/// The name of the SteamCMD init container of a session that installs its application.
pub const INSTALL_CONTAINER: &str = "steamcmd";

/// One streaming session of the signed-in tenant's virtual cluster.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The session instance's id.
    pub instance_id: String,
    /// Its offering, as the catalog names it.
    pub service_name: String,
    /// Its plan, as the catalog names it.
    pub plan_name: String,
    /// Where it stands, as the platform reads it.
    pub state: LastOperation,
    /// Whether it was asked to be stopped, or stopped for want of a viewer (its volume is kept).
    pub stopped: bool,
    /// The minutes without a viewer after which the broker stopped it, while it is stopped for that: the page says
    /// "stopped after N minutes without a viewer", and Open wakes it.
    pub idle_stopped_after: Option<u32>,
    /// Its virtual display, `WIDTHxHEIGHT`.
    pub resolution: String,
    /// The name of its StatefulSet and Service.
    pub name: String,
    /// Its one pod.
    pub pod: String,
    /// Whether a SteamCMD step installs its application (else the image holds it).
    pub installs: bool,
    /// The host of its Ingress, if it has one: where a browser reaches its noVNC page.
    pub ingress_host: Option<String>,
    /// Whether it streams with Selkies (else noVNC).
    pub selkies: bool,
}

impl SessionView {
    /// Where Open sends the browser: the noVNC page behind the session's Ingress when it has one, otherwise the
    /// dashboard's own proxy at `proxied` (the path the dashboard serves this session's noVNC under). `password` goes
    /// in the URL's fragment: a browser sends no fragment to any server, so it stays out of every access log, and
    /// noVNC reads its settings from the fragment before the query.
    pub fn novnc_url(&self, password: &str, proxied: &str) -> String {
        let password = utf8_percent_encode(password, URL_COMPONENT);
        match &self.ingress_host {
            Some(host) => format!("https://{host}/vnc.html#autoconnect=1&resize=remote&password={password}"),
            None => {
                // noVNC opens its WebSocket at `/<path>` of the page's own host.
                let socket = format!("{}/websockify", proxied.trim_start_matches('/'));
                let socket = utf8_percent_encode(&socket, URL_COMPONENT);
                format!("{proxied}/vnc.html#autoconnect=1&resize=remote&path={socket}&password={password}")
            }
        }
    }

    /// The page the session page frames to show a Selkies stream: Selkies' page behind the session's Ingress, given
    /// the password (its client reads its token from the URL's fragment, which a browser sends to no server), or else
    /// the dashboard's proxy at `proxied` (which presents the password itself).
    pub fn selkies_url(&self, password: Option<&str>, proxied: &str) -> Option<String> {
        match (&self.ingress_host, password) {
            (Some(host), Some(password)) => {
                Some(format!("https://{host}/#token={}", utf8_percent_encode(password, URL_COMPONENT)))
            }
            (Some(_), None) => None,
            (None, _) => Some(format!("{proxied}/index.html")),
        }
    }
}

/// The apiserver's proxy path of `asset` (a path under the web client's root, e.g. `app/ui.js` of noVNC or
/// `api/websockets` of Selkies) of the Service `service` in `namespace` — that Service's stream port and nothing else:
/// `None` for a path that could leave it (`..`, `.`, empty segments, anything but letters, digits, `-`, `_` and `.`).
fn stream_proxy_path(namespace: &str, service: &str, asset: &str) -> Option<String> {
    let safe = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if asset.len() > 512 || !asset.split('/').all(safe) {
        return None;
    }
    Some(format!("/api/v1/namespaces/{namespace}/services/{service}:{STREAM_PORT}/proxy/{asset}"))
}

/// The streaming session `session_id` of the signed-in tenant's virtual cluster; not found alike for an id that is no
/// session and a session of another virtual cluster.
pub async fn view(lifecycle: &Broker, tenant: &Tenant, session_id: &str) -> Result<SessionView> {
    let (plan, session) = lifecycle.streaming_session(tenant, session_id).await?;
    let name = session.workload.name.clone();
    Ok(SessionView {
        instance_id: plan.instance_id,
        service_name: plan.service_name,
        plan_name: plan.plan_name,
        state: plan.state,
        stopped: !session.workload.running,
        idle_stopped_after: plan.idle_stopped_after,
        resolution: session.resolution.clone(),
        pod: format!("{name}-0"),
        name,
        installs: session.steam_app_id.is_some(),
        ingress_host: session.workload.ingress_host.clone(),
        selkies: session.protocol == StreamProtocol::Selkies,
    })
}

/// The VNC password of the session `session_id`, read with the tenant's own client: refused (denied) when Kubernetes
/// does not let the tenant's identity read the session's Secret.
pub async fn password(lifecycle: &Broker, user: &Client, tenant: &Tenant, session_id: &str) -> Result<String> {
    let session = lifecycle.streaming_session_objects(tenant, session_id).await?;
    let secret = Api::<Secret>::namespaced(user.clone(), &tenant.namespace)
        .get(&session.vnc_secret_name())
        .await
        .map_err(user_error)?;
    let password = secret.data.and_then(|data| data.get(VNC_PASSWORD_KEY).map(|p| p.0.clone()));
    password
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::Concurrency("the session's password is not there yet; retry".to_owned()))
}

/// The apiserver's proxy path of `asset` of the stream of the session `session_id` of the signed-in tenant's virtual
/// cluster (without reading its state: a web client asks for dozens of files); not found for another cluster's session
/// and for a path that could leave that session's Service and stream port.
pub async fn stream_path(lifecycle: &Broker, tenant: &Tenant, session_id: &str, asset: &str) -> Result<String> {
    let session = lifecycle.streaming_session_objects(tenant, session_id).await?;
    stream_proxy_path(&tenant.namespace, &session.workload.name, asset)
        .ok_or_else(|| Error::NotFound(format!("the session's stream has no file {asset:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::model::OperationState;

    fn view(ingress_host: Option<&str>) -> SessionView {
        SessionView {
            instance_id: "s".to_owned(),
            service_name: "streaming-session".to_owned(),
            plan_name: "cpu-720p".to_owned(),
            state: LastOperation::new(OperationState::Succeeded, "1 of 1 pods ready"),
            stopped: false,
            idle_stopped_after: None,
            resolution: "1280x720".to_owned(),
            name: "session-s".to_owned(),
            pod: "session-s-0".to_owned(),
            installs: true,
            ingress_host: ingress_host.map(str::to_owned),
            selkies: false,
        }
    }

    #[test]
    fn the_password_goes_in_the_fragment_only() {
        let url = view(Some("play.example.com")).novnc_url("a&b#c", "/instances/i/sessions/s/novnc");
        assert_eq!(url, "https://play.example.com/vnc.html#autoconnect=1&resize=remote&password=a%26b%23c");
        let url = view(None).novnc_url("pw", "/instances/i/sessions/s/novnc");
        assert_eq!(
            url,
            "/instances/i/sessions/s/novnc/vnc.html#autoconnect=1&resize=remote\
             &path=instances%2Fi%2Fsessions%2Fs%2Fnovnc%2Fwebsockify&password=pw"
        );
        assert!(!url.contains('?'), "nothing a server would log");
    }

    #[test]
    fn selkies_is_framed_from_the_ingress_with_its_token_in_the_fragment_or_through_the_proxy() {
        let proxied = "/instances/i/sessions/s/stream";
        let url = view(Some("play.example.com")).selkies_url(Some("a&b#c"), proxied);
        assert_eq!(url.as_deref(), Some("https://play.example.com/#token=a%26b%23c"));
        assert_eq!(view(Some("play.example.com")).selkies_url(None, proxied), None, "no password, no Ingress frame");
        let url = view(None).selkies_url(None, proxied);
        assert_eq!(
            url.as_deref(),
            Some("/instances/i/sessions/s/stream/index.html"),
            "the password stays with the dashboard"
        );
    }

    #[test]
    fn the_proxy_reaches_the_sessions_novnc_port_only() {
        assert_eq!(
            stream_proxy_path("caas-t", "session-s", "app/ui.js").as_deref(),
            Some("/api/v1/namespaces/caas-t/services/session-s:6080/proxy/app/ui.js")
        );
        assert!(stream_proxy_path("caas-t", "session-s", "websockify").is_some());
        for escape in ["../../secrets", "app/../../x", "./vnc.html", "", "app//ui.js", "a%2F..", "a?b", "a b", "/etc"] {
            assert_eq!(stream_proxy_path("caas-t", "session-s", escape), None, "{escape}");
        }
    }
}
