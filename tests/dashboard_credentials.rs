//! Dashboard credentials end when they should, against the real control plane, over real HTTP: a session lasts no
//! longer than the token it was opened with, a kubeconfig minted for it no longer than that token (and none once the
//! token is refused), a kubeconfig's token cannot sign in again; an unbind, a member's removal or a change of role
//! ends every session of that identity at once on the replica that made it, and within the re-check interval on
//! another; a flood of sign-ins from one address or with one token is answered 429, and neither it nor one identity
//! signing in again and again signs anyone else out.

mod support;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use caas_broker::lifecycle::members::Role;
use serde_json::{Value, json};
use support::broker::*;
use support::cluster::eventually;
use support::dashboard::*;
use support::http::{HttpAnswer, form_encode, send};

/// The claims of a JWT (the apiserver verified it; the test only reads it).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// A binding of `role` on `instance_id` whose token lasts `seconds`: its token and when it expires (Unix seconds).
async fn binding(broker: &TestBroker, instance_id: &str, name: &str, role: &str, seconds: u64) -> (String, i64) {
    let parameters = json!({ "parameters": { "role": role, "expiration_seconds": seconds } });
    let bound = broker.bind(instance_id, &format!("{instance_id}-{name}"), SMALL, parameters).await;
    assert_eq!(bound.status, StatusCode::CREATED, "{bound:?}");
    let token = bound.body["credentials"]["token"].as_str().expect("token").to_owned();
    let expires = claims(&token)["exp"].as_i64().expect("exp");
    (token, expires)
}

/// The cookie's Max-Age, in seconds.
fn max_age(answer: &HttpAnswer) -> u64 {
    let set = answer.header("set-cookie").expect("a session cookie");
    let age = set.split(';').find_map(|part| part.trim().strip_prefix("Max-Age=")).expect("Max-Age");
    age.parse().expect("seconds")
}

/// Signs in to `instance_id` with `token` from the client address `client` (the dashboards here are configured to
/// count addresses by `X-Forwarded-For`, as behind a proxy).
async fn sign_in_from(served: &Served, instance_id: &str, token: &str, client: &str) -> HttpAnswer {
    let headers = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", served.origin.as_str()),
        ("x-forwarded-for", client),
    ];
    let body = format!("token={}", form_encode(token));
    send(served.address, "POST", &format!("/instances/{instance_id}/login"), &headers, &body).await
}

async fn signed_in(served: &Served, instance_id: &str, token: &str) -> String {
    let answer = sign_in(served, &format!("/instances/{instance_id}/login"), token, &served.origin).await;
    assert_eq!(answer.status, 303, "sign-in: {answer:?}");
    cookie_of(&answer)
}

/// The status of the overview for `cookie`, and where it sends the visitor (if it does).
async fn overview(served: &Served, instance_id: &str, cookie: &str) -> (u16, Option<String>) {
    let answer = served.get(&format!("/instances/{instance_id}"), cookie).await;
    (answer.status, answer.header("location").map(str::to_owned))
}

async fn download(served: &Served, instance_id: &str, cookie: &str) -> HttpAnswer {
    served.post_body(&format!("/instances/{instance_id}/kubeconfig"), cookie, "").await
}

