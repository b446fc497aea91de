//! Several Kubernetes clusters behind one broker. Each cluster gets a [`Broker`] of its own (its client, copy of the
//! records, tenant guard, drift repair, idle stops and usage accounting), so that what goes wrong on one stays there;
//! the fleet knows where each instance lives ([`placements`], recorded in the home cluster), where a new one goes
//! ([`placement`]) and whether each cluster answers ([`health`]). With one cluster it is that cluster's broker and
//! nothing more: no records, no checks, the configuration of one cluster unchanged.

pub mod health;
pub mod placement;
mod placements;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use self::health::Health;
use self::placement::{Candidate, Refusal, Room, Wish};
use self::placements::Placements;
use crate::catalog::{Plan, quantity};
use crate::lifecycle::tenant_guard::Verdict;
use crate::lifecycle::{Broker, Error, InstanceCounts, Result};

/// One cluster of the fleet.
pub struct Member {
    /// Its name (`clusters[].name`).
    pub name: String,
    /// Whether it is the home, which keeps the placement records.
    pub home: bool,
    /// What plans select clusters by.
    pub labels: BTreeMap<String, String>,
    /// Scales its free capacity in placement; 0: only when named.
    pub weight: u32,
    /// Closed to new instances.
    pub cordoned: bool,
    /// The broker acting on it.
    pub broker: Arc<Broker>,
    /// The broker's client configuration for it: what signed-in users' clients there are made from.
    pub config: kube::Config,
    /// What its last check found.
    pub health: Health,
}

/// What a provision asks for, as much as placement needs (the member's broker checks the rest).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ProvisionWish {
    /// The offering.
    pub service_id: String,
    /// The plan.
    pub plan_id: String,
    /// The organization (a workload goes to its virtual cluster's cluster).
    pub organization_guid: String,
    /// The parameters: `cluster` names a cluster, a workload's `cluster_instance_id` its virtual cluster.
    pub parameters: Map<String, Value>,
}

/// The clusters, the home first.
pub struct Fleet {
    members: Vec<Arc<Member>>,
    /// Where instances on other clusters than the home live; `None` with one cluster.
    placements: Option<Placements>,
}

impl Fleet {
    /// A fleet of `members`, exactly one of them the home.
    pub fn new(members: Vec<Member>) -> Fleet {
        let mut members: Vec<Arc<Member>> = members.into_iter().map(Arc::new).collect();
        members.sort_by_key(|member| !member.home);
        assert!(members.first().is_some_and(|member| member.home), "a fleet needs its home cluster");
        let home = &members[0];
        let placements =
            (members.len() > 1).then(|| Placements::new(home.broker.client(), &home.broker.options.broker_namespace));
        Fleet { members, placements }
    }

