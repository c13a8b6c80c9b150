//! Prometheus metrics: one owned registry, grouped in one struct (`Metrics`).
//! It records and renders values it is handed; it must not poll, decide alerts, read clocks
//! or serve HTTP (the HTTP layer picks `render` or `render_gzip` by `Accept-Encoding`).
//!
//! Label values are bounded: image ids come from the config or discovery, `status` is one of
//! eight states, `code`/`reason`/`field`/`condition`/`channel` are short fixed vocabularies
//! chosen by the callers. Secrets never reach this module.

mod images;
mod labels;

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::{
    CounterVec, Encoder as _, Gauge, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry,
    TextEncoder,
};

pub use images::{INFO_KEYS, ImageMetrics, STATUSES};
pub use labels::{FIXED_INFO_LABELS, LabelName, is_valid_label_name, sanitize_label_name};

use images::{ImageCollector, ImageStore};

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

/// Buckets for API request durations: 10 ms … 30 s (timeouts land in `+Inf`).
const REQUEST_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// Every metric of the exporter, behind one owned [`Registry`].
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
    images: Arc<ImageStore>,
    poller: PollerMetrics,
    daemon: DaemonMetrics,
    alerts: AlertMetrics,
    /// Size of the last text render, to allocate the next one in one go.
    last_render_len: AtomicUsize,
}

/// Poll loop families, each labelled by `cloud`.
struct PollerMetrics {
    api_requests: CounterVec,
    api_request_duration: HistogramVec,
    poll_failures: CounterVec,
    poll_duration: GaugeVec,
    cycles_skipped: CounterVec,
    clock_skew: GaugeVec,
}

struct DaemonMetrics {
    reload_successful: Gauge,
    reload_success_timestamp: Gauge,
}

struct AlertMetrics {
    firing: GaugeVec,
    sent: CounterVec,
    failed: CounterVec,
    dropped: CounterVec,
    queue_length: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("images", &self.inner.images.image_count())
            .finish_non_exhaustive()
    }
}

/// Registers a clone of `c` and hands `c` back. Names and help texts are static, so a failure
/// here is a programming error caught by every test.
fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric registers once with a valid description");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> CounterVec {
    reg(
        r,
        CounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
    )
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    reg(
        r,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str) -> Gauge {
    reg(
        r,
        Gauge::with_opts(Opts::new(name, help)).expect("valid gauge"),
    )
}

impl PollerMetrics {
    fn new(r: &Registry) -> Self {
        let api_request_duration = reg(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "modelarts_api_request_duration_seconds",
                    "Duration of ModelArts API requests.",
                )
                .buckets(REQUEST_BUCKETS.to_vec()),
                &["cloud"],
            )
            .expect("valid histogram"),
        );
        PollerMetrics {
            api_requests: counter_vec(
                r,
                "modelarts_api_requests_total",
                "ModelArts API requests, by HTTP status code (or a short error kind).",
                &["cloud", "code"],
            ),
            api_request_duration,
            poll_failures: counter_vec(
                r,
                "modelarts_poll_failures_total",
                "Image polls that got no valid answer, by reason.",
                &["cloud", "reason"],
            ),
            poll_duration: gauge_vec(
                r,
                "modelarts_poll_duration_seconds",
                "Duration of the last complete poll cycle.",
                &["cloud"],
            ),
            cycles_skipped: counter_vec(
                r,
                "modelarts_poll_cycles_skipped_total",
                "Poll cycles skipped because the previous one was still running.",
                &["cloud"],
            ),
            clock_skew: gauge_vec(
                r,
                "modelarts_clock_skew_seconds",
                "Cloud clock minus local clock, from the last API Date header.",
                &["cloud"],
            ),
        }
    }
}

impl DaemonMetrics {
    fn new(r: &Registry, build_version: &str, build_revision: &str) -> Self {
        let build_info = gauge_vec(
            r,
            "modelarts_exporter_build_info",
            "Build of the running exporter; always 1.",
            &["version", "revision"],
        );
        build_info
            .with_label_values(&[build_version, build_revision])
            .set(1.0);
        DaemonMetrics {
            reload_successful: gauge(
                r,
                "modelarts_config_last_reload_successful",
                "1 if the last configuration reload succeeded, else 0.",
            ),
            reload_success_timestamp: gauge(
                r,
                "modelarts_config_last_reload_success_timestamp_seconds",
                "Unix seconds of the last successful configuration reload.",
            ),
        }
    }
}

impl AlertMetrics {
    fn new(r: &Registry) -> Self {
        let firing = gauge_vec(
            r,
            "modelarts_alerts_firing",
            "Alerts currently firing, by condition.",
            &["condition"],
        );
        for c in ALERT_CONDITIONS {
            firing.with_label_values(&[c]).set(0.0);
        }
        AlertMetrics {
            firing,
            sent: counter_vec(
                r,
                "modelarts_notifications_total",
                "Notifications delivered, by channel.",
                &["channel"],
            ),
            failed: counter_vec(
                r,
                "modelarts_notifications_failed_total",
                "Notification delivery attempts that failed, by channel.",
                &["channel"],
            ),
            dropped: counter_vec(
                r,
                "modelarts_notifications_dropped_total",
                "Notifications given up on (queue full or retries exhausted), by channel.",
                &["channel"],
            ),
            queue_length: gauge(
                r,
                "modelarts_notification_queue_length",
                "Notifications waiting for delivery.",
            ),
        }
    }
}

impl Metrics {
    /// A fresh registry with every family registered, the build info set and the standard
    /// `process_*` metrics (Linux) included.
    pub fn new(build_version: &str, build_revision: &str) -> Metrics {
        let registry = Registry::new();
        let images = Arc::new(ImageStore::default());
        registry
            .register(Box::new(ImageCollector::new(Arc::clone(&images))))
            .expect("image collector registers once");
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
            images,
            last_render_len: AtomicUsize::new(0),
        };
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// The owned registry, for callers that want `gather()` themselves.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
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
    pub fn render(&self) -> String {
        let families = self.inner.registry.gather();
        let mut out = String::with_capacity(self.inner.last_render_len.load(Ordering::Relaxed));
        // Encoding only fails on an empty or unnamed family, which `gather` never yields.
        if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        self.inner
            .last_render_len
            .store(out.len(), Ordering::Relaxed);
        out
    }

    /// [`render`](Self::render) compressed with gzip (`Content-Encoding: gzip`), streamed
    /// straight into the compressor so the plain text is never held whole.
    pub fn render_gzip(&self) -> Vec<u8> {
        let families = self.inner.registry.gather();
        let hint = self.inner.last_render_len.load(Ordering::Relaxed) / 8;
        let mut gz = GzEncoder::new(Vec::with_capacity(hint), Compression::fast());
        if let Err(e) = TextEncoder::new().encode(&families, &mut gz) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        // Writing into a Vec cannot fail.
        gz.flush().ok();
        gz.finish().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