#[tokio::test]
async fn a_session_and_its_kubeconfig_end_with_the_sessions_token_and_a_kubeconfig_cannot_sign_in() {
    let served = serve().await;
    let broker = &served.broker;
    let id = format!("cred-{:08x}", rand::random::<u32>());
    assert_eq!(broker.provision(&id, SMALL, json!({})).await.status, StatusCode::CREATED);

    // A binding whose token lasts 600 s: the session ends with it (not in 8 hours), and no kubeconfig can be minted
    // for it, since the TokenRequest API grants no token shorter than 10 minutes.
    let (short, _) = binding(broker, &id, "short", "edit", 600).await;
    let answer = sign_in(&served, &format!("/instances/{id}/login"), &short, &served.origin).await;
    assert_eq!(answer.status, 303, "{answer:?}");
    let age = max_age(&answer);
    assert!(age <= 600, "the session ends with its token, not in {age} s");
    let cookie = cookie_of(&answer);
    let refused = download(&served, &id, &cookie).await;
    assert_eq!(refused.status, 409, "no kubeconfig outliving a 600 s token: {refused:?}");
    assert!(!refused.body.contains("token:") && refused.body.contains("10 minutes"), "{}", refused.body);
    eprintln!("saw: a 600 s binding's session lasts {age} s; its kubeconfig download answered {}", refused.status);

    // A binding whose token lasts 25 minutes: the kubeconfig's token ends before it, works with the apiserver, and
    // cannot open a session.
    let (longer, expires) = binding(broker, &id, "longer", "edit", 1500).await;
    let cookie = signed_in(&served, &id, &longer).await;
    let minted = download(&served, &id, &cookie).await;
    assert_eq!(minted.status, 200, "{minted:?}");
    let yaml: Value = serde_norway::from_str(&minted.body).expect("a kubeconfig");
    let token = yaml["users"][0]["user"]["token"].as_str().expect("token").to_owned();
    let minted_claims = claims(&token);
    let minted_exp = minted_claims["exp"].as_i64().expect("exp");
    assert!(minted_exp <= expires, "the kubeconfig's token ({minted_exp}) outlives the session's ({expires})");
    assert!(minted_exp - minted_claims["iat"].as_i64().expect("iat") >= 600, "{minted_claims}");
    let audiences = minted_claims["aud"].as_array().expect("audiences").clone();
    assert!(audiences.contains(&json!(caas_broker::lifecycle::DASHBOARD_AUDIENCE)), "{minted_claims}");
    eprintln!("saw: binding token exp {expires}, kubeconfig token exp {minted_exp}, aud {audiences:?}");
    let as_kubeconfig = client_from_kubeconfig(&minted.body).await;
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(as_kubeconfig, &broker.namespace(&id));
    pods.list(&Default::default()).await.expect("the apiserver accepts the kubeconfig's token");
    let again = sign_in(&served, &format!("/instances/{id}/login"), &token, &served.origin).await;
    assert_eq!(again.status, 403, "a kubeconfig's token signs in: {again:?}");
    assert!(again.header("set-cookie").is_none(), "no session");
    assert!(again.body.contains("kubeconfig"), "the refusal says why: {}", again.body);
}

#[tokio::test]
async fn an_unbind_ends_every_session_of_the_binding_at_once_and_no_other() {
    let served = serve().await;
    let broker = &served.broker;
    let (id, _, view_token) = instance_with_binding(broker, "view").await;
    let (edit_token, _) = binding(broker, &id, "edit", "edit", 3600).await;
    let first = signed_in(&served, &id, &edit_token).await;
    let second = signed_in(&served, &id, &edit_token).await;
    let viewer = signed_in(&served, &id, &view_token).await;
    assert_eq!(overview(&served, &id, &first).await.0, 200);

    let unbound = broker.unbind(&id, &format!("{id}-edit"), SMALL).await;
    assert_eq!(unbound.status, StatusCode::OK, "{unbound:?}");
    let login = Some(format!("/instances/{id}/login"));
    for cookie in [&first, &second] {
        // The kubeconfig download reads nothing as the user: only the ended session stops it.
        let minted = download(&served, &id, cookie).await;
        assert_eq!((minted.status, minted.header("location").map(str::to_owned)), (303, login.clone()), "{minted:?}");
        assert_eq!(overview(&served, &id, cookie).await, (303, login.clone()));
    }
    assert_eq!(overview(&served, &id, &viewer).await.0, 200, "another binding's session goes on");
}

