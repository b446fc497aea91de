//! What a workload will take from its namespace's ResourceQuota, and what of it does not fit: a workload that the
//! quota admission would refuse pod after pod is refused when it is asked for, saying what it needs and what is free.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceQuota};

use crate::catalog::quantity::{self, Milli};

/// Quota resources and how much of each (in thousandths, as [`quantity::parse`] gives them).
pub type Usage = BTreeMap<String, Milli>;

/// Adds `amount` of `resource` to `usage`.
pub fn add(usage: &mut Usage, resource: &str, amount: Milli) {
    usage.entry(resource.to_owned()).or_insert(Milli(0)).0 += amount.0;
}

/// What one pod counts against `requests.*` and `limits.*` quotas: the sum over its containers, or the largest init
/// container when that is more (as the quota admission counts it).
pub fn pod_usage(spec: &PodSpec) -> Usage {
    let per_container = |container: &Container| {
        let mut usage = Usage::new();
        let resources = container.resources.as_ref();
        for (kind, values) in [
            ("requests", resources.and_then(|r| r.requests.as_ref())),
            ("limits", resources.and_then(|r| r.limits.as_ref())),
        ] {
            for (name, value) in values.into_iter().flatten() {
                if let Some(amount) = quantity::parse(&value.0) {
                    add(&mut usage, &format!("{kind}.{name}"), amount);
                }
            }
        }
        usage
    };
    let mut total = Usage::new();
    for container in &spec.containers {
        for (resource, amount) in per_container(container) {
            add(&mut total, &resource, amount);
        }
    }
    for init in spec.init_containers.iter().flatten() {
        for (resource, amount) in per_container(init) {
            let current = total.entry(resource).or_insert(Milli(0));
            current.0 = current.0.max(amount.0);
        }
    }
    total
}

/// Each resource of `needed` that the quota limits and that does not fit in what is left, described for the user
/// ("limits.memory: needs 2Gi, 256Mi of 2Gi in use"). Empty when everything fits, or when there is no quota.
pub fn shortfalls(needed: &Usage, quota: Option<&ResourceQuota>) -> Vec<String> {
    let Some(status) = quota.and_then(|quota| quota.status.as_ref()) else { return Vec::new() };
    let (hard, used) = (status.hard.clone().unwrap_or_default(), status.used.clone().unwrap_or_default());
    needed
        .iter()
        .filter_map(|(resource, need)| {
            let limit = quantity::parse(&hard.get(resource)?.0)?;
            let in_use = used.get(resource).and_then(|u| quantity::parse(&u.0)).unwrap_or(Milli(0));
            (in_use.0 + need.0 > limit.0).then(|| {
                format!(
                    "{resource}: needs {}, {} of {} in use",
                    show(resource, *need),
                    show(resource, in_use),
                    show(resource, limit)
                )
            })
        })
        .collect()
}

/// A quantity as a person reads it: memory and storage in Mi/Gi, CPU in cores or millicores, counts as numbers.
fn show(resource: &str, amount: Milli) -> String {
    const MI: i128 = 1 << 20;
    let units = amount.0 / 1000;
    if resource.ends_with("memory") || resource.ends_with("storage") {
        if units % (1024 * MI) == 0 {
            format!("{}Gi", units / (1024 * MI))
        } else {
            format!("{}Mi", (units + MI - 1) / MI)
        }
    } else if resource.ends_with("cpu") && amount.0 % 1000 != 0 {
        format!("{}m", amount.0)
    } else {
        units.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).expect("pod spec")
    }

    fn quota(hard: serde_json::Value, used: serde_json::Value) -> ResourceQuota {
        serde_json::from_value(json!({ "metadata": { "name": "q" }, "status": { "hard": hard, "used": used } }))
            .expect("quota")
    }

    #[test]
    fn a_pod_counts_its_containers_or_its_largest_init_container() {
        let usage = pod_usage(&spec(json!({
            "initContainers": [{ "name": "i", "resources": { "requests": { "cpu": "2" }, "limits": { "memory": "1Gi" } } }],
            "containers": [
                { "name": "a", "resources": { "requests": { "cpu": "500m" }, "limits": { "memory": "1Gi" } } },
                { "name": "b", "resources": { "requests": { "cpu": "500m" }, "limits": { "memory": "1Gi" } } }
            ]
        })));
        assert_eq!(usage["requests.cpu"], quantity::parse("2").expect("q"));
        assert_eq!(usage["limits.memory"], quantity::parse("2Gi").expect("q"));
    }

    #[test]
    fn shortfalls_say_what_is_needed_and_what_is_used() {
        let mut needed = Usage::new();
        add(&mut needed, "limits.memory", quantity::parse("2Gi").expect("q"));
        add(&mut needed, "requests.cpu", quantity::parse("1").expect("q"));
        add(&mut needed, "not-limited", quantity::parse("100").expect("q"));
        let quota = quota(
            json!({ "limits.memory": "2Gi", "requests.cpu": "2" }),
            json!({ "limits.memory": "256Mi", "requests.cpu": "250m" }),
        );
        assert_eq!(shortfalls(&needed, Some(&quota)), ["limits.memory: needs 2Gi, 256Mi of 2Gi in use"]);
        let idle = self::quota(json!({ "limits.memory": "2Gi" }), json!({ "limits.memory": "0" }));
        assert!(shortfalls(&needed, Some(&idle)).is_empty());
        assert!(shortfalls(&needed, None).is_empty());
        assert_eq!(show("requests.cpu", quantity::parse("250m").expect("q")), "250m");
    }
}
