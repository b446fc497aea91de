//! Workload plans over OSB against the real control plane: streaming sessions and container apps are placed in the
//! tenant's virtual cluster, counted against its quota, admitted by Pod Security, made Ready by the simulated kubelets,
//! managed through updates, and removed without touching the tenant's other objects.

mod support;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::broker::*;

const STREAMING: &str = "9d24743d-2818-4042-bdf2-2ec0927842b2";
const CPU_720P: &str = "40fd48d3-6eca-489c-bde5-0254076bc445";
const APP: &str = "d3bc9dcc-7e6e-4233-b13e-fbae81b08a60";
const APP_MEDIUM: &str = "0c23659f-ddf8-4f8c-841f-375d5cf3f8ff";

fn id(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

fn body(service: &str, plan: &str, org: &str, parameters: Value) -> Value {
    json!({ "service_id": service, "plan_id": plan, "organization_guid": org, "space_guid": "space-1",
            "context": { "platform": "cloudfoundry", "organization_guid": org }, "parameters": parameters })
}

async fn provision_cluster(broker: &TestBroker, org: &str) -> String {
    let cluster = id("vc");
    let answer = broker
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{cluster}?accepts_incomplete=true"),
            Some(provision_body(SMALL, org, json!({}))),
        )
        .await;
    assert!(answer.status.is_success(), "{answer:?}");
    broker.wait_for_state(&cluster, "provision", "succeeded").await;
    cluster
}

async fn put_async(broker: &TestBroker, instance: &str, body: Value) -> Answer {
    broker.call(Method::PUT, &format!("/v2/service_instances/{instance}?accepts_incomplete=true"), Some(body)).await
}

async fn patch_async(broker: &TestBroker, instance: &str, body: Value) -> Answer {
    broker.call(Method::PATCH, &format!("/v2/service_instances/{instance}?accepts_incomplete=true"), Some(body)).await
}

/// A volume reserved for the claim of `session` (the simulated nodes have no storage provisioner).
async fn offer_volume(broker: &TestBroker, name: &str, namespace: &str, session: &str) {
    let claim = format!("data-{}-0", caas_broker::k8s::names::short_label("session-", session, 50));
    support::cluster::reserve_volume(&broker.client, name, namespace, &claim).await;
}

