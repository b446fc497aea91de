//! Signed-in users, in this process's memory only: a random id (the cookie) to the user's virtual cluster, the token
//! they signed in with and a client carrying it. A restart signs everyone out, which costs a paste of the token.
//!
//! A session ends at the first of: its lifetime (`dashboard.session_seconds`), its token's own expiry, sign-out, and
//! its identity losing access. Sessions are indexed by identity, so that an unbind, a member's removal or change of
//! role in this process ends every session of that identity at once (see [`Sessions::listen`]); another replica's
//! change is found when a session is next used after [`SessionLimits::recheck`] (see [`Sessions::due_for_check`]).
//!
//! Bounded without letting anyone sign others out: one identity holds at most [`SessionLimits::per_identity`] sessions
//! (a new one ends that identity's oldest), and when the store is full a new sign-in is refused, never made room for
//! by ending someone else's session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::lifecycle::revocations::{Revocations, Revoked};
use crate::lifecycle::{Credential, Tenant};
use crate::tenant::abilities::Abilities;

/// How many sessions may be held, for how long, and how often one is re-checked.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Longest a session lasts (its token's expiry may end it sooner).
    pub lifetime: Duration,
    /// Most sessions held at once.
    pub max: usize,
    /// Most sessions of one identity held at once.
    pub per_identity: usize,
    /// How long a session is used without checking that its identity is unchanged.
    pub recheck: Duration,
}

/// Who a session is, for whatever must follow it (a stream, a log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The Kubernetes user name (`system:serviceaccount:<identity namespace>:<account>`).
    pub username: String,
    /// The role bound when it signed in (its ClusterRole's name: `admin`, `edit`, `view`), if any.
    pub role: Option<String>,
}

/// One signed-in user.
#[derive(Clone)]
pub struct Session {
    /// The virtual cluster signed in to.
    pub tenant: Tenant,
    /// A client that authenticates as the user (their token), for every read made for them.
    pub client: kube::Client,
    /// The token signed in with, and what it was found to be then.
    pub credential: Arc<Credential>,
    /// What the user may do beyond reading, asked at sign-in: which controls the pages offer.
    pub abilities: Abilities,
    /// When the session ends at the latest.
    pub expires_at: Instant,
    ended: watch::Receiver<bool>,
}

impl Session {
    /// The path of the signed-in instance's dashboard, which its pages' links start with.
    pub fn base_path(&self) -> String {
        super::paths::Overview { instance_id: self.tenant.instance_id.clone() }.to_string()
    }

    /// Who the session is: its user name and the role it signed in with. A change of role ends the session.
    pub fn identity(&self) -> Identity {
        Identity { username: self.tenant.username.clone(), role: self.credential.role.clone() }
    }

    /// Whether the session has ended (signed out, expired, its identity revoked, or pushed out by the same identity's
    /// newer sessions).
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow() || Instant::now() >= self.expires_at
    }

    /// Resolves when the session ends, for whatever lives on after the request that found it (a stream).
    #[allow(dead_code, reason = "for the long-lived streams (live, logs, noVNC) to close with their session")]
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        let expiry = tokio::time::sleep_until(tokio::time::Instant::from_std(self.expires_at));
        tokio::select! {
            // An error means the store dropped the session: ended too.
            _ = ended.wait_for(|ended| *ended) => {}
            () = expiry => {}
        }
    }
}

/// Why no session was started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No randomness for an id (getrandom's error is no `std::error::Error` without its `std` feature: kept, shown).
    #[error("no randomness for a session id: {0}")]
    Random(getrandom::Error),
    /// The store holds as many sessions as it may (none is ended to make room).
    #[error("the dashboard holds as many sessions as it may")]
    Full,
    /// The token has expired (between its review and now).
    #[error("the token has expired")]
    Expired,
}

struct Entry {
    session: Session,
    ends: watch::Sender<bool>,
    /// Order of starting, to find an identity's oldest.
    started: u64,
    /// When the identity was last found unchanged.
    checked_at: Instant,
}

#[derive(Default)]
struct Store {
    by_id: HashMap<String, Entry>,
    /// Session ids by user name.
    by_identity: HashMap<String, Vec<String>>,
    started: u64,
}

