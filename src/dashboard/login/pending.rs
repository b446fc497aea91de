//! Sign-ins under way at a provider, in this process's memory: the pre-login cookie's random id to what the callback
//! must match (`state`, `nonce`, the PKCE verifier) and where it leads (the instance, the provider). Each is used
//! once and lasts minutes; bounded like the sessions, so a flood of started sign-ins cannot grow without end.

use std::time::Duration;

use openidconnect::{CsrfToken, Nonce, PkceCodeVerifier};

use crate::dashboard::expiring::Expiring;

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
}

/// Every started sign-in, by the pre-login cookie's id.
pub struct Pending(Expiring<PendingLogin>);

impl Pending {
    /// None yet; at most `max` held.
    pub fn new(max: usize) -> Pending {
        Pending(Expiring::new(PENDING_LIFETIME, max))
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
        self.0.insert(PendingLogin { instance_id: instance_id.to_owned(), provider, state, nonce, verifier })
    }

    /// Takes the started sign-in `id` out (it is used once), if it has not expired.
    pub fn take(&self, id: &str) -> Option<PendingLogin> {
        self.0.take(id)
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
