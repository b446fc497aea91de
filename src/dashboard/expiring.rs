//! What the dashboard keeps in this process's memory under a random id that a cookie carries (sign-ins under way at a
//! provider; sessions have a store of their own, see [`super::user_sessions`]): each entry expires, and the store is
//! bounded, so neither time nor a flood of requests lets them pile up. When full, expired entries go first, then the
//! one closest to expiring.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries of `V` by random id, each lasting `lifetime`, at most `max` of them.
pub struct Expiring<V> {
    by_id: Mutex<HashMap<String, (V, Instant)>>,
    lifetime: Duration,
    max: usize,
}

impl<V> Expiring<V> {
    /// An empty store whose entries last `lifetime`, holding at most `max` (at least one).
    pub fn new(lifetime: Duration, max: usize) -> Expiring<V> {
        Expiring { by_id: Mutex::new(HashMap::new()), lifetime, max: max.max(1) }
    }

    /// Keeps `value` and returns its new id: 256 random bits, hex.
    pub fn insert(&self, value: V) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.max {
            entries.retain(|_, (_, expires_at)| *expires_at > now);
        }
        while entries.len() >= self.max {
            let oldest = entries.iter().min_by_key(|(_, (_, expires_at))| *expires_at).map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { break };
            entries.remove(&oldest);
        }
        entries.insert(id.clone(), (value, now + self.lifetime));
        Ok(id)
    }

    /// Takes the live entry `id` out (used once).
    pub fn take(&self, id: &str) -> Option<V> {
        self.lock().remove(id).filter(|(_, expires_at)| *expires_at > Instant::now()).map(|(value, _)| value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (V, Instant)>> {
        // Every change is one call: a panic elsewhere leaves the map consistent, so go on with it.
        self.by_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