    /// Starts watching the placement records and checking every cluster (nothing with one cluster). Needs a Tokio
    /// runtime; stops when the fleet is dropped.
    pub fn start(self: &Arc<Self>) {
        let Some(placements) = &self.placements else { return };
        placements.start(self.home().broker.options.watch_seconds);
        let fleet = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(health::EVERY);
            loop {
                every.tick().await;
                let Some(fleet) = fleet.upgrade() else { return };
                let checks = fleet.members.iter().map(|member| member.health.check(member.broker.client()));
                futures::future::join_all(checks).await;
                fleet.publish();
            }
        });
    }

    /// Every cluster, the home first.
    pub fn members(&self) -> &[Arc<Member>] {
        &self.members
    }

    /// The home cluster.
    pub fn home(&self) -> &Arc<Member> {
        &self.members[0]
    }

    /// Whether there is only the home.
    pub fn is_single(&self) -> bool {
        self.members.len() == 1
    }

    /// The cluster `instance_id` lives on (the home for an id it does not know); 503 naming it when it is down.
    pub async fn locate(&self, instance_id: &str) -> Result<Arc<Member>> {
        let Some(placements) = &self.placements else { return Ok(self.home().clone()) };
        let member = match placements.lookup(instance_id).await? {
            None => self.home().clone(),
            Some(name) => self.named(&name).ok_or_else(|| {
                Error::internal(format!("instance {instance_id} was placed on cluster {name}, which is not configured"))
            })?,
        };
        match member.health.unreachable() {
            Some(why) => Err(Error::unavailable(format!(
                "instance {instance_id} lives on cluster {}, which is {why}; it answers again once the cluster is back",
                member.name
            ))),
            None => Ok(member),
        }
    }

    /// The cluster a provision of `instance_id` goes to: where it already is, else the virtual cluster's for a
    /// workload, else the one placement chooses (recorded before anything is made there).
    pub async fn place(&self, instance_id: &str, wish: &ProvisionWish) -> Result<Arc<Member>> {
        let Some(placements) = &self.placements else { return Ok(self.home().clone()) };
        if placements.lookup(instance_id).await?.is_some() || self.home().broker.holds(instance_id).await? {
            return self.locate(instance_id).await;
        }
        let catalog = self.home().broker.catalog();
        let Some(service) = catalog.service(&wish.service_id) else { return Ok(self.home().clone()) };
        let Some(plan) = service.plan(&wish.plan_id) else { return Ok(self.home().clone()) };
        let chosen = if service.broker.kind.is_workload() {
            self.virtual_cluster_home(wish).await?
        } else {
            self.choose(instance_id, plan, wish).await?
        };
        if chosen.home {
            return Ok(chosen);
        }
        let recorded = placements.record(instance_id, &chosen.name).await?;
        self.named(&recorded).ok_or_else(|| Error::internal(format!("cluster {recorded} is not configured")))
    }

    /// Forgets where `instance_id` lived once it is gone from `member` (deleted, or its provision refused).
    pub async fn forget_if_gone(&self, instance_id: &str, member: &Member) {
        let Some(placements) = &self.placements else { return };
        if member.home || !matches!(member.broker.holds(instance_id).await, Ok(false)) {
            return;
        }
        if let Err(error) = placements.forget(instance_id).await {
            tracing::warn!(instance_id, cluster = member.name, %error, "could not remove a placement record");
        }
    }

    /// Instances by plan over every cluster that answers.
    pub async fn count_instances(&self) -> std::result::Result<InstanceCounts, kube::Error> {
        let mut counts = InstanceCounts::new();
        for member in &self.members {
            if member.health.unreachable().is_some() {
                continue;
            }
            let counted = member.broker.count_instances().await?;
            crate::metrics::global().set_cluster_instances(&member.name, counted.values().sum());
            for (plan, count) in counted {
                *counts.entry(plan).or_insert(0) += count;
            }
        }
        Ok(counts)
    }

    /// Why some clusters other than the home cannot be used now, a line each (for `/readyz`).
    pub fn troubles(&self) -> Vec<String> {
        self.members
            .iter()
            .filter_map(|member| Some(format!("cluster {}: {}", member.name, member.health.unreachable()?)))
            .collect()
    }

    fn named(&self, name: &str) -> Option<Arc<Member>> {
        self.members.iter().find(|member| member.name == name).cloned()
    }

    /// The cluster of the virtual cluster a workload names, or of its organization's only virtual clusters; the home
    /// when there is none (whose broker says so).
    async fn virtual_cluster_home(&self, wish: &ProvisionWish) -> Result<Arc<Member>> {
        if let Some(Value::String(cluster_instance_id)) = wish.parameters.get("cluster_instance_id") {
            return self.locate(cluster_instance_id).await;
        }
        let mut holding = Vec::new();
        for member in self.members.iter().filter(|member| member.health.unreachable().is_none()) {
            if !member.broker.organization_virtual_clusters(&wish.organization_guid).await?.is_empty() {
                holding.push(member.clone());
            }
        }
        match holding.as_slice() {
            [] => Ok(self.home().clone()),
            [member] => Ok(member.clone()),
            several => Err(Error::BadRequest(format!(
                "organization {} has virtual clusters on clusters {}: choose one with parameters.cluster_instance_id",
                wish.organization_guid,
                several.iter().map(|member| member.name.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Where a new virtual cluster of `plan` goes (see [`placement`]).
    async fn choose(&self, instance_id: &str, plan: &Plan, wish: &ProvisionWish) -> Result<Arc<Member>> {
        let named = match wish.parameters.get("cluster") {
            Some(Value::String(name)) => Some(name.as_str()),
            _ => None,
        };
        let mut candidates = Vec::new();
        for member in &self.members {
            candidates.push(Candidate {
                name: &member.name,
                labels: &member.labels,
                weight: member.weight,
                cordoned: member.cordoned,
                unavailable: self.unavailable(member).await,
                free: self.free(member).await,
            });
        }
        let wish = Wish { plan: &plan.name, named, labels: &plan.broker.cluster_labels, needs: needs(plan) };
        match placement::choose(&candidates, &wish) {
            Ok(name) => {
                tracing::info!(instance_id, cluster = name, plan = plan.name, "placed a virtual cluster");
                self.named(name).ok_or_else(|| Error::internal(format!("cluster {name} vanished")))
            }
            Err(refusal @ Refusal::Unknown { .. }) => Err(Error::BadRequest(refusal.to_string())),
            Err(refusal @ Refusal::NoneFits { .. }) => {
                Err(Error::Unprocessable { code: "NoClusterFits", description: refusal.to_string() })
            }
        }
    }

    /// Why `member` cannot take new instances now: unreachable, or its tenant guard not in force.
    async fn unavailable(&self, member: &Member) -> Option<String> {
        if let Some(why) = member.health.closed() {
            return Some(why);
        }
        match member.broker.tenant_guard().await {
            None | Some(Verdict::InForce) => None,
            Some(verdict) => Some(verdict.describe()),
        }
    }

    /// `member`'s allocatable CPU and memory less the quotas of the virtual clusters placed there.
    async fn free(&self, member: &Member) -> Option<Room> {
        let allocatable = member.health.allocatable()?;
        let counts = member.broker.count_instances().await.ok()?;
        let catalog = member.broker.catalog();
        let mut used = Room::default();
        for ((service, plan), count) in counts {
            let plan = catalog.services.iter().filter(|s| s.name == service).find_map(|s| s.plan_named(&plan));
            if let Some(plan) = plan {
                let room = needs(plan);
                used.cpu += room.cpu * i128::from(count);
                used.memory += room.memory * i128::from(count);
            }
        }
        Some(allocatable.minus(used))
    }

    /// Sets each cluster's gauges.
    fn publish(&self) {
        for member in &self.members {
            crate::metrics::global().set_cluster_up(&member.name, member.health.unreachable().is_none());
        }
    }
}

/// The CPU and memory a virtual cluster of `plan` may request: its quota's `requests.*` (or bare `cpu`/`memory`).
fn needs(plan: &Plan) -> Room {
    let quota = &plan.broker.quota;
    let amount = |names: [&str; 2]| {
        names.iter().find_map(|name| quota.get(*name)).and_then(|q| quantity::parse(q)).map_or(0, |m| m.0)
    };
    Room { cpu: amount(["requests.cpu", "cpu"]), memory: amount(["requests.memory", "memory"]) }
}