impl Store {
    fn remove(&mut self, id: &str) -> Option<Session> {
        let entry = self.by_id.remove(id)?;
        entry.ends.send_replace(true);
        let username = &entry.session.tenant.username;
        if let Some(ids) = self.by_identity.get_mut(username) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_identity.remove(username);
            }
        }
        Some(entry.session)
    }

    fn remove_expired(&mut self, now: Instant) {
        let expired: Vec<String> =
            self.by_id.iter().filter(|(_, entry)| entry.session.expires_at <= now).map(|(id, _)| id.clone()).collect();
        for id in expired {
            self.remove(&id);
        }
    }
}

/// Every session, by id and by identity.
pub struct Sessions {
    store: Arc<Mutex<Store>>,
    limits: SessionLimits,
}

impl Sessions {
    /// No session yet.
    pub fn new(limits: SessionLimits) -> Sessions {
        let limits = SessionLimits { max: limits.max.max(1), per_identity: limits.per_identity.max(1), ..limits };
        Sessions { store: Arc::new(Mutex::new(Store::default())), limits }
    }

    /// How long a session lasts at most (a member's sign-in asks for a token that lasts as long).
    pub fn lifetime(&self) -> Duration {
        self.limits.lifetime
    }

    /// Ends the sessions of every identity `revocations` says lost access, as it says so.
    pub fn listen(&self, revocations: &Revocations) {
        let store: Weak<Mutex<Store>> = Arc::downgrade(&self.store);
        revocations.listen(move |revoked| {
            if let Some(store) = store.upgrade() {
                let mut store = lock(&store);
                let ended: Vec<String> = match revoked {
                    Revoked::Identity(username) => store.by_identity.get(username).cloned().unwrap_or_default(),
                    Revoked::Instance(instance_id) => store
                        .by_id
                        .iter()
                        .filter(|(_, entry)| &entry.session.tenant.instance_id == instance_id)
                        .map(|(id, _)| id.clone())
                        .collect(),
                };
                for id in &ended {
                    store.remove(id);
                }
                if !ended.is_empty() {
                    tracing::info!(sessions = ended.len(), ?revoked, "dashboard sessions ended: access revoked");
                }
            }
        });
    }

    /// Starts a session and returns its id (256 random bits, hex) and how long it lasts (the cookie's Max-Age): the
    /// lifetime, or less when the token expires sooner. The identity's oldest session ends when it holds as many as
    /// it may; when the store is full, nobody's session ends and the sign-in is refused. `abilities` are what its user
    /// was found to be allowed at sign-in.
    pub fn start(
        &self,
        tenant: Tenant,
        client: kube::Client,
        credential: Credential,
        abilities: Abilities,
    ) -> Result<(String, Duration), StartError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(StartError::Random)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let lifetime = match credential.expires_at {
            Some(end) => {
                let left = end.as_millisecond() - jiff::Timestamp::now().as_millisecond();
                let left = Duration::from_millis(u64::try_from(left).map_err(|_| StartError::Expired)?);
                left.min(self.limits.lifetime)
            }
            None => self.limits.lifetime,
        };
        let now = Instant::now();
        let mut store = lock(&self.store);
        let username = tenant.username.clone();
        let held = store.by_identity.get(&username).cloned().unwrap_or_default();
        if held.len() >= self.limits.per_identity {
            let mut by_age: Vec<(u64, String)> =
                held.iter().filter_map(|id| Some((store.by_id.get(id)?.started, id.clone()))).collect();
            by_age.sort();
            let surplus = held.len() + 1 - self.limits.per_identity;
            for (_, oldest) in by_age.into_iter().take(surplus) {
                store.remove(&oldest);
            }
        }
        if store.by_id.len() >= self.limits.max {
            store.remove_expired(now);
        }
        if store.by_id.len() >= self.limits.max {
            return Err(StartError::Full);
        }
        let (ends, ended) = watch::channel(false);
        let credential = Arc::new(credential);
        let session = Session { tenant, client, credential, abilities, expires_at: now + lifetime, ended };
        store.started += 1;
        let started = store.started;
        store.by_id.insert(id.clone(), Entry { session, ends, started, checked_at: now });
        store.by_identity.entry(username).or_default().push(id.clone());
        Ok((id, lifetime))
    }

    /// The live session with this id; an expired one is forgotten.
    pub fn find(&self, id: &str) -> Option<Session> {
        let mut store = lock(&self.store);
        let entry = store.by_id.get(id)?;
        if entry.session.expires_at > Instant::now() {
            return Some(entry.session.clone());
        }
        store.remove(id);
        None
    }

    /// Whether the session `id` is live (for a stream to ask between events).
    #[allow(dead_code, reason = "for the long-lived streams (live, logs, noVNC) to ask between events")]
    pub fn is_live(&self, id: &str) -> bool {
        self.find(id).is_some()
    }

    /// Whether the session `id` is due to have its identity re-checked (last checked [`SessionLimits::recheck`] ago
    /// or more); if so, it counts as checked now, so that concurrent requests do not all check.
    pub fn due_for_check(&self, id: &str) -> bool {
        let mut store = lock(&self.store);
        let recheck = self.limits.recheck;
        let Some(entry) = store.by_id.get_mut(id) else { return false };
        let now = Instant::now();
        if now.duration_since(entry.checked_at) < recheck {
            return false;
        }
        entry.checked_at = now;
        true
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        lock(&self.store).remove(id);
    }

    /// Ends every session of the identity `username`; how many there were.
    pub fn end_identity(&self, username: &str) -> usize {
        let mut store = lock(&self.store);
        let ids = store.by_identity.get(username).cloned().unwrap_or_default();
        for id in &ids {
            store.remove(id);
        }
        ids.len()
    }
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    // Every change is one call: a panic elsewhere leaves the maps consistent, so go on with them.
    store.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A credential that ends in `seconds` (none: never), for unit tests.
