//! Who just lost access, told at once to whatever keeps signed-in sessions in this process (the dashboard's store):
//! an unbind, a member's removal or change of role, a deprovision. Another replica is not told; it finds out when it
//! re-checks its sessions (see the dashboard's `sessions` module).

use std::sync::{Arc, RwLock};

/// What ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// One identity (its Kubernetes user name, `system:serviceaccount:<namespace>:<name>`): unbound, removed, or given
    /// another role.
    Identity(String),
    /// Every identity of a virtual cluster (its instance id): deprovisioned.
    Instance(String),
}

type Listener = Arc<dyn Fn(&Revoked) + Send + Sync>;

/// The listeners told of every revocation.
#[derive(Default)]
pub struct Revocations {
    listeners: RwLock<Vec<Listener>>,
}

impl Revocations {
    /// Calls `listener` with every revocation from now on (synchronously, on the revoking task: keep it short).
    pub fn listen(&self, listener: impl Fn(&Revoked) + Send + Sync + 'static) {
        self.listeners.write().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::new(listener));
    }

    /// Tells every listener that `revoked` ended.
    pub fn tell(&self, revoked: &Revoked) {
        let listeners = self.listeners.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        for listener in listeners {
            listener(revoked);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn every_listener_hears_every_revocation() {
        let revocations = Revocations::default();
        let heard = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..2 {
            let heard = heard.clone();
            revocations.listen(move |revoked| heard.lock().expect("lock").push(revoked.clone()));
        }
        revocations.tell(&Revoked::Identity("u".to_owned()));
        assert_eq!(heard.lock().expect("lock").len(), 2);
    }
}
