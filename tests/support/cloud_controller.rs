//! A stand-in for the one Cloud Controller endpoint the dashboard's Cloud Foundry sign-on calls, for tests: it
//! identifies the user from the bearer token through the real provider's userinfo endpoint, so only a token the
//! provider issued works, and answers the permissions a test set.

use std::sync::Arc;

use serde_json::json;

use super::dex::Dex;

/// What the stand-in Cloud Controller answers: (instance guid, email) → (read, manage).
pub type PermissionTable = Arc<std::sync::Mutex<std::collections::HashMap<(String, String), (bool, bool)>>>;

/// `GET /v3/service_instances/:guid/permissions` as the Cloud Controller answers it, the user identified from the
/// bearer token by Dex's userinfo endpoint (so only a token Dex issued works), the permissions from `table`.
pub async fn stand_in_cloud_controller(dex: &Dex, table: PermissionTable) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    let discovery: serde_json::Value = dex
        .http
        .get(format!("{}/.well-known/openid-configuration", dex.issuer))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    let userinfo = discovery["userinfo_endpoint"].as_str().expect("a userinfo endpoint").to_owned();
    let http = dex.http.clone();
    let permissions = move |Path(guid): Path<String>, headers: HeaderMap| {
        let (http, userinfo, table) = (http.clone(), userinfo.clone(), table.clone());
        async move {
            let Some(authorization) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
                return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "errors": [{ "title": "NotAuthenticated" }] })));
            };
            let user = http.get(&userinfo).header("authorization", authorization).send().await;
            let user: Option<serde_json::Value> = match user {
                Ok(answer) if answer.status().is_success() => answer.json().await.ok(),
                _ => None,
            };
            let Some(email) = user.as_ref().and_then(|u| u["email"].as_str()) else {
                return (StatusCode::UNAUTHORIZED, axum::Json(json!({ "errors": [{ "title": "InvalidAuthToken" }] })));
            };
            let table = table.lock().expect("table");
            let (read, manage) = table.get(&(guid, email.to_owned())).copied().unwrap_or((false, false));
            (StatusCode::OK, axum::Json(json!({ "read": read, "manage": manage })))
        }
    };
    let app = axum::Router::new().route("/v3/service_instances/{guid}/permissions", axum::routing::get(permissions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the stand-in");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the stand-in serves");
    });
    (url, server)
}
