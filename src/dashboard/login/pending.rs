//! Sign-ins under way at a provider, in this process's memory: the pre-login cookie's random id to what the callback
//! must match (`state`, `nonce`, the PKCE verifier) and where it leads (the instance, the provider). Each is used
//! once and lasts minutes; bounded like the sessions, so a flood of started sign-ins cannot grow without end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::{CsrfToken, Nonce, PkceCodeVerifier};

/// How long a started sign-in may take at the provider.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(600);

/// Which provider a sign-in went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The generic OpenID Connect provider.
    Oidc,
    /// Cloud Foundry's UAA.
    CloudFoundry,
}

/// One started sign-in.
pub struct PendingLogin {
    /// The virtual cluster signed in to.
    pub instance_id: String,
    /// Where the user signs in.
    pub provider: ProviderKind,
    /// What the callback's `state` must be.
    pub state: CsrfToken,
    /// What the ID token's `nonce` must be.
    pub nonce: Nonce,
    /// The PKCE verifier for the code exchange.
    pub verifier: PkceCodeVerifier,
    expires_at: Instant,
}

/// Every started sign-in, by the pre-login cookie's id.
pub struct Pending {
    by_id: Mutex<HashMap<String, PendingLogin>>,
    max: usize,
}

impl Pending {
    /// None yet; at most `max` held.
    pub fn new(max: usize) -> Pending {
        Pending { by_id: Mutex::new(HashMap::new()), max: max.max(1) }
    }

    /// Keeps a started sign-in; its id (256 random bits, hex) goes in the pre-login cookie. When full, expired ones
    /// go first, then the oldest.
    pub fn add(
        &self,
        instance_id: &str,
        provider: ProviderKind,
        state: CsrfToken,
        nonce: Nonce,
        verifier: PkceCodeVerifier,
    ) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut pending = self.lock();
        if pending.len() >= self.max {
            pending.retain(|_, login| login.expires_at > now);
        }
        while pending.len() >= self.max {
            let oldest = pending.iter().min_by_key(|(_, login)| login.expires_at).map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { break };
            pending.remove(&oldest);
        }
        let login = PendingLogin {
            instance_id: instance_id.to_owned(),
            provider,
            state,
            nonce,
            verifier,
            expires_at: now + PENDING_LIFETIME,
        };
        pending.insert(id.clone(), login);
        Ok(id)
    }

    /// Takes the started sign-in `id` out (it is used once), if it has not expired.
    pub fn take(&self, id: &str) -> Option<PendingLogin> {
        self.lock().remove(id).filter(|login| login.expires_at > Instant::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingLogin>> {
        // Every change is one call: a panic elsewhere leaves the map consistent.
        self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(pending: &Pending, instance: &str) -> String {
        let (_, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
        pending.add(instance, ProviderKind::Oidc, CsrfToken::new_random(), Nonce::new_random(), verifier).expect("id")
    }

    #[test]
    fn a_started_sign_in_is_used_once_and_the_oldest_goes_when_full() {
        let pending = Pending::new(2);
        let first = add(&pending, "a");
        let second = add(&pending, "b");
        assert_eq!(first.len(), 64);
        assert_eq!(pending.take(&second).map(|login| login.instance_id), Some("b".to_owned()));
        assert!(pending.take(&second).is_none(), "used once");
        let _third = add(&pending, "c");
        let _fourth = add(&pending, "d");
        assert!(pending.take(&first).is_none(), "the oldest went when full");
        assert!(pending.take("unknown").is_none());
    }
}