#[cfg(test)]
pub fn test_credential(seconds: Option<i64>) -> Credential {
    Credential {
        token: "t".to_owned(),
        expires_at: seconds.map(|s| jiff::Timestamp::now() + jiff::SignedDuration::from_secs(s)),
        account_uid: Some("uid".to_owned()),
        role_binding: "caas-binding-b".to_owned(),
        role: Some("edit".to_owned()),
    }
}

/// A signed-in session of instance `instance_id` for the pages' unit tests, its client pointing nowhere.
#[cfg(test)]
pub fn test_session(instance_id: &str) -> Session {
    let tenant = Tenant {
        instance_id: instance_id.to_owned(),
        namespace: "caas-inst-1".to_owned(),
        service_name: "caas".to_owned(),
        plan_name: "small".to_owned(),
        username: "system:serviceaccount:ids:caas-binding-b".to_owned(),
        account: "caas-binding-b".to_owned(),
        signer: crate::lifecycle::Signer::Owner,
    };
    let client =
        kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().expect("url"))).expect("client");
    let sessions = Sessions::new(SessionLimits {
        lifetime: Duration::from_secs(60),
        max: 1,
        per_identity: 1,
        recheck: Duration::from_secs(10),
    });
    let (id, _) = sessions.start(tenant, client, test_credential(None), Abilities::ALL).expect("id");
    sessions.find(&id).expect("session")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, user: &str) -> Tenant {
        Tenant {
            instance_id: id.to_owned(),
            namespace: format!("caas-{id}"),
            service_name: "caas".to_owned(),
            plan_name: "small".to_owned(),
            username: format!("system:serviceaccount:ids:{user}"),
            account: user.to_owned(),
            signer: crate::lifecycle::Signer::Owner,
        }
    }

    fn client() -> kube::Client {
        let config = kube::Config::new("https://127.0.0.1:1".parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    fn limits(max: usize, per_identity: usize) -> SessionLimits {
        SessionLimits { lifetime: Duration::from_secs(60), max, per_identity, recheck: Duration::from_secs(60) }
    }

    #[tokio::test]
    async fn sessions_are_random_and_expire_with_their_lifetime_or_their_token() {
        let sessions = Sessions::new(limits(10, 10));
        let (first, lifetime) =
            sessions.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id");
        let (second, _) =
            sessions.start(tenant("b", "y"), client(), test_credential(None), Abilities::ALL).expect("id");
        assert_eq!(first.len(), 64);
        assert_ne!(first, second);
        assert_eq!(lifetime, Duration::from_secs(60));
        assert_eq!(sessions.find(&first).map(|s| s.tenant.instance_id), Some("a".to_owned()));
        sessions.end(&second);
        assert!(sessions.find(&second).is_none() && !sessions.is_live(&second));

        let (_, short) =
            sessions.start(tenant("a", "x"), client(), test_credential(Some(20)), Abilities::ALL).expect("id");
        assert!(short <= Duration::from_secs(20) && short > Duration::from_secs(15), "the token's expiry: {short:?}");
        let expired = sessions.start(tenant("a", "x"), client(), test_credential(Some(-1)), Abilities::ALL);
        assert!(matches!(expired, Err(StartError::Expired)));

        let quick = Sessions::new(SessionLimits { lifetime: Duration::from_millis(1), ..limits(10, 10) });
        let (id, _) = quick.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id");
        let session = quick.find(&id);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(quick.find(&id).is_none(), "expired");
        assert!(quick.find("not-an-id").is_none());
        if let Some(session) = session {
            assert!(session.is_ended());
            tokio::time::timeout(Duration::from_secs(1), session.ended()).await.expect("ended resolves at expiry");
        }
    }

    #[tokio::test]
    async fn an_identity_keeps_its_newest_sessions_and_a_full_store_refuses_rather_than_evicts() {
        let sessions = Sessions::new(limits(4, 2));
        let (other, _) =
            sessions.start(tenant("a", "other"), client(), test_credential(None), Abilities::ALL).expect("id");
        let flood: Vec<String> = (0..5)
            .map(|_| sessions.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id").0)
            .collect();
        assert!(flood[..3].iter().all(|id| !sessions.is_live(id)), "the identity's oldest went");
        assert!(flood[3..].iter().all(|id| sessions.is_live(id)), "its newest two stay");
        assert!(sessions.is_live(&other), "never another identity's");
        let (third, _) =
            sessions.start(tenant("a", "third"), client(), test_credential(None), Abilities::ALL).expect("id");
        let full = sessions.start(tenant("a", "fourth"), client(), test_credential(None), Abilities::ALL);
        assert!(matches!(full, Err(StartError::Full)), "full: refused");
        assert!(
            sessions.is_live(&other) && sessions.is_live(&third) && flood[3..].iter().all(|id| sessions.is_live(id))
        );
    }

    #[tokio::test]
    async fn a_revocation_ends_every_session_of_its_identity_or_instance_at_once() {
        let sessions = Sessions::new(limits(10, 10));
        let revocations = Revocations::default();
        sessions.listen(&revocations);
        let (one, _) = sessions.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id");
        let (two, _) = sessions.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id");
        let (kept, _) = sessions.start(tenant("a", "y"), client(), test_credential(None), Abilities::ALL).expect("id");
        let (elsewhere, _) =
            sessions.start(tenant("b", "z"), client(), test_credential(None), Abilities::ALL).expect("id");
        let watched = sessions.find(&one).expect("live");
        revocations.tell(&Revoked::Identity("system:serviceaccount:ids:x".to_owned()));
        assert!(!sessions.is_live(&one) && !sessions.is_live(&two));
        assert!(watched.is_ended());
        tokio::time::timeout(Duration::from_secs(1), watched.ended()).await.expect("ended resolves at once");
        assert!(sessions.is_live(&kept) && sessions.is_live(&elsewhere));
        revocations.tell(&Revoked::Instance("a".to_owned()));
        assert!(!sessions.is_live(&kept) && sessions.is_live(&elsewhere));
        assert_eq!(sessions.end_identity("system:serviceaccount:ids:z"), 1);
        assert!(!sessions.is_live(&elsewhere));
    }

    #[tokio::test]
    async fn a_session_is_due_for_a_check_once_per_interval() {
        let sessions = Sessions::new(SessionLimits { recheck: Duration::ZERO, ..limits(10, 10) });
        let (id, _) = sessions.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id");
        assert!(sessions.due_for_check(&id));
        let slow = Sessions::new(limits(10, 10));
        let (id, _) = slow.start(tenant("a", "x"), client(), test_credential(None), Abilities::ALL).expect("id");
        assert!(!slow.due_for_check(&id), "just checked at sign-in");
        assert!(!slow.due_for_check("none"));
        assert_eq!(
            slow.find(&id).expect("live").identity(),
            Identity { username: "system:serviceaccount:ids:x".to_owned(), role: Some("edit".to_owned()) }
        );
    }
}
