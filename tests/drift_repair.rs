//! Drift repair on the real apiserver: what an operator (the admin client, which the tenant guard never blocks) deletes
//! or weakens of a virtual cluster's isolation is back within 10 s, counted in `caas_broker_repairs_total{kind}`,
//! shown on the tenant's dashboard (in English and Korean, and by another replica, from the cluster's Events), while
//! `last_operation` and fetch keep saying the instance is ready; and nothing of an instance deprovisioned or whose
//! namespace was deleted is ever made again.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use caas_broker::lifecycle::members::Role;
use k8s_openapi::api::core::v1::{Event, LimitRange, Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use support::broker::{SMALL, TestBroker};
use support::cluster::{cluster, eventually};
use support::dashboard::{cookie_of, instance_with_binding, path_of, serve, sign_in};
use support::http::send;

/// How soon a repair must be done.
const REPAIR_DEADLINE: Duration = Duration::from_secs(10);

/// The repairs the broker counted of `kind` (the process's registry: the tests of this file run one broker at a
/// time in it for the counts they compare).
async fn repairs(broker: &TestBroker, kind: &str) -> f64 {
    broker.metric(&format!("caas_broker_repairs_total{{kind=\"{kind}\"}}")).await.unwrap_or(0.0)
}

/// Waits until the broker's drift watches have listed what there is (what they never saw, they cannot miss).
async fn drift_watched(broker: &TestBroker) {
    eventually(Duration::from_secs(20), "the drift watches to list", || async {
        broker.domain.drift_watched().then_some(())
    })
    .await;
}

/// Polls `name` in `api` until `repaired` holds of it, within [`REPAIR_DEADLINE`]; returns how long it took.
async fn repaired_within<K, F>(api: &Api<K>, name: &str, what: &str, repaired: F) -> Duration
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    let started = Instant::now();
    eventually(REPAIR_DEADLINE, what, || async {
        api.get_opt(name).await.expect("read the object").filter(|object| repaired(object)).map(|_| ())
    })
    .await;
    started.elapsed()
}

/// The instance is ready as far as the platform can tell: last_operation succeeded, fetch answers.
async fn still_ready(broker: &TestBroker, id: &str) {
    let polled = broker.call(Method::GET, &format!("/v2/service_instances/{id}/last_operation"), None).await;
    assert_eq!((polled.status, polled.body["state"].as_str()), (StatusCode::OK, Some("succeeded")), "{polled:?}");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{id}"), None).await;
    assert_eq!(fetched.status, StatusCode::OK, "{fetched:?}");
}

fn hard(quota: &ResourceQuota) -> BTreeMap<String, String> {
    let hard = quota.spec.as_ref().and_then(|spec| spec.hard.clone()).unwrap_or_default();
    hard.into_iter().map(|(resource, value)| (resource, value.0)).collect()
}

