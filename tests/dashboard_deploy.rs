//! The dashboard's deploy form and endpoint tester against the real control plane (kwok nodes): a dry run as the
//! signed-in user shows the cluster's refusals field by field (an invalid value, a LimitRange bound, the quota) and
//! creates nothing; a deploy makes the Deployment, Service, Ingress and autoscaler asked for, from the same builder
//! as a container-app instance (compared object by object); a second deploy updates; a viewer is refused by the
//! apiserver and nothing is made; progress shows; the apps page deletes it. The tester lists this namespace's
//! Services, says when nothing can answer, and refuses every target outside the tenant's own pods.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use support::broker::*;
use support::browser::Probe;
use support::cluster::{cluster, eventually};
use support::dashboard::*;
use support::http::{HttpAnswer, send};

const APP: &str = "d3bc9dcc-7e6e-4233-b13e-fbae81b08a60";
const APP_MEDIUM: &str = "0c23659f-ddf8-4f8c-841f-375d5cf3f8ff";

/// Form fields, as posted.
type Fields = Vec<(&'static str, &'static str)>;

/// A signed-in visitor of one instance's pages.
struct Visitor<'a> {
    served: &'a Served,
    cookie: String,
    base: String,
}

impl Visitor<'_> {
    async fn get(&self, page: &str) -> HttpAnswer {
        self.served.get(&format!("{}{page}", self.base), &self.cookie).await
    }

    /// Posts `fields` from the dashboard's own origin, as its forms do.
    async fn post(&self, page: &str, fields: &[(&str, &str)]) -> HttpAnswer {
        self.served.post(&format!("{}{page}", self.base), &self.cookie, fields).await
    }
}

async fn visitor<'a>(served: &'a Served, url: &str, token: &str) -> Visitor<'a> {
    let base = path_of(url, &served.origin);
    let signed_in = sign_in(served, &format!("{base}/login"), token, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    Visitor { served, cookie: cookie_of(&signed_in), base }
}

/// A valid form for an app `name`, with `changes` over it.
fn deploy_form<'a>(name: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", name),
        ("image", "example.invalid/web:1"),
        ("port", "8080"),
        ("replicas", "2"),
        ("env", "GREETING=hello\nMODE=test"),
        ("cpu_request", "100m"),
        ("cpu_limit", "500m"),
        ("memory_request", "128Mi"),
        ("memory_limit", "256Mi"),
        ("ingress_host", ""),
        ("min", "1"),
        ("max", "3"),
        ("cpu_percent", "80"),
        ("intent", "dry-run"),
    ];
    for (key, value) in changes {
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some(field) => field.1 = value,
            None => fields.push((key, value)),
        }
    }
    fields
}

/// The names of every Deployment, Service, Ingress, autoscaler and pod in `namespace`, read as the admin.
async fn objects_in(namespace: &str) -> Vec<String> {
    let admin = cluster().admin().await;
    let all = ListParams::default();
    let mut names = Vec::new();
    let name = |kind: &str, n: Option<String>| format!("{kind}/{}", n.unwrap_or_default());
    for d in Api::<Deployment>::namespaced(admin.clone(), namespace).list(&all).await.expect("list").items {
        names.push(name("deployment", d.metadata.name));
    }
    for s in Api::<Service>::namespaced(admin.clone(), namespace).list(&all).await.expect("list").items {
        names.push(name("service", s.metadata.name));
    }
    for i in Api::<Ingress>::namespaced(admin.clone(), namespace).list(&all).await.expect("list").items {
        names.push(name("ingress", i.metadata.name));
    }
    for h in Api::<HorizontalPodAutoscaler>::namespaced(admin.clone(), namespace).list(&all).await.expect("list").items
    {
        names.push(name("hpa", h.metadata.name));
    }
    for p in Api::<Pod>::namespaced(admin, namespace).list(&all).await.expect("list").items {
        names.push(name("pod", p.metadata.name));
    }
    names
}

