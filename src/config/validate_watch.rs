//! Semantic checks of what is watched and when it alerts: `[[images]]`, `[[discovery]]`,
//! `[alerts]`. Pure; part of `validate`.

use std::collections::BTreeMap;

use super::validate::{Report, cloud_ref, list_or_none};
use super::{AlertsConfig, Config};
use crate::cloud::ImageId;
use crate::condition::Condition;

/// Whether `name` is a valid Prometheus label name not reserved for internal use.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn labels(r: &mut Report<'_>, key: &str, labels: &BTreeMap<String, String>) {
    for name in labels.keys() {
        if !valid_label_name(name) {
            r.error(
                format!("{key}.labels"),
                format!(
                    "label name {name:?} is not valid: use letters, digits and '_', not starting with a digit or \"__\""
                ),
            );
        }
    }
}

pub(crate) fn channel_refs(r: &mut Report<'_>, key: &str, c: &Config, refs: Option<&Vec<String>>) {
    let known: Vec<&str> = c.channels.iter().map(|ch| ch.name.as_str()).collect();
    for (k, name) in refs.into_iter().flatten().enumerate() {
        if !known.contains(&name.as_str()) {
            r.error(
                format!("{key}.channels[{k}]"),
                format!(
                    "unknown channel {name:?} (configured: {})",
                    list_or_none(&known)
                ),
            );
        }
    }
}

pub(crate) fn images(r: &mut Report<'_>, c: &Config) {
    let mut seen: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for (i, image) in c.images.iter().enumerate() {
        let k = format!("images[{i}]");
        let id_ok = match ImageId::parse(&image.id) {
            Ok(_) => true,
            Err(e) => {
                r.error(format!("{k}.id"), e);
                false
            }
        };
        match cloud_ref(c, image.cloud.as_deref()) {
            Ok(cloud) if id_ok => {
                if let Some(j) = seen.insert((cloud.clone(), image.id.as_str()), i) {
                    r.error(
                        format!("{k}.id"),
                        format!(
                            "image {:?} is listed twice for cloud {cloud:?} (also images[{j}])",
                            image.id
                        ),
                    );
                }
            }
            Ok(_) => {}
            // With no cloud at all, `clouds` already says so.
            Err(_) if c.clouds.is_empty() => {}
            Err(e) => r.error(format!("{k}.cloud"), e),
        }
        labels(r, &k, &image.labels);
        channel_refs(r, &k, c, image.channels.as_ref());
    }
}

pub(crate) fn discovery(r: &mut Report<'_>, c: &Config) {
    for (i, d) in c.discovery.iter().enumerate() {
        let k = format!("discovery[{i}]");
        if let Err(e) = cloud_ref(c, d.cloud.as_deref()) {
            if !c.clouds.is_empty() {
                r.error(format!("{k}.cloud"), e);
            }
        }
        if let Some(t) = &d.image_type {
            if t.is_empty() || !t.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') {
                r.error(
                    format!("{k}.type"),
                    format!("ListImage type {t:?} is not valid: e.g. \"DEDICATED\" (your own images) or \"BUILT_IN\""),
                );
            }
        }
        if d.refresh.is_zero() {
            r.error(
                format!("{k}.refresh"),
                "refresh must be above 0 (e.g. \"10m\")",
            );
        }
        labels(r, &k, &d.labels);
        channel_refs(r, &k, c, d.channels.as_ref());
    }
}

pub(crate) fn alerts(r: &mut Report<'_>, a: &AlertsConfig) {
    let mut seen = Vec::new();
    for (i, name) in a.conditions.iter().enumerate() {
        let key = format!("alerts.conditions[{i}]");
        match name.parse::<Condition>() {
            Ok(Condition::WatcherDegraded) => r.error(
                key,
                "WATCHER_DEGRADED is raised per cloud and always on; list only CREATE_FAILED, ERROR, DELETED, NOT_FOUND",
            ),
            Ok(cond) if seen.contains(&cond) => {
                r.warning(key, format!("{cond} is listed twice"));
            }
            Ok(cond) => seen.push(cond),
            Err(e) => r.error(key, e),
        }
    }
    if a.not_found_after == 0 {
        r.error(
            "alerts.not_found_after",
            "not_found_after must be at least 1 (consecutive not-found answers)",
        );
    }
    if a.group_threshold == 0 {
        r.error(
            "alerts.group_threshold",
            "group_threshold must be at least 1",
        );
    }
    if a.repeat_interval.is_some_and(|d| d.is_zero()) {
        r.error(
            "alerts.repeat_interval",
            "repeat_interval must be above 0; omit it to never repeat",
        );
    }
    if a.stale_after.is_zero() {
        r.error(
            "alerts.stale_after",
            "stale_after must be above 0 (e.g. \"15m\")",
        );
    }
    if a.max_age.is_zero() {
        r.error("alerts.max_age", "max_age must be above 0 (e.g. \"24h\")");
    }
}

#[cfg(test)]
mod tests {
    use super::valid_label_name;

    #[test]
    fn label_names() {
        assert!(valid_label_name("team"));
        assert!(valid_label_name("_x1"));
        assert!(!valid_label_name("1x"));
        assert!(!valid_label_name("a-b"));
        assert!(!valid_label_name("__name"));
        assert!(!valid_label_name(""));
    }
}