#[tokio::test]
async fn a_members_role_change_or_removal_ends_their_sessions_here_at_once_and_on_another_replica_soon() {
    let here = serve().await;
    // Another replica: the same configuration (so the same namespaces), its own process state.
    let prefix = here.broker.settings.kubernetes.namespace_prefix.clone();
    let elsewhere = serve_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"), |settings| {
        settings.kubernetes.namespace_prefix = prefix;
        settings.dashboard.session_recheck_seconds = 2;
    })
    .await;
    let id = format!("cred-{:08x}", rand::random::<u32>());
    assert_eq!(here.broker.provision(&id, SMALL, json!({})).await.status, StatusCode::CREATED);
    let alice = "alice@example.test";
    here.domain.invite(&id, alice, Role::Edit).await.expect("invite");
    // What a sign-in through the identity provider ends in: a token of her member identity, which opens a session.
    let member_token = |served: &'static str| {
        let domain = if served == "here" { here.domain.clone() } else { elsewhere.domain.clone() };
        let id = id.clone();
        async move {
            let signed = domain.sign_in_member(&id, alice, Duration::from_secs(3600)).await.expect("sign-in");
            signed.expect("alice is a member").1.token
        }
    };
    let cookie_here = signed_in(&here, &id, &member_token("here").await).await;
    let cookie_elsewhere = signed_in(&elsewhere, &id, &member_token("elsewhere").await).await;
    assert_eq!(overview(&here, &id, &cookie_here).await.0, 200);
    assert_eq!(overview(&elsewhere, &id, &cookie_elsewhere).await.0, 200);
    // Identities nobody changes stay signed in through their re-checks: the owner (whose RoleBinding has a name of
    // its own) and a binding.
    let admin = support::cluster::cluster().admin().await;
    let identities = kube::Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(
        admin,
        &here.broker.settings.kubernetes.identity_namespace,
    );
    let request: k8s_openapi::api::authentication::v1::TokenRequest =
        serde_json::from_value(json!({ "spec": { "expirationSeconds": 3600 } })).expect("request");
    let owner = caas_broker::k8s::names::owner_account(&id);
    let issued = identities.create_token_request(&owner, &Default::default(), &request).await.expect("owner token");
    let owner = signed_in(&elsewhere, &id, &issued.status.and_then(|status| status.token).expect("token")).await;
    let (view_token, _) = binding(&here.broker, &id, "view", "view", 3600).await;
    let viewer = signed_in(&elsewhere, &id, &view_token).await;
    let unchanged_since = std::time::Instant::now();

    // A change of role (edit to view: she could still read the overview) through this replica.
    let changed = std::time::Instant::now();
    here.domain.change_role(&id, alice, Role::View).await.expect("change the role");
    let login = Some(format!("/instances/{id}/login"));
    assert_eq!(overview(&here, &id, &cookie_here).await, (303, login.clone()), "ended here at once");
    eventually(Duration::from_secs(15), "the other replica ending her session", || async {
        (overview(&elsewhere, &id, &cookie_elsewhere).await == (303, login.clone())).then_some(())
    })
    .await;
    eprintln!("measured: another replica ended the session {:?} after the role change", changed.elapsed());

    // Signed in again (as view), then removed through the other replica.
    let cookie_here = signed_in(&here, &id, &member_token("here").await).await;
    let cookie_elsewhere = signed_in(&elsewhere, &id, &member_token("elsewhere").await).await;
    assert_eq!(overview(&here, &id, &cookie_here).await.0, 200);
    assert!(elsewhere.domain.revoke(&id, alice).await.expect("remove her"));
    assert_eq!(overview(&elsewhere, &id, &cookie_elsewhere).await, (303, login.clone()), "ended there at once");
    let minted = download(&here, &id, &cookie_here).await;
    assert_eq!((minted.status, minted.header("location").map(str::to_owned)), (303, login.clone()), "{minted:?}");
    assert_eq!(overview(&here, &id, &cookie_here).await, (303, login.clone()));

    // Past the other replica's re-check interval, its unchanged sessions go on.
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(unchanged_since.elapsed())).await;
    for cookie in [&owner, &viewer] {
        assert_eq!(overview(&elsewhere, &id, cookie).await.0, 200, "re-checked and still signed in");
    }
}

