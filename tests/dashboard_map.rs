//! The dashboard's events timeline, search and map against the real control plane, read as the signed-in binding: a
//! namespace with an Ingress → Service → a Deployment's pod (with a volume claim, and an autoscaler), labelled
//! objects, a ConfigMap and a Secret, and events (the controllers' own and a Warning and two Normal ones recorded by
//! the admin). Headless Chromium, in English and in Korean, reads the timeline (newest first, grouped by object, the
//! warning marked in words; an event recorded while it is open shows up without a reload; filtered by type, then by
//! kind), searches by label and by name with the keyboard, and reads the map's accessible list of relations, each
//! object linked to its view; every control is labelled and reached with Tab, and no page is wider than a phone. A
//! view-only member's search never shows a Secret.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use support::broker::*;
use support::browser::Probe;
use support::cluster::{cluster, eventually, reserve_volume};
use support::dashboard::*;

/// What the admin made in the tenant's namespace, by the names the pages show.
struct Shop {
    pod: String,
    replica_set: String,
    volume: String,
}

async fn create<K>(client: &Client, namespace: &str, object: Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("an object literal");
    Api::<K>::namespaced(client.clone(), namespace).create(&PostParams::default(), &object).await.expect("create");
}

/// An event about `kind`/`name`, last seen `seconds_ago`.
fn event(namespace: &str, kind: &str, name: &str, type_: &str, reason: &str, seconds_ago: i64) -> Value {
    let at = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds_ago)).to_string();
    json!({
        "metadata": { "name": format!("{}.{}", name, reason.to_lowercase()) },
        "involvedObject": { "kind": kind, "name": name, "namespace": namespace,
                            "apiVersion": if kind == "Pod" || kind == "Service" { "v1" } else { "apps/v1" } },
        "type": type_, "reason": reason, "message": format!("{reason} of {kind}/{name}, recorded by the test"),
        "count": 3, "firstTimestamp": at, "lastTimestamp": at, "source": { "component": "dashboard-map-test" }
    })
}

impl Shop {
    /// The objects, once the Deployment's pod runs on a simulated node and the claim is bound.
    async fn create(namespace: &str) -> Shop {
        let admin = cluster().admin().await;
        let labels = json!({ "app": "shop" });
        let volume = format!("{namespace}-shop");
        reserve_volume(&admin, &volume, namespace, "shop-data").await;
        create::<PersistentVolumeClaim>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop-data", "labels": labels },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } }),
        )
        .await;
        create::<Deployment>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop", "labels": labels },
            "spec": { "replicas": 1, "selector": { "matchLabels": labels },
                "template": { "metadata": { "labels": labels }, "spec": {
                    "containers": [{ "name": "web", "image": "example.invalid/shop:1" }],
                    "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": "shop-data" } }] } } } }),
        )
        .await;
        create::<Service>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop", "labels": labels },
            "spec": { "selector": labels, "ports": [{ "port": 80, "targetPort": 8080 }] } }),
        )
        .await;
        create::<Ingress>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop" }, "spec": { "rules": [{
            "host": "shop.example", "http": { "paths": [{ "path": "/", "pathType": "Prefix",
                "backend": { "service": { "name": "shop", "port": { "number": 80 } } } }] } }] } }),
        )
        .await;
        create::<HorizontalPodAutoscaler>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop" }, "spec": {
                "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "shop" },
                "minReplicas": 1, "maxReplicas": 2 } }),
        )
        .await;
        create::<ConfigMap>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop-config", "labels": labels },
            "data": { "colour": "blue" } }),
        )
        .await;
        create::<ConfigMap>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop-notes", "labels": { "app": "other" } } }),
        )
        .await;
        create::<Secret>(
            &admin,
            namespace,
            json!({ "metadata": { "name": "shop-secret", "labels": labels },
            "stringData": { "password": "never-on-a-page" } }),
        )
        .await;
        let pods = Api::<Pod>::namespaced(admin.clone(), namespace);
        let pod = eventually(Duration::from_secs(90), "the shop's pod running on a simulated node", || async {
            let listed = pods.list(&ListParams::default().labels("app=shop")).await.ok()?;
            let pod = listed.items.into_iter().next()?;
            (pod.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(pod)
        })
        .await;
        let owner = pod.metadata.owner_references.as_ref().and_then(|owners| owners.first()).expect("owned");
        let replica_set = owner.name.clone();
        assert!(Api::<ReplicaSet>::namespaced(admin.clone(), namespace).get(&replica_set).await.is_ok());
        let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace);
        eventually(Duration::from_secs(60), "the shop's claim bound", || async {
            let bound = claims.get("shop-data").await.ok()?.spec?.volume_name?;
            (bound == volume).then_some(())
        })
        .await;
        let pod = pod.metadata.name.expect("named");
        let events = [
            event(namespace, "Service", "shop", "Normal", "CaasTestOldest", 900),
            event(namespace, "Deployment", "shop", "Normal", "CaasTestOlder", 600),
            event(namespace, "Pod", &pod, "Warning", "CaasTestWarning", 0),
        ];
        for event in events {
            create::<Event>(&admin, namespace, event).await;
        }
        Shop { pod, replica_set, volume }
    }
}

