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