#[tokio::test]
async fn sign_in_floods_are_throttled_and_sign_no_one_else_out() {
    let served = serve_on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"), |settings| {
        settings.dashboard.client_address_header = Some("X-Forwarded-For".to_owned());
        settings.dashboard.max_sessions = 5;
        settings.dashboard.max_sessions_per_identity = 3;
    })
    .await;
    let broker = &served.broker;
    let (id, _, view_token) = instance_with_binding(broker, "view").await;
    let viewer = sign_in_from(&served, &id, &view_token, "198.51.100.1").await;
    assert_eq!(viewer.status, 303, "{viewer:?}");
    let viewer = cookie_of(&viewer);

    // 500 sign-ins from one address, each with another token that opens nothing: the address's 30 a minute reach the
    // apiserver, the rest are answered 429 with when to come back.
    let started = std::time::Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for attempt in 0..500 {
        let answer = sign_in_from(&served, &id, &format!("not-a-token-{attempt}"), "203.0.113.7").await;
        if answer.status == 429 {
            assert!(answer.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()), "{answer:?}");
            assert!(answer.body.contains("Too many sign-in attempts"), "{}", answer.body);
        }
        *statuses.entry(answer.status).or_default() += 1;
    }
    eprintln!("measured: 500 sign-ins from one address in {:?}: {statuses:?}", started.elapsed());
    assert!(statuses.get(&429).copied().unwrap_or_default() >= 460, "throttled: {statuses:?}");
    assert_eq!(overview(&served, &id, &viewer).await.0, 200, "the viewer is still signed in");

    // One token from many addresses: 10 a minute.
    let (edit_token, _) = binding(broker, &id, "edit", "edit", 3600).await;
    let mut edits = Vec::new();
    let mut throttled = 0;
    for attempt in 0..14 {
        let answer = sign_in_from(&served, &id, &edit_token, &format!("192.0.2.{}", attempt + 1)).await;
        match answer.status {
            303 => edits.push(cookie_of(&answer)),
            429 => throttled += 1,
            other => panic!("sign-in {attempt}: {other}: {answer:?}"),
        }
    }
    // Ten at once, and one more for every 6 s the loop took.
    assert!((10..=11).contains(&edits.len()) && throttled == 14 - edits.len(), "ten a minute per token: {throttled}");

    // The edit identity keeps its newest three sessions; the viewer's is never the one to go.
    let mut live = Vec::new();
    for cookie in &edits {
        live.push(overview(&served, &id, cookie).await.0 == 200);
    }
    let ended = edits.len() - 3;
    assert_eq!(live, [vec![false; ended], vec![true; 3]].concat(), "only the identity's own oldest end");
    assert_eq!(overview(&served, &id, &viewer).await.0, 200, "the viewer is still signed in");

    // The store is full at five: a new identity is refused rather than anyone signed out.
    let (admin_token, _) = binding(broker, &id, "admin", "admin", 3600).await;
    let admin = sign_in_from(&served, &id, &admin_token, "198.51.100.2").await;
    assert_eq!(admin.status, 303, "the fifth session: {admin:?}");
    let (other_token, _) = binding(broker, &id, "view2", "view", 3600).await;
    let full = sign_in_from(&served, &id, &other_token, "198.51.100.3").await;
    assert_eq!(full.status, 503, "a full store refuses: {full:?}");
    assert!(full.header("set-cookie").is_none());
    for cookie in edits[ended..].iter().chain([&viewer, &cookie_of(&admin)]) {
        assert_eq!(overview(&served, &id, cookie).await.0, 200, "nobody was signed out");
    }
}
