//! Construction of the registry-backed families (poller, daemon, alerts); must not hold
//! per-image series, which live in the snapshot store.

use prometheus::{CounterVec, Gauge, GaugeVec, HistogramOpts, HistogramVec, Opts, Registry};

use super::ALERT_CONDITIONS;

/// Buckets for API request durations: 10 ms … 30 s (timeouts land in `+Inf`).
const REQUEST_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// Poll loop families, each labelled by `cloud`.
pub(super) struct PollerMetrics {
    pub(super) api_requests: CounterVec,
    pub(super) api_request_duration: HistogramVec,
    pub(super) poll_failures: CounterVec,
    pub(super) poll_duration: GaugeVec,
    pub(super) cycles_skipped: CounterVec,
    pub(super) clock_skew: GaugeVec,
}

pub(super) struct DaemonMetrics {
    pub(super) reload_successful: Gauge,
    pub(super) reload_success_timestamp: Gauge,
}

pub(super) struct AlertMetrics {
    pub(super) firing: GaugeVec,
    pub(super) sent: CounterVec,
    pub(super) failed: CounterVec,
    pub(super) dropped: CounterVec,
    pub(super) queue_length: Gauge,
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
    pub(super) fn new(r: &Registry) -> Self {
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
    pub(super) fn new(r: &Registry, build_version: &str, build_revision: &str) -> Self {
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
    pub(super) fn new(r: &Registry) -> Self {
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