#[tokio::test]
async fn streaming_session_lifecycle_in_the_tenant_namespace() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let namespace = broker.namespace(&cluster);
    let session = id("ss");
    let volume = id("pv");
    offer_volume(&broker, &volume, &namespace, &session).await;
    // Something of the tenant's own, which deprovisioning the session must leave alone.
    let configmaps = Api::<ConfigMap>::namespaced(broker.client.clone(), &namespace);
    configmaps
        .create(&PostParams::default(), &serde_json::from_value(json!({ "metadata": { "name": "mine" } })).expect("cm"))
        .await
        .expect("cm");

    let parameters = json!({ "steam_app_id": 1007, "launch": { "command": ["./game"], "args": ["-windowed"] } });
    let sync = broker
        .call(
            Method::PUT,
            &format!("/v2/service_instances/{session}"),
            Some(body(STREAMING, CPU_720P, &org, parameters.clone())),
        )
        .await;
    assert_eq!((sync.status, sync.body["error"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("AsyncRequired")));
    let accepted = put_async(&broker, &session, body(STREAMING, CPU_720P, &org, parameters.clone())).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    assert_eq!(accepted.body["operation"], "provision");
    let done = broker.wait_for_state(&session, "provision", "succeeded").await;
    assert_eq!(done.body["description"], "1 of 1 pods ready");

    let sets = Api::<StatefulSet>::namespaced(broker.client.clone(), &namespace);
    let set = sets
        .list(&ListParams::default().labels(&format!("caas-broker.io/instance={session}")))
        .await
        .expect("list")
        .items;
    assert_eq!(set.len(), 1);
    let set = serde_json::to_value(&set[0]).expect("json");
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(pod["initContainers"][0]["name"], "steamcmd");
    let init_env = &pod["initContainers"][0]["env"];
    assert!(init_env.as_array().expect("env").iter().any(|e| e["name"] == "STEAM_APP_ID" && e["value"] == "1007"));
    let session_env: BTreeMap<String, Value> = pod["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or_default().to_owned(), e["value"].clone()))
        .collect();
    assert_eq!(session_env["RESOLUTION"], "1280x720x24");
    assert_eq!(session_env["APP_COMMAND"], "./game -windowed");
    assert_eq!(session_env["STREAM_PORT"], "6080");
    assert_eq!(session_env["STREAM_PROTOCOL"], "selkies", "the default protocol");
    assert_eq!(session_env["VIDEO_ENCODER"], "software", "a cpu plan");
    assert_eq!(session_env["IDLE_STOP_MINUTES"], "30", "the plan's default");
    assert_eq!(pod["containers"][0]["ports"][0]["containerPort"], 6080);
    assert_eq!(pod["containers"][0]["ports"][0]["name"], "stream");
    assert_eq!(
        pod["containers"][0]["readinessProbe"]["exec"]["command"],
        json!(["test", "-e", "/tmp/session/session.ready"])
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["volumes"].as_array().expect("volumes").iter().any(|v| v["emptyDir"]["medium"] == "Memory"));
    assert_eq!(set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "10Gi");
    let name = set["metadata"]["name"].as_str().expect("name").to_owned();
    let service = Api::<Service>::namespaced(broker.client.clone(), &namespace).get(&name).await.expect("service");
    let port = service.spec.and_then(|s| s.ports).expect("ports").remove(0);
    assert_eq!((port.port, port.name.as_deref()), (6080, Some("stream")));

    // Bind: where the session is, and its VNC password (the one in the session's Secret).
    let binding = id("b");
    let bound = broker.bind(&session, &binding, CPU_720P, json!({ "service_id": STREAMING })).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    let credentials = &bound.body["credentials"];
    assert_eq!(credentials["vnc_port"], 6080);
    assert_eq!(credentials["stream_url"], format!("http://{name}.{namespace}.svc.cluster.local:6080/"));
    assert_eq!(credentials["stream_protocol"], "selkies");
    assert_eq!(
        (credentials["native_vnc_port"].clone(), credentials["pod"].clone()),
        (json!(5900), json!(format!("{name}-0")))
    );
    assert!(credentials.get("novnc_url").is_none(), "a Selkies session has no noVNC page");
    let secret =
        Api::<Secret>::namespaced(broker.client.clone(), &namespace).get(&format!("{name}-vnc")).await.expect("secret");
    let stored = String::from_utf8(secret.data.expect("data")["password"].0.clone()).expect("utf8");
    assert_eq!(credentials["vnc_password"], stored);
    assert_eq!(stored.len(), 8);

    // Stop: scaled to zero, the volume is kept; start with a restart token: the template rolls.
    let stop =
        patch_async(&broker, &session, json!({ "service_id": STREAMING, "parameters": { "state": "stopped" } })).await;
    assert_eq!(stop.status, StatusCode::ACCEPTED, "{stop:?}");
    let stopped = broker.wait_for_state(&session, "update", "succeeded").await;
    assert_eq!(stopped.body["description"], "stopped; the volume is kept");
    assert_eq!(sets.get(&name).await.expect("set").spec.and_then(|s| s.replicas), Some(0));
    let claims = Api::<PersistentVolumeClaim>::namespaced(broker.client.clone(), &namespace);
    assert_eq!(claims.list(&ListParams::default()).await.expect("claims").items.len(), 1);
    let start = patch_async(
        &broker,
        &session,
        json!({ "service_id": STREAMING, "parameters": { "state": "running", "restart": "r1" } }),
    )
    .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&session, "update", "succeeded").await;
    let template = sets.get(&name).await.expect("set").spec.expect("spec").template.metadata.expect("meta");
    assert_eq!(template.annotations.unwrap_or_default()["caas-broker.io/restart"], "r1");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    assert_eq!(fetched.body["parameters"]["restart"], "r1");
    assert_eq!(fetched.body["metadata"]["labels"]["cluster_instance_id"], cluster);

    // Deprovision removes exactly the session's objects, volume included.
    let delete =
        format!("/v2/service_instances/{session}?service_id={STREAMING}&plan_id={CPU_720P}&accepts_incomplete=true");
    let deleting = broker.call(Method::DELETE, &delete, None).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
    assert_eq!(operation, format!("deprovision:{namespace}"));
    broker.wait_for_state(&session, &operation, "succeeded").await;
    assert!(sets.get_opt(&name).await.expect("get").is_none());
    assert!(claims.list(&ListParams::default()).await.expect("claims").items.is_empty());
    assert!(configmaps.get_opt("mine").await.expect("get").is_some(), "the tenant's own objects stay");
    assert_eq!(broker.call(Method::DELETE, &delete, None).await.status, StatusCode::GONE);
    Api::<PersistentVolume>::all(broker.client.clone()).delete(&volume, &Default::default()).await.ok();
    broker.deprovision(&cluster, SMALL).await;
}

