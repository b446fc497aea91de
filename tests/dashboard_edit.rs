//! The dashboard's YAML editor against the real control plane: an `edit` binding reviews an edit (a server-side dry
//! run as itself, shown field by field) and applies it with server-side apply under the dashboard's field manager,
//! checked on the objects in the cluster; what admission refuses, a field another manager owns, an object changed
//! meanwhile, YAML that is no such object and YAML too long are shown and change nothing; a `view` binding gets no
//! editor and its forged edit is refused by the apiserver. Then headless Chromium edits a Deployment's replicas.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::broker::*;
use support::browser::run_to_end;
use support::cluster::{cluster, eventually};
use support::dashboard::*;
use support::http::HttpAnswer;

/// Made as a team's pipeline would, with server-side apply under its own field `manager`; `replicas` when it sets
/// them, else left to their default (1), which no manager then owns.
async fn deployment(namespace: &str, name: &str, replicas: Option<i32>, manager: &str) -> Api<Deployment> {
    let deployments = Api::<Deployment>::namespaced(cluster().admin().await, namespace);
    let mut deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": name },
        "spec": { "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } },
                                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] } } }
    });
    if let Some(replicas) = replicas {
        deployment["spec"]["replicas"] = json!(replicas);
    }
    let apply = PatchParams::apply(manager);
    deployments.patch(name, &apply, &Patch::Apply(&deployment)).await.expect("the tenant's deployment");
    deployments
}

async fn service(namespace: &str, name: &str) -> Api<Service> {
    let services = Api::<Service>::namespaced(cluster().admin().await, namespace);
    let service = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
        "spec": { "selector": { "app": name }, "ports": [{ "port": 80 }] }
    });
    services.patch(name, &PatchParams::apply("team-pipeline"), &Patch::Apply(&service)).await.expect("the service");
    services
}

/// A signed-in visitor of one instance's object pages.
struct Visitor<'a> {
    served: &'a Served,
    cookie: String,
    objects: String,
}

impl Visitor<'_> {
    async fn object(&self, kind: &str, name: &str) -> HttpAnswer {
        self.served.get(&format!("{}/{kind}/{name}", self.objects), &self.cookie).await
    }

    async fn editor(&self, kind: &str, name: &str) -> HttpAnswer {
        self.served.get(&format!("{}/{kind}/{name}/edit", self.objects), &self.cookie).await
    }

    /// The editor's YAML, read as the edit binding.
    async fn yaml(&self, kind: &str, name: &str) -> String {
        let page = self.editor(kind, name).await;
        assert_eq!(page.status, 200, "{page:?}");
        let area = page.body.split(r#"<textarea id="yaml""#).nth(1).expect("the text area");
        let text = area.split_once('>').expect("its content").1.split("</textarea>").next().expect("its end");
        text.replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&#60;", "<")
            .replace("&#62;", ">")
            .replace("&#38;", "&")
    }

    async fn post(&self, kind: &str, name: &str, intent: &str, yaml: &str) -> HttpAnswer {
        let path = format!("{}/{kind}/{name}/edit", self.objects);
        self.served.post(&path, &self.cookie, &[("intent", intent), ("yaml", yaml)]).await
    }
}

async fn visitor<'a>(served: &'a Served, url: &str, token: &str) -> Visitor<'a> {
    let overview = path_of(url, &served.origin);
    let signed_in = sign_in(served, &format!("{overview}/login"), token, &served.origin).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    Visitor { served, cookie: cookie_of(&signed_in), objects: format!("{overview}/objects") }
}

fn resource_version(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    metadata.resource_version.clone().expect("a resource version")
}

