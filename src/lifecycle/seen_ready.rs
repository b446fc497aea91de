//! A memory of the namespace versions already seen ready, so that `last_operation` polls of a finished virtual
//! cluster read its namespace alone, not also its quota and default ServiceAccount.
//!
//! Readiness (the quota computed by its controller, the default ServiceAccount made) does not go back while the
//! namespace stays the same version: tenants cannot touch the quota, and a plan update, which changes the quota,
//! rewrites the namespace's labels and annotations and so its `resourceVersion`. A version seen ready is therefore
//! ready for good, on every replica, and forgetting versions (a restart, the capacity) only costs the reads again.

use std::collections::HashSet;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Versions remembered at most; beyond it the memory starts afresh (the next polls read the cluster again).
const CAPACITY: usize = 50_000;

/// Namespace versions (`uid/resourceVersion`) that were ready when last read.
#[derive(Debug, Default)]
pub(super) struct SeenReady(Mutex<HashSet<String>>);

impl SeenReady {
    /// Whether this version of `namespace` was seen ready.
    pub(super) fn contains(&self, namespace: &ObjectMeta) -> bool {
        version(namespace).is_some_and(|key| self.versions().contains(&key))
    }

    /// Remembers that this version of `namespace` is ready.
    pub(super) fn insert(&self, namespace: &ObjectMeta) {
        let Some(key) = version(namespace) else { return };
        let mut versions = self.versions();
        if versions.len() >= CAPACITY {
            versions.clear();
        }
        versions.insert(key);
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while the lock was held cannot leave the set half-changed in a way that matters: keep using it.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `uid/resourceVersion`, when the namespace came from the apiserver and so has both.
fn version(meta: &ObjectMeta) -> Option<String> {
    Some(format!("{}/{}", meta.uid.as_deref()?, meta.resource_version.as_deref()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(uid: &str, resource_version: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some("caas-x".to_owned()),
            uid: Some(uid.to_owned()),
            resource_version: Some(resource_version.to_owned()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn a_version_seen_ready_is_remembered_and_no_other() {
        let seen = SeenReady::default();
        seen.insert(&namespace("a", "10"));
        assert!(seen.contains(&namespace("a", "10")));
        assert!(!seen.contains(&namespace("a", "11")), "a changed namespace must be checked again");
        assert!(!seen.contains(&namespace("b", "10")), "a namespace made again under the same name is another one");
    }

    #[test]
    fn a_namespace_without_uid_or_version_is_never_remembered() {
        let seen = SeenReady::default();
        let unsaved = ObjectMeta::default();
        seen.insert(&unsaved);
        assert!(!seen.contains(&unsaved));
    }

    #[test]
    fn the_memory_is_bounded() {
        let seen = SeenReady::default();
        for n in 0..CAPACITY {
            seen.insert(&namespace(&n.to_string(), "1"));
        }
        assert!(seen.contains(&namespace("0", "1")));
        seen.insert(&namespace("one-more", "1"));
        assert!(!seen.contains(&namespace("0", "1")), "the memory starts afresh at its capacity");
        assert!(seen.contains(&namespace("one-more", "1")));
        assert_eq!(seen.versions().len(), 1);
    }
}
