//! Whether a cluster answers, and how much its nodes can hold: checked every [`EVERY`] by the fleet, so that a
//! request for an instance on a cluster that is down is answered 503 at once, naming it, and placement knows each
//! cluster's capacity without asking at every provision.

use std::sync::RwLock;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::{Api, Client};

use super::placement::Room;
use crate::catalog::quantity;

/// How often each cluster is checked.
pub const EVERY: Duration = Duration::from_secs(5);
/// How long a check may take before the cluster counts as unreachable.
const PATIENCE: Duration = Duration::from_secs(3);

/// What the last check of one cluster found.
#[derive(Debug, Default)]
pub struct Health {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether it was checked at all yet.
    checked: bool,
    /// Why the cluster did not answer, and since when; `None` while it answers (or before the first check).
    down: Option<(Timestamp, String)>,
    /// Allocatable CPU and memory of its schedulable, ready nodes, once listed.
    allocatable: Option<Room>,
}

impl Health {
    /// Why the cluster cannot be used now, when the last check failed.
    pub fn unreachable(&self) -> Option<String> {
        let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (since, why) = state.down.as_ref()?;
        Some(format!("unreachable since {} ({why})", since.strftime("%Y-%m-%dT%H:%M:%SZ")))
    }

    /// Why no instance may be placed on the cluster now: unreachable, or not checked yet (just after start).
    pub fn closed(&self) -> Option<String> {
        if !self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).checked {
            return Some("not checked yet".to_owned());
        }
        self.unreachable()
    }

    /// Allocatable CPU and memory of its nodes, as last listed.
    pub fn allocatable(&self) -> Option<Room> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner).allocatable
    }

    /// Checks the cluster now: its apiserver's version, then its nodes.
    pub async fn check(&self, client: &Client) {
        let checked = tokio::time::timeout(PATIENCE, async {
            client.apiserver_version().await?;
            Api::<Node>::all(client.clone()).list(&ListParams::default()).await
        })
        .await;
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.checked = true;
        match checked {
            Ok(Ok(nodes)) => {
                state.down = None;
                state.allocatable = Some(allocatable(&nodes.items));
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 403 => {
                // Reachable, but the broker may not read nodes there (manifests/rbac.yaml): capacity unknown.
                state.down = None;
                state.allocatable = None;
            }
            failed => {
                let why = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {} s", PATIENCE.as_secs()),
                };
                if state.down.is_none() {
                    tracing::warn!(why, "a cluster stopped answering");
                }
                state.down = Some((state.down.take().map_or_else(Timestamp::now, |(since, _)| since), why));
            }
        }
    }
}

/// The allocatable CPU and memory of the nodes that take pods: ready and not cordoned.
fn allocatable(nodes: &[Node]) -> Room {
    let mut room = Room::default();
    for node in nodes {
        let cordoned = node.spec.as_ref().and_then(|spec| spec.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        let ready = status
            .and_then(|status| status.conditions.as_ref())
            .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let Some(allocatable) = status.and_then(|status| status.allocatable.as_ref()).filter(|_| ready && !cordoned)
        else {
            continue;
        };
        let amount = |name: &str| allocatable.get(name).and_then(|q| quantity::parse(&q.0)).map_or(0, |m| m.0);
        room.cpu += amount("cpu");
        room.memory += amount("memory");
    }
    room
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cpu: &str, memory: &str, ready: bool, unschedulable: bool) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "n" },
            "spec": { "unschedulable": unschedulable },
            "status": {
                "allocatable": { "cpu": cpu, "memory": memory },
                "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }]
            }
        }))
        .expect("node")
    }

    #[test]
    fn only_ready_schedulable_nodes_count() {
        let nodes = [
            node("4", "8Gi", true, false),
            node("500m", "1Gi", true, false),
            node("32", "64Gi", false, false),
            node("32", "64Gi", true, true),
        ];
        assert_eq!(allocatable(&nodes), Room { cpu: 4500, memory: 9 * 1000 * (1 << 30) });
    }
}
