//! Where a new virtual cluster goes, decided from what is known of each cluster: the one a provision names, else,
//! among those whose labels match the plan's `cluster_labels` and that can take instances now, the one with the most
//! room for the plan's quota (how many more of the plan fit, times the cluster's weight), like service-fabrik's
//! resource-aware scheduler. A pure function, so that every rule is tested alone.

use std::collections::BTreeMap;

/// CPU and memory, in thousandths of a core and of a byte (as [`crate::catalog::quantity::Milli`] counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Room {
    /// CPU, in millicores.
    pub cpu: i128,
    /// Memory, in thousandths of a byte.
    pub memory: i128,
}

impl Room {
    /// What is left of `self` once `used` is taken (never below zero).
    pub fn minus(self, used: Room) -> Room {
        Room { cpu: (self.cpu - used.cpu).max(0), memory: (self.memory - used.memory).max(0) }
    }

    /// How many times `needs` fits in `self`; the free CPU in cores when `needs` asks for nothing.
    fn fits(self, needs: Room) -> f64 {
        let ratio = |free: i128, need: i128| (need > 0).then(|| free as f64 / need as f64);
        match (ratio(self.cpu, needs.cpu), ratio(self.memory, needs.memory)) {
            (Some(cpu), Some(memory)) => cpu.min(memory),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => self.cpu as f64 / 1e3,
        }
    }

    fn describe(self) -> String {
        format!("{:.1} CPU and {:.1} GiB", self.cpu as f64 / 1e3, self.memory as f64 / 1e3 / (1u64 << 30) as f64)
    }
}

/// One cluster, as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Its weight; 0: only when named.
    pub weight: u32,
    /// Closed to new instances.
    pub cordoned: bool,
    /// Why it cannot take instances now (unreachable, tenant guard not in force), if so.
    pub unavailable: Option<String>,
    /// Its free capacity: allocatable CPU and memory of its nodes less the quotas placed there; `None` until measured.
    pub free: Option<Room>,
}

/// What a provision asks of its cluster.
#[derive(Debug, Clone)]
pub struct Wish<'a> {
    /// The plan's name, for descriptions.
    pub plan: &'a str,
    /// The cluster the provision names (`parameters.cluster`).
    pub named: Option<&'a str>,
    /// Labels the plan requires (`cluster_labels`).
    pub labels: &'a BTreeMap<String, String>,
    /// The plan's quota of CPU and memory.
    pub needs: Room,
}

/// Why no cluster was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The provision names a cluster that is not configured (400).
    #[error("parameters.cluster: there is no cluster named {named:?} (clusters: {known})")]
    Unknown {
        /// The name asked for.
        named: String,
        /// The clusters there are.
        known: String,
    },
    /// No cluster can take the plan now, each for the reason given (422).
    #[error("no cluster can take a virtual cluster of plan {plan} now: {reasons}")]
    NoneFits {
        /// The plan.
        plan: String,
        /// `cluster: reason`, for each cluster considered.
        reasons: String,
    },
}

/// The cluster `wish` goes to among `candidates` (in configuration order, which breaks ties).
pub fn choose<'a>(candidates: &[Candidate<'a>], wish: &Wish) -> Result<&'a str, Refusal> {
    let none_fits =
        |reasons: Vec<String>| Refusal::NoneFits { plan: wish.plan.to_owned(), reasons: reasons.join("; ") };
    if let Some(named) = wish.named {
        let Some(candidate) = candidates.iter().find(|candidate| candidate.name == named) else {
            let known = candidates.iter().map(|candidate| candidate.name).collect::<Vec<_>>().join(", ");
            return Err(Refusal::Unknown { named: named.to_owned(), known });
        };
        return match unfit(candidate, wish, true) {
            Some(reason) => Err(none_fits(vec![format!("{named}: {reason}")])),
            None => Ok(candidate.name),
        };
    }
    let mut best: Option<(&'a str, f64)> = None;
    let mut reasons = Vec::new();
    for candidate in candidates {
        if let Some(reason) = unfit(candidate, wish, false) {
            reasons.push(format!("{}: {reason}", candidate.name));
            continue;
        }
        let score = f64::from(candidate.weight) * candidate.free.map_or(0.0, |free| free.fits(wish.needs));
        if best.is_none_or(|(_, highest)| score > highest) {
            best = Some((candidate.name, score));
        }
    }
    best.map(|(name, _)| name).ok_or_else(|| none_fits(reasons))
}

