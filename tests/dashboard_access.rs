//! Members and roles of a virtual cluster, and sign-in through an identity provider, against the real control plane
//! (and, for the providers, the real Dex of `tests/oidc/dex.sh`): an admin invites a member, whose token can do what
//! the role allows and no more (the apiserver decides); a change of role replaces the RoleBinding; a removal revokes
//! the member's tokens at once; either ends the member's dashboard sessions at once, a provider's sign-in's too; only
//! admins may manage members, whatever a forged request says.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::broker::*;
use support::cloud_controller::{PermissionTable, stand_in_cloud_controller};
use support::cluster::{cluster, eventually};
use support::dashboard::{Served, cookie_of, serve, serve_on};
use support::dex::{Dex, dex};
use support::http::HttpAnswer;

impl Served {
    /// Signs in with `token` on the token form; the session cookie.
    async fn sign_in(&self, instance_id: &str, token: &str) -> String {
        let answer = self.post(&format!("/instances/{instance_id}/login"), "", &[("token", token)]).await;
        assert_eq!(answer.status, 303, "sign-in with a token: {answer:?}");
        cookie_of(&answer)
    }

    fn identities(&self) -> String {
        self.broker.settings.kubernetes.identity_namespace.clone()
    }
}

/// Provisions a small virtual cluster; its id.
async fn instance(broker: &TestBroker) -> String {
    let id = format!("acc-{:08x}", rand::random::<u32>());
    let provisioned = broker.provision(&id, SMALL, json!({})).await;
    assert_eq!(provisioned.status, axum::http::StatusCode::CREATED, "{provisioned:?}");
    id
}

/// A binding of `instance_id` with `role`; its token.
async fn binding_token(broker: &TestBroker, instance_id: &str, role: &str) -> String {
    let binding_id = format!("{instance_id}-{role}");
    let bound = broker.bind(instance_id, &binding_id, SMALL, json!({ "parameters": { "role": role } })).await;
    assert_eq!(bound.status, axum::http::StatusCode::CREATED, "{bound:?}");
    bound.body["credentials"]["token"].as_str().expect("token").to_owned()
}

async fn client_with_token(token: &str) -> Client {
    let config = caas_broker::k8s::as_user(&cluster().admin_config().await, token);
    Client::try_from(config).expect("client")
}

/// Whether the apiserver accepts `token` (TokenReview, as the admin).
async fn accepted(token: &str) -> bool {
    let review = TokenReview {
        spec: TokenReviewSpec { token: token.to_owned(), ..TokenReviewSpec::default() },
        ..TokenReview::default()
    };
    let answer = Api::<TokenReview>::all(cluster().admin().await).create(&PostParams::default(), &review).await;
    answer.expect("TokenReview").status.and_then(|s| s.authenticated).unwrap_or(false)
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } },
                          "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] } }
        }
    }))
    .expect("deployment")
}

/// The status of creating a deployment as `client` in `namespace` (201, or the apiserver's refusal).
async fn create_deployment(client: &Client, namespace: &str, name: &str) -> u16 {
    match Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deployment(name))
        .await
    {
        Ok(_) => 201,
        Err(kube::Error::Api(status)) => status.code,
        Err(other) => panic!("creating a deployment: {other}"),
    }
}

/// The member accounts of an instance in the identity namespace.
async fn member_accounts(served: &Served, instance_id: &str) -> Vec<String> {
    let accounts = Api::<ServiceAccount>::namespaced(cluster().admin().await, &served.identities());
    let selector = format!("caas-broker.io/member=true,caas-broker.io/instance={instance_id}");
    let listed = accounts.list_metadata(&ListParams::default().labels(&selector)).await.expect("list");
    listed.items.into_iter().filter_map(|a| a.metadata.name).collect()
}

