//! Prometheus metrics: one owned registry, grouped in one struct (`Metrics`).
//! It records and renders values it is handed; it must not poll, decide alerts, read clocks
//! or serve HTTP (the HTTP layer picks `render` or `render_gzip` by `Accept-Encoding`).
//!
//! Label values are bounded: image ids come from the config or discovery, `status` is one of
//! eight states, `code`/`reason`/`field`/`condition`/`channel` are short fixed vocabularies
//! chosen by the callers. Secrets never reach this module.

mod families;
mod images;
mod labels;
mod text;

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::{Registry, TextEncoder};

pub use images::{INFO_KEYS, ImageMetrics, STATUSES};
pub use labels::{LabelName, is_fixed_info_label, is_valid_label_name, sanitize_label_name};

use families::{AlertMetrics, DaemonMetrics, PollerMetrics};
use images::ImageStore;

/// `Content-Type` of [`Metrics::render`] and (before compression) [`Metrics::render_gzip`].
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Conditions `modelarts_alerts_firing` always exports, 0 until told otherwise.
pub const ALERT_CONDITIONS: [&str; 5] = [
    "CREATE_FAILED",
    "ERROR",
    "DELETED",
    "NOT_FOUND",
    "WATCHER_DEGRADED",
];

/// Every metric of the exporter: one owned [`Registry`] (poller, daemon, alert and `process_*`
/// families) plus the per-image snapshot store, which `render` writes out directly (see
/// `text.rs` for why: speed and flat memory at 10k images).
///
/// `Clone` is cheap (an `Arc` inside); every clone records into the same registry, so the
/// poller, the alert outbox and the HTTP side each hold their own clone. All methods take
/// `&self` and are safe to call from any thread.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    images: ImageStore,
    poller: PollerMetrics,
    daemon: DaemonMetrics,
    alerts: AlertMetrics,
    /// Size of the last text render, to allocate the next one in one go.
    last_render_len: AtomicUsize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("images", &self.inner.images.image_count())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every family registered, the build info set and the standard
    /// `process_*` metrics (Linux) included.
    pub fn new(build_version: &str, build_revision: &str) -> Metrics {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector registers once");
        let inner = Inner {
            poller: PollerMetrics::new(&registry),
            daemon: DaemonMetrics::new(&registry, build_version, build_revision),
            alerts: AlertMetrics::new(&registry),
            registry,
            images: ImageStore::default(),
            last_render_len: AtomicUsize::new(0),
        };
        Metrics {
            inner: Arc::new(inner),
        }
    }

    // ---- images ----

    /// Replaces everything known about one image. Series from its previous name, status or
    /// info values vanish: each image family holds at most one label set per image (eight
    /// for `modelarts_image_status`, one per state).
    pub fn set_image(&self, img: &ImageMetrics<'_>) {
        self.inner.images.set_image(img);
    }

    /// Counts one change of `field` on image `id` (`modelarts_image_changes_total`).
    pub fn inc_change(&self, id: &str, field: &str) {
        self.inner.images.inc_change(id, field);
    }

    /// Drops every series of image `id`, in every family.
    pub fn remove_image(&self, id: &str) {
        self.inner.images.remove_image(id);
    }

    /// Drops every image whose id is not in `keep`.
    pub fn retain_images(&self, keep: &HashSet<String>) {
        self.inner.images.retain_images(keep);
    }

    /// Sets the config label keys exported on `modelarts_image_info` (the union over the
    /// config). Names are sanitized (see [`sanitize_label_name`]); images lacking a key
    /// export `""`. Calling it again (on reload) rebuilds the info family from the next scrape.
    pub fn set_config_label_names(&self, keys: &[String]) {
        self.inner.images.set_config_label_names(keys);
    }

    /// The current config key → exported label name mapping.
    pub fn config_label_names(&self) -> Vec<LabelName> {
        self.inner.images.config_label_names()
    }

    // ---- poller ----

    /// Records one API request: its outcome `code` (e.g. `"200"`, `"404"`, `"timeout"`) and
    /// duration.
    pub fn api_request(&self, cloud: &str, code: &str, seconds: f64) {
        self.inner
            .poller
            .api_requests
            .with_label_values(&[cloud, code])
            .inc();
        self.inner
            .poller
            .api_request_duration
            .with_label_values(&[cloud])
            .observe(seconds);
    }

    /// Counts one failed poll, by a short bounded `reason`.
    pub fn poll_failure(&self, cloud: &str, reason: &str) {
        self.inner
            .poller
            .poll_failures
            .with_label_values(&[cloud, reason])
            .inc();
    }

    /// Sets the duration of the last complete poll cycle.
    pub fn poll_duration(&self, cloud: &str, seconds: f64) {
        self.inner
            .poller
            .poll_duration
            .with_label_values(&[cloud])
            .set(seconds);
    }

    /// Counts one skipped poll cycle.
    pub fn cycle_skipped(&self, cloud: &str) {
        self.inner
            .poller
            .cycles_skipped
            .with_label_values(&[cloud])
            .inc();
    }

    /// Sets the measured clock skew (cloud minus local), in seconds.
    pub fn clock_skew(&self, cloud: &str, seconds: f64) {
        self.inner
            .poller
            .clock_skew
            .with_label_values(&[cloud])
            .set(seconds);
    }

    /// Creates the zero series of a cloud's poller families, so dashboards see them at start.
    pub fn register_cloud(&self, cloud: &str) {
        self.inner
            .poller
            .api_request_duration
            .with_label_values(&[cloud]);
        self.inner.poller.cycles_skipped.with_label_values(&[cloud]);
    }

    // ---- daemon ----

    /// Records a configuration (re)load: success sets the timestamp, failure keeps the old one.
    pub fn config_reload(&self, ok: bool, now_unix: f64) {
        self.inner
            .daemon
            .reload_successful
            .set(if ok { 1.0 } else { 0.0 });
        if ok {
            self.inner.daemon.reload_success_timestamp.set(now_unix);
        }
    }

    // ---- alerts ----

    /// Sets how many alerts of `condition` are firing.
    #[allow(clippy::cast_precision_loss)] // reason: alert counts are far below 2^53
    pub fn set_alerts_firing(&self, condition: &str, n: usize) {
        self.inner
            .alerts
            .firing
            .with_label_values(&[condition])
            .set(n as f64);
    }

    /// Creates the zero series of a notification channel.
    pub fn register_channel(&self, channel: &str) {
        self.inner.alerts.sent.with_label_values(&[channel]);
        self.inner.alerts.failed.with_label_values(&[channel]);
        self.inner.alerts.dropped.with_label_values(&[channel]);
    }

    /// Counts one delivered notification.
    pub fn notification_sent(&self, channel: &str) {
        self.inner.alerts.sent.with_label_values(&[channel]).inc();
    }

    /// Counts one failed delivery attempt.
    pub fn notification_failed(&self, channel: &str) {
        self.inner.alerts.failed.with_label_values(&[channel]).inc();
    }

    /// Counts one notification given up on.
    pub fn notification_dropped(&self, channel: &str) {
        self.inner
            .alerts
            .dropped
            .with_label_values(&[channel])
            .inc();
    }

    /// Sets the number of notifications waiting for delivery.
    #[allow(clippy::cast_precision_loss)] // reason: queue lengths are far below 2^53
    pub fn set_queue_length(&self, n: usize) {
        self.inner.alerts.queue_length.set(n as f64);
    }

    // ---- rendering ----

    /// Every family in the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
    ///
    /// Costs one pass over the images while holding their read lock (writers wait); at 10k
    /// images call it from `spawn_blocking`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.inner.last_render_len.load(Ordering::Relaxed));
        self.encode_registry(&mut out);
        text::write_image_families(&self.inner.images.read(), &mut out, &mut |_| {});
        self.inner
            .last_render_len
            .store(out.len(), Ordering::Relaxed);
        out
    }

    /// [`render`](Self::render) compressed with gzip (`Content-Encoding: gzip`), streamed into
    /// the compressor in 64 KiB chunks so the plain text is never held whole.
    pub fn render_gzip(&self) -> Vec<u8> {
        let hint = self.inner.last_render_len.load(Ordering::Relaxed) / 16;
        let mut gz = GzEncoder::new(Vec::with_capacity(hint), Compression::fast());
        let mut chunk = String::with_capacity(2 * text::CHUNK);
        self.encode_registry(&mut chunk);
        {
            // Writing into a Vec cannot fail.
            let mut flush = |c: &mut String| {
                let _ = gz.write_all(c.as_bytes());
                c.clear();
            };
            text::write_image_families(&self.inner.images.read(), &mut chunk, &mut flush);
            flush(&mut chunk);
        }
        gz.finish().unwrap_or_default()
    }

    /// Appends the registry's families (everything but the image families).
    fn encode_registry(&self, out: &mut String) {
        let families = self.inner.registry.gather();
        // Encoding only fails on an empty or unnamed family, which `gather` never yields.
        if let Err(e) = TextEncoder::new().encode_utf8(&families, out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
    }
}

#[cfg(test)]
mod tests;
