//! The dashboard for people who use a screen reader or the keyboard alone, in headless Chromium against the real
//! control plane: on every page an `admin` binding sees (with an app in its namespace, so that the object, editor and
//! logs pages have something to show), each control has a name a screen reader can say, and pressing Tab reaches every
//! one of them; in English and in Korean, with a screenshot of each page kept.

mod support;

use std::ffi::{OsStr, OsString};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::broker::*;
use support::browser::Probe;
use support::cluster::cluster;
use support::dashboard::*;

/// The pages checked, under the instance's dashboard URL.
const PAGES: [&str; 12] = [
    "",
    "/apps",
    "/workloads",
    "/members",
    "/deploy",
    "/try",
    "/objects/deployments/web",
    "/objects/deployments/web/edit",
    "/objects/deployments/web/logs",
    "/events",
    "/search?q=web",
    "/map",
];

#[tokio::test]
async fn every_control_of_every_page_has_a_name_and_the_keyboard_reaches_it() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, token) = instance_with_binding(broker, "admin").await;
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
        "spec": { "selector": { "matchLabels": { "app": "web" } },
                  "template": { "metadata": { "labels": { "app": "web" } },
                                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] } } }
    });
    let deployments = Api::<Deployment>::namespaced(cluster().admin().await, &broker.namespace(&id));
    let apply = PatchParams::apply("team-pipeline");
    deployments.patch("web", &apply, &Patch::Apply(&deployment)).await.expect("the tenant's app");

    for locale in ["en-US", "ko-KR"] {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("accessibility-{id}-{locale}"));
        std::fs::create_dir_all(&dir).expect("probe directory");
        let pages = serde_json::to_string(&PAGES).expect("the pages as JSON");
        let envs: [(&str, OsString); 6] = [
            ("PROBE_URL", url.clone().into()),
            ("PROBE_TOKEN", token.clone().into()),
            ("PROBE_PAGES", pages.into()),
            ("PROBE_LOCALE", locale.into()),
            ("PROBE_USER_DATA_DIR", dir.join("profile").into_os_string()),
            ("SCREENSHOT_DIR", dir.clone().into_os_string()),
        ];
        let envs: Vec<(&str, &OsStr)> = envs.iter().map(|(name, value)| (*name, value.as_os_str())).collect();
        let report = Probe::start("accessibility_probe.mjs", &envs).report().await;
        let checked = report["pages"].as_array().expect("a report per page");
        assert_eq!(checked.len(), PAGES.len(), "{report}");
        for page in checked {
            assert_eq!(page["status"], 200, "{locale} {page}");
            assert!(page["controls"].as_u64().unwrap_or(0) >= 5, "the page has its controls: {locale} {page}");
            assert_eq!(page["unnamed"], json!([]), "every control has a name: {locale} {page}");
            assert_eq!(page["unreachable"], json!([]), "Tab reaches every control: {locale} {page}");
        }
        assert_eq!(report["consoleErrors"], json!([]), "{report}");
        let shots = report["screenshots"].as_array().map(Vec::len);
        assert_eq!(shots, Some(PAGES.len()), "a screenshot per page, in {}: {report}", dir.display());
    }
    broker.deprovision(&id, SMALL).await;
}
