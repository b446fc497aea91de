//! The search page: a GET form that finds any object of the namespace by name or label, read as the signed-in user
//! (kinds they may not list are skipped; ConfigMaps and Secrets by name only), each result linking to its view.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::i18n::Translation;
use super::page_error::PageError;
use super::paths;
use super::reply::render;
use super::respond::{PageVisit, Visit};
use super::user_sessions::Session;
use crate::tenant::search::{self, Found, MAX_QUERY, Query as Wanted, QueryError, Results, Searched};

/// `?q=`, as the search form sends it.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: Option<String>,
}

/// One object found, as shown.
pub struct FoundView {
    /// Its kind's API resource name.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Its labels, `key=value, ...`.
    pub labels: String,
    /// Where its view is (ConfigMaps and Secrets have none).
    pub link: Option<String>,
}

/// The search page.
#[derive(Template)]
#[template(path = "search.html", config = "src/dashboard/askama.toml")]
struct SearchPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    action: String,
    q: String,
    max_query: usize,
    error: Option<&'static str>,
    /// What was found, once something was looked for.
    found: Option<Vec<FoundView>>,
    cut: bool,
}

fn found_view(instance_id: &str, found: Found) -> FoundView {
    let link = match found.kind {
        Searched::Shown(kind) => Some(paths::Object {
            instance_id: instance_id.to_owned(),
            kind: kind.as_str().to_owned(),
            name: found.name.clone(),
        }),
        Searched::ConfigMaps | Searched::Secrets => None,
    };
    FoundView {
        kind: found.kind.as_str(),
        labels: found.labels.join(", "),
        link: link.map(|link| link.to_string()),
        name: found.name,
    }
}

fn search_page<'a>(
    text: &'static Translation,
    session: &'a Session,
    q: String,
    error: Option<&'static str>,
    results: Option<Results>,
) -> SearchPage<'a> {
    let instance_id = &session.tenant.instance_id;
    let cut = results.as_ref().is_some_and(|results| results.cut);
    let found = results.map(|results| results.found.into_iter().map(|found| found_view(instance_id, found)).collect());
    let action = paths::Search { instance_id: instance_id.clone() }.to_string();
    SearchPage { text, session, action, q, max_query: MAX_QUERY, error, found, cut }
}

/// GET /instances/:instance_id/search — the form, and with `?q=` what it finds, read as the signed-in user.
pub async fn page(_: paths::Search, Query(query): Query<SearchQuery>, visit: PageVisit) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let q = query.q.unwrap_or_default();
    let (status, error, results) = match Wanted::parse(&q) {
        Ok(wanted) => {
            (StatusCode::OK, None, Some(search::search(&session.client, &session.tenant.namespace, &wanted).await?))
        }
        Err(QueryError::Empty) => (StatusCode::OK, None, None),
        Err(QueryError::TooLong) => (StatusCode::BAD_REQUEST, Some(text.search_too_long), None),
    };
    // A query too long is not shown back whole.
    let q = q.chars().take(MAX_QUERY).collect();
    Ok(render(status, &search_page(text, &session, q, error, results)))
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;
    use crate::tenant::objects::Kind;

    #[tokio::test]
    async fn results_link_to_views_secrets_by_name_only_and_the_box_is_labelled() {
        let session = super::super::user_sessions::test_session("inst-1");
        let found = vec![
            Found { kind: Searched::Shown(Kind::Pods), name: "web-1".into(), labels: vec!["app=web".into()] },
            Found { kind: Searched::Secrets, name: "web-tls".into(), labels: vec![] },
        ];
        let results = Results { found, cut: true };
        let html = search_page(&i18n::EN, &session, "web<".into(), None, Some(results)).render().expect("renders");
        assert!(html.contains(r#"<label for="q">"#) && html.contains(r#"id="q" name="q" value="web&#60;""#), "{html}");
        assert!(html.contains(r#"<a href="/instances/inst-1/objects/pods/web-1">web-1</a>"#), "{html}");
        assert!(html.contains("<td>Secret</td><td>web-tls</td>"), "a secret's name, unlinked: {html}");
        assert!(html.contains(i18n::EN.search_cut), "{html}");
        assert!(!html.contains("style="), "{html}");
    }
}
