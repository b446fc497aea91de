//! Every path of an instance's pages, as a type: the router takes its pattern ([`TypedPath::PATH`]), a handler
//! extracts its ids from the request, and a link to it is its `Display` — so a link and the route it leads to cannot
//! drift apart. Ids are percent-encoded with [`URL_COMPONENT`] in links, as everywhere in the broker's URLs.
//!
//! The paths implement [`TypedPath`] here rather than derive it: the derive encodes with the URL standard's
//! path-segment set, which leaves characters such as `:` `@` `+` `;` as they are.

use std::fmt::Display;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum_extra::routing::TypedPath;
use percent_encoding::utf8_percent_encode;

use crate::lifecycle::URL_COMPONENT;

/// Declares each path: a struct of its ids, its pattern, a link to it (each id encoded) and its extraction.
macro_rules! typed_paths {
    ($($(#[$doc:meta])* $name:ident($pattern:literal) { $($id:ident),+ })+) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
        pub struct $name {
            $(
                #[doc = concat!("The path's `", stringify!($id), "`, decoded.")]
                pub $id: String,
            )+
        }

        impl TypedPath for $name {
            const PATH: &'static str = $pattern;
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                $(let $id = utf8_percent_encode(&self.$id, URL_COMPONENT);)+
                write!(f, $pattern)
            }
        }

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = PathRejection;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PathRejection> {
                Path::<Self>::from_request_parts(parts, state).await.map(|Path(path)| path)
            }
        }
    )+};
}

typed_paths! {
    /// An instance's overview, and the base of its other pages.
    Overview("/instances/{instance_id}") { instance_id }
    /// The token sign-in form.
    Login("/instances/{instance_id}/login") { instance_id }
    /// Sign-in through the OpenID Connect provider.
    LoginOidc("/instances/{instance_id}/login/oidc") { instance_id }
    /// Sign-in through Cloud Foundry's UAA.
    LoginCf("/instances/{instance_id}/login/cf") { instance_id }
    /// A kubeconfig for the signed-in identity.
    Kubeconfig("/instances/{instance_id}/kubeconfig") { instance_id }
    /// The overview's alerts alone.
    Alerts("/instances/{instance_id}/alerts") { instance_id }
    /// The overview's CPU and memory card alone.
    Usage("/instances/{instance_id}/usage") { instance_id }
    /// The apps page.
    Apps("/instances/{instance_id}/apps") { instance_id }
    /// The autoscalers' state alone (what the live apps and workloads pages swap in).
    Autoscalers("/instances/{instance_id}/autoscalers") { instance_id }
    /// One action on an app (`resource`: `deployments` or `statefulsets`).
    AppAction("/instances/{instance_id}/apps/{resource}/{name}") { instance_id, resource, name }
    /// The deploy form.
    Deploy("/instances/{instance_id}/deploy") { instance_id }
    /// A deployed app's progress alone.
    DeployProgress("/instances/{instance_id}/deploy/progress") { instance_id }
    /// The endpoint tester.
    Try("/instances/{instance_id}/try") { instance_id }
    /// The workloads page.
    Workloads("/instances/{instance_id}/workloads") { instance_id }
    /// One kind's section of the workloads page.
    WorkloadsSection("/instances/{instance_id}/workloads/{kind}") { instance_id, kind }
    /// One object as YAML.
    Object("/instances/{instance_id}/objects/{kind}/{name}") { instance_id, kind, name }
    /// The logs of a workload's pods together.
    ObjectLogs("/instances/{instance_id}/objects/{kind}/{name}/logs") { instance_id, kind, name }
    /// The logs of a workload's pods together, followed.
    ObjectLogStream("/instances/{instance_id}/objects/{kind}/{name}/logs/stream") { instance_id, kind, name }
    /// The live stream.
    Live("/instances/{instance_id}/live") { instance_id }
    /// A pod's logs.
    PodLogs("/instances/{instance_id}/pods/{pod}/logs") { instance_id, pod }
    /// A pod's followed log.
    PodLogStream("/instances/{instance_id}/pods/{pod}/logs/stream") { instance_id, pod }
    /// A streaming session's page.
    StreamingSession("/instances/{instance_id}/sessions/{session_id}") { instance_id, session_id }
    /// A streaming session's password, revealed.
    SessionPassword("/instances/{instance_id}/sessions/{session_id}/password") { instance_id, session_id }
    /// Opens a streaming session's noVNC.
    SessionOpen("/instances/{instance_id}/sessions/{session_id}/open") { instance_id, session_id }
    /// A streaming session's state and controls alone.
    SessionCard("/instances/{instance_id}/sessions/{session_id}/card") { instance_id, session_id }
    /// The noVNC of a streaming session, through the dashboard: its files are under it (see [`NOVNC_ASSET`]).
    Novnc("/instances/{instance_id}/sessions/{session_id}/novnc") { instance_id, session_id }
    /// The Selkies stream of a streaming session, through the dashboard: its files are under it (see
    /// [`STREAM_ASSET`]).
    Stream("/instances/{instance_id}/sessions/{session_id}/stream") { instance_id, session_id }
    /// The members page.
    Members("/instances/{instance_id}/members") { instance_id }
    /// A member's change of role.
    MemberRole("/instances/{instance_id}/members/role") { instance_id }
    /// A member's removal.
    MemberRevoke("/instances/{instance_id}/members/revoke") { instance_id }
    /// One object's YAML editor, and its review or apply.
    ObjectEdit("/instances/{instance_id}/objects/{kind}/{name}/edit") { instance_id, kind, name }
    /// A terminal into a container of a pod.
    Terminal("/instances/{instance_id}/terminal/{pod}") { instance_id, pod }
    /// The WebSocket of a terminal.
    TerminalSocket("/instances/{instance_id}/terminal/{pod}/socket") { instance_id, pod }
    /// Adds a debug container to a pod.
    TerminalDebug("/instances/{instance_id}/terminal/{pod}/debug") { instance_id, pod }
    /// The events timeline (filtered by its query).
    Events("/instances/{instance_id}/events") { instance_id }
    /// The events timeline alone (what the live events page swaps in).
    EventsTimeline("/instances/{instance_id}/events/timeline") { instance_id }
    /// The search page (the query in `?q=`).
    Search("/instances/{instance_id}/search") { instance_id }
    /// The map of how the namespace's objects relate.
    Map("/instances/{instance_id}/map") { instance_id }
}