/// Why `candidate` cannot take `wish`, if it cannot; the weight counts only when the cluster was not `named`.
fn unfit(candidate: &Candidate, wish: &Wish, named: bool) -> Option<String> {
    if candidate.cordoned {
        return Some("cordoned".to_owned());
    }
    if let Some(why) = &candidate.unavailable {
        return Some(why.clone());
    }
    let missing: Vec<String> = wish
        .labels
        .iter()
        .filter(|(key, value)| candidate.labels.get(*key) != Some(*value))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if !missing.is_empty() {
        return Some(format!("not labelled {}", missing.join(",")));
    }
    if candidate.weight == 0 && !named {
        return Some("weight 0: only when a provision names it".to_owned());
    }
    match candidate.free {
        Some(free) if free.cpu < wish.needs.cpu || free.memory < wish.needs.memory => {
            Some(format!("{} free, the plan needs {}", free.describe(), wish.needs.describe()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: i128 = 1000 * (1 << 30);

    fn room(cores: i128, gib: i128) -> Room {
        Room { cpu: cores * 1000, memory: gib * GIB }
    }

    fn candidate<'a>(name: &'a str, labels: &'a BTreeMap<String, String>, free: Room) -> Candidate<'a> {
        Candidate { name, labels, weight: 1, cordoned: false, unavailable: None, free: Some(free) }
    }

    fn wish<'a>(labels: &'a BTreeMap<String, String>, named: Option<&'a str>) -> Wish<'a> {
        Wish { plan: "small", named, labels, needs: room(2, 2) }
    }

    #[test]
    fn the_cluster_with_most_room_for_the_plan_wins_scaled_by_its_weight() {
        let none = BTreeMap::new();
        let (a, b) = (candidate("a", &none, room(8, 8)), candidate("b", &none, room(16, 6)));
        assert_eq!(choose(&[a.clone(), b.clone()], &wish(&none, None)), Ok("a"), "a fits 4, b fits 3 (memory)");
        let heavier_b = Candidate { weight: 2, ..b.clone() };
        assert_eq!(choose(&[a.clone(), heavier_b], &wish(&none, None)), Ok("b"), "b counts twice");
        assert_eq!(
            choose(&[a.clone(), Candidate { free: Some(room(8, 8)), ..b }], &wish(&none, None)),
            Ok("a"),
            "a tie: the first"
        );
    }

    #[test]
    fn labels_cordons_outages_and_a_full_cluster_rule_a_cluster_out_each_with_its_reason() {
        let none = BTreeMap::new();
        let gpu = BTreeMap::from([("gpu".to_owned(), "true".to_owned())]);
        let wants_gpu = wish(&gpu, None);
        let plain = candidate("plain", &none, room(64, 64));
        let gpu_node = candidate("gpu", &gpu, room(4, 4));
        assert_eq!(choose(&[plain.clone(), gpu_node.clone()], &wants_gpu), Ok("gpu"));

        let cordoned = Candidate { cordoned: true, ..gpu_node.clone() };
        let down = Candidate {
            unavailable: Some("unreachable since 10:00:00 (connection refused)".into()),
            ..gpu_node.clone()
        };
        let full = candidate("full", &gpu, room(1, 8));
        let refused =
            choose(&[plain, Candidate { name: "c", ..cordoned }, Candidate { name: "d", ..down }, full], &wants_gpu);
        assert_eq!(
            refused,
            Err(Refusal::NoneFits {
                plan: "small".into(),
                reasons:
                    "plain: not labelled gpu=true; c: cordoned; d: unreachable since 10:00:00 (connection refused); \
                          full: 1.0 CPU and 8.0 GiB free, the plan needs 2.0 CPU and 2.0 GiB"
                        .into()
            })
        );
    }

    #[test]
    fn a_named_cluster_is_taken_as_named_or_refused_saying_why() {
        let none = BTreeMap::new();
        let (a, b) = (candidate("a", &none, room(64, 64)), candidate("b", &none, room(4, 4)));
        let zero_weight = Candidate { weight: 0, ..b.clone() };
        assert_eq!(
            choose(&[a.clone(), zero_weight.clone()], &wish(&none, Some("b"))),
            Ok("b"),
            "weight 0: only by name"
        );
        assert_eq!(
            choose(&[zero_weight], &wish(&none, None)).map_err(|e| e.to_string()),
            Err("no cluster can take a virtual cluster of plan small now: b: weight 0: only when a provision names it"
                .into())
        );
        assert_eq!(
            choose(&[a.clone(), b.clone()], &wish(&none, Some("c"))),
            Err(Refusal::Unknown { named: "c".into(), known: "a, b".into() })
        );
        let cordoned = Candidate { cordoned: true, ..b };
        assert!(
            matches!(choose(&[a, cordoned], &wish(&none, Some("b"))), Err(Refusal::NoneFits { reasons, .. }) if reasons == "b: cordoned")
        );
    }

    #[test]
    fn a_cluster_not_measured_yet_is_eligible_but_last() {
        let none = BTreeMap::new();
        let unmeasured = Candidate { free: None, ..candidate("new", &none, Room::default()) };
        let measured = candidate("known", &none, room(4, 4));
        assert_eq!(choose(&[unmeasured.clone(), measured], &wish(&none, None)), Ok("known"));
        assert_eq!(choose(&[unmeasured], &wish(&none, None)), Ok("new"));
    }
}
