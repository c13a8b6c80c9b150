//! HTTP basic auth against the bcrypt hashes of `[web] basic_auth_users`, as a layer on the
//! router, with a small cache of successful checks so a flood of scrapes cannot burn the CPU on
//! bcrypt. It only decides allow/deny: it must not log, store or echo passwords.
//!
//! Which paths stay open: `/healthz` and `/readyz` answer without credentials. They return a
//! fixed word ("ok", "ready"/"starting") and no data, while kubelet/load-balancer probes and the
//! systemd/ops scripts that call them often cannot carry a password without spreading it into
//! pod specs and unit files. The Prometheus exporter-toolkit protects every path; we deviate
//! for these two only. Everything else (`/metrics`, `/`, `/api/v1/*`, `POST /-/reload`) needs
//! credentials once a user is configured; with no users configured there is no auth at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The realm in the `WWW-Authenticate` challenge.
pub const REALM: &str = "modelarts-image-exporter";
/// Paths that answer without credentials (see the module comment for why).
pub const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];
/// How long a successful check is trusted before bcrypt runs again.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// At most this many distinct successful credentials are remembered.
pub const CACHE_CAPACITY: usize = 256;

/// Wraps `router` in basic auth when `users` (user → bcrypt hash) is non-empty; returns it
/// unchanged otherwise. Called by [`crate::http::serve::serve`], so every listener gets it.
pub fn protect(router: Router, users: &BTreeMap<String, String>) -> Router {
    if users.is_empty() {
        return router;
    }
    let auth = Arc::new(BasicAuth::new(users.clone()));
    router.layer(axum::middleware::from_fn_with_state(auth, require_auth))
}

/// Key of a cache entry: SHA-256 of `user:password` (length-prefixed user). The password
/// itself is never kept.
pub type CacheKey = [u8; 32];

/// Successful checks with their expiry; failed checks are never stored, so a wrong password
/// always costs a bcrypt run (serialised, see [`BasicAuth`]) and cannot poison the cache.
#[derive(Debug)]
pub struct AuthCache {
    entries: HashMap<CacheKey, Instant>,
    capacity: usize,
    ttl: Duration,
}

impl AuthCache {
    /// An empty cache; `capacity` is at least 1.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The key for `user`/`password`.
    pub fn key(user: &str, password: &[u8]) -> CacheKey {
        // "user:password" with the user's length in front, so the split is never ambiguous
        // even if a user name held a ':' (config validation forbids that anyway).
        let mut h = Sha256::new();
        h.update((user.len() as u64).to_be_bytes());
        h.update(user.as_bytes());
        h.update(b":");
        h.update(password);
        h.finalize().into()
    }

    /// Whether `key` was verified and has not expired at `now` (expired entries are dropped).
    /// The lookup compares SHA-256 digests, not passwords: timing can at most reveal something
    /// about a digest, which says nothing usable about the password behind it.
    pub fn hit(&mut self, key: &CacheKey, now: Instant) -> bool {
        match self.entries.get(key) {
            Some(&expiry) if now < expiry => true,
            Some(_) => {
                self.entries.remove(key);
                false
            }
            None => false,
        }
    }

    /// Remembers a successful check until `now + ttl`. When full, drops expired entries, then
    /// the one closest to expiry.
    pub fn insert(&mut self, key: CacheKey, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, &mut expiry| now < expiry);
            if self.entries.len() >= self.capacity {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, expiry)| **expiry)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, now + self.ttl);
    }

    /// Number of entries (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The configured users plus the cache. bcrypt runs on the blocking pool, one at a time, so
/// a flood of bad passwords costs at most one core and never stalls the async workers;
/// cached good credentials never wait for it.
pub struct BasicAuth {
    users: BTreeMap<String, String>,
    cache: Mutex<AuthCache>,
    bcrypt_slot: tokio::sync::Semaphore,
}

impl BasicAuth {
    /// `users`: user → bcrypt hash (validated by config checks).
    pub fn new(users: BTreeMap<String, String>) -> Self {
        Self {
            users,
            cache: Mutex::new(AuthCache::new(CACHE_CAPACITY, CACHE_TTL)),
            bcrypt_slot: tokio::sync::Semaphore::new(1),
        }
    }

    /// Whether an `Authorization` header value grants access.
    pub async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let key = AuthCache::key(&user, &password);
        if self.cache.lock().unwrap().hit(&key, Instant::now()) {
            return true;
        }
        // An unknown user is still checked against some real hash (and then refused), so the
        // answer takes as long as for a known user: timing does not tell which names exist.
        let (known, hash) = match self.users.get(&user) {
            Some(h) => (true, h.clone()),
            None => match self.users.values().next() {
                Some(h) => (false, h.clone()),
                None => return false,
            },
        };
        let Ok(_permit) = self.bcrypt_slot.acquire().await else {
            return false;
        };
        let matches = tokio::task::spawn_blocking(move || {
            // bcrypt::verify compares the digests in constant time (subtle::ct_eq).
            bcrypt::verify(&password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = known && matches;
        if ok {
            self.cache.lock().unwrap().insert(key, Instant::now());
        }
        ok
    }
}

/// `Basic base64(user:password)` → (user, password bytes). The scheme is case-insensitive.
pub fn parse_basic(v: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let v = v.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..colon].to_vec()).ok()?;
    Some((user, raw[colon + 1..].to_vec()))
}

/// The 401 answer with the challenge.
pub fn unauthorized() -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"modelarts-image-exporter\""),
    );
    resp
}

async fn require_auth(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    // Exact match: the router serves these handlers only for exactly these paths.
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    if auth.check(req.headers().get(header::AUTHORIZATION)).await {
        next.run(req).await
    } else {
        unauthorized()
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
