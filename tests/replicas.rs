//! Two broker replicas behind one Service: no local state, so requests of one lifecycle sent to alternating replicas,
//! and the same request sent to both at once, give consistent, spec-conforming answers and one set of objects.

mod support;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use support::broker::*;

#[tokio::test]
async fn a_lifecycle_across_alternating_replicas_is_consistent() {
    let first = TestBroker::start(|_| {}).await;
    // The second replica: same configuration (prefix included), its own process state.
    let mut second = TestBroker::start(|_| {}).await;
    second.prefix = first.prefix.clone();
    second.settings = first.settings.clone();
    second.restart();
    let replicas = [&first, &second];
    let id = format!("ha-{:08x}", rand::random::<u32>());
    let uri = format!("/v2/service_instances/{id}");

    // The same provision to both replicas at once: one instance; one 201 and a 200 (or both 201 if both converged).
    let body = provision_body(SMALL, "org-ha", json!({}));
    let (a, b) = tokio::join!(
        first.call(Method::PUT, &uri, Some(body.clone())),
        second.call(Method::PUT, &uri, Some(body.clone()))
    );
    let statuses = [a.status, b.status];
    assert!(statuses.contains(&StatusCode::CREATED), "{a:?} {b:?}");
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::OK), "{a:?} {b:?}");
    let selector = format!("caas-broker.io/instance={id}");
    let namespaces =
        Api::<Namespace>::all(first.client.clone()).list(&ListParams::default().labels(&selector)).await.expect("list");
    assert_eq!(namespaces.items.len(), 1);

    // Conflicting provisions to both at once: exactly one wins.
    let other_id = format!("ha-{:08x}", rand::random::<u32>());
    let other_uri = format!("/v2/service_instances/{other_id}");
    let (a, b) = tokio::join!(
        first.call(Method::PUT, &other_uri, Some(provision_body(SMALL, "org-ha", json!({})))),
        second.call(Method::PUT, &other_uri, Some(provision_body(MICRO, "org-ha", json!({}))))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT], "{a:?} {b:?}");

    // The rest of the lifecycle, request by request on alternating replicas.
    let steps = 8;
    for step in 0..steps {
        let replica = replicas[step % 2];
        match step {
            0 => assert_eq!(replica.call(Method::GET, &uri, None).await.status, StatusCode::OK),
            1 => {
                let patch = json!({ "service_id": CAAS, "plan_id": MEDIUM });
                assert_eq!(replica.call(Method::PATCH, &uri, Some(patch)).await.status, StatusCode::OK);
            }
            // The other replica answers fetches from its copy of the records, which its watch brings up to date a
            // moment after the write: always found, and on the new plan once the watch has delivered it.
            2 => {
                support::cluster::eventually(std::time::Duration::from_secs(5), "the new plan", || async {
                    let fetched = replica.call(Method::GET, &uri, None).await;
                    assert_eq!(fetched.status, StatusCode::OK, "{fetched:?}");
                    (fetched.body["plan_id"] == MEDIUM).then_some(())
                })
                .await
            }
            3 => assert_eq!(replica.bind(&id, &format!("{id}-b"), MEDIUM, json!({})).await.status, StatusCode::CREATED),
            4 => {
                let again = replica.bind(&id, &format!("{id}-b"), MEDIUM, json!({})).await;
                assert_eq!(again.status, StatusCode::OK, "the other replica returns the same binding");
            }
            5 => assert_eq!(replica.unbind(&id, &format!("{id}-b"), MEDIUM).await.status, StatusCode::OK),
            6 => assert_eq!(replica.unbind(&id, &format!("{id}-b"), MEDIUM).await.status, StatusCode::GONE),
            _ => replica.deprovision(&id, MEDIUM).await,
        }
    }
    first.deprovision(&other_id, SMALL).await;
}

/// A replica binds ahead of its fresh read when its copy of the records foresees success. Right after the other
/// replica changed the plan, that copy still holds the old one (here the second replica's watch lags half a second):
/// the bind with the old plan is refused all the same, and what was applied ahead is withdrawn, so that the refusal
/// leaves no ServiceAccount or RoleBinding behind.
#[tokio::test]
async fn a_bind_the_other_replicas_copy_foresaw_wrongly_is_refused_and_leaves_nothing() {
    use caas_broker::catalog::Catalog;
    use caas_broker::k8s::binding::BindingObjects;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::RoleBinding;
    use std::time::Duration;
    use support::proxy::Proxy;

    // The second replica hears everything the apiserver says half a second late: its watch lags by that much.
    let admin = support::cluster::cluster().admin_config().await;
    let target = format!("127.0.0.1:{}", admin.cluster_url.port_u16().unwrap_or(443));
    let proxy = Proxy::start_delayed(target.parse().expect("apiserver address"), Duration::from_millis(500)).await;
    let mut config = admin.clone();
    config.cluster_url = format!("https://127.0.0.1:{}", proxy.address.port()).parse().expect("url");
    let first = TestBroker::start(|_| {}).await;
    let mut second = TestBroker::start_with_config(config, Catalog::built_in(), |_| {});
    second.prefix = first.prefix.clone();
    second.settings = first.settings.clone();
    second.restart();
    let id = format!("ha-{:08x}", rand::random::<u32>());
    let uri = format!("/v2/service_instances/{id}");
    assert_eq!(first.provision(&id, SMALL, json!({})).await.status, StatusCode::CREATED);
    let namespace = first.namespace(&id);
    let identities =
        Api::<ServiceAccount>::namespaced(first.client.clone(), &first.settings.kubernetes.identity_namespace);
    let role_bindings = Api::<RoleBinding>::namespaced(first.client.clone(), &namespace);
    support::cluster::eventually(Duration::from_secs(60), "the second replica's copy of the records", || async {
        second.records_copy_synced().then_some(())
    })
    .await;
    let mut plan = SMALL;
    for round in 0..3 {
        support::cluster::eventually(Duration::from_secs(10), "the second replica's copy on the plan", || async {
            let fetched = second.call(Method::GET, &uri, None).await;
            (fetched.body["plan_id"] == plan).then_some(())
        })
        .await;
        let (old, new) = if plan == SMALL { (SMALL, MEDIUM) } else { (MEDIUM, SMALL) };
        let patch = json!({ "service_id": CAAS, "plan_id": new });
        assert_eq!(first.call(Method::PATCH, &uri, Some(patch)).await.status, StatusCode::OK);
        plan = new;
        // At once, before the second replica's watch may have delivered the change.
        let binding_id = format!("{id}-stale-{round}");
        let refused = second.bind(&id, &binding_id, old, json!({})).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "round {round}: {refused:?}");
        let objects = BindingObjects {
            binding_id: binding_id.clone(),
            instance_id: id.clone(),
            namespace: namespace.clone(),
            broker_namespace: first.settings.kubernetes.broker_namespace.clone(),
            identity_namespace: first.settings.kubernetes.identity_namespace.clone(),
        };
        let account = objects.account_name();
        let left =
            (identities.get_opt(&account).await.expect("read"), role_bindings.get_opt(&account).await.expect("read"));
        assert!(left.0.is_none() && left.1.is_none(), "round {round}: the refused bind left {left:?}");
    }
    // The current plan binds, on either replica.
    assert_eq!(second.bind(&id, &format!("{id}-current"), plan, json!({})).await.status, StatusCode::CREATED);
    first.deprovision(&id, plan).await;
}