/// The Deployment `name` once its controller has caught up with its spec (its pods, run by kwok's nodes, ready), so
/// that no write of its status changes its version while it is edited; its generation and replicas.
async fn settled(deployments: &Api<Deployment>, name: &str) -> (Option<i64>, Option<i32>) {
    eventually(Duration::from_secs(60), &format!("Deployment {name} settled"), || async {
        let deployment = deployments.get(name).await.expect("the deployment");
        let replicas = deployment.spec.as_ref().and_then(|spec| spec.replicas);
        let status = deployment.status.as_ref()?;
        let caught_up = status.observed_generation == deployment.metadata.generation
            && status.available_replicas.unwrap_or(0) == replicas.unwrap_or(1)
            && status.replicas.unwrap_or(0) == replicas.unwrap_or(1);
        caught_up.then_some((deployment.metadata.generation, replicas))
    })
    .await
}

#[tokio::test]
async fn an_editor_reviews_and_applies_and_what_is_refused_changes_nothing() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewer = broker.bind(&id, &format!("{id}-view"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    assert_eq!(viewer.status, StatusCode::CREATED, "{viewer:?}");
    let view_token = viewer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let namespace = broker.namespace(&id);
    let deployments = deployment(&namespace, "web", None, "team-pipeline").await;
    deployment(&namespace, "pinned", Some(1), "team-pipeline").await;
    let services = service(&namespace, "front").await;
    let editor = visitor(&served, &url, &edit_token).await;
    let before = settled(&deployments, "web").await;
    let pinned_before = settled(&deployments, "pinned").await;

    // The object's page offers the editor; the editor holds what one may edit: no status, no managed fields, and
    // the resource version (an edit of an older version is refused).
    let page = editor.object("deployments", "web").await;
    assert!(page.body.contains(&format!(r#"<a href="{}/deployments/web/edit" id="edit">Edit</a>"#, editor.objects)));
    let yaml = editor.yaml("deployments", "web").await;
    assert!(yaml.contains("\n  replicas: 1\n") && yaml.contains("resourceVersion:"), "{yaml}");
    assert!(!yaml.contains("managedFields") && !yaml.contains("\nstatus:") && !yaml.contains("uid:"), "{yaml}");

    // Reviewed: exactly the changed field, nothing applied.
    let three = yaml.replace("\n  replicas: 1\n", "\n  replicas: 3\n");
    let review = editor.post("deployments", "web", "review", &three).await;
    assert_eq!(review.status, 200, "{review:?}");
    let changes: Vec<&str> =
        review.body.match_indices(r#"<li class="change "#).map(|(at, _)| &review.body[at..]).collect();
    assert_eq!(changes.len(), 1, "one change: {}", review.body);
    assert!(
        changes[0].starts_with(r#"<li class="change changed"><code>spec.replicas</code>: 1 → 3</li>"#),
        "{}",
        review.body
    );
    assert_eq!(settled(&deployments, "web").await, before, "nothing changed");

    // Bad YAML (with its line), another object's name, YAML too long, an unknown intent: nothing changes.
    let broken = editor.post("deployments", "web", "review", "apiVersion: apps/v1\nkind: [\n").await;
    assert_eq!(broken.status, 400, "{broken:?}");
    assert!(broken.body.contains(r#"id="refusal-message""#) && broken.body.contains("at line "), "{}", broken.body);
    let renamed = editor.post("deployments", "web", "apply", &three.replace("name: web\n", "name: other\n")).await;
    assert_eq!(renamed.status, 400, "{renamed:?}");
    assert!(renamed.body.contains("metadata.name cannot change here"), "{}", renamed.body);
    let long = format!("{three}# {}\n", "x".repeat(caas_broker::tenant::edit::MAX_YAML_BYTES));
    let too_long = editor.post("deployments", "web", "apply", &long).await;
    assert_eq!(too_long.status, 413, "{too_long:?}");
    assert!(too_long.body.contains("longer than 256 KiB"), "{}", too_long.body);
    assert_eq!(editor.post("deployments", "web", "reboot", &three).await.status, 400);
    assert_eq!(settled(&deployments, "web").await, before, "nothing changed");

    // A view binding: no Edit on the page, no editor, and a forged edit is the apiserver's 403, nothing changed.
    let view = visitor(&served, &url, &view_token).await;
    let page = view.object("deployments", "web").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(!page.body.contains(r#"id="edit""#), "no editor offered: {}", page.body);
    assert_eq!(view.editor("deployments", "web").await.status, 403);
    for intent in ["review", "apply"] {
        let forged = view.post("deployments", "web", intent, &three).await;
        assert_eq!(forged.status, 403, "{intent}: {forged:?}");
        assert!(forged.body.contains("cannot patch resource"), "the apiserver's words: {}", forged.body);
        assert!(!forged.body.contains(r#"id="edit-apply""#), "{}", forged.body);
    }
    assert_eq!(settled(&deployments, "web").await, before, "nothing changed");

    // Applied: the Deployment changed, under the dashboard's field manager; back on its page with the new YAML.
    let applied = editor.post("deployments", "web", "apply", &three).await;
    assert_eq!(applied.status, 303, "{applied:?}");
    let object = format!("{}/deployments/web", editor.objects);
    assert_eq!(applied.header("location"), Some(format!("{object}?done=applied").as_str()));
    let after = deployments.get("web").await.expect("web");
    assert_eq!(after.spec.as_ref().and_then(|spec| spec.replicas), Some(3));
    let managers = after.metadata.managed_fields.clone().unwrap_or_default();
    let dashboard = managers.iter().find(|entry| entry.manager.as_deref() == Some("caas-dashboard"));
    let dashboard = dashboard.unwrap_or_else(|| panic!("the dashboard's field manager: {managers:?}"));
    assert_eq!(dashboard.operation.as_deref(), Some("Apply"));
    let owned = dashboard.fields_v1.as_ref().map(|fields| fields.0.to_string()).unwrap_or_default();
    assert!(owned.contains(r#""f:replicas""#), "{owned}");

    // An edit of the version before is refused as stale: nothing changes, the page says to start again.
    let stale =
        editor.post("deployments", "web", "apply", &three.replace("\n  replicas: 3\n", "\n  replicas: 2\n")).await;
    assert_eq!(stale.status, 409, "{stale:?}");
    assert!(stale.body.contains("the object has been modified") && stale.body.contains("Open the editor again"));
    assert_eq!(deployments.get("web").await.expect("web").spec.and_then(|spec| spec.replicas), Some(3), "unchanged");

    // A field another manager owns: the conflict named, nothing forced.
    let pinned = editor.yaml("deployments", "pinned").await.replace("\n  replicas: 1\n", "\n  replicas: 2\n");
    for intent in ["review", "apply"] {
        let conflict = editor.post("deployments", "pinned", intent, &pinned).await;
        assert_eq!(conflict.status, 409, "{intent}: {conflict:?}");
        assert!(conflict.body.contains("<td><code>.spec.replicas</code></td>"), "{}", conflict.body);
        assert!(conflict.body.contains("conflict with &#34;team-pipeline&#34;"), "{}", conflict.body);
    }
    assert_eq!(settled(&deployments, "pinned").await, pinned_before, "nothing forced");

    // What admission refuses (the tenant guard: no external IPs), in its words; the Service is unchanged.
    let front_before = services.get("front").await.expect("front");
    let claim =
        editor.yaml("services", "front").await.replace("\nspec:\n", "\nspec:\n  externalIPs:\n  - 203.0.113.7\n");
    for intent in ["review", "apply"] {
        let refused = editor.post("services", "front", intent, &claim).await;
        assert_eq!(refused.status, 403, "{intent}: {refused:?}");
        assert!(refused.body.contains("Services here cannot claim external IPs"), "{}", refused.body);
    }
    let front_after = services.get("front").await.expect("front");
    assert_eq!(resource_version(&front_after.metadata), resource_version(&front_before.metadata));
    assert_eq!(front_after.spec.and_then(|spec| spec.external_ips), None);

    broker.deprovision(&id, SMALL).await;
}

#[tokio::test]
async fn headless_chromium_edits_a_deployments_replicas_with_a_review() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, token) = instance_with_binding(broker, "edit").await;
    let namespace = broker.namespace(&id);
    let deployments = deployment(&namespace, "web", None, "team-pipeline").await;
    settled(&deployments, "web").await;
    let services = service(&namespace, "front").await;
    let front_before = services.get("front").await.expect("front");
    let objects = format!("{}/objects", path_of(&url, &served.origin));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-edit-{id}"));
    std::fs::create_dir_all(&dir).expect("probe directory");
    let (deployment, service) = (format!("{objects}/deployments/web"), format!("{objects}/services/front"));
    let profile = dir.join("profile");
    let envs: [(&str, &std::ffi::OsStr); 6] = [
        ("PROBE_URL", url.as_ref()),
        ("PROBE_TOKEN", token.as_ref()),
        ("PROBE_DEPLOYMENT", deployment.as_ref()),
        ("PROBE_SERVICE", service.as_ref()),
        ("PROBE_USER_DATA_DIR", profile.as_os_str()),
        ("SCREENSHOT_DIR", dir.as_os_str()),
    ];
    let report = run_to_end("edit_probe.mjs", &envs, Duration::from_secs(120), &dir).await;

    assert_eq!(report["editorUrl"], json!(format!("{}{objects}/deployments/web/edit", served.origin)), "{report}");
    assert_eq!(report["yamlLabel"], "The object as YAML", "{report}");
    assert_eq!(report["replicasLines"], json!(["  replicas: 1"]), "the spec's alone, no status: {report}");
    assert_eq!(report["afterYamlTab"], "edit-review", "the keyboard goes from the YAML to Review: {report}");
    assert_eq!(report["changes"], json!(["spec.replicas: 1 → 3"]), "exactly that field: {report}");
    let object = format!("{}{objects}/deployments/web?done=applied", served.origin);
    assert_eq!(report["afterApplyUrl"], json!(object), "{report}");
    assert_eq!(report["notice"], "Your change was applied.", "{report}");
    assert!(report["appliedYaml"].as_str().unwrap_or_default().contains("\n  replicas: 3\n"), "{report}");
    let after = deployments.get("web").await.expect("web");
    assert_eq!(after.spec.as_ref().and_then(|spec| spec.replicas), Some(3), "applied in the cluster");
    let managers = after.metadata.managed_fields.unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|entry| entry.manager.as_deref() == Some("caas-dashboard")
                && entry.operation.as_deref() == Some("Apply")),
        "{managers:?}"
    );

    assert_eq!(report["refusedHeading"], "The cluster refuses this change; nothing was changed:", "{report}");
    let refusal = report["refusal"].as_str().unwrap_or_default();
    assert!(refusal.contains("Services here cannot claim external IPs (spec.externalIPs)"), "verbatim: {report}");
    assert_eq!(report["refusedChanges"], 0, "{report}");
    let front_after = services.get("front").await.expect("front");
    assert_eq!(front_after.metadata.resource_version, front_before.metadata.resource_version, "unchanged");

    assert_eq!(report["koreanLang"], "ko", "{report}");
    assert_eq!(
        [&report["koreanEdit"], &report["koreanReview"], &report["koreanApply"], &report["koreanYamlLabel"]],
        [&json!("편집"), &json!("변경 사항 검토"), &json!("적용"), &json!("오브젝트의 YAML")],
        "{report}"
    );
    // The refusal's page answers 403, which Chromium logs; nothing else: no policy violation, no error.
    let errors = report["consoleErrors"].as_array().expect("console errors");
    let unexpected = errors.iter().filter(|error| {
        error["step"] != "refused"
            || error["text"] != "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    });
    assert_eq!(unexpected.count(), 0, "no policy violation or error in the pages: {report}");
    for shot in report["screenshots"].as_array().expect("screenshots") {
        let png = std::fs::read(shot.as_str().expect("path")).expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot: {shot}");
    }
    broker.deprovision(&id, SMALL).await;
}