/// Marks the session container of `pod` as having stopped for want of a viewer, as the kubelet shows it after the
/// entrypoint wrote its termination message and exited (the simulated kubelet runs no entrypoint). A pod that is gone
/// or changed meanwhile is left as it is: the caller marks it again.
async fn stop_for_want_of_a_viewer(broker: &TestBroker, namespace: &str, pod: &str) {
    let pods = Api::<Pod>::namespaced(broker.client.clone(), namespace);
    let Ok(mut current) = pods.get(pod).await else { return };
    let now = jiff::Timestamp::now().to_string();
    let statuses = current.status.as_mut().and_then(|s| s.container_statuses.as_mut()).expect("container statuses");
    let session = statuses.iter_mut().find(|c| c.name == "session").expect("the session container");
    session.last_state = Some(
        serde_json::from_value(json!({ "terminated": { "exitCode": 0, "reason": "Completed",
            "message": "idle-stop: no viewer for 1 minutes", "startedAt": now, "finishedAt": now } }))
        .expect("state"),
    );
    session.restart_count = 1;
    if let Err(error) = pods.replace_status(pod, &PostParams::default(), &current).await {
        println!("marking {pod} stopped for want of a viewer: {error}; marked again");
    }
}

#[tokio::test]
async fn a_session_without_a_viewer_is_scaled_to_zero_kept_asleep_and_woken_by_state_running() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let namespace = broker.namespace(&cluster);
    let session = id("ss");
    let volume = id("pv");
    offer_volume(&broker, &volume, &namespace, &session).await;
    let parameters = json!({ "launch": { "command": ["./app"] }, "idle_stop_minutes": 1, "protocol": "novnc" });
    let accepted = put_async(&broker, &session, body(STREAMING, CPU_720P, &org, parameters)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    broker.wait_for_state(&session, "provision", "succeeded").await;
    let name = caas_broker::k8s::names::short_label("session-", &session, 50);
    let sets = Api::<StatefulSet>::namespaced(broker.client.clone(), &namespace);
    let set = serde_json::to_value(sets.get(&name).await.expect("set")).expect("json");
    let env = set["spec"]["template"]["spec"]["containers"][0]["env"].as_array().cloned().unwrap_or_default();
    let value = |name: &str| env.iter().find(|e| e["name"] == name).map(|e| e["value"].clone());
    assert_eq!((value("IDLE_STOP_MINUTES"), value("STREAM_PROTOCOL")), (Some(json!("1")), Some(json!("novnc"))));
    let stops = "caas_broker_session_idle_stops_total";
    let saved = "caas_broker_session_idle_saved_pod_hours_total";
    let (stops_before, saved_before) =
        (broker.metric(stops).await.expect("idle stops counted"), broker.metric(saved).await.expect("saved hours"));

    // The simulated kubelet may write the pod's status over the mark, and the broker's watch of the namespace's pods
    // may start after it was made: it is made again until the session is scaled to zero.
    let pod = format!("{name}-0");
    support::cluster::eventually(std::time::Duration::from_secs(60), "the session scaled to zero", || async {
        if sets.get(&name).await.expect("set").spec.and_then(|s| s.replicas) == Some(0) {
            return Some(());
        }
        stop_for_want_of_a_viewer(&broker, &namespace, &pod).await;
        None
    })
    .await;
    assert_eq!(broker.metric(stops).await, Some(stops_before + 1.0));
    let claims = Api::<PersistentVolumeClaim>::namespaced(broker.client.clone(), &namespace);
    assert_eq!(claims.list(&ListParams::default()).await.expect("claims").items.len(), 1, "the volume is kept");
    let operation = format!("/v2/service_instances/{session}/last_operation");
    let asleep = support::cluster::eventually(std::time::Duration::from_secs(60), "the pod gone", || async {
        let answer = broker.call(Method::GET, &operation, None).await;
        (answer.body["state"] == "succeeded").then_some(answer)
    })
    .await;
    let description = asleep.body["description"].as_str().unwrap_or_default().to_owned();
    assert!(description.starts_with("stopped after 1 minute without a viewer (at "), "{description}");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    let labels = &fetched.body["metadata"]["labels"];
    assert_eq!(labels["state"], "stopped after 1 minute without a viewer", "{fetched:?}");
    assert_eq!(labels["idle_stopped_after_minutes"], "1");
    assert!(labels["idle_stopped_at"].as_str().is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok()), "{labels}");

    // An update that does not give the state keeps it asleep; one that gives "running" wakes it.
    let other =
        patch_async(&broker, &session, json!({ "service_id": STREAMING, "parameters": { "restart": "r1" } })).await;
    assert_eq!(other.status, StatusCode::ACCEPTED, "{other:?}");
    broker.wait_for_state(&session, "update", "succeeded").await;
    assert_eq!(sets.get(&name).await.expect("set").spec.and_then(|s| s.replicas), Some(0), "still asleep");
    let wake = json!({ "service_id": STREAMING, "parameters": { "state": "running" } });
    assert_eq!(patch_async(&broker, &session, wake).await.status, StatusCode::ACCEPTED);
    let awake = broker.wait_for_state(&session, "update", "succeeded").await;
    assert_eq!(awake.body["description"], "1 of 1 pods ready");
    assert_eq!(sets.get(&name).await.expect("set").spec.and_then(|s| s.replicas), Some(1));
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    assert!(fetched.body["metadata"]["labels"].get("idle_stopped_at").is_none(), "{fetched:?}");
    assert!(broker.metric(saved).await.expect("saved hours") > saved_before, "the hours asleep are counted");
    assert_eq!(broker.metric(stops).await, Some(stops_before + 1.0), "a fresh pod is no new stop");

    let delete =
        format!("/v2/service_instances/{session}?service_id={STREAMING}&plan_id={CPU_720P}&accepts_incomplete=true");
    let deleting = broker.call(Method::DELETE, &delete, None).await;
    let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
    broker.wait_for_state(&session, &operation, "succeeded").await;
    Api::<PersistentVolume>::all(broker.client.clone()).delete(&volume, &Default::default()).await.ok();
    broker.deprovision(&cluster, SMALL).await;
}

