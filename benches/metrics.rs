//! Render cost of `/metrics` at the scale PRODUCT.md 3.9 names (10,000 images ≈ 100k series):
//! time and size of the text and gzip renders, and whether memory stays flat across scrapes.
//! Prints numbers; asserts nothing about time. Run: `scripts/bench-metrics.sh`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use modelarts_image_exporter::metrics::{ImageMetrics, Metrics, STATUSES};

const IMAGES: usize = 10_000;
const ROUNDS: usize = 10;

/// `VmRSS` / `VmHWM` from /proc/self/status, in KiB (0 off Linux).
fn mem_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[allow(clippy::cast_precision_loss)] // reason: synthetic values
fn main() {
    let m = Metrics::new("bench", "0");
    m.set_config_label_names(&["team".into(), "env".into(), "owner".into()]);
    let mut labels = BTreeMap::new();
    labels.insert("team".to_owned(), "ml-platform".to_owned());
    labels.insert("env".to_owned(), "prod".to_owned());
    let info = [
        ("arch", "x86_64"),
        ("image_type", "DEDICATED"),
        ("service_type", "COMMON"),
        ("origin", "CUSTOMIZE"),
        ("visibility", "PRIVATE"),
        ("namespace", "ml-team"),
        ("tag", "v1.2.3"),
        (
            "swr_path",
            "swr.eu-de.otc.t-systems.com/ml-team/pytorch-cuda:v1.2.3",
        ),
        ("workspace_id", "0"),
    ];
    let ids: Vec<String> = (0..IMAGES)
        .map(|i| format!("{i:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b"))
        .collect();
    let names: Vec<String> = (0..IMAGES)
        .map(|i| format!("pytorch-1.8-cuda-11-image-{i}"))
        .collect();
    let rss_empty = mem_kib("VmRSS:");

    let t = Instant::now();
    for (i, (id, name)) in ids.iter().zip(&names).enumerate() {
        m.set_image(&ImageMetrics {
            id,
            name,
            status: STATUSES[i % 6],
            size_bytes: Some(5_000_000_000 + i as u64),
            created: Some(1.7e9 + i as f64),
            updated: Some(1.71e9 + i as f64),
            up: true,
            last_success: Some(1.72e9),
            cloud: "otc",
            info: &info,
            labels: &labels,
        });
        m.inc_change(id, "status");
    }
    let set_all = t.elapsed();
    let rss_filled = mem_kib("VmRSS:");

    let mut text_times = Vec::new();
    let mut gzip_times = Vec::new();
    let (mut text_len, mut gzip_len, mut series) = (0, 0, 0);
    let mut rss_after = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let text = m.render();
        text_times.push(t.elapsed());
        text_len = text.len();
        series = text.lines().filter(|l| !l.starts_with('#')).count();
        drop(text);
        let t = Instant::now();
        gzip_len = m.render_gzip().len();
        gzip_times.push(t.elapsed());
        rss_after.push(mem_kib("VmRSS:") / 1024);
    }

    let t = Instant::now();
    for (id, name) in ids.iter().zip(&names).take(1000) {
        m.set_image(&ImageMetrics {
            id,
            name,
            status: "ACTIVE",
            size_bytes: None,
            created: None,
            updated: None,
            up: true,
            last_success: Some(1.73e9),
            cloud: "otc",
            info: &info,
            labels: &labels,
        });
    }
    let update_1k = t.elapsed();

    println!("images: {IMAGES}, samples rendered: {series}");
    println!(
        "set_image x{IMAGES} (+inc_change): {set_all:?}; set_image x1000 update: {update_1k:?}"
    );
    println!(
        "render (text): median {:?} over {ROUNDS}, {:.1} MiB",
        median(text_times),
        text_len as f64 / 1_048_576.0
    );
    println!(
        "render_gzip:   median {:?} over {ROUNDS}, {:.2} MiB",
        median(gzip_times),
        gzip_len as f64 / 1_048_576.0
    );
    println!(
        "RSS: empty {} MiB, filled {} MiB, after each render round {:?} MiB, peak (VmHWM) {} MiB",
        rss_empty / 1024,
        rss_filled / 1024,
        rss_after,
        mem_kib("VmHWM:") / 1024
    );
}