/// `(kind, name)` of each result row of a search page.
fn rows(html: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = html
        .split(r#"<tr data-kind=""#)
        .skip(1)
        .map(|row| {
            let (kind, rest) = row.split_once('"').expect("a kind");
            let name = rest.split(r#"data-name=""#).nth(1).and_then(|r| r.split('"').next()).expect("a name");
            (kind.to_owned(), name.to_owned())
        })
        .collect();
    rows.sort();
    rows
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected.iter().map(|(k, n)| ((*k).to_owned(), (*n).to_owned())).collect();
    pairs.sort();
    pairs
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn the_timeline_search_and_map_show_the_namespace_as_the_signed_in_member_may_see_it() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, url, edit_token) = instance_with_binding(broker, "edit").await;
    let viewed = broker.bind(&id, &format!("{id}-view"), SMALL, json!({ "parameters": { "role": "view" } })).await;
    assert_eq!(viewed.status, StatusCode::CREATED, "{viewed:?}");
    let view_token = viewed.body["credentials"]["token"].as_str().expect("token").to_owned();
    let namespace = broker.namespace(&id);
    let shop = Shop::create(&namespace).await;
    let overview = path_of(&url, &served.origin);
    let cookie = |token: String| {
        let (served, login) = (&served, format!("{overview}/login"));
        async move {
            let signed_in = sign_in(served, &login, &token, &served.origin).await;
            assert_eq!(signed_in.status, 303, "{signed_in:?}");
            cookie_of(&signed_in)
        }
    };
    let (edit, view) = (cookie(edit_token.clone()).await, cookie(view_token).await);

    // Search over HTTP: by label, exactly the labelled objects; Secrets by name to the edit member only, never their
    // values; a query too long is refused.
    let labelled = [
        ("deployments", "shop"),
        ("replicasets", shop.replica_set.as_str()),
        ("pods", shop.pod.as_str()),
        ("services", "shop"),
        ("persistentvolumeclaims", "shop-data"),
        ("configmaps", "shop-config"),
    ];
    let search = format!("{overview}/search?q=app%3Dshop");
    let as_edit = served.get(&search, &edit).await;
    assert_eq!(as_edit.status, 200, "{as_edit:?}");
    assert_eq!(rows(&as_edit.body), pairs(&[&labelled[..], &[("secrets", "shop-secret")]].concat()), "as edit");
    assert!(!as_edit.body.contains("never-on-a-page") && !as_edit.body.contains("bmV2ZXItb24tYS1wYWdl"));
    let as_view = served.get(&search, &view).await;
    assert_eq!(rows(&as_view.body), pairs(&labelled), "a view-only member is not shown Secrets: {}", as_view.body);
    let by_name = served.get(&format!("{overview}/search?q=secret"), &view).await;
    assert_eq!(rows(&by_name.body), [], "not even by name");
    let too_long = served.get(&format!("{overview}/search?q={}", "a".repeat(400)), &edit).await;
    assert_eq!(too_long.status, 400, "{too_long:?}");

    // The timeline over HTTP: the type filter is the server's.
    let warnings = served.get(&format!("{overview}/events?type=Warning"), &view).await;
    assert!(
        warnings.body.contains("CaasTestWarning") && !warnings.body.contains("CaasTestOldest"),
        "{}",
        warnings.body
    );

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboard-map-{id}"));
    for (locale, lang, warning, words) in [
        ("en-US", "en", "⚠ Warning", ["routes to", "sends to", "owns", "mounts", "is bound to", "scales"]),
        ("ko-KR", "ko", "⚠ 경고", ["요청 전달 →", "요청 전달 →", "소유 →", "마운트 →", "연결 →", "스케일 →"]),
    ] {
        let shots = dir.join("screenshots");
        std::fs::create_dir_all(&shots).expect("probe folders");
        let profile = dir.join(format!("profile-{lang}"));
        let live = format!("CaasTestLive{}", lang.to_uppercase());
        let mut probe = Probe::start(
            "map_probe.mjs",
            &[
                ("PROBE_URL", url.as_ref()),
                ("PROBE_TOKEN", edit_token.as_ref()),
                ("PROBE_LOCALE", locale.as_ref()),
                ("PROBE_LABEL", "app=shop".as_ref()),
                ("PROBE_NAME", "shop-con".as_ref()),
                ("PROBE_KIND", "Service".as_ref()),
                ("PROBE_LIVE", live.as_ref()),
                ("SCREENSHOT_DIR", shots.as_os_str()),
                ("PROBE_USER_DATA_DIR", profile.as_os_str()),
            ],
        );
        // The timeline is open and listens: an event recorded now appears without a reload.
        let open = probe.next().await;
        assert_eq!(open["event"], "timeline-open", "{open}");
        let admin = cluster().admin().await;
        create::<Event>(&admin, &namespace, event(&namespace, "Service", "shop", "Normal", &live, 0)).await;
        probe.go_on();
        let report = probe.report().await;
        assert_eq!(report["lang"], lang, "{report}");
        assert_eq!(report["consoleErrors"], json!([]), "no policy violation or error: {report}");
        let phone = json!({ "events": 0, "search": 0, "map": 0 });
        assert_eq!(report["phoneOverflowPx"], phone, "readable on a phone without scrolling sideways: {report}");

        // The timeline: newest first (groups by their newest event, events within a group), one group per object,
        // the warning marked in words and its object linked.
        let groups = report["events"]["groups"].as_array().expect("groups");
        let objects: Vec<&str> = groups.iter().filter_map(|group| group["object"].as_str()).collect();
        let mut once = objects.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), objects.len(), "one group per object: {objects:?}");
        let seen: Vec<Vec<i64>> = groups
            .iter()
            .map(|group| {
                group["events"].as_array().expect("events").iter().map(|e| e["seen"].as_i64().unwrap_or(0)).collect()
            })
            .collect();
        assert!(seen.iter().all(|events| events.windows(2).all(|w| w[0] >= w[1])), "newest first in a group: {seen:?}");
        let newest: Vec<i64> = seen.iter().map(|events| events[0]).collect();
        assert!(newest.windows(2).all(|w| w[0] >= w[1]), "groups by their newest event: {newest:?}");
        let pod = format!("Pod/{}", shop.pod);
        let group = |name: &str| groups.iter().find(|group| group["object"] == name).cloned().unwrap_or_default();
        let warned = group(&pod);
        assert_eq!(warned["warning"], true, "{report}");
        assert_eq!(warned["link"], format!("/instances/{id}/objects/pods/{}", shop.pod), "{report}");
        let marked = warned["events"].as_array().expect("events").iter().find(|e| e["reason"] == "CaasTestWarning");
        assert_eq!(marked.map(|e| (&e["type"], &e["marker"])), Some((&json!("Warning"), &json!(warning))), "{report}");
        let service = group("Service/shop");
        assert_eq!(service["warning"], false);
        assert!(service["events"].as_array().expect("events").iter().any(|e| e["reason"] == "CaasTestOldest"));
        let live_groups = report["events"]["live"].as_array().expect("the live timeline");
        assert_eq!(live_groups[0]["object"], "Service/shop", "the newest event's object first: {report}");
        assert_eq!(live_groups[0]["events"][0]["reason"], live.as_str(), "{report}");
        let events = report["events"]["tabbed"].to_string();
        assert!(events.contains("event-kind") && events.contains("event-type"), "Tab reaches the filters: {report}");
        assert_eq!(report["events"]["unlabelled"], json!([]), "{report}");

        // Filtered by type, then by kind, with the form.
        assert!(report["warnings"]["url"].as_str().unwrap_or_default().contains("type=Warning"), "{report}");
        let only = |filtered: &Value| -> Vec<Value> {
            filtered["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["events"].as_array().cloned().unwrap_or_default())
                .collect()
        };
        let warnings = only(&report["warnings"]);
        assert!(!warnings.is_empty() && warnings.iter().all(|e| e["type"] == "Warning"), "only warnings: {report}");
        assert!(warnings.iter().any(|e| e["reason"] == "CaasTestWarning"), "{report}");
        let of_kind: Vec<&str> =
            report["ofKind"]["groups"].as_array().into_iter().flatten().filter_map(|g| g["object"].as_str()).collect();
        assert!(of_kind.contains(&"Service/shop") && of_kind.iter().all(|o| o.starts_with("Service/")), "{report}");

        // Search with the keyboard: by label exactly the labelled objects (this member may list Secrets), by name.
        let found = |rows: &Value| -> Vec<(String, String)> {
            let mut found: Vec<(String, String)> = rows
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| {
                    (
                        row["kind"].as_str().unwrap_or_default().to_owned(),
                        row["name"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            found.sort();
            found
        };
        let search = &report["search"];
        assert_eq!(found(&search["byLabel"]), pairs(&[&labelled[..], &[("secrets", "shop-secret")]].concat()));
        assert_eq!(found(&search["byName"]), pairs(&[("configmaps", "shop-config")]), "{report}");
        let shop_link = format!("/instances/{id}/objects/deployments/shop");
        assert!(search["byLabel"].to_string().contains(&shop_link), "results link to their views: {report}");
        assert!(search["tabbed"].to_string().contains("\"q\""), "Tab reaches the search box: {report}");
        assert_eq!(search["unlabelled"], json!([]), "{report}");

        // The map: its drawing is an image with a name, its list says each relation with both ends linked.
        let map = &report["map"];
        assert_eq!(map["role"], "img", "{report}");
        let named = if lang == "ko" { "관계도: " } else { "Map: " };
        assert!(map["label"].as_str().unwrap_or_default().starts_with(named), "the drawing has a name: {report}");
        let list: Vec<(String, Vec<String>)> = map["list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| (item["text"].as_str().unwrap_or_default().to_owned(), strings(&item["links"])))
            .collect();
        let object = |kind: &str, name: &str| format!("/instances/{id}/objects/{kind}/{name}");
        let (rs, pvc, pv) = (&shop.replica_set, "shop-data", &shop.volume);
        let [routes, selects, owns, mounts, bound, scales] = words;
        // Each object as the map names it: its kind in the page's words, then its name.
        let named = |kind: &str, name: &str| format!("{}/{name}", kind_in_words(lang, kind));
        let pod = named("Pod", &shop.pod);
        let expected = [
            (
                format!("{} {routes} {}", named("Ingress", "shop"), named("Service", "shop")),
                vec![object("ingresses", "shop"), object("services", "shop")],
            ),
            (
                format!("{} {selects} {pod}", named("Service", "shop")),
                vec![object("services", "shop"), object("pods", &shop.pod)],
            ),
            (
                format!("{} {owns} {}", named("Deployment", "shop"), named("ReplicaSet", rs)),
                vec![object("deployments", "shop"), object("replicasets", rs)],
            ),
            (
                format!("{} {owns} {pod}", named("ReplicaSet", rs)),
                vec![object("replicasets", rs), object("pods", &shop.pod)],
            ),
            (
                format!("{pod} {mounts} {}", named("PersistentVolumeClaim", pvc)),
                vec![object("pods", &shop.pod), object("persistentvolumeclaims", pvc)],
            ),
            (
                format!("{} {bound} {}", named("PersistentVolumeClaim", pvc), named("PersistentVolume", pv)),
                vec![object("persistentvolumeclaims", pvc)],
            ),
            (
                format!("{} {scales} {}", named("HorizontalPodAutoscaler", "shop"), named("Deployment", "shop")),
                vec![object("deployments", "shop")],
            ),
        ];
        for edge in expected {
            assert!(list.contains(&edge), "{edge:?} is not on the map's list: {list:?}");
        }
        assert!(strings(&map["drawnLinks"]).contains(&object("ingresses", "shop")), "drawn nodes link too: {report}");
        if lang == "ko" {
            let nav = strings(&report["nav"]);
            assert!(["이벤트", "검색", "관계도"].iter().all(|word| nav.iter().any(|n| n == word)), "{nav:?}");
        }
        for shot in strings(&report["screenshots"]) {
            let png = std::fs::read(&shot).expect("a screenshot");
            assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot at {shot}");
        }
    }
    broker.deprovision(&id, SMALL).await;
}

/// A kind of object as the dashboard says it in `lang` ("Volume claim", "볼륨 클레임").
fn kind_in_words(lang: &str, kind: &str) -> &'static str {
    let words: [(&str, &str, &str); 8] = [
        ("Ingress", "Ingress", "인그레스"),
        ("Service", "Service", "서비스"),
        ("Pod", "Pod", "파드"),
        ("ReplicaSet", "ReplicaSet", "레플리카셋"),
        ("Deployment", "Deployment", "디플로이먼트"),
        ("PersistentVolumeClaim", "Volume claim", "볼륨 클레임"),
        ("PersistentVolume", "Volume", "볼륨"),
        ("HorizontalPodAutoscaler", "Autoscaler", "오토스케일러"),
    ];
    let (_, en, ko) = words.into_iter().find(|(raw, _, _)| *raw == kind).expect("a kind the map draws");
    if lang == "ko" { ko } else { en }
}
