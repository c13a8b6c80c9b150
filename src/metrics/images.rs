//! Per-image metric families, kept as one snapshot per image id and turned into samples at
//! scrape time; must not hold anything but the latest values (no history, no I/O).
//!
//! Why a custom collector rather than `GaugeVec`s: every image family is keyed by id, and when
//! a name or an info field changes the old series must vanish. Storing one snapshot per id and
//! building the samples on `collect` makes "two series for one image" impossible by
//! construction, makes `remove_image` one map removal, and lets the info family's label names
//! follow the config without re-registering anything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{PoisonError, RwLock};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use super::labels::{LabelName, plan_label_names};

/// The `status` label values, in export order. Any other status is exported as `UNKNOWN`.
pub const STATUSES: [&str; 8] = [
    "INIT",
    "CREATING",
    "CREATE_FAILED",
    "ERROR",
    "DELETED",
    "ACTIVE",
    "NOT_FOUND",
    "UNKNOWN",
];

/// The info keys `ImageMetrics::info` may carry, in the order they appear as labels.
pub const INFO_KEYS: [&str; 9] = [
    "arch",
    "image_type",
    "service_type",
    "origin",
    "visibility",
    "namespace",
    "tag",
    "swr_path",
    "workspace_id",
];

const UNKNOWN_STATUS: usize = STATUSES.len() - 1;

/// What the poller knows about one image, borrowed for one `Metrics::set_image` call.
#[derive(Debug, Clone, Copy)]
pub struct ImageMetrics<'a> {
    /// Image id (the series key of every image family).
    pub id: &'a str,
    /// Image name; empty if unknown.
    pub name: &'a str,
    /// One of [`STATUSES`]; anything else is exported as `UNKNOWN`.
    pub status: &'a str,
    /// Size in bytes; the size series is absent when `None`.
    pub size_bytes: Option<u64>,
    /// Creation time, unix seconds; absent when `None`.
    pub created: Option<f64>,
    /// Last update time, unix seconds; absent when `None`.
    pub updated: Option<f64>,
    /// Whether the last poll got a valid answer (200 or not-found).
    pub up: bool,
    /// Unix seconds of the last valid answer; absent when `None`.
    pub last_success: Option<f64>,
    /// The configured cloud name this image is polled from.
    pub cloud: &'a str,
    /// `(key, value)` pairs for [`INFO_KEYS`]; missing keys export `""`, other keys are ignored.
    pub info: &'a [(&'a str, &'a str)],
    /// The image's config labels (raw keys); keys not announced through
    /// `Metrics::set_config_label_names` are ignored.
    pub labels: &'a BTreeMap<String, String>,
}

/// The owned copy of an image's last `set_image`, plus its change counters.
#[derive(Debug, Default)]
struct ImageEntry {
    snapshot: Option<Snapshot>,
    /// `field` → count, for `modelarts_image_changes_total`.
    changes: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Snapshot {
    name: String,
    status: usize,
    size_bytes: Option<u64>,
    created: Option<f64>,
    updated: Option<f64>,
    up: bool,
    last_success: Option<f64>,
    cloud: String,
    info: [String; INFO_KEYS.len()],
    labels: BTreeMap<String, String>,
}

impl Snapshot {
    fn from_input(img: &ImageMetrics<'_>) -> Self {
        let status = STATUSES
            .iter()
            .position(|s| *s == img.status)
            .unwrap_or(UNKNOWN_STATUS);
        let mut info: [String; INFO_KEYS.len()] = Default::default();
        for (key, value) in img.info {
            if let Some(i) = INFO_KEYS.iter().position(|k| k == key) {
                (*value).clone_into(&mut info[i]);
            }
        }
        Snapshot {
            name: img.name.to_owned(),
            status,
            size_bytes: img.size_bytes,
            created: img.created,
            updated: img.updated,
            up: img.up,
            last_success: img.last_success,
            cloud: img.cloud.to_owned(),
            info,
            labels: img.labels.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Store {
    /// Keyed by image id. A `HashMap`: the registry sorts samples anyway.
    images: HashMap<String, ImageEntry>,
    /// Config label keys and their exported names, in info-label order.
    label_names: Vec<LabelName>,
}

/// Shared between `Metrics` (writers) and the registry (reader at scrape time).
#[derive(Debug, Default)]
pub(super) struct ImageStore {
    inner: RwLock<Store>,
}

impl ImageStore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Store> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep exporting.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Store> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_image(&self, img: &ImageMetrics<'_>) {
        let snapshot = Snapshot::from_input(img);
        let mut store = self.write();
        if let Some(entry) = store.images.get_mut(img.id) {
            entry.snapshot = Some(snapshot);
        } else {
            store.images.insert(
                img.id.to_owned(),
                ImageEntry {
                    snapshot: Some(snapshot),
                    changes: BTreeMap::new(),
                },
            );
        }
    }

    pub(super) fn inc_change(&self, id: &str, field: &str) {
        let mut store = self.write();
        let entry = match store.images.get_mut(id) {
            Some(e) => e,
            None => store.images.entry(id.to_owned()).or_default(),
        };
        match entry.changes.get_mut(field) {
            Some(n) => *n += 1,
            None => {
                entry.changes.insert(field.to_owned(), 1);
            }
        }
    }

    pub(super) fn remove_image(&self, id: &str) {
        self.write().images.remove(id);
    }

    pub(super) fn retain_images(&self, keep: &HashSet<String>) {
        self.write().images.retain(|id, _| keep.contains(id));
    }

    pub(super) fn set_config_label_names(&self, keys: &[String]) {
        self.write().label_names = plan_label_names(keys);
    }

    pub(super) fn config_label_names(&self) -> Vec<LabelName> {
        self.read().label_names.clone()
    }

    pub(super) fn image_count(&self) -> usize {
        self.read().images.len()
    }
}

/// Names, help texts and label names of the image families, in `descs` order.
const FAMILIES: [(&str, &str, &[&str]); 8] = [
    (
        "modelarts_image_status",
        "Image status as a state set: 1 for the current status, 0 for the others.",
        &["id", "name", "status"],
    ),
    (
        "modelarts_image_size_bytes",
        "Image size in bytes, as reported by ModelArts.",
        &["id", "name"],
    ),
    (
        "modelarts_image_created_timestamp_seconds",
        "Image creation time, unix seconds.",
        &["id", "name"],
    ),
    (
        "modelarts_image_updated_timestamp_seconds",
        "Image last update time, unix seconds.",
        &["id", "name"],
    ),
    (
        "modelarts_image_info",
        "Image metadata and config labels as labels; always 1.",
        &[
            "id",
            "name",
            "cloud",
            "arch",
            "image_type",
            "service_type",
            "origin",
            "visibility",
            "namespace",
            "tag",
            "swr_path",
            "workspace_id",
        ],
    ),
    (
        "modelarts_image_up",
        "1 when the last poll of the image got a valid answer (found or not found), else 0.",
        &["id"],
    ),
    (
        "modelarts_image_last_success_timestamp_seconds",
        "Unix seconds of the last poll that got a valid answer for the image.",
        &["id"],
    ),
    (
        "modelarts_image_changes_total",
        "Changes seen on an image, by field.",
        &["id", "field"],
    ),
];

/// The registry-facing side of the image store.
pub(super) struct ImageCollector {
    store: std::sync::Arc<ImageStore>,
    /// Registration-time descriptions. The info family's config labels are left out: they
    /// change on reload, and the registry only uses descs to reject duplicate registrations.
    descs: Vec<Desc>,
}

impl ImageCollector {
    pub(super) fn new(store: std::sync::Arc<ImageStore>) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help, labels)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    labels.iter().map(|l| (*l).to_owned()).collect(),
                    HashMap::new(),
                )
                .expect("static metric description is valid")
            })
            .collect();
        ImageCollector { store, descs }
    }
}