#[tokio::test]
async fn what_an_operator_deletes_or_weakens_is_back_within_ten_seconds_counted_and_shown() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&id);
    served.domain.invite(&id, "alice@example.test", Role::View).await.expect("invite a member");
    drift_watched(broker).await;
    let admin: Client = cluster().admin().await;
    let (policies, quotas, limits, bindings, namespaces) = (
        Api::<NetworkPolicy>::namespaced(admin.clone(), &namespace),
        Api::<ResourceQuota>::namespaced(admin.clone(), &namespace),
        Api::<LimitRange>::namespaced(admin.clone(), &namespace),
        Api::<RoleBinding>::namespaced(admin.clone(), &namespace),
        Api::<Namespace>::all(admin.clone()),
    );
    let kinds = ["NetworkPolicy", "ResourceQuota", "LimitRange", "Namespace", "RoleBinding"];
    let mut before = BTreeMap::new();
    for kind in kinds {
        before.insert(kind, repairs(broker, kind).await);
    }
    let mut took = Vec::new();

    // The default-deny NetworkPolicy, deleted.
    let policy = policies.get("caas-default-deny").await.expect("the default-deny policy");
    policies.delete("caas-default-deny", &DeleteParams::default()).await.expect("delete the policy");
    let elapsed = repaired_within(&policies, "caas-default-deny", "the default-deny policy to be back", |back| {
        back.uid() != policy.uid() && back.spec == policy.spec
    })
    .await;
    took.push(("NetworkPolicy deleted", elapsed));
    still_ready(broker, &id).await;

    // The quota, weakened (what `kubectl edit` does: an update by another field manager).
    let quota = quotas.get("caas-quota").await.expect("the quota");
    let weakened = json!({ "spec": { "hard": { "pods": "999", "requests.cpu": "999" } } });
    let params = PatchParams { field_manager: Some("kubectl-edit".to_owned()), ..PatchParams::default() };
    quotas.patch("caas-quota", &params, &Patch::Merge(&weakened)).await.expect("weaken the quota");
    assert_eq!(hard(&quotas.get("caas-quota").await.expect("quota"))["pods"], "999", "the quota was weakened");
    let elapsed =
        repaired_within(&quotas, "caas-quota", "the plan's quota to be back", |back| hard(back) == hard(&quota)).await;
    took.push(("ResourceQuota weakened", elapsed));
    still_ready(broker, &id).await;

    // The container limits, deleted.
    let range = limits.get("caas-limits").await.expect("the limit range");
    limits.delete("caas-limits", &DeleteParams::default()).await.expect("delete the limit range");
    let elapsed = repaired_within(&limits, "caas-limits", "the limit range to be back", |back| {
        back.uid() != range.uid() && back.spec == range.spec
    })
    .await;
    took.push(("LimitRange deleted", elapsed));

    // A Pod Security label, removed from the namespace.
    let enforce = "pod-security.kubernetes.io/enforce";
    let level = namespaces.get(&namespace).await.expect("namespace").labels()[enforce].clone();
    let unlabel = json!({ "metadata": { "labels": { enforce: null } } });
    namespaces.patch(&namespace, &PatchParams::default(), &Patch::Merge(&unlabel)).await.expect("remove the label");
    let elapsed = repaired_within(&namespaces, &namespace, "the Pod Security label to be back", |back| {
        back.labels().get(enforce) == Some(&level)
    })
    .await;
    took.push(("Pod Security label removed", elapsed));
    let provisioned = namespaces.get(&namespace).await.expect("namespace");
    assert!(
        provisioned.annotations().contains_key("caas-broker.io/provisioned-at"),
        "the repair keeps the instance provisioned: {:?}",
        provisioned.annotations()
    );
    still_ready(broker, &id).await;

    // The binding's RoleBinding and the member's, deleted: both back with their roles.
    let rolebindings = bindings
        .list(&ListParams::default().labels("caas-broker.io/protected=true"))
        .await
        .expect("list the RoleBindings")
        .items;
    let binding_of = |prefix: &str| {
        rolebindings.iter().find(|rb| rb.name_any().starts_with(prefix)).cloned().expect("a RoleBinding")
    };
    for (what, original) in [("binding", binding_of("caas-binding-")), ("member", binding_of("caas-member-"))] {
        let name = original.name_any();
        bindings.delete(&name, &DeleteParams::default()).await.expect("delete the RoleBinding");
        let elapsed = repaired_within(&bindings, &name, &format!("the {what}'s RoleBinding to be back"), |back| {
            back.uid() != original.uid() && back.role_ref == original.role_ref && back.subjects == original.subjects
        })
        .await;
        took.push((
            if what == "binding" { "binding's RoleBinding deleted" } else { "member's RoleBinding deleted" },
            elapsed,
        ));
    }
    // The owner's RoleBinding made anew by hand with a weaker role: a role cannot change in place, so the broker
    // replaces it with the owner's own.
    let owner = bindings.get("caas-owner").await.expect("the owner's RoleBinding");
    bindings.delete("caas-owner", &DeleteParams::default()).await.expect("delete the owner's RoleBinding");
    let mut weaker = owner.clone();
    weaker.metadata =
        ObjectMeta { name: owner.metadata.name.clone(), labels: owner.metadata.labels.clone(), ..Default::default() };
    weaker.role_ref.name = "view".to_owned();
    // Should the repair have come first (the two writes further apart than its quiet period), it is whole already.
    let weakened = match bindings.create(&PostParams::default(), &weaker).await {
        Err(kube::Error::Api(status)) if status.code == 409 => false,
        other => {
            other.expect("make it anew with a weaker role");
            true
        }
    };
    let elapsed = repaired_within(&bindings, "caas-owner", "the owner's own role to be back", |back| {
        back.uid() != owner.uid() && back.role_ref == owner.role_ref && back.subjects == owner.subjects
    })
    .await;
    let what = if weakened { "owner's RoleBinding given a weaker role" } else { "owner's RoleBinding deleted" };
    took.push((what, elapsed));
    still_ready(broker, &id).await;
    eprintln!("repaired after: {took:?}");

    // Counted, kind by kind.
    let expected =
        [("NetworkPolicy", 1.0), ("ResourceQuota", 1.0), ("LimitRange", 1.0), ("Namespace", 1.0), ("RoleBinding", 3.0)];
    for (kind, count) in expected {
        let now = repairs(broker, kind).await;
        assert!(
            now >= before[kind] + count,
            "caas_broker_repairs_total{{kind={kind:?}}}: {} before, {now} after",
            before[kind]
        );
    }

    // Recorded in the cluster, and shown on the tenant's dashboard: what was restored and when, with the advice in
    // the reader's language.
    let events = Api::<Event>::namespaced(admin.clone(), &namespace);
    let repaired: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some("Repaired"))
        .collect();
    let objects: Vec<String> = repaired
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e.involved_object.kind.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default()
            )
        })
        .collect();
    for object in ["NetworkPolicy/caas-default-deny", "ResourceQuota/caas-quota", "LimitRange/caas-limits"] {
        assert!(objects.iter().any(|o| o == object), "no Repaired event of {object}: {objects:?}");
    }
    if weakened {
        let replaced = "RoleBinding/caas-owner was given another role outside the broker; the broker restored it";
        let messages: Vec<&str> = repaired.iter().filter_map(|event| event.message.as_deref()).collect();
        assert!(messages.contains(&replaced), "{messages:?}");
    }
    let overview = path_of(&url, &served.origin);
    let signed_in = sign_in(&served, &format!("{overview}/login"), &token, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let cookie = cookie_of(&signed_in);
    let page = send(served.address, "GET", &overview, &[("cookie", &cookie)], "").await;
    assert_eq!(page.status, 200, "{page:?}");
    for shown in [
        "NetworkPolicy/caas-default-deny",
        "NetworkPolicy/caas-default-deny was deleted outside the broker; the broker restored it (",
        "ResourceQuota/caas-quota was changed outside the broker; the broker restored it",
        "the broker restored it. Change the plan or parameters through the platform",
    ] {
        assert!(page.body.contains(shown), "the overview does not show {shown:?}: {}", page.body);
    }
    assert!(!page.body.contains("Nothing abnormal."), "{}", page.body);
    let korean = send(served.address, "GET", &overview, &[("cookie", &cookie), ("accept-language", "ko")], "").await;
    assert!(korean.body.contains("브로커가 복구했습니다"), "{}", korean.body);

    // Another replica (or the broker after a restart) shows the same alert: it is in the cluster, not in memory.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let mut settings = broker.settings.clone();
    settings.dashboard.listen = address;
    let replica = caas_broker::server::broker(
        &settings,
        caas_broker::catalog::Catalog::built_in(),
        broker.client.clone(),
        broker.endpoint.clone(),
    )
    .expect("another replica");
    let app = caas_broker::server::dashboard_app(&settings, replica, cluster().admin_config().await, address);
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
    let server = tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let origin = settings.dashboard_own_url(address);
    let body = format!("token={}", support::http::form_encode(&token));
    let login = send(
        address,
        "POST",
        &format!("{overview}/login"),
        &[("content-type", "application/x-www-form-urlencoded"), ("origin", &origin)],
        &body,
    )
    .await;
    assert_eq!(login.status, 303, "{login:?}");
    let page = send(address, "GET", &overview, &[("cookie", &cookie_of(&login))], "").await;
    assert!(page.body.contains("NetworkPolicy/caas-default-deny was deleted outside the broker"), "{}", page.body);
    server.abort();
    still_ready(broker, &id).await;
}

