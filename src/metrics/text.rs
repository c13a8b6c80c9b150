//! Writes the image families in the Prometheus text format 0.0.4 straight from the snapshot
//! store; must not change the store or know about HTTP.
//!
//! Why not through the registry: at 10k images (~150k samples) `Registry::gather` builds
//! ~600k small label strings per scrape (≈300 ms, and RSS that never shrinks back). Writing
//! text directly costs one pass and one output buffer, which `render_gzip` even streams in
//! chunks. The format is simple: `# HELP`, `# TYPE`, then `name{k="v",...} value` lines with
//! `\`, `"` and newline escaped in label values; no timestamps.

use std::fmt::Write as _;

use super::images::{INFO_KEYS, ImageEntry, STATUSES, Snapshot, Store};

/// `flush` is offered the buffer whenever it grows past this many bytes.
pub(super) const CHUNK: usize = 64 * 1024;

/// Appends `v` to `out` with the text format's label-value escaping.
pub(super) fn escape_label_value(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        // `Display` for f64 never uses an exponent and round-trips exactly.
        let _ = write!(out, "{v}");
    }
}

/// Writes `name{k="v",...} value\n`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    out.push_str(name);
    let mut sep = '{';
    for (k, val) in labels {
        out.push(sep);
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, val);
        out.push('"');
        sep = ',';
    }
    if !labels.is_empty() {
        out.push('}');
    }
    out.push(' ');
    value(out, v);
    out.push('\n');
}

/// What one family writes for one image.
type Rows = fn(&mut String, &str, &ImageEntry, &Store);

/// Writes one family: header, then each image's rows. A family with no rows is left out
/// entirely (as the registry does), so "unknown" means "no series".
fn family(
    out: &mut String,
    flush: &mut dyn FnMut(&mut String),
    store: &Store,
    (name, help, kind): (&str, &str, &str),
    rows: Rows,
) {
    let start = out.len();
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    let header_end = out.len();
    let mut wrote = false;
    for (id, entry) in &store.images {
        rows(out, id, entry, store);
        wrote |= out.len() > header_end;
        if wrote && out.len() >= CHUNK {
            flush(out);
        }
    }
    if !wrote {
        out.truncate(start);
    }
}

fn with_snapshot(entry: &ImageEntry, f: impl FnOnce(&Snapshot)) {
    if let Some(s) = &entry.snapshot {
        f(s);
    }
}

fn status_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    with_snapshot(e, |s| {
        for (i, st) in STATUSES.iter().enumerate() {
            let v = if i == s.status { 1.0 } else { 0.0 };
            sample(
                out,
                "modelarts_image_status",
                &[("id", id), ("name", &s.name), ("status", st)],
                v,
            );
        }
    });
}

#[allow(clippy::cast_precision_loss)] // reason: image sizes are far below 2^53 bytes
fn size_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    with_snapshot(e, |s| {
        if let Some(v) = s.size_bytes {
            sample(
                out,
                "modelarts_image_size_bytes",
                &[("id", id), ("name", &s.name)],
                v as f64,
            );
        }
    });
}

fn created_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    with_snapshot(e, |s| {
        if let Some(v) = s.created {
            let name = "modelarts_image_created_timestamp_seconds";
            sample(out, name, &[("id", id), ("name", &s.name)], v);
        }
    });
}

fn updated_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    with_snapshot(e, |s| {
        if let Some(v) = s.updated {
            let name = "modelarts_image_updated_timestamp_seconds";
            sample(out, name, &[("id", id), ("name", &s.name)], v);
        }
    });
}

fn info_rows(out: &mut String, id: &str, e: &ImageEntry, store: &Store) {
    with_snapshot(e, |s| {
        let mut labels: Vec<(&str, &str)> =
            Vec::with_capacity(3 + INFO_KEYS.len() + store.label_names.len());
        labels.extend([
            ("id", id),
            ("name", s.name.as_str()),
            ("cloud", s.cloud.as_str()),
        ]);
        labels.extend(
            INFO_KEYS
                .iter()
                .copied()
                .zip(s.info.iter().map(String::as_str)),
        );
        for l in &store.label_names {
            labels.push((&l.name, s.labels.get(&l.key).map_or("", String::as_str)));
        }
        sample(out, "modelarts_image_info", &labels, 1.0);
    });
}

fn up_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    with_snapshot(e, |s| {
        sample(
            out,
            "modelarts_image_up",
            &[("id", id)],
            if s.up { 1.0 } else { 0.0 },
        );
    });
}

fn last_success_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    with_snapshot(e, |s| {
        if let Some(v) = s.last_success {
            sample(
                out,
                "modelarts_image_last_success_timestamp_seconds",
                &[("id", id)],
                v,
            );
        }
    });
}

#[allow(clippy::cast_precision_loss)] // reason: change counts are far below 2^53
fn changes_rows(out: &mut String, id: &str, e: &ImageEntry, _: &Store) {
    for (field, n) in &e.changes {
        sample(
            out,
            "modelarts_image_changes_total",
            &[("id", id), ("field", field)],
            *n as f64,
        );
    }
}

/// The image families: (name, help, type) and the function writing an image's rows.
const FAMILIES: [((&str, &str, &str), Rows); 8] = [
    (
        (
            "modelarts_image_status",
            "Image status as a state set: 1 for the current status, 0 for the others.",
            "gauge",
        ),
        status_rows,
    ),
    (
        (
            "modelarts_image_size_bytes",
            "Image size in bytes, as reported by ModelArts.",
            "gauge",
        ),
        size_rows,
    ),
    (
        (
            "modelarts_image_created_timestamp_seconds",
            "Image creation time, unix seconds.",
            "gauge",
        ),
        created_rows,
    ),
    (
        (
            "modelarts_image_updated_timestamp_seconds",
            "Image last update time, unix seconds.",
            "gauge",
        ),
        updated_rows,
    ),
    (
        (
            "modelarts_image_info",
            "Image metadata and config labels as labels; always 1.",
            "gauge",
        ),
        info_rows,
    ),
    (
        (
            "modelarts_image_up",
            "1 when the last poll of the image got a valid answer (found or not found), else 0.",
            "gauge",
        ),
        up_rows,
    ),
    (
        (
            "modelarts_image_last_success_timestamp_seconds",
            "Unix seconds of the last poll that got a valid answer for the image.",
            "gauge",
        ),
        last_success_rows,
    ),
    (
        (
            "modelarts_image_changes_total",
            "Changes seen on an image, by field.",
            "counter",
        ),
        changes_rows,
    ),
];

/// Appends every image family to `out`, calling `flush` whenever `out` passes [`CHUNK`]
/// bytes (a `flush` that does nothing accumulates the whole text).
pub(super) fn write_image_families(
    store: &Store,
    out: &mut String,
    flush: &mut dyn FnMut(&mut String),
) {
    for (header, rows) in FAMILIES {
        family(out, flush, store, header, rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_backslash_quote_newline_only() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd ü\t");
        assert_eq!(out, "a\\\\b\\\"c\\nd ü\t");
    }

    #[test]
    fn values_use_prometheus_spellings() {
        let mut out = String::new();
        for v in [1.0, 0.5, 1.7e9, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "1 0.5 1700000000 +Inf -Inf NaN ");
    }
}
