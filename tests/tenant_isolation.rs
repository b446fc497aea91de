//! Tenant isolation, proven against the real apiserver's RBAC and admission: three tenants, each with an admin, an
//! edit and a view binding, try what their role should and should not allow, through real requests with each
//! binding's kubeconfig (the Rust client and the real kubectl). Mutations are server-side dry runs, so every cell
//! goes through authorization and admission without changing anything. The matrix is printed with its cell count.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::http::StatusCode;
use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, ResourceQuota, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::broker::*;
use support::cluster::cluster;

const ROLES: [&str; 3] = ["admin", "edit", "view"];

struct Credential {
    tenant: usize,
    role: &'static str,
    namespace: String,
    client: Client,
    kubeconfig: PathBuf,
    binding_id: String,
}

fn dry_post() -> PostParams {
    PostParams { dry_run: true, ..PostParams::default() }
}

fn dry_patch() -> PatchParams {
    PatchParams { dry_run: true, ..PatchParams::default() }
}

fn dry_delete() -> DeleteParams {
    DeleteParams { dry_run: true, ..DeleteParams::default() }
}

fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("object literal")
}

/// Allowed (`Ok`) or denied (403); anything else fails the test, naming the cell.
fn outcome<T>(cell: &str, result: Result<T, kube::Error>) -> bool {
    match result {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.code == 403 => false,
        Err(error) => panic!("{cell}: neither allowed nor forbidden: {error}"),
    }
}

fn kubectl_outcome(cell: &str, credential: &Credential, args: &[&str]) -> bool {
    let (ok, _, err) = cluster().kubectl(&credential.kubeconfig, args);
    if !ok {
        assert!(err.contains("Forbidden") || err.contains("forbidden"), "{cell}: kubectl failed otherwise: {err}");
    }
    ok
}

/// One attempt by one credential: what it is, which roles should be allowed, and the attempt itself.
async fn attempt(
    check: &str,
    me: &Credential,
    other: &Credential,
    broker_namespace: &str,
    (identities, binding_account): (&str, &str),
) -> bool {
    let client = me.client.clone();
    let ns = me.namespace.as_str();
    let cell = format!("tenant {} {} / {check}", me.tenant, me.role);
    let cell = cell.as_str();
    match check {
        "list pods" => outcome(cell, Api::<Pod>::namespaced(client, ns).list(&ListParams::default()).await),
        "create configmap" => {
            let configmap: ConfigMap = object(json!({ "metadata": { "name": "probe" } }));
            outcome(cell, Api::<ConfigMap>::namespaced(client, ns).create(&dry_post(), &configmap).await)
        }
        "create deployment (kubectl)" => kubectl_outcome(
            cell,
            me,
            &["create", "deployment", "probe", "--image=example.invalid/app:1", "--dry-run=server"],
        ),
        "read secrets" => outcome(cell, Api::<Secret>::namespaced(client, ns).list(&ListParams::default()).await),
        "create own networkpolicy" => {
            let policy: NetworkPolicy = object(
                json!({ "metadata": { "name": "probe" }, "spec": { "podSelector": {}, "policyTypes": ["Ingress"] } }),
            );
            outcome(cell, Api::<NetworkPolicy>::namespaced(client, ns).create(&dry_post(), &policy).await)
        }
        "bind role view" | "bind role cluster-admin" => {
            let role = if check.ends_with("view") { "view" } else { "cluster-admin" };
            let binding: RoleBinding = object(json!({
                "metadata": { "name": "probe" },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
                "subjects": [{ "kind": "ServiceAccount", "name": "default", "namespace": ns }]
            }));
            outcome(cell, Api::<RoleBinding>::namespaced(client, ns).create(&dry_post(), &binding).await)
        }
        "relabel own namespace" => {
            let patch = json!({ "metadata": { "labels": { "pod-security.kubernetes.io/enforce": "privileged" } } });
            outcome(cell, Api::<Namespace>::all(client).patch(ns, &dry_patch(), &Patch::Merge(&patch)).await)
        }
        "raise own quota" => {
            let patch = json!({ "spec": { "hard": { "requests.cpu": "1000" } } });
            outcome(
                cell,
                Api::<ResourceQuota>::namespaced(client, ns)
                    .patch("caas-quota", &dry_patch(), &Patch::Merge(&patch))
                    .await,
            )
        }
        "delete own limits" => {
            outcome(cell, Api::<LimitRange>::namespaced(client, ns).delete("caas-limits", &dry_delete()).await)
        }
        "delete default-deny policy" => {
            outcome(cell, Api::<NetworkPolicy>::namespaced(client, ns).delete("caas-default-deny", &dry_delete()).await)
        }
        "open default-deny policy" => {
            let patch = json!({ "spec": { "ingress": [{}], "egress": [{}] } });
            let policies = Api::<NetworkPolicy>::namespaced(client, ns);
            outcome(cell, policies.patch("caas-default-deny", &dry_patch(), &Patch::Merge(&patch)).await)
        }
        "delete owner rolebinding" => {
            outcome(cell, Api::<RoleBinding>::namespaced(client, ns).delete("caas-owner", &dry_delete()).await)
        }
        "delete another binding's account" => outcome(
            cell,
            Api::<ServiceAccount>::namespaced(client, identities).delete(binding_account, &dry_delete()).await,
        ),
        "list pods of another tenant" => {
            outcome(cell, Api::<Pod>::namespaced(client, &other.namespace).list(&ListParams::default()).await)
        }
        "create in another tenant" => {
            let configmap: ConfigMap = object(json!({ "metadata": { "name": "probe" } }));
            outcome(cell, Api::<ConfigMap>::namespaced(client, &other.namespace).create(&dry_post(), &configmap).await)
        }
        "list namespaces (kubectl)" => kubectl_outcome(cell, me, &["get", "namespaces"]),
        "list nodes (kubectl)" => kubectl_outcome(cell, me, &["get", "nodes"]),
        "create namespace" => {
            let namespace: Namespace = object(json!({ "metadata": { "name": "probe-namespace" } }));
            outcome(cell, Api::<Namespace>::all(client).create(&dry_post(), &namespace).await)
        }
        "bind cluster-admin cluster-wide (kubectl)" => kubectl_outcome(
            cell,
            me,
            &[
                "create",
                "clusterrolebinding",
                "probe",
                "--clusterrole=cluster-admin",
                &format!("--serviceaccount={ns}:default"),
                "--dry-run=server",
            ],
        ),
        "list broker secrets" => {
            outcome(cell, Api::<Secret>::namespaced(client, broker_namespace).list(&ListParams::default()).await)
        }
        "read a binding record" => {
            let records = Api::<Secret>::namespaced(client, broker_namespace);
            outcome(cell, records.get(&format!("binding-{}", other.binding_id)).await)
        }
        other => panic!("unknown check {other}"),
    }
}