#[tokio::test]
async fn placement_needs_exactly_one_virtual_cluster_of_the_organization() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let app = json!({ "image": "example.invalid/api:1", "port": 8080 });
    let none = put_async(&broker, &id("app"), body(APP, APP_MEDIUM, &org, app.clone())).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST, "{none:?}");
    assert!(none.body["description"].as_str().unwrap_or_default().contains("has no virtual cluster"));
    let first = provision_cluster(&broker, &org).await;
    let second = provision_cluster(&broker, &org).await;
    let several = put_async(&broker, &id("app"), body(APP, APP_MEDIUM, &org, app.clone())).await;
    assert_eq!(several.status, StatusCode::BAD_REQUEST);
    assert!(
        several.body["description"]
            .as_str()
            .unwrap_or_default()
            .contains("choose one with parameters.cluster_instance_id")
    );
    let elsewhere = put_async(
        &broker,
        &id("app"),
        body(APP, APP_MEDIUM, "other-org", json!({ "image": "x", "port": 80, "cluster_instance_id": first })),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    assert!(elsewhere.body["description"].as_str().unwrap_or_default().contains("another organization"));
    let missing = put_async(&broker, &id("app"), body(APP, APP_MEDIUM, &org, json!({ "port": 80 }))).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "image is required");
    broker.deprovision(&first, SMALL).await;
    broker.deprovision(&second, SMALL).await;
}