#[tokio::test]
async fn a_deprovisioned_instance_or_a_deleted_namespace_is_never_made_again() {
    let broker = TestBroker::start(|_| {}).await;
    let (deprovisioned, deleted) =
        (format!("gone-{:08x}", rand::random::<u32>()), format!("rm-{:08x}", rand::random::<u32>()));
    for id in [&deprovisioned, &deleted] {
        broker.provision(id, SMALL, json!({})).await;
        let bound = broker.bind(id, &format!("{id}-b"), SMALL, json!({ "parameters": { "role": "admin" } })).await;
        assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    }
    drift_watched(&broker).await;
    for kind in ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding"] {
        let name = format!("caas_broker_repairs_total{{kind=\"{kind}\"}}");
        assert!(broker.metric(&name).await.is_some(), "{name} is served from the start");
    }
    let admin = cluster().admin().await;
    let namespaces = Api::<Namespace>::all(admin.clone());

    // Deprovisioned: the namespace controller deletes every object of it, which the drift watches all see deleted.
    broker.deprovision(&deprovisioned, SMALL).await;
    // An operator deleting a virtual cluster's namespace by hand.
    support::cluster::delete_namespace_and_wait(&admin, &broker.namespace(&deleted)).await;

    // Longer than a repair takes (see the other test): nothing comes back.
    tokio::time::sleep(REPAIR_DEADLINE).await;
    for id in [&deprovisioned, &deleted] {
        let name = broker.namespace(id);
        assert!(namespaces.get_opt(&name).await.expect("read").is_none(), "namespace {name} was made again");
        let selector = format!("caas-broker.io/instance={id}");
        let left = Api::<RoleBinding>::all(admin.clone())
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .expect("list RoleBindings");
        assert!(left.items.is_empty(), "RoleBindings of {id} made again: {:?}", left.items);
        let policies =
            Api::<NetworkPolicy>::all(admin.clone()).list_metadata(&ListParams::default().labels(&selector)).await;
        assert!(policies.expect("list policies").items.is_empty(), "a policy of {id} made again");
    }
    broker.assert_no_identities_left(&deprovisioned).await;
}