/// The checks, and the roles allowed each in their own namespace. Everything else must be denied for every role.
const CHECKS: [(&str, &[&str]); 22] = [
    ("list pods", &["admin", "edit", "view"]),
    ("create configmap", &["admin", "edit"]),
    ("create deployment (kubectl)", &["admin", "edit"]),
    ("read secrets", &["admin", "edit"]),
    ("create own networkpolicy", &["admin", "edit"]),
    ("bind role view", &["admin"]),
    ("bind role cluster-admin", &[]),
    ("relabel own namespace", &[]),
    ("raise own quota", &[]),
    ("delete own limits", &[]),
    ("delete default-deny policy", &[]),
    ("open default-deny policy", &[]),
    ("delete owner rolebinding", &[]),
    ("delete another binding's account", &[]),
    ("list pods of another tenant", &[]),
    ("create in another tenant", &[]),
    ("list namespaces (kubectl)", &[]),
    ("list nodes (kubectl)", &[]),
    ("create namespace", &[]),
    ("bind cluster-admin cluster-wide (kubectl)", &[]),
    ("list broker secrets", &[]),
    ("read a binding record", &[]),
];

#[tokio::test]
async fn each_binding_reaches_its_namespace_as_its_role_allows_and_nothing_else() {
    install_tenant_guard();
    let broker = TestBroker::start(|_| {}).await;
    let run = format!("{:06x}", rand::random::<u32>() & 0xffffff);
    let mut credentials = Vec::new();
    for tenant in 0..3 {
        let instance = format!("iso-{run}-{tenant}");
        broker.provision(&instance, SMALL, json!({})).await;
        for role in ROLES {
            let binding = format!("b{run}-{tenant}-{role}");
            let answer = broker.bind(&instance, &binding, SMALL, json!({ "parameters": { "role": role } })).await;
            assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
            let text = answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig").to_owned();
            let kubeconfig = std::env::temp_dir().join(format!("iso-{run}-{tenant}-{role}.kubeconfig"));
            std::fs::write(&kubeconfig, &text).expect("write kubeconfig");
            credentials.push(Credential {
                tenant,
                role,
                namespace: broker.namespace(&instance),
                client: client_from_kubeconfig(&text).await,
                kubeconfig,
                binding_id: binding,
            });
        }
    }

    let broker_namespace = broker.settings.kubernetes.broker_namespace.clone();
    let identities = broker.settings.kubernetes.identity_namespace.clone();
    let mut matrix: BTreeMap<(usize, &str), Vec<bool>> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut cells = 0;
    for me in &credentials {
        let other = &credentials[(me.tenant * 3 + 3) % credentials.len()];
        // Another binding's ServiceAccount, where it lives.
        let sibling = credentials.iter().find(|c| c.tenant == me.tenant && c.role != me.role).expect("sibling");
        let sibling_account = caas_broker::k8s::names::dns_label("caas-binding-", &sibling.binding_id);
        for (check, allowed_roles) in CHECKS {
            let allowed = attempt(check, me, other, &broker_namespace, (&identities, &sibling_account)).await;
            let expected = allowed_roles.contains(&me.role);
            cells += 1;
            matrix.entry((me.tenant, me.role)).or_default().push(allowed);
            if allowed != expected {
                wrong.push(format!(
                    "tenant {} {}: {check}: {} (expected {})",
                    me.tenant,
                    me.role,
                    verdict(allowed),
                    verdict(expected)
                ));
            }
        }
    }
    print_matrix(&matrix, cells);
    assert!(wrong.is_empty(), "{} of {cells} cells wrong:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(cells, 9 * CHECKS.len());

    // RBAC alone would let admin and edit delete the default-deny policy: the tenant guard is what refuses it.
    for credential in credentials.iter().filter(|c| c.role != "view") {
        let policies = Api::<NetworkPolicy>::namespaced(credential.client.clone(), &credential.namespace);
        match policies.delete("caas-default-deny", &dry_delete()).await {
            Err(kube::Error::Api(status)) => assert!(
                status.code == 403 && status.message.contains("managed by caas-broker"),
                "refused by the tenant guard: {}",
                status.message
            ),
            other => panic!("{} may delete the default-deny policy: {other:?}", credential.role),
        }
    }

    // The managed objects are as the broker made them.
    for tenant in 0..3 {
        let ns = &credentials[tenant * 3].namespace;
        let quota = Api::<ResourceQuota>::namespaced(broker.client.clone(), ns).get("caas-quota").await.expect("quota");
        assert_eq!(quota.spec.and_then(|s| s.hard).unwrap_or_default()["requests.cpu"].0, "2");
    }
    for credential in &credentials {
        std::fs::remove_file(&credential.kubeconfig).ok();
    }
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allowed" } else { "denied" }
}

fn print_matrix(matrix: &BTreeMap<(usize, &str), Vec<bool>>, cells: usize) {
    println!("\ntenant isolation matrix (A = allowed, - = denied)");
    let header: Vec<String> = matrix.keys().map(|(tenant, role)| format!("t{tenant}-{role:<5}")).collect();
    println!("{:<44} {}", "check", header.join(" "));
    for (index, (check, _)) in CHECKS.iter().enumerate() {
        let row: Vec<String> =
            matrix.values().map(|results| format!("{:^10}", if results[index] { "A" } else { "-" })).collect();
        println!("{check:<44} {}", row.join(" "));
    }
    println!("cells checked: {cells}\n");
}

/// Re-signs a token's claims with the cluster's service-account key (as the apiserver would), with new times.
fn resign(token: &str, issued_at: i64, expires_at: i64) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = parts.next().expect("header");
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(parts.next().expect("claims")).expect("base64")).expect("JSON");
    claims["iat"] = json!(issued_at);
    claims["nbf"] = json!(issued_at);
    claims["exp"] = json!(expires_at);
    let signing_input = format!("{header}.{}", engine.encode(claims.to_string()));
    let key = cluster().kubeconfig.parent().expect("state").join("pki/sa.key");
    let mut openssl = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    use std::io::Write;
    openssl.stdin.take().expect("stdin").write_all(signing_input.as_bytes()).expect("write");
    let signature = openssl.wait_with_output().expect("signature").stdout;
    format!("{signing_input}.{}", engine.encode(signature))
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let broker = TestBroker::start(|_| {}).await;
    let instance = format!("exp-{:06x}", rand::random::<u32>() & 0xffffff);
    broker.provision(&instance, MICRO, json!({})).await;
    let binding = format!("{instance}-binding");
    let answer = broker.bind(&instance, &binding, MICRO, json!({ "parameters": { "role": "view" } })).await;
    let token = answer.body["credentials"]["token"].as_str().expect("token").to_owned();
    let kubeconfig = answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig").to_owned();
    let namespace = broker.namespace(&instance);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;

    let with_token = |new_token: String| {
        let text = kubeconfig.replace(&token, &new_token);
        async move { client_from_kubeconfig(&text).await }
    };
    // Control: the same claims re-signed with a future expiry are accepted, so only the expiry differs below.
    let fresh = with_token(resign(&token, now - 60, now + 600)).await;
    assert!(Api::<Pod>::namespaced(fresh, &namespace).list(&ListParams::default()).await.is_ok());
    let expired = with_token(resign(&token, now - 7200, now - 3600)).await;
    let refused = Api::<Pod>::namespaced(expired, &namespace).list(&ListParams::default()).await;
    assert!(matches!(&refused, Err(kube::Error::Api(status)) if status.code == 401), "expired token: {refused:?}");
    broker.deprovision(&instance, MICRO).await;
}