#[tokio::test]
async fn container_app_scales_binds_and_reports_quota_refusals() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let namespace = broker.namespace(&cluster);
    let app = id("app");
    let parameters = json!({ "image": "example.invalid/api:1.4", "port": 8080, "replicas": 2, "env": { "MODE": "prod" },
                             "ingress_host": "api.example.test", "ingress_class": "nginx", "path": "/api" });
    let accepted = put_async(&broker, &app, body(APP, APP_MEDIUM, &org, parameters)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    let done = broker.wait_for_state(&app, "provision", "succeeded").await;
    assert_eq!(done.body["description"], "2 of 2 pods ready");
    let deployments = Api::<Deployment>::namespaced(broker.client.clone(), &namespace);
    let selector = format!("caas-broker.io/instance={app}");
    let deployment = deployments.list(&ListParams::default().labels(&selector)).await.expect("list").items.remove(0);
    let name = deployment.metadata.name.clone().expect("name");
    let container = &deployment.spec.expect("spec").template.spec.expect("pod").containers[0];
    assert_eq!(container.image.as_deref(), Some("example.invalid/api:1.4"));
    assert_eq!(container.env.as_ref().expect("env")[0].value.as_deref(), Some("prod"));
    assert_eq!(container.resources.as_ref().and_then(|r| r.limits.as_ref()).expect("limits")["cpu"].0, "500m");
    let ingress = Api::<Ingress>::namespaced(broker.client.clone(), &namespace).get(&name).await.expect("ingress");
    let rule = &ingress.spec.expect("spec").rules.expect("rules")[0];
    assert_eq!(rule.host.as_deref(), Some("api.example.test"));

    let bound = broker.bind(&app, &id("b"), APP_MEDIUM, json!({ "service_id": APP })).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    assert_eq!(bound.body["credentials"]["url"], "https://api.example.test");
    assert_eq!(bound.body["credentials"]["urls"][1], format!("http://{name}.{namespace}.svc.cluster.local"));

    // Autoscaling makes an HPA; 6 pods of 500m exceed the small virtual cluster's 2 CPUs: the refusal is reported.
    let scaled = patch_async(
        &broker,
        &app,
        json!({ "service_id": APP, "parameters": { "autoscale": { "min": 1, "max": 3, "cpu_percent": 70 } } }),
    )
    .await;
    assert_eq!(scaled.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&app, "update", "succeeded").await;
    let hpa =
        Api::<HorizontalPodAutoscaler>::namespaced(broker.client.clone(), &namespace).get(&name).await.expect("hpa");
    assert_eq!(hpa.spec.max_replicas, 3);
    let too_many =
        patch_async(&broker, &app, json!({ "service_id": APP, "parameters": { "autoscale": null, "replicas": 6 } }))
            .await;
    assert_eq!(too_many.status, StatusCode::ACCEPTED);
    let failed = broker.wait_for_state(&app, "update", "failed").await;
    let description = failed.body["description"].as_str().unwrap_or_default();
    assert!(description.contains("exceeded quota"), "{description}");

    let delete = format!("/v2/service_instances/{app}?service_id={APP}&plan_id={APP_MEDIUM}&accepts_incomplete=true");
    let deleting = broker.call(Method::DELETE, &delete, None).await;
    let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
    broker.wait_for_state(&app, &operation, "succeeded").await;
    assert!(deployments.get_opt(&name).await.expect("get").is_none());
    broker.deprovision(&cluster, SMALL).await;
}

