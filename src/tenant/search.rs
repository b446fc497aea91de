//! Finding any object of a namespace by name or label, as the identity sees it: the kinds the dashboard shows, and
//! ConfigMaps and Secrets by name. Only metadata is listed (a Secret's values are never read), with the identity's
//! own client: a kind Kubernetes does not let it list is skipped, not an error.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::PartialObjectMeta;
use kube::{Api, Client};

use super::objects::Kind;
use crate::lifecycle::{Error, Result};

/// Longest query: names and labels are shorter.
pub const MAX_QUERY: usize = 317;
/// Most objects found.
pub const MAX_RESULTS: usize = 100;

/// What is looked for, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// Objects whose name contains the word, or that carry a label with the word as its key.
    Word(String),
    /// Objects labelled `key=value`.
    Label {
        /// The label's key.
        key: String,
        /// Its value (maybe empty).
        value: String,
    },
}

/// Why a query is none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing to look for.
    #[error("the query is empty")]
    Empty,
    /// Longer than [`MAX_QUERY`].
    #[error("the query is longer than {MAX_QUERY} characters")]
    TooLong,
}

impl Query {
    /// The query `text` asks: `key=value` is a label, anything else a word.
    pub fn parse(text: &str) -> std::result::Result<Query, QueryError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(QueryError::Empty);
        }
        if text.chars().count() > MAX_QUERY {
            return Err(QueryError::TooLong);
        }
        Ok(match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Query::Label { key: key.trim().to_owned(), value: value.trim().to_owned() }
            }
            _ => Query::Word(text.to_owned()),
        })
    }

    /// Whether an object named `name` with `labels` is one looked for.
    pub fn matches(&self, name: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
        match self {
            Query::Word(word) => name.contains(word.as_str()) || labels.contains_key(word),
            Query::Label { key, value } => labels.get(key) == Some(value),
        }
    }
}

/// A kind searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Searched {
    /// One the dashboard shows (and has a view of).
    Shown(Kind),
    /// ConfigMaps, by name.
    ConfigMaps,
    /// Secrets, by name: never their values.
    Secrets,
}

impl Searched {
    /// Every kind searched, in the order results are listed.
    pub fn all() -> impl Iterator<Item = Searched> {
        let shown = Kind::ALL.into_iter().filter(|kind| *kind != Kind::Events).map(Searched::Shown);
        shown.chain([Searched::ConfigMaps, Searched::Secrets])
    }

    /// Its API resource name (`pods`, `secrets`).
    pub fn as_str(self) -> &'static str {
        match self {
            Searched::Shown(kind) => kind.as_str(),
            Searched::ConfigMaps => "configmaps",
            Searched::Secrets => "secrets",
        }
    }

    fn api_resource(self) -> ApiResource {
        match self {
            Searched::Shown(kind) => kind.api_resource(),
            Searched::ConfigMaps => ApiResource::erase::<ConfigMap>(&()),
            Searched::Secrets => ApiResource::erase::<Secret>(&()),
        }
    }
}

/// One object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its kind.
    pub kind: Searched,
    /// Its name.
    pub name: String,
    /// Its labels as `key=value`, sorted.
    pub labels: Vec<String>,
}

/// What a search found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    /// The objects, kind by kind, by name; at most [`MAX_RESULTS`].
    pub found: Vec<Found>,
    /// Whether more matched than are shown.
    pub cut: bool,
}

/// Looks for `query` in `namespace`, listing each kind's metadata with `client` (the identity's own), at once.
pub async fn search(client: &Client, namespace: &str, query: &Query) -> Result<Results> {
    let kinds: Vec<Searched> = Searched::all().collect();
    let listed = futures::future::try_join_all(kinds.iter().map(|&kind| list(client, namespace, kind, query))).await?;
    let mut found: Vec<Found> = listed.into_iter().flatten().collect();
    let cut = found.len() > MAX_RESULTS;
    found.truncate(MAX_RESULTS);
    Ok(Results { found, cut })
}

async fn list(client: &Client, namespace: &str, kind: Searched, query: &Query) -> Result<Vec<Found>> {
    let api = Api::<PartialObjectMeta<DynamicObject>>::namespaced_with(client.clone(), namespace, &kind.api_resource());
    let listed = match api.list_metadata(&ListParams::default()).await {
        Ok(listed) => listed.items,
        Err(kube::Error::Api(status)) if status.code == 403 => return Ok(Vec::new()),
        Err(error) => return Err(Error::from(error)),
    };
    let mut found: Vec<Found> = listed
        .into_iter()
        .filter_map(|object| {
            let name = object.metadata.name.unwrap_or_default();
            let labels = object.metadata.labels.unwrap_or_default();
            query.matches(&name, &labels).then(|| Found {
                kind,
                name,
                labels: labels.iter().map(|(key, value)| format!("{key}={value}")).collect(),
            })
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_query_is_a_word_or_a_label_parsed_once() {
        assert_eq!(Query::parse("  web "), Ok(Query::Word("web".into())));
        assert_eq!(Query::parse("app = web"), Ok(Query::Label { key: "app".into(), value: "web".into() }));
        assert_eq!(Query::parse("tier="), Ok(Query::Label { key: "tier".into(), value: String::new() }));
        assert_eq!(Query::parse("=x"), Ok(Query::Word("=x".into())));
        assert_eq!(Query::parse("   "), Err(QueryError::Empty));
        assert_eq!(Query::parse(&"a".repeat(MAX_QUERY + 1)), Err(QueryError::TooLong));
    }

    #[test]
    fn words_match_names_by_substring_and_label_keys_and_labels_match_exactly() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        assert!(Query::Word("eb-1".into()).matches("web-1", &BTreeMap::new()));
        assert!(Query::Word("tier".into()).matches("x", &web));
        assert!(!Query::Word("front".into()).matches("x", &web), "a value alone is no key");
        let label = |key: &str, value: &str| Query::Label { key: key.into(), value: value.into() };
        assert!(label("app", "web").matches("anything", &web));
        assert!(!label("app", "we").matches("web", &web));
        assert!(!label("app", "web").matches("web", &BTreeMap::new()), "a name is no label");
    }

    #[test]
    fn every_shown_kind_but_events_is_searched_and_configmaps_and_secrets_too() {
        let kinds: Vec<&str> = Searched::all().map(Searched::as_str).collect();
        assert!(!kinds.contains(&"events") && kinds.contains(&"pods") && kinds.ends_with(&["configmaps", "secrets"]));
        assert_eq!(kinds.len(), Kind::ALL.len() + 1);
    }
}