fn pair(name: &str, value: &str) -> LabelPair {
    let mut lp = LabelPair::default();
    lp.set_name(name.to_owned());
    lp.set_value(value.to_owned());
    lp
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

fn family(i: usize, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(FAMILIES[i].0.to_owned());
    mf.set_help(FAMILIES[i].1.to_owned());
    mf.set_field_type(kind);
    mf.set_metric(metrics);
    mf
}

#[allow(clippy::cast_precision_loss)] // reason: sizes and counts far below 2^53
fn collect_store(store: &Store) -> Vec<MetricFamily> {
    let n = store.images.len();
    let mut status = Vec::with_capacity(n * STATUSES.len());
    let (mut size, mut created, mut updated) = (Vec::new(), Vec::new(), Vec::new());
    let mut info = Vec::with_capacity(n);
    let (mut up, mut last_success) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut changes = Vec::new();
    let id_name = |id: &str, name: &str| vec![pair("id", id), pair("name", name)];

    for (id, entry) in &store.images {
        for (field, count) in &entry.changes {
            let mut c = Counter::default();
            c.set_value(*count as f64);
            let mut m = Metric::from_label(vec![pair("id", id), pair("field", field)]);
            m.set_counter(c);
            changes.push(m);
        }
        let Some(s) = &entry.snapshot else { continue };
        for (i, st) in STATUSES.iter().enumerate() {
            let mut labels = id_name(id, &s.name);
            labels.push(pair("status", st));
            status.push(gauge(labels, if i == s.status { 1.0 } else { 0.0 }));
        }
        if let Some(v) = s.size_bytes {
            size.push(gauge(id_name(id, &s.name), v as f64));
        }
        if let Some(v) = s.created {
            created.push(gauge(id_name(id, &s.name), v));
        }
        if let Some(v) = s.updated {
            updated.push(gauge(id_name(id, &s.name), v));
        }
        let mut labels = Vec::with_capacity(3 + INFO_KEYS.len() + store.label_names.len());
        labels.extend([
            pair("id", id),
            pair("name", &s.name),
            pair("cloud", &s.cloud),
        ]);
        for (key, value) in INFO_KEYS.iter().zip(&s.info) {
            labels.push(pair(key, value));
        }
        for l in &store.label_names {
            labels.push(pair(
                &l.name,
                s.labels.get(&l.key).map_or("", String::as_str),
            ));
        }
        info.push(gauge(labels, 1.0));
        up.push(gauge(vec![pair("id", id)], if s.up { 1.0 } else { 0.0 }));
        if let Some(v) = s.last_success {
            last_success.push(gauge(vec![pair("id", id)], v));
        }
    }

    let g = MetricType::GAUGE;
    vec![
        family(0, g, status),
        family(1, g, size),
        family(2, g, created),
        family(3, g, updated),
        family(4, g, info),
        family(5, g, up),
        family(6, g, last_success),
        family(7, MetricType::COUNTER, changes),
    ]
}

impl Collector for ImageCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // The registry drops empty families, so unknown values simply have no series.
        collect_store(&self.store.read())
    }
}
