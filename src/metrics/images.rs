//! Per-image metric state: one snapshot per image id, written out as text at scrape time
//! (see `text.rs`); must not hold anything but the latest values (no history, no I/O).
//!
//! Why not `GaugeVec`s: every image family is keyed by id, and when a name or an info field
//! changes the old series must vanish. One snapshot per id makes "two series for one image"
//! impossible by construction, makes `remove_image` one map removal, and lets the info family's
//! label names follow the config without re-registering anything.

use std::collections::{BTreeMap, HashSet};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

pub(super) const UNKNOWN_STATUS: usize = STATUSES.len() - 1;

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
pub(super) struct ImageEntry {
    pub(super) snapshot: Option<Snapshot>,
    /// `field` → count, for `modelarts_image_changes_total`.
    pub(super) changes: BTreeMap<String, u64>,
}

#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) name: String,
    /// Index into [`STATUSES`].
    pub(super) status: usize,
    pub(super) size_bytes: Option<u64>,
    pub(super) created: Option<f64>,
    pub(super) updated: Option<f64>,
    pub(super) up: bool,
    pub(super) last_success: Option<f64>,
    pub(super) cloud: String,
    /// Values in [`INFO_KEYS`] order.
    pub(super) info: [String; INFO_KEYS.len()],
    pub(super) labels: BTreeMap<String, String>,
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
pub(super) struct Store {
    /// Keyed by image id; ordered so every render lists images the same way.
    pub(super) images: BTreeMap<String, ImageEntry>,
    /// Config label keys and their exported names, in info-label order.
    pub(super) label_names: Vec<LabelName>,
}

/// Shared between `Metrics` (writers) and the registry (reader at scrape time).
#[derive(Debug, Default)]
pub(super) struct ImageStore {
    inner: RwLock<Store>,
}

impl ImageStore {
    pub(super) fn read(&self) -> RwLockReadGuard<'_, Store> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep exporting.
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Store> {
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