/// The route of a file (or the WebSocket) of a session's noVNC, under [`Novnc`]: the one path with a wildcard,
/// which no link is built to (noVNC's page asks for its files itself).
pub const NOVNC_ASSET: &str = "/instances/{instance_id}/sessions/{session_id}/novnc/{*asset}";

/// The ids of [`NOVNC_ASSET`].
#[derive(Debug, serde::Deserialize)]
pub struct NovncAsset {
    /// The instance.
    pub instance_id: String,
    /// The streaming session.
    pub session_id: String,
    /// The file, relative to noVNC's web root.
    pub asset: String,
}

/// The route of a file (or the WebSocket) of a session's Selkies client, under [`Stream`].
pub const STREAM_ASSET: &str = "/instances/{instance_id}/sessions/{session_id}/stream/{*asset}";

/// The ids of [`STREAM_ASSET`].
#[derive(Debug, serde::Deserialize)]
pub struct StreamAsset {
    /// The instance.
    pub instance_id: String,
    /// The streaming session.
    pub session_id: String,
    /// The file, relative to Selkies' web root (or its API, `api/...`).
    pub asset: String,
}

/// `path` with a query of `pairs`, each value percent-encoded as an id is.
pub fn with_query(path: impl Display, pairs: &[(&str, &str)]) -> String {
    let mut link = path.to_string();
    for (at, (name, value)) in pairs.iter().enumerate() {
        let separator = if at == 0 { '?' } else { '&' };
        link.push_str(&format!("{separator}{name}={}", utf8_percent_encode(value, URL_COMPONENT)));
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_every_id_as_a_url_component_and_routes_keep_their_patterns() {
        let action = AppAction { instance_id: "a b".into(), resource: "deployments".into(), name: "web<b>:1".into() };
        assert_eq!(action.to_string(), "/instances/a%20b/apps/deployments/web%3Cb%3E%3A1");
        assert_eq!(AppAction::PATH, "/instances/{instance_id}/apps/{resource}/{name}");
        let id = "x/../y@z+1~";
        assert_eq!(Overview { instance_id: id.into() }.to_string(), "/instances/x%2F..%2Fy%40z%2B1~");
        let done = with_query(Apps { instance_id: "i".into() }, &[("done", "stop"), ("app", "a b&c")]);
        assert_eq!(done, "/instances/i/apps?done=stop&app=a%20b%26c");
        assert!(NOVNC_ASSET.starts_with(Novnc::PATH));
        assert!(STREAM_ASSET.starts_with(Stream::PATH));
        let stream = Stream { instance_id: "i".into(), session_id: "s 1".into() };
        assert_eq!(stream.to_string(), "/instances/i/sessions/s%201/stream");
    }
}
