//! The map page: how the namespace's objects relate ([`crate::tenant::map`]), drawn on the server as an SVG of
//! columns (the way in on the left, what made the pods on the right) with a text list beside it that says the same
//! for screen readers and keyboards. Every object links to its view where the dashboard has one; no script.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use super::i18n::Translation;
use super::page_error::PageError;
use super::paths;
use super::reply::render;
use super::respond::{PageVisit, Visit};
use super::user_sessions::Session;
use crate::tenant::map::{self, Map, NodeKind, Relation};

/// A node's box's width.
const WIDTH: i64 = 180;
/// A node's box's height.
const HEIGHT: i64 = 40;
/// From one column's left to the next's.
const COLUMN: i64 = 250;
/// From one row's top to the next's.
const ROW: i64 = 52;
/// Longest name drawn whole in a box (the list and the box's title say it whole).
const DRAWN_NAME: usize = 22;

/// One object as drawn and listed.
pub struct NodeView {
    /// `Kind/name`, the kind in words.
    pub label: String,
    /// The kind, in words.
    pub kind: &'static str,
    /// The name as drawn (maybe shortened).
    pub short: String,
    /// Where its view is, if the dashboard has one.
    pub link: Option<String>,
    /// Its box's corner.
    pub x: i64,
    /// Its box's corner.
    pub y: i64,
    /// Whether any relation touches it.
    pub related: bool,
}

/// One relation as drawn and listed.
pub struct EdgeView {
    /// Where it starts (an index into the nodes).
    pub from: usize,
    /// Where it leads.
    pub to: usize,
    /// How they relate, in words.
    pub relation: &'static str,
    /// The line's ends.
    pub line: [i64; 4],
}

/// The map page.
#[derive(Template)]
#[template(path = "map.html", config = "src/dashboard/askama.toml")]
struct MapPage<'a> {
    text: &'static Translation,
    session: &'a Session,
    nodes: Vec<NodeView>,
    edges: Vec<EdgeView>,
    width: i64,
    height: i64,
    box_width: i64,
    box_height: i64,
    cut: bool,
    left_out: String,
}

fn column(kind: NodeKind) -> i64 {
    match kind {
        NodeKind::Ingress => 0,
        NodeKind::Service => 1,
        NodeKind::Pod => 2,
        NodeKind::ReplicaSet | NodeKind::StatefulSet | NodeKind::Claim => 3,
        NodeKind::Deployment | NodeKind::Volume => 4,
        NodeKind::Autoscaler => 5,
    }
}

fn relation(text: &'static Translation, relation: Relation) -> &'static str {
    match relation {
        Relation::RoutesTo => text.map_routes_to,
        Relation::Selects => text.map_selects,
        Relation::Owns => text.map_owns,
        Relation::Mounts => text.map_mounts,
        Relation::BoundTo => text.map_bound_to,
        Relation::Scales => text.map_scales,
    }
}

fn map_page<'a>(text: &'static Translation, session: &'a Session, map: Map) -> MapPage<'a> {
    let mut rows = [0i64; 6];
    let nodes: Vec<NodeView> = map
        .nodes
        .iter()
        .enumerate()
        .map(|(at, node)| {
            let column = column(node.kind);
            let row = &mut rows[column as usize];
            let (x, y) = (10 + column * COLUMN, 10 + *row * ROW);
            *row += 1;
            let link = node.kind.view().map(|kind| paths::Object {
                instance_id: session.tenant.instance_id.clone(),
                kind: kind.as_str().to_owned(),
                name: node.name.clone(),
            });
            let short = if node.name.chars().count() > DRAWN_NAME {
                format!("{}…", node.name.chars().take(DRAWN_NAME - 1).collect::<String>())
            } else {
                node.name.clone()
            };
            NodeView {
                label: format!("{}/{}", text.kind_one(node.kind.as_str()), node.name),
                kind: text.kind_one(node.kind.as_str()),
                short,
                link: link.map(|link| link.to_string()),
                x,
                y,
                related: map.edges.iter().any(|edge| edge.from == at || edge.to == at),
            }
        })
        .collect();
    let edges = map
        .edges
        .iter()
        .map(|edge| {
            let (from, to) = (&nodes[edge.from], &nodes[edge.to]);
            let (middle_from, middle_to) = (from.y + HEIGHT / 2, to.y + HEIGHT / 2);
            let line = if from.x <= to.x {
                [from.x + WIDTH, middle_from, to.x, middle_to]
            } else {
                [from.x, middle_from, to.x + WIDTH, middle_to]
            };
            EdgeView { from: edge.from, to: edge.to, relation: relation(text, edge.relation), line }
        })
        .collect();
    let columns = nodes.iter().map(|node| (node.x - 10) / COLUMN + 1).max().unwrap_or(1);
    let most_rows = rows.into_iter().max().unwrap_or(0).max(1);
    let left_out: Vec<&str> = map.left_out.iter().map(|kind| text.kind_many(kind.as_str())).collect();
    MapPage {
        text,
        session,
        nodes,
        edges,
        width: 20 + (columns - 1) * COLUMN + WIDTH,
        height: 20 + most_rows * ROW,
        box_width: WIDTH,
        box_height: HEIGHT,
        cut: map.cut,
        left_out: left_out.join(", "),
    }
}

/// GET /instances/:instance_id/map — the namespace's objects and how they relate, read as the signed-in user.
pub async fn page(_: paths::Map, visit: PageVisit) -> Result<Response, PageError> {
    let Visit { session, text, .. } = visit;
    let map = map::read(&session.client, &session.tenant.namespace).await?;
    Ok(render(StatusCode::OK, &map_page(text, &session, map)))
}

#[cfg(test)]
mod tests {
    use super::super::i18n;
    use super::*;
    use crate::tenant::map::{Edge, Node};

    #[tokio::test]
    async fn the_map_draws_linked_boxes_and_says_each_relation_in_words() {
        let session = super::super::user_sessions::test_session("inst-1");
        let node = |kind, name: &str| Node { kind, name: name.into() };
        let map = Map {
            nodes: vec![node(NodeKind::Ingress, "web"), node(NodeKind::Service, "web"), node(NodeKind::Volume, "pv-1")],
            edges: vec![Edge { from: 0, to: 1, relation: Relation::RoutesTo }],
            cut: true,
            left_out: vec![NodeKind::Autoscaler],
        };
        let html = map_page(&i18n::EN, &session, map).render().expect("renders");
        assert!(html.contains(r#"role="img" aria-label="Map: 3 objects, 1 links""#), "{html}");
        let listed = concat!(
            r#"<li><a href="/instances/inst-1/objects/ingresses/web">Ingress/web</a> "#,
            r#"<span class="relation">routes to</span> "#,
            r#"<a href="/instances/inst-1/objects/services/web">Service/web</a></li>"#
        );
        assert!(html.contains(listed), "{html}");
        assert!(html.contains("<li>Volume/pv-1</li>"), "an object without a view or relation, in words: {html}");
        assert!(html.contains(r#"<line class="edge" x1="190" y1="30" x2="260" y2="30""#), "{html}");
        assert!(html.contains(i18n::EN.map_cut) && html.contains("Autoscalers"), "{html}");
        assert!(!html.contains("style="), "no inline style: {html}");
    }
}
