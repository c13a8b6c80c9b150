//! The simulator's shared state: images, faults, issued tokens, counters and the server clock.
//! Every handler and the in-process handle go through this; it does no HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::config::SimConfig;
use super::faults::Faults;
use super::store::Store;

/// Counters of what the simulator saw (`GET /_sim/stats`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SimStats {
    /// Answers by route (`show_image`, `list_images`, `iam_tokens`, `control`, `unknown`)
    /// and HTTP status.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    pub tokens_issued: u64,
    /// Signed requests rejected for a bad signature, unknown AK or clock skew.
    pub signature_failures: u64,
    /// Requests rejected for a missing, unknown or expired token.
    pub token_failures: u64,
}

impl SimStats {
    /// Answers of `route` with `status`.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(route)
            .and_then(|m| m.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// All answers of `route`.
    pub fn total(&self, route: &str) -> u64 {
        self.requests.get(route).map_or(0, |m| m.values().sum())
    }
}

/// Everything the server and the handle share (behind one `Arc`).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) store: RwLock<Store>,
    pub(crate) faults: Faults,
    /// Issued token → expiry (server clock).
    pub(crate) tokens: Mutex<HashMap<String, SystemTime>>,
    pub(crate) stats: Mutex<SimStats>,
    clock_offset_ms: AtomicI64,
    request_seq: AtomicU64,
}

impl Shared {
    pub(crate) fn new(cfg: SimConfig) -> Self {
        let store = Store::new(cfg.images.clone());
        let offset = cfg.clock_offset_ms;
        Self {
            cfg,
            store: RwLock::new(store),
            faults: Faults::default(),
            tokens: Mutex::new(HashMap::new()),
            stats: Mutex::new(SimStats::default()),
            clock_offset_ms: AtomicI64::new(offset),
            request_seq: AtomicU64::new(1),
        }
    }

    /// The server clock: local time plus the configured offset.
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.clock_offset_ms.load(Ordering::Relaxed);
        let delta = Duration::from_millis(offset.unsigned_abs());
        if offset >= 0 {
            SystemTime::now() + delta
        } else {
            SystemTime::now() - delta
        }
    }

    /// The server clock in UTC milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        match self.now().duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }

    pub(crate) fn set_clock_offset_ms(&self, ms: i64) {
        self.clock_offset_ms.store(ms, Ordering::Relaxed);
    }

    /// A fresh request id, 32 hex digits like the gateway's.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:016x}", 0x5157_u64 << 48)
    }

    pub(crate) fn record(&self, route: &str, status: u16) {
        let mut counters = self.stats.lock().expect("stats lock");
        if let Some(m) = counters.requests.get_mut(route) {
            *m.entry(status).or_default() += 1;
        } else {
            counters
                .requests
                .insert(route.to_string(), BTreeMap::from([(status, 1)]));
        }
    }

    pub(crate) fn bump(&self, f: impl FnOnce(&mut SimStats)) {
        f(&mut self.stats.lock().expect("stats lock"));
    }

    /// Expires every issued token; returns how many there were.
    pub(crate) fn expire_tokens(&self) -> usize {
        let mut tokens = self.tokens.lock().expect("tokens lock");
        for exp in tokens.values_mut() {
            *exp = SystemTime::UNIX_EPOCH;
        }
        tokens.len()
    }
}
