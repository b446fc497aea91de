//! The dashboard's apps page against the real control plane: a tenant's own Deployment stopped, started, restarted,
//! scaled, autoscaled and deleted by an `edit` binding signed in to the dashboard, each checked on the objects in the
//! cluster; a `view` binding sees no control and a forged form is refused by the apiserver, changing nothing; numbers
//! that are no numbers change nothing; and a container app of the workload plan is stopped, started and deleted
//! through the broker's own update and deprovision, so that the platform reads the same state.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::broker::*;
use support::cluster::{cluster, eventually};
use support::dashboard::*;
use support::http::{HttpAnswer, send};

const APP: &str = "d3bc9dcc-7e6e-4233-b13e-fbae81b08a60";
const APP_MEDIUM: &str = "0c23659f-ddf8-4f8c-841f-375d5cf3f8ff";

/// A signed-in visitor: the session cookie and the dashboard's origin.
struct Visitor<'a> {
    served: &'a Served,
    cookie: String,
    apps: String,
}

impl Visitor<'_> {
    async fn page(&self) -> HttpAnswer {
        self.served.get(&self.apps, &self.cookie).await
    }

    /// Posts an action form from the dashboard's own origin, as the page's forms do.
    async fn act(&self, resource: &str, name: &str, form: &str) -> HttpAnswer {
        self.served.post_body(&format!("{}/{resource}/{name}", self.apps), &self.cookie, form).await
    }
}

async fn visitor<'a>(served: &'a Served, url: &str, token: &str) -> Visitor<'a> {
    let overview = path_of(url, &served.origin);
    let signed_in = sign_in(served, &format!("{overview}/login"), token, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    Visitor { served, cookie: cookie_of(&signed_in), apps: format!("{overview}/apps") }
}

async fn tenant_deployment(namespace: &str, name: &str, replicas: i32) -> Api<Deployment> {
    let deployments = Api::<Deployment>::namespaced(cluster().admin().await, namespace);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": { "replicas": replicas, "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } },
                                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] } } }
    }))
    .expect("deployment");
    deployments.create(&PostParams::default(), &deployment).await.expect("create the tenant's deployment");
    deployments
}

async fn replicas(deployments: &Api<Deployment>, name: &str) -> (i32, Option<String>) {
    let deployment = deployments.get(name).await.expect("get the deployment");
    let before = deployment
        .metadata
        .annotations
        .and_then(|a| a.get(caas_broker::tenant::apps::ANNOTATION_REPLICAS_BEFORE_STOP).cloned());
    (deployment.spec.and_then(|s| s.replicas).unwrap_or(1), before)
}