#[tokio::test]
async fn a_deploy_is_dry_run_as_the_user_then_applied_from_the_container_app_builder() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewer = broker.bind(&id, &format!("{id}-view"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    let view_token = viewer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let namespace = broker.namespace(&id);
    let editor = visitor(&served, &url, &edit_token).await;

    // The form starts from the namespace's LimitRange (small plan: 100m/500m CPU, 128Mi/512Mi memory).
    let form = editor.get("/deploy").await;
    assert_eq!(form.status, 200, "{form:?}");
    for (field, value) in
        [("cpu_request", "100m"), ("cpu_limit", "500m"), ("memory_request", "128Mi"), ("memory_limit", "512Mi")]
    {
        assert!(form.body.contains(&format!(r#"name="{field}" value="{value}""#)), "{field}: {}", form.body);
    }
    assert!(!form.body.contains("<script") || form.body.contains("src="), "no inline script");

    // The form's own errors: 400, each beside its field, nothing made.
    let invalid = editor.post("/deploy", &deploy_form("Web_1", &[("port", "0"), ("env", "NOEQUALS")])).await;
    assert_eq!(invalid.status, 400, "{invalid:?}");
    for field in ["name", "port", "env"] {
        assert!(invalid.body.contains(&format!(r#"id="error-{field}""#)), "{field}: {}", invalid.body);
    }
    // What the user typed comes back escaped, in the fields and in the preview.
    let hostile = r#"example.invalid/x"><script>alert(1)</script>"#;
    let echoed = editor.post("/deploy", &deploy_form("web", &[("image", hostile)])).await;
    assert!(!echoed.body.contains("<script>alert(1)</script>"), "{}", echoed.body);
    assert!(
        echoed.body.contains("&lt;script&gt;alert(1)") || echoed.body.contains("&#60;script&#62;alert(1)"),
        "{}",
        echoed.body
    );
    // A value the cluster refuses (a request above its limit), a LimitRange bound, and a size over the quota:
    // 422, the cluster's words beside the field, nothing made.
    let above_limit = editor.post("/deploy", &deploy_form("web", &[("memory_request", "1Gi")])).await;
    assert_eq!(above_limit.status, 422, "{above_limit:?}");
    assert!(above_limit.body.contains(r#"id="error-memory_request""#), "{}", above_limit.body);
    assert!(above_limit.body.contains("must be less than or equal to memory limit"), "{}", above_limit.body);
    let too_big = editor.post("/deploy", &deploy_form("web", &[("cpu_request", "3"), ("cpu_limit", "3")])).await;
    assert_eq!(too_big.status, 422, "{too_big:?}");
    assert!(too_big.body.contains(r#"id="error-cpu_limit""#), "{}", too_big.body);
    assert!(too_big.body.contains("maximum cpu usage per Container is 2"), "{}", too_big.body);
    let over_quota = editor
        .post("/deploy", &deploy_form("web", &[("replicas", "5"), ("cpu_limit", "1"), ("cpu_request", "1")]))
        .await;
    assert_eq!(over_quota.status, 422, "{over_quota:?}");
    assert!(over_quota.body.contains(r#"id="error-replicas""#), "{}", over_quota.body);
    assert!(over_quota.body.contains("exceeded quota: limits.cpu: needs 5"), "{}", over_quota.body);
    let over_quota_deploy = editor
        .post(
            "/deploy",
            &deploy_form("web", &[("replicas", "5"), ("cpu_limit", "1"), ("cpu_request", "1"), ("intent", "deploy")]),
        )
        .await;
    assert_eq!(over_quota_deploy.status, 422, "a deploy is dry-run first: {over_quota_deploy:?}");
    // A cross-site form is refused before anything is asked of the cluster.
    let headers = [
        ("cookie", editor.cookie.as_str()),
        ("origin", "https://evil.example"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let path = format!("{}/deploy", editor.base);
    let forged =
        send(served.address, "POST", &path, &headers, "name=web&image=x&port=80&replicas=1&intent=deploy").await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(objects_in(&namespace).await, Vec::<String>::new(), "nothing was made");

    // A viewer's deploy: the apiserver refuses their identity, nothing is made.
    let reader = visitor(&served, &url, &view_token).await;
    let form = reader.get("/deploy").await;
    assert!(form.body.contains(r#"id="view-only""#) && !form.body.contains(r#"id="deploy""#), "{}", form.body);
    let refused = reader.post("/deploy", &deploy_form("web", &[("intent", "deploy")])).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("cannot patch resource"), "RBAC's own words: {}", refused.body);
    assert_eq!(objects_in(&namespace).await, Vec::<String>::new(), "nothing was made");

    // A valid dry run: accepted, with the YAML of exactly what will be applied; still nothing made.
    let asked = [("ingress_host", "web.apps.example.com"), ("autoscale", "on"), ("min", "2"), ("max", "4")];
    let accepted = editor.post("/deploy", &deploy_form("web", &asked)).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    assert!(accepted.body.contains(r#"id="accepted""#), "{}", accepted.body);
    for kind in ["kind: Deployment", "kind: Service", "kind: Ingress", "kind: HorizontalPodAutoscaler"] {
        assert!(accepted.body.contains(kind), "{kind}: {}", accepted.body);
    }
    assert_eq!(objects_in(&namespace).await, Vec::<String>::new(), "a dry run makes nothing");

    // The deploy: the objects asked for, labelled as the dashboard's, then the progress page.
    let mut deploying = asked.to_vec();
    deploying.push(("intent", "deploy"));
    let deployed = editor.post("/deploy", &deploy_form("web", &deploying)).await;
    assert_eq!(deployed.status, 303, "{deployed:?}");
    assert_eq!(deployed.header("location"), Some(format!("{}/deploy?app=web", editor.base).as_str()));
    let admin = cluster().admin().await;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &namespace);
    let deployment = deployments.get("web").await.expect("the deployment");
    let labels = deployment.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("caas-dashboard"));
    let spec = deployment.spec.clone().expect("spec");
    assert_eq!(spec.replicas, Some(2), "autoscaled from its minimum");
    let container = &spec.template.spec.as_ref().expect("pod").containers[0];
    assert_eq!(container.image.as_deref(), Some("example.invalid/web:1"));
    assert_eq!(container.ports.as_ref().expect("ports")[0].container_port, 8080);
    let resources = container.resources.clone().expect("resources");
    assert_eq!(resources.limits.expect("limits")["memory"].0, "256Mi");
    assert_eq!(resources.requests.expect("requests")["cpu"].0, "100m");
    let managed = deployment.metadata.managed_fields.unwrap_or_default();
    assert!(managed.iter().any(|m| m.manager.as_deref() == Some("caas-dashboard")), "{managed:?}");
    let service = Api::<Service>::namespaced(admin.clone(), &namespace).get("web").await.expect("service");
    assert_eq!(service.spec.expect("spec").ports.expect("ports")[0].port, 80);
    let ingress = Api::<Ingress>::namespaced(admin.clone(), &namespace).get("web").await.expect("ingress");
    let host = ingress.spec.and_then(|s| s.rules).and_then(|r| r[0].host.clone());
    assert_eq!(host.as_deref(), Some("web.apps.example.com"));
    let autoscalers = Api::<HorizontalPodAutoscaler>::namespaced(admin.clone(), &namespace);
    let hpa = autoscalers.get("web").await.expect("autoscaler");
    assert_eq!((hpa.spec.min_replicas, hpa.spec.max_replicas), (Some(2), 4));

    // Its progress, read as the editor, becomes ready (kwok runs the pods).
    eventually(Duration::from_secs(60), "the deploy page showing the app ready", || async {
        let page = editor.get("/deploy?app=web").await;
        page.body.contains(r#"data-state="succeeded""#).then_some(())
    })
    .await;
    let fragment = editor.get("/deploy/progress?app=web").await;
    assert!(fragment.body.contains("2 of 2 pods ready") && fragment.body.contains("sse:pods"), "{}", fragment.body);

    // A second deploy of the same name is an update: three pods, no autoscaler, no Ingress.
    let updated = editor.post("/deploy", &deploy_form("web", &[("replicas", "3"), ("intent", "deploy")])).await;
    assert_eq!(updated.status, 303, "{updated:?}");
    assert_eq!(deployments.get("web").await.expect("get").spec.and_then(|s| s.replicas), Some(3));
    assert!(autoscalers.get_opt("web").await.expect("get").is_none());
    assert!(Api::<Ingress>::namespaced(admin.clone(), &namespace).get_opt("web").await.expect("get").is_none());

    // The apps page has it with its controls, and deletes it.
    let apps = editor.get("/apps").await;
    assert!(
        apps.body.contains(r#"id="app-deployments-web""#) && apps.body.contains(r#"value="stop""#),
        "{}",
        apps.body
    );
    let deleted = editor.post("/apps/deployments/web", &[("action", "delete")]).await;
    assert_eq!(deleted.status, 303, "{deleted:?}");
    eventually(Duration::from_secs(30), "the deployment deleted", || async {
        deployments.get_opt("web").await.expect("get").is_none().then_some(())
    })
    .await;
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn pod_security_answers_the_dry_run_where_restricted_is_enforced() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_parameters(broker, "edit", json!({ "pod_security": "restricted" })).await;
    let namespace = broker.namespace(&id);
    let editor = visitor(&served, &url, &edit_token).await;
    let refused = editor.post("/deploy", &deploy_form("web", &[("intent", "deploy")])).await;
    assert_eq!(refused.status, 422, "{refused:?}");
    assert!(refused.body.contains(r#"class="refusal""#), "a refusal about the whole app: {}", refused.body);
    assert!(
        refused.body.contains("violates PodSecurity &quot;restricted:latest&quot;")
            || refused.body.contains("violates PodSecurity &#34;restricted:latest&#34;"),
        "{}",
        refused.body
    );
    assert_eq!(objects_in(&namespace).await, Vec::<String>::new(), "nothing was made");
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn a_dashboard_deploy_makes_what_a_container_app_instance_makes() {
    let served = serve().await;
    let broker = &served.broker;
    let (cluster_id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&cluster_id);
    let app = format!("app-{:08x}", rand::random::<u32>());
    let body = json!({ "service_id": APP, "plan_id": APP_MEDIUM, "organization_guid": "org-1", "space_guid": "space-1",
                       "context": { "platform": "cloudfoundry", "organization_guid": "org-1" },
                       "parameters": { "image": "example.invalid/api:1", "port": 9000, "replicas": 1,
                                       "env": { "MODE": "same" }, "cluster_instance_id": cluster_id } });
    let accepted =
        broker.call(Method::PUT, &format!("/v2/service_instances/{app}?accepts_incomplete=true"), Some(body)).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    broker.wait_for_state(&app, "provision", "succeeded").await;
    let plan_name = caas_broker::k8s::names::short_label("app-", &app, 50);

    // The same inputs from the dashboard, sized as the medium plan (500m CPU, 512Mi memory, requests = limits).
    let editor = visitor(&served, &url, &edit_token).await;
    let same = [
        ("image", "example.invalid/api:1"),
        ("port", "9000"),
        ("replicas", "1"),
        ("env", "MODE=same"),
        ("cpu_request", "500m"),
        ("cpu_limit", "500m"),
        ("memory_request", "512Mi"),
        ("memory_limit", "512Mi"),
        ("intent", "deploy"),
    ];
    let deployed = editor.post("/deploy", &deploy_form("twin", &same)).await;
    assert_eq!(deployed.status, 303, "{deployed:?}");

    let admin = cluster().admin().await;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &namespace);
    let pod_of = |d: Deployment| d.spec.expect("spec").template.spec.expect("pod");
    let (plan_pod, dashboard_pod) = (
        pod_of(deployments.get(&plan_name).await.expect("plan's")),
        pod_of(deployments.get("twin").await.expect("twin")),
    );
    assert_eq!(plan_pod.containers, dashboard_pod.containers, "one builder: the same container");
    assert_eq!(plan_pod.automount_service_account_token, dashboard_pod.automount_service_account_token);
    let services = Api::<Service>::namespaced(admin, &namespace);
    let ports = |s: Service| s.spec.expect("spec").ports.expect("ports");
    assert_eq!(
        ports(services.get(&plan_name).await.expect("plan's")),
        ports(services.get("twin").await.expect("twin"))
    );
    let uri = format!("/v2/service_instances/{app}?service_id={APP}&plan_id={APP_MEDIUM}&accepts_incomplete=true");
    assert_eq!(broker.call(Method::DELETE, &uri, None).await.status, StatusCode::ACCEPTED);
    broker.wait_for_state(&app, "deprovision", "succeeded").await;
    broker.deprovision(&cluster_id, SMALL).await;
}

#[tokio::test]
async fn the_endpoint_tester_reaches_only_this_namespaces_own_pods() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewer = broker.bind(&id, &format!("{id}-view"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    let view_token = viewer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let (other, _, _) = instance_with_binding(broker, "view").await;
    let namespace = broker.namespace(&id);
    let admin = cluster().admin().await;
    let create_service = |namespace: String, object: serde_json::Value| {
        let admin = admin.clone();
        async move {
            let service: Service = serde_json::from_value(object).expect("service");
            Api::<Service>::namespaced(admin, &namespace)
                .create(&PostParams::default(), &service)
                .await
                .expect("create");
        }
    };
    // Another tenant's Service; in ours, one with no pod behind it, one with hand-made endpoints at the metadata
    // address, and one naming an outside host.
    create_service(
        broker.namespace(&other),
        json!({ "metadata": { "name": "theirs" },
        "spec": { "selector": { "app": "theirs" }, "ports": [{ "port": 80 }] } }),
    )
    .await;
    create_service(
        namespace.clone(),
        json!({ "metadata": { "name": "lonely" },
        "spec": { "selector": { "app": "nobody" }, "ports": [{ "port": 80 }] } }),
    )
    .await;
    create_service(
        namespace.clone(),
        json!({ "metadata": { "name": "metadata" },
        "spec": { "ports": [{ "port": 80 }] } }),
    )
    .await;
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": { "name": "metadata-1", "labels": { "kubernetes.io/service-name": "metadata" } },
        "addressType": "IPv4", "endpoints": [{ "addresses": ["192.0.2.10"], "conditions": { "ready": true } }],
        "ports": [{ "port": 80 }] }))
    .expect("slice");
    Api::<EndpointSlice>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &slice)
        .await
        .expect("slice");
    create_service(
        namespace.clone(),
        json!({ "metadata": { "name": "outside" },
        "spec": { "type": "ExternalName", "externalName": "kubernetes.default.svc.cluster.local" } }),
    )
    .await;

    let editor = visitor(&served, &url, &edit_token).await;
    let page = editor.get("/try").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains(r#"value="service/lonely""#), "{}", page.body);
    for hidden in ["service/metadata", "service/outside", "service/theirs"] {
        assert!(!page.body.contains(&format!(r#"value="{hidden}""#)), "{hidden} is not offered: {}", page.body);
    }

    let try_it = |target: &'static str, path: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let mut fields =
            vec![("target", target), ("port", "80"), ("path", path), ("method", "GET"), ("headers", ""), ("body", "")];
        for (key, value) in extra {
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some(field) => field.1 = value,
                None => fields.push((key, value)),
            }
        }
        fields
    };
    // No ready pod: a clear message, nothing sent.
    let lonely = editor.post("/try", &try_it("service/lonely", "/", vec![])).await;
    assert_eq!(lonely.status, 409, "{lonely:?}");
    assert!(lonely.body.contains("Service lonely has no ready pod behind it"), "{}", lonely.body);

    // Every target outside the tenant's own pods is refused before anything is sent.
    let refusals: Vec<(&str, Fields, &str)> = vec![
        ("service/theirs", vec![], "there is no Service theirs in this namespace"),
        ("service/kubernetes", vec![], "there is no Service kubernetes in this namespace"),
        ("service/kubernetes.default", vec![], "is not a Service or Ingress name"),
        ("service/127.0.0.1", vec![], "is not a Service or Ingress name"),
        ("service/169.254.169.254", vec![], "is not a Service or Ingress name"),
        ("service/../../default/services/kubernetes", vec![], "is not a Service or Ingress name"),
        ("service/Lonely", vec![], "is not a Service or Ingress name"),
        ("service/metadata", vec![], "without a selector"),
        ("service/outside", vec![], "ExternalName"),
        ("service/lonely", vec![("path", "/../../../api/v1/namespaces/default/secrets")], "may not climb"),
        ("service/lonely", vec![("path", "/%2e%2e/%2e%2e/api")], "escape"),
        ("service/lonely", vec![("path", "/a%2Fb")], "escape"),
        ("service/lonely", vec![("port", "6443")], "the port must be one Service lonely declares"),
        ("service/lonely", vec![("method", "TRACE")], "the method must be one of"),
        ("service/lonely", vec![("headers", "Impersonate-User: system:admin")], "may not be sent"),
        ("service/lonely", vec![("namespace", "default"), ("path", "http://169.254.169.254/")], "must start with /"),
    ];
    for (target, extra, why) in refusals {
        let refused = editor.post("/try", &try_it(target, "/", extra.clone())).await;
        assert_eq!(refused.status, 400, "{target} {extra:?}: {refused:?}");
        assert!(refused.body.contains(why), "{target} {extra:?}: {why}: {}", refused.body);
    }

    // An app with pods (kwok's, which run nothing): the request goes through the proxy as the user (a simulated
    // pod's address leads nowhere, so whatever answers, or that nothing does, is shown); a viewer has no
    // `services/proxy` and is refused by the apiserver.
    let with_ingress = [("ingress_host", "web.apps.example.com"), ("intent", "deploy")];
    let deployed = editor.post("/deploy", &deploy_form("web", &with_ingress)).await;
    assert_eq!(deployed.status, 303, "{deployed:?}");
    eventually(Duration::from_secs(60), "the app's endpoints ready", || async {
        let page = editor.post("/try", &try_it("service/web", "/", vec![])).await;
        (page.status != 409).then_some(page)
    })
    .await;
    let reader = visitor(&served, &url, &view_token).await;
    let denied = reader.post("/try", &try_it("service/web", "/", vec![])).await;
    assert_eq!(denied.status, 403, "{denied:?}");
    assert!(denied.body.contains("services/proxy") || denied.body.contains("forbidden"), "{}", denied.body);
    // The Service directly, and through the Ingress's rule for the path (its backend is that Service).
    for target in ["service/web", "ingress/web"] {
        let sent = editor.post("/try", &try_it(target, "/healthz", vec![])).await;
        let answered = sent.status == 200 && sent.body.contains(r#"id="answer-status""#);
        assert!(
            answered || sent.status == 502,
            "{target} sent through the proxy, neither refused nor denied: {sent:?}"
        );
    }
    broker.deprovision(&other, SMALL).await;
    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn the_deploy_form_and_the_tester_in_headless_chromium() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&id);
    let lonely: Service = serde_json::from_value(json!({ "metadata": { "name": "lonely" },
        "spec": { "selector": { "app": "nobody" }, "ports": [{ "port": 80 }] } }))
    .expect("service");
    let services = Api::<Service>::namespaced(cluster().admin().await, &namespace);
    services.create(&PostParams::default(), &lonely).await.expect("create");

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("deploy-probe-{id}"));
    let shots = dir.join("screenshots");
    std::fs::create_dir_all(&shots).expect("probe folders");
    let profile = dir.join("profile");
    let mut probe = Probe::start(
        "deploy_probe.mjs",
        &[
            ("PROBE_URL", url.as_ref()),
            ("PROBE_TOKEN", edit_token.as_ref()),
            ("SCREENSHOT_DIR", shots.as_os_str()),
            ("PROBE_USER_DATA_DIR", profile.as_os_str()),
        ],
    );
    let checkpoint = probe.next().await;
    assert_eq!(checkpoint["event"], "dry-runs-done", "{checkpoint}");
    assert_eq!(objects_in(&namespace).await, ["service/lonely"], "the refused dry runs made nothing");
    probe.go_on();
    let report = probe.report().await;

    assert_eq!(report["prefilled"], "512Mi", "from the LimitRange: {report}");
    let invalid = report["invalidError"].as_str().unwrap_or_default();
    assert!(invalid.contains("must be less than or equal to memory limit"), "{report}");
    assert!(report["quotaError"].as_str().unwrap_or_default().contains("exceeded quota"), "{report}");
    assert!(report["preview"].as_str().unwrap_or_default().contains("kind: Deployment"), "{report}");
    assert!(report["progressUrl"].as_str().unwrap_or_default().ends_with("/deploy?app=web"), "{report}");
    assert_eq!(report["readyWithoutReload"], true, "the progress came into the open page: {report}");
    assert!(report["progress"].as_str().unwrap_or_default().contains("2 of 2 pods ready"), "{report}");
    let targets = report["targets"].as_array().expect("targets");
    assert!(targets.iter().any(|t| t.as_str().is_some_and(|t| t.starts_with("service web"))), "{report}");
    assert!(report["lonely"].as_str().unwrap_or_default().contains("has no ready pod"), "{report}");
    assert!(report["web"].as_str().is_some_and(|w| !w.contains("Not sent")), "{report}");
    assert_eq!(report["deleted"], "Requested: delete: web", "{report}");
    let deployments = Api::<Deployment>::namespaced(cluster().admin().await, &namespace);
    eventually(Duration::from_secs(30), "the deployment deleted", || async {
        deployments.get_opt("web").await.expect("get").is_none().then_some(())
    })
    .await;
    assert_eq!(report["consoleErrors"], json!([]), "no error or policy violation in any page: {report}");
    let screenshots = report["screenshots"].as_array().expect("screenshots");
    assert_eq!(screenshots.len(), 7, "{report}");
    for shot in screenshots.iter().filter_map(Value::as_str) {
        let png = std::fs::read(shot).unwrap_or_else(|e| panic!("{shot}: {e}"));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "a real screenshot at {shot}");
    }
    broker.deprovision(&id, SMALL).await;
}