#[tokio::test]
async fn binding_a_session_that_is_not_ready_yet_is_asynchronous() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let session = id("ss");
    // No volume is offered yet: the session's claim stays unbound and its pod waits for a node.
    let accepted = put_async(&broker, &session, body(STREAMING, CPU_720P, &org, json!({ "steam_app_id": 1007 }))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    let state = broker.call(Method::GET, &format!("/v2/service_instances/{session}/last_operation"), None).await;
    assert_eq!(state.body["state"], "in progress", "{state:?}");

    let binding = id("b");
    let uri = format!("/v2/service_instances/{session}/service_bindings/{binding}");
    let bind_body = json!({ "service_id": STREAMING, "plan_id": CPU_720P, "bind_resource": { "app_guid": "app-1" } });
    let sync = broker.call(Method::PUT, &format!("{uri}-sync"), Some(bind_body.clone())).await;
    assert_eq!((sync.status, sync.body["error"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("AsyncRequired")));
    let accepted = broker.call(Method::PUT, &format!("{uri}?accepts_incomplete=true"), Some(bind_body.clone())).await;
    assert_eq!((accepted.status, accepted.body.clone()), (StatusCode::ACCEPTED, json!({ "operation": "bind" })));
    assert!(accepted.body.get("credentials").is_none(), "a 202 carries no credentials");
    let again = broker.call(Method::PUT, &format!("{uri}?accepts_incomplete=true"), Some(bind_body)).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(broker.call(Method::GET, &uri, None).await.status, StatusCode::NOT_FOUND, "in progress: 404");
    let polled = broker.call(Method::GET, &format!("{uri}/last_operation?operation=bind"), None).await;
    assert_eq!(polled.body["state"], "in progress", "{polled:?}");

    let volume = id("pv");
    offer_volume(&broker, &volume, &broker.namespace(&cluster), &session).await;
    support::cluster::eventually(std::time::Duration::from_secs(60), "the binding to complete", || async {
        let polled = broker.call(Method::GET, &format!("{uri}/last_operation?operation=bind"), None).await;
        (polled.body["state"] == "succeeded").then_some(())
    })
    .await;
    let fetched = broker.call(Method::GET, &uri, None).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["credentials"]["vnc_password"].as_str().map(str::len), Some(8));

    let delete = format!("/v2/service_instances/{session}?service_id={STREAMING}&plan_id={CPU_720P}");
    assert_eq!(broker.call(Method::DELETE, &delete, None).await.status, StatusCode::OK);
    Api::<PersistentVolume>::all(broker.client.clone()).delete(&volume, &Default::default()).await.ok();
    broker.deprovision(&cluster, SMALL).await;
}