#[tokio::test]
async fn an_editor_runs_the_tenants_own_app_and_a_viewer_cannot() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewer = broker.bind(&id, &format!("{id}-view"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    assert_eq!(viewer.status, StatusCode::CREATED, "{viewer:?}");
    let view_token = viewer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let namespace = broker.namespace(&id);
    let deployments = tenant_deployment(&namespace, "web", 2).await;
    let editor = visitor(&served, &url, &edit_token).await;

    // The page, read as the editor: the app with its controls; this cluster serves the metrics API (metrics-server), so
    // no "no metrics API" notice.
    let page = editor.page().await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains(r#"id="app-deployments-web""#), "{}", page.body);
    for control in [r#"value="stop""#, r#"value="restart""#, r#"value="scale""#, r#"value="autoscale""#] {
        assert!(page.body.contains(control), "an editor gets {control}: {}", page.body);
    }
    assert!(!page.body.contains(r#"id="no-metrics""#), "{}", page.body);

    // Stop remembers two pods, start brings them back.
    let stopped = editor.act("deployments", "web", "action=stop").await;
    assert_eq!(
        (stopped.status, stopped.header("location")),
        (303, Some(format!("{}?done=stop&app=web", editor.apps).as_str()))
    );
    assert_eq!(replicas(&deployments, "web").await, (0, Some("2".to_owned())));
    let page = editor.page().await;
    assert!(page.body.contains(r#"value="start""#) && !page.body.contains(r#"value="stop""#), "{}", page.body);
    assert_eq!(editor.act("deployments", "web", "action=start").await.status, 303);
    assert_eq!(replicas(&deployments, "web").await, (2, None));

    // Restart sets the annotation `kubectl rollout restart` sets; scale sets the count.
    assert_eq!(editor.act("deployments", "web", "action=restart").await.status, 303);
    let template = deployments.get("web").await.expect("get").spec.expect("spec").template.metadata.expect("meta");
    let restarted = template.annotations.unwrap_or_default();
    assert!(restarted.contains_key(caas_broker::tenant::apps::ANNOTATION_RESTARTED_AT), "{restarted:?}");
    assert_eq!(editor.act("deployments", "web", "action=scale&replicas=3").await.status, 303);
    assert_eq!(replicas(&deployments, "web").await.0, 3);

    // Numbers that are no numbers, or out of range, and unknown actions: 400, nothing changed.
    for bad in ["action=scale&replicas=three", "action=scale&replicas=51", "action=scale&replicas=-1", "action=reboot"]
    {
        let refused = editor.act("deployments", "web", bad).await;
        assert_eq!(refused.status, 400, "{bad}: {refused:?}");
        assert!(refused.body.contains(r#"id="notice""#), "the page says why: {}", refused.body);
    }
    let refused = editor.act("deployments", "web", "action=autoscale&min=4&max=2&cpu=70").await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(replicas(&deployments, "web").await.0, 3);

    // Autoscale makes an autoscaler for the app; scaling by hand is then refused until autoscaling stops.
    assert_eq!(editor.act("deployments", "web", "action=autoscale&min=1&max=4&cpu=60").await.status, 303);
    let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(cluster().admin().await, &namespace);
    let hpa = autoscalers.get("web").await.expect("the autoscaler");
    assert_eq!((hpa.spec.min_replicas, hpa.spec.max_replicas), (Some(1), 4));
    assert_eq!(hpa.spec.scale_target_ref.name, "web");
    let page = editor.page().await;
    assert!(page.body.contains("1–4, CPU 60 %") && page.body.contains(r#"value="stop-autoscaling""#), "{}", page.body);
    assert!(page.body.contains(r#"<tr data-app="Deployment/web">"#), "the live autoscalers: {}", page.body);
    // The autoscalers' state alone (what the page swaps in live) says what the autoscaler controller wrote: here, that
    // it measures nothing and cannot scale (no pod of this cluster has metrics).
    let fragment = format!("{}/autoscalers", editor.apps.trim_end_matches("/apps"));
    let state = eventually(Duration::from_secs(60), "the autoscaler's state in its live fragment", || async {
        let part = send(served.address, "GET", &fragment, &[("cookie", &editor.cookie)], "").await;
        assert_eq!(part.status, 200, "{part:?}");
        part.body.contains("cannot scale").then_some(part.body)
    })
    .await;
    let row = state.split(r#"<tr data-app="Deployment/web">"#).nth(1).expect("the autoscaler's row");
    assert!(row.contains(r#"<td class="num cpu">not measured / 60 %</td>"#), "{row}");
    assert!(row.contains(r#"<td class="num range">1–4</td>"#), "{row}");
    // Without metrics for its pods (they run on kwok's nodes, which have no kubelet to measure them) the cluster's
    // autoscaler controller cannot act: the overview warns, naming why.
    let overview = editor.apps.trim_end_matches("/apps").to_owned();
    let alert = eventually(Duration::from_secs(60), "the stuck autoscaler on the overview", || async {
        let page = send(served.address, "GET", &overview, &[("cookie", &editor.cookie)], "").await;
        page.body.contains("HorizontalPodAutoscaler/web").then_some(page.body)
    })
    .await;
    assert!(alert.contains("FailedGetResourceMetric") && alert.contains("metrics.k8s.io"), "{alert}");
    assert_eq!(editor.act("deployments", "web", "action=scale&replicas=1").await.status, 409);
    assert_eq!(editor.act("deployments", "web", "action=stop-autoscaling").await.status, 303);
    assert!(autoscalers.get_opt("web").await.expect("get").is_none(), "the autoscaler is gone");

    // A viewer: no control on the page; a forged form is refused by Kubernetes and changes nothing.
    let reader = visitor(&served, &url, &view_token).await;
    let page = reader.page().await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains(r#"id="view-only""#) && !page.body.contains(r#"name="action""#), "{}", page.body);
    for forged in ["action=stop", "action=scale&replicas=0", "action=restart", "action=delete"] {
        let refused = reader.act("deployments", "web", forged).await;
        assert_eq!(refused.status, 403, "{forged}: {refused:?}");
        assert!(refused.body.contains("forbidden"), "the apiserver's reason is shown: {}", refused.body);
    }
    let refused = reader.act("deployments", "web", "action=autoscale&min=1&max=2&cpu=50").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(replicas(&deployments, "web").await, (3, None), "nothing changed");
    assert!(autoscalers.get_opt("web").await.expect("get").is_none());

    // Nor is the viewer offered what their role cannot use: no deploy or endpoint tester in the menu, no Send on the
    // tester, whose forged request is refused with nothing sent; the editor has both.
    let base = reader.apps.trim_end_matches("/apps");
    let (deploy_link, try_link) = (format!(r#"href="{base}/deploy""#), format!(r#"href="{base}/try""#));
    assert!(!page.body.contains(&deploy_link) && !page.body.contains(&try_link), "{}", page.body);
    let editors_page = editor.page().await;
    assert!(editors_page.body.contains(&deploy_link) && editors_page.body.contains(&try_link), "{}", editors_page.body);
    let tester = served.get(&format!("{base}/try"), &reader.cookie).await;
    assert!(tester.body.contains(r#"id="view-only""#) && !tester.body.contains(r#"id="send""#), "{}", tester.body);
    let forged = [("target", "service/web"), ("port", "80"), ("method", "GET"), ("path", "/")];
    let refused = served.post(&format!("{base}/try"), &reader.cookie, &forged).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("services/proxy is not allowed") && !refused.body.contains(r#"id="answer""#));

    // Cross-site, another instance's URL, a kind that is not an app, an app that does not exist.
    let headers = [("cookie", editor.cookie.as_str()), ("origin", "https://evil.example")];
    let path = format!("{}/deployments/web", editor.apps);
    assert_eq!(send(served.address, "POST", &path, &headers, "action=stop").await.status, 403);
    let (other, other_url, _) = instance_with_binding(broker, "view").await;
    let other_apps = format!("{}/apps", path_of(&other_url, &served.origin));
    let answer = send(served.address, "GET", &other_apps, &[("cookie", &editor.cookie)], "").await;
    assert_eq!(answer.status, 403, "{answer:?}");
    let foreign = Visitor { served: &served, cookie: editor.cookie.clone(), apps: other_apps };
    assert_eq!(foreign.act("deployments", "web", "action=stop").await.status, 403);
    assert_eq!(editor.act("pods", "web", "action=stop").await.status, 404);
    assert_eq!(editor.act("deployments", "nothing", "action=stop").await.status, 404);
    assert_eq!(replicas(&deployments, "web").await.0, 3, "nothing changed");

    // Delete: the app and nothing else.
    assert_eq!(editor.act("deployments", "web", "action=delete").await.status, 303);
    eventually(Duration::from_secs(30), "the deployment deleted", || async {
        deployments.get_opt("web").await.expect("get").is_none().then_some(())
    })
    .await;
    broker.deprovision(&other, SMALL).await;
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn a_workload_plans_app_is_changed_through_the_broker_so_the_platform_sees_it() {
    let served = serve().await;
    let broker = &served.broker;
    let (cluster_id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewer = broker
        .bind(&cluster_id, &format!("{cluster_id}-view"), SMALL, json!({ "parameters": { "role": "view" } }))
        .await;
    let view_token = viewer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let app = format!("app-{:08x}", rand::random::<u32>());
    let body = json!({ "service_id": APP, "plan_id": APP_MEDIUM, "organization_guid": "org-1", "space_guid": "space-1",
                       "context": { "platform": "cloudfoundry", "organization_guid": "org-1" },
                       "parameters": { "image": "example.invalid/api:1", "port": 8080, "replicas": 2,
                                       "cluster_instance_id": cluster_id } });
    let accepted =
        broker.call(Method::PUT, &format!("/v2/service_instances/{app}?accepts_incomplete=true"), Some(body)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    broker.wait_for_state(&app, "provision", "succeeded").await;
    let name = caas_broker::k8s::names::short_label("app-", &app, 50);
    let deployments = Api::<Deployment>::namespaced(broker.client.clone(), &broker.namespace(&cluster_id));
    let editor = visitor(&served, &url, &edit_token).await;

    // The page and the overview name the plan and its state.
    let page = editor.page().await;
    assert!(page.body.contains(&format!("container-app / medium ({app})")), "{}", page.body);
    // The state the platform reads (a simulated node may report a pod unready for a moment).
    eventually(Duration::from_secs(30), "the page showing the plan's state", || async {
        editor.page().await.body.contains("Ready: 2 of 2 pods ready").then_some(())
    })
    .await;
    let overview = send(served.address, "GET", &path_of(&url, &served.origin), &[("cookie", &editor.cookie)], "").await;
    assert!(overview.body.contains("container-app / medium") && overview.body.contains(&app), "{}", overview.body);

    // A viewer's forged stop is refused before the broker acts: the record and the pods stay.
    let reader = visitor(&served, &url, &view_token).await;
    let refused = reader.act("deployments", &name, "action=stop").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(replicas(&deployments, &name).await.0, 2);

    // The editor stops it: an OSB update, so the platform's fetch shows `state: stopped` and the pods go.
    assert_eq!(editor.act("deployments", &name, "action=stop").await.status, 303);
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{app}"), None).await;
    assert_eq!(fetched.body["parameters"]["state"], "stopped", "{fetched:?}");
    broker.wait_for_state(&app, "update", "succeeded").await;
    assert_eq!(replicas(&deployments, &name).await.0, 0);
    assert_eq!(editor.act("deployments", &name, "action=start").await.status, 303);
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{app}"), None).await;
    assert_eq!(fetched.body["parameters"]["state"], "running", "{fetched:?}");
    broker.wait_for_state(&app, "update", "succeeded").await;
    assert_eq!(replicas(&deployments, &name).await.0, 2);
    assert_eq!(editor.act("deployments", &name, "action=scale&replicas=1").await.status, 303);
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{app}"), None).await;
    assert_eq!(fetched.body["parameters"]["replicas"], 1, "{fetched:?}");

    // Delete is the deprovision: the record goes, so the platform's fetch finds nothing, and the objects go.
    assert_eq!(editor.act("deployments", &name, "action=delete").await.status, 303);
    let fetched = broker.call(Method::GET, &format!("/v2/service_instances/{app}"), None).await;
    assert_eq!(fetched.status, StatusCode::NOT_FOUND, "{fetched:?}");
    eventually(Duration::from_secs(60), "the app's deployment deleted", || async {
        deployments.get_opt(&name).await.expect("get").is_none().then_some(())
    })
    .await;
    broker.deprovision(&cluster_id, SMALL).await;
}