#[tokio::test]
async fn admins_invite_members_whose_roles_the_apiserver_enforces_and_removal_revokes_at_once() {
    let served = serve().await;
    let broker = &served.broker;
    let id = instance(broker).await;
    let namespace = broker.namespace(&id);
    let members_path = format!("/instances/{id}/members");
    let admin = served.sign_in(&id, &binding_token(broker, &id, "admin").await).await;

    // The admin sees the forms; the overview links to the page.
    let overview = served.get(&format!("/instances/{id}"), &admin).await;
    assert!(overview.body.contains(&format!(r#"href="/instances/{id}/members""#)), "{}", overview.body);
    let page = served.get(&members_path, &admin).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains(r#"id="invite""#) && !page.body.contains(r#"id="read-only""#), "{}", page.body);
    assert!(page.body.contains("admin (owner)"), "the owner is listed: {}", page.body);

    // Invite alice as view: a ServiceAccount in the identity namespace, a RoleBinding to `view` in the tenant's.
    let alice = "alice@example.test";
    let invited = served.post(&members_path, &admin, &[("name", alice), ("role", "view")]).await;
    assert_eq!((invited.status, invited.header("location")), (303, Some(members_path.as_str())), "{invited:?}");
    let account = caas_broker::k8s::names::member_account(&id, alice);
    let accounts = Api::<ServiceAccount>::namespaced(cluster().admin().await, &served.identities());
    let made = accounts.get(&account).await.expect("alice's ServiceAccount");
    assert_eq!(made.metadata.annotations.expect("annotations")["caas-broker.io/member-name"], alice);
    assert_eq!(made.metadata.labels.expect("labels")["caas-broker.io/instance"], id);
    let bindings = Api::<RoleBinding>::namespaced(cluster().admin().await, &namespace);
    assert_eq!(bindings.get(&account).await.expect("alice's RoleBinding").role_ref.name, "view");
    let listed = served.get(&members_path, &admin).await;
    assert!(listed.body.contains(alice), "{}", listed.body);
    let again = served.post(&members_path, &admin, &[("name", alice), ("role", "edit")]).await;
    assert_eq!(again.status, 409, "inviting a member twice: {again:?}");
    assert_eq!(bindings.get(&account).await.expect("RoleBinding").role_ref.name, "view", "unchanged");

    // Alice's session token (what a sign-in through a provider gets): reads, but cannot create a deployment.
    let (tenant, credential) = served
        .domain
        .sign_in_member(&id, alice, Duration::from_secs(3600))
        .await
        .expect("sign-in")
        .expect("alice is a member");
    assert_eq!(tenant.account, account);
    let token = credential.token;
    let as_alice = client_with_token(&token).await;
    Api::<Pod>::namespaced(as_alice.clone(), &namespace).list(&ListParams::default()).await.expect("view lists pods");
    assert_eq!(create_deployment(&as_alice, &namespace, "by-viewer").await, 403, "view may not create");
    let alice_cookie = served.sign_in(&id, &token).await;
    let her_overview = served.get(&format!("/instances/{id}"), &alice_cookie).await;
    assert_eq!(her_overview.status, 200, "the token form accepts a member's token: {her_overview:?}");
    assert!(her_overview.body.contains(&account), "signed in as her member identity");
    let her_page = served.get(&members_path, &alice_cookie).await;
    assert!(her_page.body.contains(r#"id="read-only""#) && !her_page.body.contains(r#"id="invite""#));
    assert!(!her_page.body.contains("admin (owner)"), "view may not list RoleBindings: no member list either");

    // Alice (view) forges an invitation and a role change: refused by the server, nothing made or changed.
    let forged =
        served.post(&members_path, &alice_cookie, &[("name", "mallory@example.test"), ("role", "admin")]).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    let role_path = format!("{members_path}/role");
    let forged_role = served.post(&role_path, &alice_cookie, &[("name", alice), ("role", "admin")]).await;
    assert_eq!(forged_role.status, 403);
    assert_eq!(member_accounts(&served, &id).await, vec![account.clone()], "nothing made by a forged request");
    assert_eq!(bindings.get(&account).await.expect("RoleBinding").role_ref.name, "view");

    // Change to edit: the RoleBinding is replaced, and now she may create a deployment.
    let changed = served.post(&format!("{members_path}/role"), &admin, &[("name", alice), ("role", "edit")]).await;
    assert_eq!(changed.status, 303, "{changed:?}");
    assert_eq!(bindings.get(&account).await.expect("RoleBinding").role_ref.name, "edit");
    eventually(Duration::from_secs(20), "alice (edit) creating a deployment", || async {
        (create_deployment(&as_alice, &namespace, "by-editor").await == 201).then_some(())
    })
    .await;

    // An edit identity gets no forms and a 403 too.
    let editor = served.sign_in(&id, &binding_token(broker, &id, "edit").await).await;
    let editor_page = served.get(&members_path, &editor).await;
    assert!(!editor_page.body.contains("admin (owner)"), "nor may edit");
    assert!(
        editor_page.body.contains(r#"id="read-only""#)
            && !editor_page.body.contains("<form method=\"post\" action=\"/instances")
    );
    let forged = served.post(&format!("{members_path}/revoke"), &editor, &[("name", alice)]).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(accepted(&token).await, "alice is still a member");

    // Invalid names and roles: 400 with the reason, nothing made.
    for fields in [
        vec![("name", ""), ("role", "view")],
        vec![("name", "bob@example.test"), ("role", "cluster-admin")],
        vec![("name", "bob@example.test")],
        vec![("name", "cf:1234"), ("role", "view")],
        vec![("name", " bob"), ("role", "view")],
    ] {
        let refused = served.post(&members_path, &admin, &fields).await;
        assert_eq!(refused.status, 400, "{fields:?}: {refused:?}");
        assert!(refused.body.contains("Nothing was changed"), "{}", refused.body);
    }
    let long = "b".repeat(257);
    assert_eq!(served.post(&members_path, &admin, &[("name", &long), ("role", "view")]).await.status, 400);
    let bad_role = served.post(&format!("{members_path}/role"), &admin, &[("name", alice), ("role", "root")]).await;
    assert_eq!(bad_role.status, 400);
    assert_eq!(member_accounts(&served, &id).await, vec![account.clone()], "nothing made by invalid requests");
    assert_eq!(bindings.get(&account).await.expect("RoleBinding").role_ref.name, "edit");

    // The owner is no member to change or remove.
    let owner = caas_broker::k8s::names::owner_account(&id);
    let owner_name = served.domain.members(&id).await.expect("members")[0].name.clone();
    let not_removed = served.post(&format!("{members_path}/revoke"), &admin, &[("name", &owner_name)]).await;
    assert_eq!(not_removed.status, 404, "{not_removed:?}");
    accounts.get(&owner).await.expect("the owner's ServiceAccount is still there");

    // Revoke: objects gone, her token refused the moment the answer comes, her session ended on the next page.
    let started = std::time::Instant::now();
    let revoked = served.post(&format!("{members_path}/revoke"), &admin, &[("name", alice)]).await;
    assert_eq!(revoked.status, 303, "{revoked:?}");
    eprintln!("measured: a removal answered in {:?}, once the apiserver refused the member's token", started.elapsed());
    assert!(!accepted(&token).await, "the apiserver refuses a revoked member's token at once");
    assert!(accounts.get_opt(&account).await.expect("get").is_none());
    assert!(bindings.get_opt(&account).await.expect("get").is_none());
    let after = served.get(&format!("/instances/{id}"), &alice_cookie).await;
    assert_eq!((after.status, after.header("location")), (303, Some(format!("/instances/{id}/login").as_str())));
    let gone = served.get(&format!("/instances/{id}"), &alice_cookie).await;
    assert_eq!(gone.status, 303, "her session is over");

    // Deprovisioning removes members' ServiceAccounts with the rest.
    let bob = served.post(&members_path, &admin, &[("name", "bob@example.test"), ("role", "view")]).await;
    assert_eq!(bob.status, 303);
    assert_eq!(member_accounts(&served, &id).await.len(), 1);
    broker.deprovision(&id, SMALL).await;
    assert!(member_accounts(&served, &id).await.is_empty());
}

// --- sign-in through an identity provider: Dex (tests/oidc/dex.sh) --------------------------------------------------

/// `dex.sh` takes turns with the other tests of this file that use it.
static DEX: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A sign-in through the provider `kind` (`oidc`, `cf`) as far as the callback: the dashboard's answer to the start,
/// its pre-login cookie, and the callback's path and query that Dex sent the browser to.
async fn through_dex(served: &Served, dex: &Dex, instance_id: &str, kind: &str, email: &str) -> (String, String) {
    let started = served.get(&format!("/instances/{instance_id}/login/{kind}"), "").await;
    assert_eq!(started.status, 303, "{started:?}");
    let authorization = started.header("location").expect("to the provider").to_owned();
    assert!(authorization.starts_with(&dex.issuer), "{authorization}");
    for parameter in ["code_challenge_method=S256", "state=", "nonce=", "code_challenge="] {
        assert!(authorization.contains(parameter), "{authorization} lacks {parameter}");
    }
    let login_cookie = cookie_of(&started);
    assert!(login_cookie.starts_with("caas_dashboard_login="), "{login_cookie}");
    let set = started.header("set-cookie").expect("cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Max-Age=600"), "{set}");
    let callback = dex.log_in(&authorization, email).await;
    (login_cookie, callback)
}

fn with_query_param(path: &str, name: &str, value: &str) -> String {
    let (base, query) = path.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| if pair.starts_with(&format!("{name}=")) { format!("{name}={value}") } else { pair.to_owned() })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[tokio::test]
async fn invited_members_sign_in_through_openid_connect_and_others_are_refused() {
    let _turn = DEX.lock().await;
    let dex = dex();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = serve_on(listener, |settings| {
        settings.dashboard.base_url = Some(dex.base_url());
        settings.dashboard.oidc = Some(dex.oidc_settings());
    })
    .await;
    let id = instance(&served.broker).await;
    let alice = "alice@example.test";
    served.domain.invite(&id, alice, caas_broker::lifecycle::members::Role::View).await.expect("invite alice");

    // The sign-in page offers the provider beside the token form.
    let page = served.get(&format!("/instances/{id}/login"), "").await;
    assert!(page.body.contains(&format!(r#"href="/instances/{id}/login/oidc""#)), "{}", page.body);
    assert!(page.body.contains(r#"type="password""#), "the token form stays");

    // Alice, invited: through Dex and back, a session as her member identity.
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "oidc", alice).await;
    let started = std::time::Instant::now();
    let signed_in = served.get(&callback, &login_cookie).await;
    eprintln!(
        "measured: the OpenID Connect callback (code exchange, ID token check, member token) took {:?}",
        started.elapsed()
    );
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some(format!("/instances/{id}").as_str())));
    let session = session_cookie_of(&signed_in).expect("a session cookie");
    let overview = served.get(&format!("/instances/{id}"), &session).await;
    assert_eq!(overview.status, 200, "{overview:?}");
    let account = caas_broker::k8s::names::member_account(&id, alice);
    assert!(overview.body.contains(&account), "signed in as her member identity: {}", overview.body);

    // The code again with the same pre-login cookie: that sign-in is over.
    let replayed = served.get(&callback, &login_cookie).await;
    assert_eq!(replayed.status, 400, "{replayed:?}");
    assert!(session_cookie_of(&replayed).is_none());
    // The code again under a new sign-in (its own cookie and state): Dex refuses a used code.
    let started = served.get(&format!("/instances/{id}/login/oidc"), "").await;
    let fresh_cookie = cookie_of(&started);
    let fresh_state = started.header("location").expect("location").split("state=").nth(1).expect("state");
    let fresh_state = fresh_state.split('&').next().expect("state").to_owned();
    let replayed = served.get(&with_query_param(&callback, "state", &fresh_state), &fresh_cookie).await;
    assert_eq!(replayed.status, 403, "a used code: {replayed:?}");
    assert!(replayed.body.contains("Start again"), "{}", replayed.body);

    // A tampered state: refused, no session.
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "oidc", alice).await;
    let tampered = served.get(&with_query_param(&callback, "state", "forged"), &login_cookie).await;
    assert_eq!(tampered.status, 403, "{tampered:?}");
    assert!(session_cookie_of(&tampered).is_none());

    // Bob, not invited: 403, told to ask for an invitation.
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "oidc", "bob@example.test").await;
    let bob = served.get(&callback, &login_cookie).await;
    assert_eq!(bob.status, 403, "{bob:?}");
    assert!(bob.body.contains("Ask an admin of the virtual cluster for an invitation"), "{}", bob.body);
    assert!(member_accounts(&served, &id).await == vec![account.clone()], "nothing made for bob");

    // Her role changed: her session ends at once (she signs in again, with the new role); so does it when she is
    // removed, and it mints no kubeconfig then.
    served.domain.change_role(&id, alice, caas_broker::lifecycle::members::Role::Edit).await.expect("change her role");
    let login = format!("/instances/{id}/login");
    let after = served.get(&format!("/instances/{id}"), &session).await;
    assert_eq!((after.status, after.header("location")), (303, Some(login.as_str())), "{after:?}");
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "oidc", alice).await;
    let again = served.get(&callback, &login_cookie).await;
    assert_eq!(again.status, 303, "{again:?}");
    let session = session_cookie_of(&again).expect("a session cookie");
    assert_eq!(served.get(&format!("/instances/{id}"), &session).await.status, 200, "signed in again");
    assert!(served.domain.revoke(&id, alice).await.expect("remove her"));
    let minted = served.post_body(&format!("/instances/{id}/kubeconfig"), &session, "").await;
    assert_eq!((minted.status, minted.header("location")), (303, Some(login.as_str())), "{minted:?}");
}

// --- Cloud Foundry single sign-on: Dex as UAA, and a stand-in for the Cloud Controller's one endpoint ---------------

/// The session cookie a sign-in's answer sets.
fn session_cookie_of(answer: &HttpAnswer) -> Option<String> {
    answer
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .find_map(|(_, value)| value.strip_prefix("caas_dashboard_session=").map(|v| v.split(';').next().unwrap_or("")))
        .map(|value| format!("caas_dashboard_session={value}"))
}

#[tokio::test]
async fn cloud_foundry_users_get_the_role_the_cloud_controller_gives_at_every_sign_in() {
    let _turn = DEX.lock().await;
    let dex = dex();
    let table = PermissionTable::default();
    let (cc_url, cc) = stand_in_cloud_controller(&dex, table.clone()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = serve_on(listener, |settings| {
        settings.dashboard.base_url = Some(dex.base_url());
        settings.dashboard.cf_sso = Some(dex.cf_sso_settings(&cc_url));
    })
    .await;
    let id = instance(&served.broker).await;
    let namespace = served.broker.namespace(&id);
    let (alice, bob) = ("alice@example.test", "bob@example.test");
    table.lock().expect("table").insert((id.clone(), alice.to_owned()), (true, true));

    // The catalog carries the dashboard client, its secret from the configuration, its redirect the dashboard's.
    let catalog = served.broker.call(axum::http::Method::GET, "/v2/catalog", None).await;
    let client = &catalog.body["services"][0]["dashboard_client"];
    assert_eq!(client["secret"], dex.secret.as_str(), "{client}");
    assert_eq!(client["redirect_uri"], dex.redirect_uri.as_str());
    let page = served.get(&format!("/instances/{id}/login"), "").await;
    assert!(page.body.contains(&format!(r#"href="/instances/{id}/login/cf""#)), "{}", page.body);
    assert!(!page.body.contains("/login/oidc"), "only the providers configured");

    // Alice may manage the instance: an admin member named after her user id, signed in as it.
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "cf", alice).await;
    let signed_in = served.get(&callback, &login_cookie).await;
    assert_eq!(signed_in.status, 303, "{signed_in:?}");
    let session = session_cookie_of(&signed_in).expect("a session");
    let members = served.domain.members(&id).await.expect("members");
    let member = members.iter().find(|m| m.name.starts_with("cf:")).expect("a Cloud Foundry member");
    assert_eq!(member.role, Some(caas_broker::lifecycle::members::Role::Admin), "{members:?}");
    let account = caas_broker::k8s::names::member_account(&id, &member.name);
    let overview = served.get(&format!("/instances/{id}"), &session).await;
    assert!(overview.status == 200 && overview.body.contains(&account), "{overview:?}");
    let members_page = served.get(&format!("/instances/{id}/members"), &session).await;
    assert!(members_page.body.contains(r#"id="invite""#), "an admin manages members: {}", members_page.body);

    // Demoted to read in Cloud Foundry: view at the next sign-in.
    table.lock().expect("table").insert((id.clone(), alice.to_owned()), (true, false));
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "cf", alice).await;
    assert_eq!(served.get(&callback, &login_cookie).await.status, 303);
    let bindings = Api::<RoleBinding>::namespaced(cluster().admin().await, &namespace);
    assert_eq!(bindings.get(&account).await.expect("RoleBinding").role_ref.name, "view");

    // Bob may do nothing with it: 403, and no member made.
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "cf", bob).await;
    let refused = served.get(&callback, &login_cookie).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.body.contains("Cloud Foundry does not give you access"), "{}", refused.body);
    assert_eq!(member_accounts(&served, &id).await, vec![account.clone()]);

    // Alice loses every permission: refused, and the membership an earlier sign-in made is removed.
    table.lock().expect("table").remove(&(id.clone(), alice.to_owned()));
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "cf", alice).await;
    assert_eq!(served.get(&callback, &login_cookie).await.status, 403);
    assert!(member_accounts(&served, &id).await.is_empty(), "her membership is gone");

    // The Cloud Controller down: a clear 503, no session.
    cc.abort();
    let _ = cc.await;
    let (login_cookie, callback) = through_dex(&served, &dex, &id, "cf", alice).await;
    let down = served.get(&callback, &login_cookie).await;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(down.body.contains("does not answer") && session_cookie_of(&down).is_none(), "{}", down.body);
}

#[tokio::test]
async fn a_provider_that_does_not_answer_gives_a_clear_503_and_no_provider_shows_only_the_token_form() {
    // Nothing listens on port 1: discovery fails at once, as it would for a provider that is down.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the dashboard");
    let served = serve_on(listener, |settings| {
        settings.dashboard.oidc = Some(caas_broker::config::OidcSettings {
            issuer: "https://127.0.0.1:1/realms/k".to_owned(),
            client_id: "caas".to_owned(),
            client_secret: "not-used".to_owned(),
            scopes: "openid email".to_owned(),
            user_claim: "email".to_owned(),
            ca_file: None,
        });
    })
    .await;
    let id = instance(&served.broker).await;
    let page = served.get(&format!("/instances/{id}/login"), "").await;
    assert!(page.body.contains(&format!(r#"href="/instances/{id}/login/oidc""#)), "{}", page.body);
    let down = served.get(&format!("/instances/{id}/login/oidc"), "").await;
    assert_eq!(down.status, 503, "{down:?}");
    assert!(down.body.contains("does not answer") && down.header("location").is_none(), "{}", down.body);
    assert!(down.header("set-cookie").is_none(), "no sign-in started");
    let off = served.get(&format!("/instances/{id}/login/cf"), "").await;
    assert_eq!(off.status, 404, "a provider that is not configured: {off:?}");
    let callback = served.get("/auth/callback?code=x&state=y", "").await;
    assert_eq!(callback.status, 400, "a callback without a started sign-in: {callback:?}");

    let plain = serve().await;
    let id = instance(&plain.broker).await;
    let page = plain.get(&format!("/instances/{id}/login"), "").await;
    assert!(page.body.contains(r#"type="password""#) && !page.body.contains("/login/oidc"), "{}", page.body);
    assert!(!page.body.contains("/login/cf"));
}