/// A virtual cluster that still runs a workload is not deleted (422 naming it); a session that the virtual cluster's
/// quota cannot hold beside what already runs there is refused at once (422, saying what it needs and what is in use)
/// and creates nothing; a session whose volume claim cannot be bound reports the scheduler's reason while it waits,
/// not just "waiting for a node".
#[tokio::test]
async fn what_cannot_fit_is_refused_at_once_and_waiting_names_its_cause() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let namespace = broker.namespace(&cluster);
    const APP_SMALL: &str = "278427c7-d889-4e85-9efa-d530be419e8f";
    let app = id("app");
    let parameters = json!({ "image": "example.invalid/app:1", "port": 8080 });
    assert_eq!(put_async(&broker, &app, body(APP, APP_SMALL, &org, parameters)).await.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&app, "provision", "succeeded").await;

    // The virtual cluster cannot be deleted while it runs the app: 422 naming it, and the cluster is untouched.
    for accepts_incomplete in [true, false] {
        let uri = format!(
            "/v2/service_instances/{cluster}?service_id={CAAS}&plan_id={SMALL}&accepts_incomplete={accepts_incomplete}"
        );
        let refused = broker.call(Method::DELETE, &uri, None).await;
        assert_eq!(
            (refused.status, refused.body["error"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("InstanceInUse"))
        );
        let description = refused.body["description"].as_str().unwrap_or_default();
        assert!(description.contains(&format!("container-app instance {app}")), "{description}");
    }
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(broker.client.clone());
    let kept = namespaces.get(&namespace).await.expect("the virtual cluster is still there");
    assert!(kept.metadata.deletion_timestamp.is_none(), "the virtual cluster is not being deleted");

    // cpu-720p needs the whole of a small cluster's 2 GiB of memory; the app holds 256 MiB of it.
    let session = id("ss");
    let refused = put_async(&broker, &session, body(STREAMING, CPU_720P, &org, json!({ "steam_app_id": 1007 }))).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused:?}");
    assert_eq!(refused.body["error"], "QuotaExceeded");
    let description = refused.body["description"].as_str().unwrap_or_default();
    assert!(description.contains("limits.memory: needs 2Gi, 256Mi of 2Gi in use"), "{description}");
    let sets = Api::<StatefulSet>::namespaced(broker.client.clone(), &namespace);
    assert!(sets.list(&ListParams::default()).await.expect("list").items.is_empty(), "nothing was created");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{session}"), None).await;
    assert_eq!(fetched.status, StatusCode::NOT_FOUND, "no record of the refused session");

    // Without the app it fits; with no volume for its claim (no volume, and no storage class or a provisioner that
    // cannot serve the simulated nodes), the operation waits, saying why in the cluster's words.
    let delete = format!("/v2/service_instances/{app}?service_id={APP}&plan_id={APP_SMALL}&accepts_incomplete=true");
    let deleting = broker.call(Method::DELETE, &delete, None).await;
    let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
    broker.wait_for_state(&app, &operation, "succeeded").await;
    support::cluster::eventually(std::time::Duration::from_secs(30), "the app's quota to be released", || async {
        let quotas = Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(broker.client.clone(), &namespace);
        let used = quotas.get("caas-quota").await.ok()?.status?.used?;
        (caas_broker::catalog::quantity::parse(&used.get("limits.memory")?.0)?.0 == 0).then_some(())
    })
    .await;
    let accepted = put_async(&broker, &session, body(STREAMING, CPU_720P, &org, json!({ "steam_app_id": 1007 }))).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    let uri = format!("/v2/service_instances/{session}/last_operation?operation=provision");
    let claim = format!("data-{}-0", caas_broker::k8s::names::short_label("session-", &session, 50));
    let reason = format!("waiting for a volume, which the cluster cannot provide yet: {claim}: ");
    let waiting = support::cluster::eventually(std::time::Duration::from_secs(90), "the claim's refusal", || async {
        let state = broker.call(Method::GET, &uri, None).await;
        state.body["description"].as_str().is_some_and(|d| d.starts_with(&reason)).then_some(state)
    })
    .await;
    assert_eq!(waiting.body["state"], "in progress", "{waiting:?}");
    let delete =
        format!("/v2/service_instances/{session}?service_id={STREAMING}&plan_id={CPU_720P}&accepts_incomplete=true");
    assert_eq!(broker.call(Method::DELETE, &delete, None).await.status, StatusCode::ACCEPTED);
    broker.deprovision(&cluster, SMALL).await;
}

