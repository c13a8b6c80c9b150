//! Publishing an image's state as metrics (the only place that maps state to metric values).

use crate::config::settings::WatchedImage;
use crate::metrics::{ImageMetrics, Metrics};
use crate::state::ImageState;

/// Publishes one image's metrics from its state (or as unknown when never seen).
pub fn publish_image(metrics: &Metrics, img: &WatchedImage, state: Option<&ImageState>) {
    let id = img.id.as_str();
    let Some(s) = state else {
        metrics.set_image(&ImageMetrics {
            id,
            name: "",
            status: "UNKNOWN",
            size_bytes: None,
            created: None,
            updated: None,
            up: false,
            last_success: None,
            cloud: &img.cloud,
            info: &[],
            labels: &img.labels,
        });
        return;
    };
    let status = match s.effective_status() {
        Some("NOT_FOUND") => "NOT_FOUND",
        Some(st) => crate::cloud::ImageStatus::parse(st).metric_label(),
        None => "UNKNOWN",
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let info_owned = [
        ("arch", opt(&s.arch)),
        ("image_type", opt(&s.image_type)),
        ("service_type", opt(&s.service_type)),
        ("origin", opt(&s.origin)),
        ("visibility", opt(&s.visibility)),
        ("namespace", opt(&s.namespace)),
        ("tag", opt(&s.tag)),
        ("swr_path", opt(&s.swr_path)),
        ("workspace_id", opt(&s.workspace_id)),
    ];
    let info: Vec<(&str, &str)> = info_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    #[allow(clippy::cast_precision_loss)] // timestamps in seconds fit f64 exactly
    let secs = |ms: Option<i64>| ms.map(|v| v as f64 / 1000.0);
    #[allow(clippy::cast_precision_loss)]
    let last_success = s.last_success.map(|v| v as f64);
    metrics.set_image(&ImageMetrics {
        id,
        name: s.name.as_deref().unwrap_or(""),
        status,
        size_bytes: s.size_bytes,
        created: secs(s.create_at),
        updated: secs(s.update_at),
        up: s.consecutive_failures == 0 && s.last_success.is_some(),
        last_success,
        cloud: &img.cloud,
        info: &info,
        labels: &img.labels,
    });
}