/// What one credential tries against one identity inside its own virtual cluster.
const ESCALATIONS: [&str; 6] = [
    "token request where it lives",
    "token request in my namespace",
    "legacy token secret in my namespace",
    "legacy token secret where it lives",
    "impersonate it (kubectl --as)",
    "run a pod as it",
];

/// The one thing a tenant credential may do with an identity in its namespace: run a pod as the namespace's own
/// `default` ServiceAccount (admin and edit), which gives the pod a token bound to it (at most an hour, void once the
/// pod is deleted): the tenant's workloads need an identity, and it is not one the broker hands out.
fn escalation_allowed(role: &str, target: &str, check: &str) -> bool {
    role != "view" && target == "default (own namespace)" && check == "run a pod as it"
}

/// Refused (403 or 404: there is no such identity within reach) or obtained (`Some` with what was obtained: a token,
/// or a description); anything else fails the test, naming the cell.
fn obtained<T>(cell: &str, result: Result<T, kube::Error>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 404 => None,
        Err(error) => panic!("{cell}: neither obtained nor refused: {error}"),
    }
}

/// One escalation attempt by `me` against the ServiceAccount `target` of `target_namespace`. Returns the token
/// obtained, if any (or a marker for an allowed impersonation or pod).
async fn escalate(check: &str, me: &Credential, target_namespace: &str, target: &str) -> Option<String> {
    let cell = format!("{} / {check} / {target_namespace}:{target}", me.role);
    let cell = cell.as_str();
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        object(json!({ "spec": { "expirationSeconds": 31_536_000 } }));
    let token_of = |issued: k8s_openapi::api::authentication::v1::TokenRequest| {
        issued.status.and_then(|status| status.token).unwrap_or_else(|| "a token request was accepted".to_owned())
    };
    let legacy_secret = |name: &str| -> Secret {
        object(json!({
            "metadata": { "name": name, "annotations": { "kubernetes.io/service-account.name": target } },
            "type": "kubernetes.io/service-account-token"
        }))
    };
    match check {
        "token request where it lives" => {
            let accounts = Api::<ServiceAccount>::namespaced(me.client.clone(), target_namespace);
            obtained(cell, accounts.create_token_request(target, &PostParams::default(), &request).await).map(token_of)
        }
        "token request in my namespace" => {
            let accounts = Api::<ServiceAccount>::namespaced(me.client.clone(), &me.namespace);
            obtained(cell, accounts.create_token_request(target, &PostParams::default(), &request).await).map(token_of)
        }
        "legacy token secret in my namespace" | "legacy token secret where it lives" => {
            let namespace = if check.ends_with("my namespace") { me.namespace.as_str() } else { target_namespace };
            let name = format!("escalate-{:08x}", rand::random::<u32>());
            let secrets = Api::<Secret>::namespaced(me.client.clone(), namespace);
            obtained(cell, secrets.create(&PostParams::default(), &legacy_secret(&name)).await)?;
            // Created: the token controller would fill it with a token that never expires. Read it back as admin.
            let admin = Api::<Secret>::namespaced(cluster().admin().await, namespace);
            let token =
                support::cluster::eventually(std::time::Duration::from_secs(10), "the legacy token", || async {
                    admin.get(&name).await.ok()?.data?.get("token").map(|t| String::from_utf8_lossy(&t.0).into_owned())
                })
                .await;
            Some(token)
        }
        "impersonate it (kubectl --as)" => {
            let user = format!("--as=system:serviceaccount:{target_namespace}:{target}");
            let (ok, _, err) = cluster().kubectl(&me.kubeconfig, &["get", "configmaps", &user]);
            assert!(ok || err.contains("orbidden") || err.contains("cannot impersonate"), "{cell}: {err}");
            ok.then(|| "impersonated".to_owned())
        }
        "run a pod as it" => {
            let pod: Pod = object(json!({
                "metadata": { "name": "escalate" },
                "spec": {
                    "serviceAccountName": target,
                    "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
                    "containers": [{ "name": "c", "image": "example.invalid/app:1",
                        "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } } }]
                }
            }));
            let pods = Api::<Pod>::namespaced(me.client.clone(), &me.namespace);
            obtained(cell, pods.create(&dry_post(), &pod).await).map(|_| "a pod runs as it".to_owned())
        }
        other => panic!("unknown escalation {other}"),
    }
}

/// Inside its own namespace a credential of each role tries to become a stronger or longer-lived identity: the
/// owner, or another binding of each role, by minting a token for it (TokenRequest, or a legacy token Secret the
/// token controller would fill with a token that never expires), impersonating it, or running a pod as it; and to
/// mint a token for the namespace's own `default` ServiceAccount. Every cell must be refused. Then each credential is
/// unbound, and neither its own token nor anything it obtained still authenticates. The matrix is printed.
#[tokio::test]
async fn no_credential_can_become_another_identity_inside_its_namespace_and_unbind_leaves_nothing() {
    install_tenant_guard();
    let broker = TestBroker::start(|_| {}).await;
    let run = format!("{:06x}", rand::random::<u32>() & 0xffffff);
    let instance = format!("esc-{run}");
    broker.provision(&instance, SMALL, json!({})).await;
    let namespace = broker.namespace(&instance);
    let identities = broker.settings.kubernetes.identity_namespace.clone();
    let mut me = Vec::new();
    let mut targets = vec![("owner".to_owned(), identities.clone(), caas_broker::k8s::names::owner_account(&instance))];
    for (group, role) in ROLES.iter().flat_map(|role| [("me", *role), ("other", *role)]) {
        let binding = format!("esc{run}-{group}-{role}");
        let answer = broker.bind(&instance, &binding, SMALL, json!({ "parameters": { "role": role } })).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        let account = caas_broker::k8s::names::dns_label("caas-binding-", &binding);
        if group == "other" {
            targets.push((format!("{role} binding"), identities.clone(), account));
            continue;
        }
        let text = answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig").to_owned();
        let kubeconfig = std::env::temp_dir().join(format!("esc-{run}-{role}.kubeconfig"));
        std::fs::write(&kubeconfig, &text).expect("write kubeconfig");
        let credential = Credential {
            tenant: 0,
            role,
            namespace: namespace.clone(),
            client: client_from_kubeconfig(&text).await,
            kubeconfig,
            binding_id: binding,
        };
        let token = answer.body["credentials"]["token"].as_str().expect("token").to_owned();
        me.push((credential, token));
    }
    targets.push(("default (own namespace)".to_owned(), namespace.clone(), "default".to_owned()));

    let mut rows: Vec<(String, Vec<&str>)> = Vec::new();
    let mut wrong = Vec::new();
    let mut minted: Vec<(String, String)> = Vec::new();
    for (credential, _) in &me {
        for (label, target_namespace, target) in &targets {
            let mut row = Vec::new();
            for check in ESCALATIONS {
                let got = escalate(check, credential, target_namespace, target).await;
                let expected = escalation_allowed(credential.role, label, check);
                row.push(match (&got, expected) {
                    (None, _) => "-",
                    (Some(_), true) => "A (as expected)",
                    (Some(_), false) => "OBTAINED",
                });
                if got.is_some() != expected {
                    let verdict = if got.is_some() { "obtained" } else { "refused" };
                    wrong.push(format!("{} / {label} / {check}: {verdict}", credential.role));
                }
                if let Some(got) = got.filter(|got| got.starts_with("ey")) {
                    minted.push((format!("{} / {label} / {check}", credential.role), got));
                }
            }
            rows.push((format!("{:<5} -> {label}", credential.role), row));
        }
    }
    println!("\nin-namespace escalation matrix (- = refused, A = allowed as expected, OBTAINED = an escalation)");
    println!("{:<34} {}", "credential -> identity", ESCALATIONS.map(|e| format!("{e:<36}")).join(""));
    for (name, row) in &rows {
        println!("{name:<34} {}", row.iter().map(|cell| format!("{cell:<36}")).collect::<String>());
    }
    let cells = rows.len() * ESCALATIONS.len();
    println!("cells checked: {cells}\n");
    assert_eq!(cells, 3 * 5 * ESCALATIONS.len());

    // Unbind each credential: its own token and whatever it minted stop authenticating.
    for (credential, token) in &me {
        let answer = broker.unbind(&instance, &credential.binding_id, SMALL).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        minted.push((format!("{}'s own token", credential.role), token.clone()));
        std::fs::remove_file(&credential.kubeconfig).ok();
    }
    for (what, token) in &minted {
        let mut config = cluster().admin_config().await;
        config.auth_info = kube::config::AuthInfo { token: Some(token.clone().into()), ..Default::default() };
        let client = Client::try_from(config).expect("client");
        let answer = Api::<Pod>::namespaced(client, &namespace).list(&ListParams::default()).await;
        if !matches!(&answer, Err(kube::Error::Api(status)) if status.code == 401) {
            wrong.push(format!("{what}: still authenticates after unbind: {answer:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} escalations:\n{}", wrong.len(), wrong.join("\n"));
    broker.deprovision(&instance, SMALL).await;
}

/// What `cluster.sh up` installs is what keeps a tenant's isolation: under it (no guard installed by the test), an
/// `admin` binding really deleting its namespace's default-deny NetworkPolicy (alone, or all its policies at once)
/// and the broker's RoleBinding is refused, and they are all still there.
#[tokio::test]
async fn under_the_default_setup_an_admin_binding_cannot_delete_its_isolation() {
    let broker = TestBroker::start(|_| {}).await;
    let instance = format!("keep-{:06x}", rand::random::<u32>() & 0xffffff);
    broker.provision(&instance, SMALL, json!({})).await;
    let namespace = broker.namespace(&instance);
    let answer =
        broker.bind(&instance, &format!("{instance}-a"), SMALL, json!({ "parameters": { "role": "admin" } })).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    let tenant = client_from_kubeconfig(answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
    let policies = Api::<NetworkPolicy>::namespaced(tenant.clone(), &namespace);
    refused(
        "delete the default-deny NetworkPolicy",
        policies.delete("caas-default-deny", &DeleteParams::default()).await,
    );
    let everything = policies.delete_collection(&DeleteParams::default(), &ListParams::default()).await;
    assert!(everything.is_err(), "kubectl delete networkpolicy --all went through: {everything:?}");
    // RBAC's admin role may delete RoleBindings: the broker's own (the dashboard's watches) is the guard's to keep.
    let bindings = Api::<RoleBinding>::namespaced(tenant.clone(), &namespace);
    refused(
        "delete the broker's RoleBinding",
        bindings.delete("caas-broker-dashboard-watch", &DeleteParams::default()).await,
    );
    let admin = cluster().admin().await;
    assert!(
        Api::<NetworkPolicy>::namespaced(admin.clone(), &namespace)
            .get_opt("caas-default-deny")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        Api::<RoleBinding>::namespaced(admin, &namespace)
            .get_opt("caas-broker-dashboard-watch")
            .await
            .expect("get")
            .is_some()
    );
    broker.deprovision(&instance, SMALL).await;
}

/// Panics unless `result` is the tenant guard's refusal of a protected object.
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) => assert!(
            status.code == 403 && status.message.contains("managed by caas-broker"),
            "{what}: not refused by the tenant guard: {status:?}"
        ),
        other => panic!("{what}: the admin binding deleted it: {other:?}"),
    }
}

/// A pod spec Pod Security "restricted" admits, with `env` on its container (and `init_env` on an init container).
fn restricted_pod(name: &str, env: Value, init_env: Value) -> Value {
    let container = |name: &str, env: Value| {
        json!({ "name": name, "image": "example.invalid/app:1", "env": env,
                "securityContext": { "allowPrivilegeEscalation": false, "capabilities": { "drop": ["ALL"] } } })
    };
    json!({
        "metadata": { "name": name, "labels": { "app": name } },
        "spec": {
            "securityContext": { "runAsNonRoot": true, "seccompProfile": { "type": "RuntimeDefault" } },
            "initContainers": [container("init", init_env)],
            "containers": [container("c", env)]
        }
    })
}

/// Network objects and GPU variables that would reach beyond the namespace, tried by an `admin` and an `edit`
/// binding of a micro virtual cluster (no NodePort, no LoadBalancer in its quota) whose broker limits Ingress hosts
/// to `apps.example.test`: external IPs (the apiserver's ClusterIP, any other address), a NodePort and a
/// LoadBalancer Service, Ingresses for a foreign host, without a host or with a foreign TLS host, pods setting
/// NVIDIA_VISIBLE_DEVICES or NVIDIA_DRIVER_CAPABILITIES (container, init container) are refused; a plain Service, an
/// Ingress under the instance's domain and a plain pod are admitted. Server-side dry runs, then a real Deployment
/// whose pods set NVIDIA_VISIBLE_DEVICES: it is created, but the ReplicaSet controller's pods are refused.
#[tokio::test]
async fn network_objects_and_gpu_variables_cannot_reach_beyond_the_namespace() {
    let broker = TestBroker::start(|settings| settings.ingress.domain = Some("apps.example.test".to_owned())).await;
    let instance = format!("net-{:06x}", rand::random::<u32>() & 0xffffff);
    broker.provision(&instance, MICRO, json!({})).await;
    let namespace = broker.namespace(&instance);
    let own = format!("{instance}.apps.example.test");
    let admin = cluster().admin().await;
    let annotations =
        Api::<Namespace>::all(admin.clone()).get(&namespace).await.expect("namespace").metadata.annotations;
    assert_eq!(
        annotations.unwrap_or_default().get("caas-broker.io/ingress-domain"),
        Some(&own),
        "the broker writes the instance's domain on its namespace"
    );
    let service = |name: &str, spec: Value| -> k8s_openapi::api::core::v1::Service {
        object(json!({ "metadata": { "name": name }, "spec": spec }))
    };
    let ingress = |name: &str, spec: Value| -> k8s_openapi::api::networking::v1::Ingress {
        object(json!({ "metadata": { "name": name }, "spec": spec }))
    };
    let rule = |host: &str| {
        json!({ "host": host, "http": { "paths": [{ "path": "/", "pathType": "Prefix",
        "backend": { "service": { "name": "web", "port": { "number": 80 } } } }] } })
    };
    let hostless = json!({ "http": { "paths": [{ "path": "/", "pathType": "Prefix",
        "backend": { "service": { "name": "web", "port": { "number": 80 } } } }] } });
    let mut wrong = Vec::new();
    for role in ["admin", "edit"] {
        let answer = broker
            .bind(&instance, &format!("{instance}-{role}"), MICRO, json!({ "parameters": { "role": role } }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        let tenant =
            client_from_kubeconfig(answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
        let services = Api::<k8s_openapi::api::core::v1::Service>::namespaced(tenant.clone(), &namespace);
        let ingresses = Api::<k8s_openapi::api::networking::v1::Ingress>::namespaced(tenant.clone(), &namespace);
        let pods = Api::<Pod>::namespaced(tenant.clone(), &namespace);
        let port = json!([{ "port": 80 }]);
        let tries: Vec<(&str, Option<&str>, Result<(), kube::Error>)> = vec![
            (
                "Service with externalIPs [10.96.0.1]",
                Some("external IPs"),
                services
                    .create(&dry_post(), &service("steal", json!({ "ports": port, "externalIPs": ["10.96.0.1"] })))
                    .await
                    .map(drop),
            ),
            (
                "Service with externalIPs [203.0.113.7]",
                Some("external IPs"),
                services
                    .create(&dry_post(), &service("steal2", json!({ "ports": port, "externalIPs": ["203.0.113.7"] })))
                    .await
                    .map(drop),
            ),
            (
                "NodePort Service (quota: 0)",
                Some("exceeded quota"),
                services
                    .create(&dry_post(), &service("np", json!({ "ports": port, "type": "NodePort" })))
                    .await
                    .map(drop),
            ),
            (
                "LoadBalancer Service (quota: 0)",
                Some("exceeded quota"),
                services
                    .create(&dry_post(), &service("lb", json!({ "ports": port, "type": "LoadBalancer" })))
                    .await
                    .map(drop),
            ),
            (
                "ClusterIP Service",
                None,
                services.create(&dry_post(), &service("web", json!({ "ports": port }))).await.map(drop),
            ),
            (
                "Ingress for bank.example.com",
                Some("Ingress hosts here must be"),
                ingresses
                    .create(&dry_post(), &ingress("foreign", json!({ "rules": [rule("bank.example.com")] })))
                    .await
                    .map(drop),
            ),
            (
                "Ingress for another instance's domain",
                Some("Ingress hosts here must be"),
                ingresses
                    .create(&dry_post(), &ingress("other", json!({ "rules": [rule("web.other.apps.example.test")] })))
                    .await
                    .map(drop),
            ),
            (
                "Ingress without a host",
                Some("Ingress hosts here must be"),
                ingresses.create(&dry_post(), &ingress("any", json!({ "rules": [hostless.clone()] }))).await.map(drop),
            ),
            (
                "Ingress with a foreign TLS host",
                Some("Ingress hosts here must be"),
                ingresses
                    .create(
                        &dry_post(),
                        &ingress(
                            "tls",
                            json!({ "rules": [rule(&format!("web.{own}"))],
                 "tls": [{ "hosts": ["bank.example.com"], "secretName": "x" }] }),
                        ),
                    )
                    .await
                    .map(drop),
            ),
            (
                "Ingress under the instance's domain",
                None,
                ingresses
                    .create(&dry_post(), &ingress("mine", json!({ "rules": [rule(&format!("web.{own}"))] })))
                    .await
                    .map(drop),
            ),
            (
                "pod setting NVIDIA_VISIBLE_DEVICES=all",
                Some("NVIDIA_VISIBLE_DEVICES"),
                pods.create(
                    &dry_post(),
                    &object(restricted_pod(
                        "gpu",
                        json!([{ "name": "NVIDIA_VISIBLE_DEVICES", "value": "all" }]),
                        json!([]),
                    )),
                )
                .await
                .map(drop),
            ),
            (
                "pod whose init container sets NVIDIA_DRIVER_CAPABILITIES",
                Some("NVIDIA_VISIBLE_DEVICES"),
                pods.create(
                    &dry_post(),
                    &object(restricted_pod(
                        "gpu2",
                        json!([]),
                        json!([{ "name": "NVIDIA_DRIVER_CAPABILITIES", "value": "all" }]),
                    )),
                )
                .await
                .map(drop),
            ),
            (
                "plain pod",
                None,
                pods.create(
                    &dry_post(),
                    &object(restricted_pod("plain", json!([{ "name": "A", "value": "b" }]), json!([]))),
                )
                .await
                .map(drop),
            ),
        ];
        for (what, refusal, result) in tries {
            let saw = match (&result, refusal) {
                (Ok(()), None) => continue,
                (Err(kube::Error::Api(status)), Some(expected))
                    if status.code == 403 && status.message.contains(expected) =>
                {
                    println!("{role}: {what}: refused: {}", status.message);
                    continue;
                }
                (Ok(()), Some(_)) => "admitted".to_owned(),
                (Err(error), _) => format!("{error}"),
            };
            wrong.push(format!(
                "{role}: {what}: {saw} (expected {})",
                refusal.map_or("admitted".to_owned(), |r| format!("403 {r:?}"))
            ));
        }
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));

    // A controller's pods go through the same check: the Deployment is made, its pods are refused.
    let answer =
        broker.bind(&instance, &format!("{instance}-deploy"), MICRO, json!({ "parameters": { "role": "edit" } })).await;
    let tenant = client_from_kubeconfig(answer.body["credentials"]["kubeconfig"].as_str().expect("kubeconfig")).await;
    let pod = restricted_pod("gpu-app", json!([{ "name": "NVIDIA_VISIBLE_DEVICES", "value": "all" }]), json!([]));
    let deployment: k8s_openapi::api::apps::v1::Deployment = object(json!({
        "metadata": { "name": "gpu-app" },
        "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "gpu-app" } }, "template": pod }
    }));
    let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(tenant, &namespace);
    deployments.create(&PostParams::default(), &deployment).await.expect("the Deployment itself is admitted");
    let failure =
        support::cluster::eventually(std::time::Duration::from_secs(30), "the Deployment's ReplicaFailure", || async {
            let status = deployments.get("gpu-app").await.ok()?.status?;
            status.conditions?.into_iter().find(|c| c.type_ == "ReplicaFailure").and_then(|c| c.message)
        })
        .await;
    assert!(
        failure.contains("NVIDIA_VISIBLE_DEVICES"),
        "the ReplicaSet's pods were refused for another reason: {failure}"
    );
    let running = Api::<Pod>::namespaced(admin, &namespace)
        .list(&ListParams::default().labels("app=gpu-app"))
        .await
        .expect("pods");
    assert!(running.items.is_empty(), "a pod with NVIDIA_VISIBLE_DEVICES was made: {:?}", running.items);
    println!("Deployment gpu-app: {failure}");
    broker.deprovision(&instance, MICRO).await;
}