#[tokio::test]
async fn a_synchronous_deprovision_of_a_workload_answers_200_once_its_objects_are_gone() {
    let broker = TestBroker::start(|_| {}).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let namespace = broker.namespace(&cluster);
    let app = id("app");
    let parameters =
        json!({ "image": "example.invalid/api:1", "port": 8080, "replicas": 2, "ingress_host": "a.example.test" });
    let accepted = put_async(&broker, &app, body(APP, APP_MEDIUM, &org, parameters)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    broker.wait_for_state(&app, "provision", "succeeded").await;

    let delete = format!("/v2/service_instances/{app}?service_id={APP}&plan_id={APP_MEDIUM}");
    let deleted = broker.call(Method::DELETE, &delete, None).await;
    assert_eq!((deleted.status, deleted.body.clone()), (StatusCode::OK, json!({})), "{deleted:?}");
    let selector = format!("caas-broker.io/instance={app}");
    let client = &broker.client;
    assert_eq!(labelled::<k8s_openapi::api::core::v1::Pod>(client, &namespace, &selector).await, 0, "no pod left");
    assert_eq!(labelled::<Deployment>(client, &namespace, &selector).await, 0, "no Deployment left");
    assert_eq!(labelled::<Service>(client, &namespace, &selector).await, 0, "no Service left");
    assert_eq!(labelled::<Ingress>(client, &namespace, &selector).await, 0, "no Ingress left");
    assert_eq!(broker.call(Method::DELETE, &delete, None).await.status, StatusCode::GONE);
    broker.deprovision(&cluster, SMALL).await;
}

/// How many objects of a kind in `namespace` carry the labels `selector` names.
async fn labelled<K>(client: &kube::Client, namespace: &str, selector: &str) -> usize
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = Api::<K>::namespaced(client.clone(), namespace);
    api.list_metadata(&ListParams::default().labels(selector)).await.expect("list").items.len()
}

/// With Ingress hosts limited (`ingress.domain`), a container app whose `ingress_host` is outside its virtual
/// cluster's domain is refused with 400 before anything is made; one under it is provisioned, and the guard admits
/// the broker's own Ingress.
#[tokio::test]
async fn an_ingress_host_outside_the_clusters_domain_is_refused() {
    let broker = TestBroker::start(|settings| settings.ingress.domain = Some("apps.example.test".to_owned())).await;
    let org = id("org");
    let cluster = provision_cluster(&broker, &org).await;
    let namespace = broker.namespace(&cluster);
    const APP_SMALL: &str = "278427c7-d889-4e85-9efa-d530be419e8f";
    let foreign = id("app");
    let parameters = json!({ "image": "example.invalid/app:1", "port": 8080, "ingress_host": "bank.example.com" });
    let refused = put_async(&broker, &foreign, body(APP, APP_SMALL, &org, parameters)).await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadRequest")),
        "{refused:?}"
    );
    let description = refused.body["description"].as_str().unwrap_or_default();
    assert!(
        description.contains(&format!("{cluster}.apps.example.test")),
        "the description names the domain: {description}"
    );
    let deployments = Api::<Deployment>::namespaced(broker.client.clone(), &namespace);
    assert!(deployments.list(&ListParams::default()).await.expect("list").items.is_empty(), "nothing was created");
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{foreign}"), None).await;
    assert_eq!(fetched.status, StatusCode::NOT_FOUND, "no record of the refused app");

    let app = id("app");
    let host = format!("web.{cluster}.apps.example.test");
    let parameters = json!({ "image": "example.invalid/app:1", "port": 8080, "ingress_host": host });
    assert_eq!(put_async(&broker, &app, body(APP, APP_SMALL, &org, parameters)).await.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&app, "provision", "succeeded").await;
    let ingresses = Api::<Ingress>::namespaced(broker.client.clone(), &namespace).list(&ListParams::default()).await;
    let hosts: Vec<_> = ingresses
        .expect("list")
        .items
        .iter()
        .flat_map(|ingress| ingress.spec.iter().flat_map(|spec| spec.rules.iter().flatten()))
        .filter_map(|rule| rule.host.clone())
        .collect();
    assert_eq!(hosts, [host]);
    let delete = format!("/v2/service_instances/{app}?service_id={APP}&plan_id={APP_SMALL}&accepts_incomplete=true");
    let deleting = broker.call(Method::DELETE, &delete, None).await;
    let operation = deleting.body["operation"].as_str().expect("operation").to_owned();
    broker.wait_for_state(&app, &operation, "succeeded").await;
    broker.deprovision(&cluster, SMALL).await;
}
