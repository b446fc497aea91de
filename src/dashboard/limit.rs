//! Sign-in rate limits: a token bucket per client address and one per token, so that a flood of sign-ins (each a
//! TokenReview, or a provider round trip) from one address, or with one token, is answered 429 before it reaches the
//! apiserver. A small bucket of our own rather than a crate's keyed limiter: its memory has a hard bound (at most
//! `max_keys` buckets; a bucket back to full is forgotten first, and when every one is in use a new key is refused
//! rather than let a flood of distinct keys grow the map), which is what a limiter facing strangers needs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::DashboardState;

/// Most keys a limit tracks at once: about 1 MB of buckets. A flood of distinct keys fills it only while each bucket
/// is in use (a bucket that spent one attempt is full again within a minute).
pub const MAX_KEYS: usize = 10_000;

/// Attempts per key per minute, in bursts of as many.
pub struct RateLimit {
    buckets: Mutex<HashMap<String, Bucket>>,
    per_minute: u32,
    max_keys: usize,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    /// `per_minute` attempts per key (at least one), at most `max_keys` keys tracked at once.
    pub fn new(per_minute: u32, max_keys: usize) -> RateLimit {
        RateLimit { buckets: Mutex::new(HashMap::new()), per_minute: per_minute.max(1), max_keys: max_keys.max(1) }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.capacity() / 60.0;
        (bucket.tokens + refill).min(self.capacity())
    }

    /// Takes one attempt for `key`: `Ok` if it may go on, else `Err` with how long until it may.
    pub fn take(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let capacity = self.capacity();
            buckets.retain(|_, bucket| self.refilled(bucket, now) < capacity);
            if buckets.len() >= self.max_keys {
                return Err(Duration::from_secs(60 / u64::from(self.per_minute).max(1)).max(Duration::from_secs(1)));
            }
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket { tokens: self.capacity(), at: now });
        bucket.tokens = self.refilled(bucket, now);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) * 60.0 / self.capacity();
            Err(Duration::from_secs_f64(wait.ceil().max(1.0)))
        }
    }
}

/// The sign-in limits of a dashboard: per client address, per token.
pub struct SignInLimits {
    /// Per client address (every way of signing in).
    pub per_address: RateLimit,
    /// Per token pasted into the sign-in form (its hash is the key; the token is not kept).
    pub per_token: RateLimit,
    /// The request header that names the client when the dashboard is behind a proxy (its last address).
    pub address_header: Option<axum::http::HeaderName>,
}

impl SignInLimits {
    /// Takes one attempt of `address` and, when given, of `token`; `Err` with how long to wait when either is spent.
    pub fn take(&self, address: &ClientAddress, token: Option<&str>) -> Result<(), Duration> {
        self.per_address.take(&address.0)?;
        match token {
            Some(token) => self.per_token.take(&format!("{:x}", Sha256::digest(token.trim().as_bytes()))),
            None => Ok(()),
        }
    }
}

/// The client's address, as the sign-in limits count it: the last address of the configured proxy header (the one the
/// nearest proxy wrote; a client can only prepend to it), else the connection's peer.
pub struct ClientAddress(pub String);

impl FromRequestParts<DashboardState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &DashboardState) -> Result<Self, Self::Rejection> {
        let forwarded = state.limits.address_header.as_ref().and_then(|name| {
            let value = parts.headers.get_all(name).iter().next_back()?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
        });
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
        let address = forwarded.or(peer).map_or_else(|| "unknown".to_owned(), |address| address.to_string());
        Ok(ClientAddress(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits_and_others_are_not_affected() {
        let limit = RateLimit::new(3, 100);
        for _ in 0..3 {
            limit.take("a").expect("within the burst");
        }
        let wait = limit.take("a").expect_err("spent");
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20), "{wait:?}");
        limit.take("b").expect("another key has its own bucket");
    }

    #[test]
    fn the_keys_are_bounded_and_a_full_map_refuses_new_keys_while_every_bucket_is_in_use() {
        let limit = RateLimit::new(2, 2);
        limit.take("a").expect("a");
        limit.take("b").expect("b");
        assert!(limit.take("c").is_err(), "no room while a and b are in use");
        limit.take("a").expect("a known key goes on");
        let idle = RateLimit::new(60, 1);
        idle.buckets.lock().expect("lock").insert("old".to_owned(), Bucket { tokens: 60.0, at: Instant::now() });
        idle.take("new").expect("a full bucket is forgotten to make room");
    }
}
