//! noVNC of a streaming session without an Ingress (`protocol: novnc`), served through the dashboard as
//! [`super::session_proxy`] describes: a file is passed on only when it is byte for byte a file of noVNC 1.3.0
//! (Debian's `novnc` 1:1.3.0-1, what the session image installs), checked against the SHA-256 list in
//! `static/novnc-1.3.0.sha256` (made with `cd /usr/share/novnc && find -L . -type f | LC_ALL=C sort | xargs sha256sum`).
//! The browser presents the VNC password itself (noVNC reads it from its page's fragment). A session image with another
//! noVNC is refused here, and reached through its Ingress instead.

use axum::extract::{Path, Request, State};
use axum::response::Response;

use super::DashboardState;
use super::page_error::PageError;
use super::paths::NovncAsset;
use super::respond::PartVisit;
use super::session_proxy::{self, FileList, WebClient};

/// GET /instances/:instance_id/sessions/:session_id/novnc/*asset — a noVNC file, or its WebSocket.
pub async fn proxy(
    State(state): State<DashboardState>,
    Path(NovncAsset { instance_id, session_id, asset }): Path<NovncAsset>,
    visit: PartVisit,
    request: Request,
) -> Result<Response, PageError> {
    session_proxy::pass(&state, &NOVNC, (&instance_id, &session_id, &asset), visit, request).await
}

/// noVNC 1.3.0 as the dashboard passes it on; the browser presents the VNC password itself.
static NOVNC: WebClient = WebClient {
    name: "noVNC 1.3.0",
    files: &NOVNC_FILES,
    page: NOVNC_PAGE,
    pages: &NOVNC_PAGES,
    socket: "websockify",
    credential: None,
    own: &[],
    unknown: |text| text.session_novnc_unknown,
};

/// noVNC 1.3.0's page (`vnc.html`, MPL-2.0), as Debian's package has it.
const NOVNC_PAGE: &[u8] = include_bytes!("static/novnc-1.3.0-vnc.html");
/// The names noVNC's page has (`vnc_auto.html` is a link to `vnc.html`).
const NOVNC_PAGES: [&str; 2] = ["vnc.html", "vnc_auto.html"];

/// noVNC 1.3.0's files: path (relative to its web root) → SHA-256, hex.
static NOVNC_FILES: FileList = FileList::new(|| session_proxy::file_list(include_str!("static/novnc-1.3.0.sha256")));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_novncs_own_bytes_are_passed_on_with_the_type_of_their_name() {
        let page = include_bytes!("static/novnc-1.3.0.sha256");
        assert_eq!(NOVNC_FILES.len(), 117, "the list has every file of the package");
        assert!(NOVNC_FILES.contains_key("vnc.html") && NOVNC_FILES.contains_key("app/ui.js"));
        assert_eq!(session_proxy::known_file(&NOVNC_FILES, "vnc.html", page), None, "other bytes under a known name");
        assert_eq!(session_proxy::known_file(&NOVNC_FILES, "evil.html", b""), None, "a name noVNC does not have");
        for name in NOVNC_PAGES {
            assert_eq!(
                session_proxy::known_file(&NOVNC_FILES, name, NOVNC_PAGE),
                Some("text/html; charset=utf-8"),
                "the page's own copy is noVNC's"
            );
        }
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(NOVNC_FILES.values().all(|hash| hash.len() == 64 && *hash != empty));
    }
}
