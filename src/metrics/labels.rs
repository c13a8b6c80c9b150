//! Turns configured label keys into valid, clash-free Prometheus label names; no metric state here.

use std::collections::BTreeSet;

/// Whether the `modelarts_image_info` family sets this label itself (`id`, `name`, `cloud` and
/// the info keys); a config label may not reuse it.
pub fn is_fixed_info_label(name: &str) -> bool {
    FIXED_LABELS.contains(&name) || super::images::INFO_KEYS.contains(&name)
}

/// The info family's own labels besides the info keys.
const FIXED_LABELS: [&str; 3] = ["id", "name", "cloud"];

/// Prefix given to a config label whose name would clash with a fixed label, start with a
/// digit, or use the `__` prefix Prometheus reserves.
const CLASH_PREFIX: &str = "label_";

/// A config label key mapped to the Prometheus label name it is exported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelName {
    /// The key as written in the config (`labels = { team = "ml" }` → `team`).
    pub key: String,
    /// The exported label name: `[a-zA-Z_][a-zA-Z0-9_]*`, never a fixed label, never `__*`.
    pub name: String,
}

/// Sanitizes one key: every character outside `[a-zA-Z0-9_]` becomes `_`; a result that is
/// empty, starts with a digit or `__`, or equals a fixed info label gets the `label_` prefix.
pub fn sanitize_label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let needs_prefix = out.is_empty()
        || out.starts_with(|c: char| c.is_ascii_digit())
        || out.starts_with("__")
        || is_fixed_info_label(&out);
    if needs_prefix {
        out.insert_str(0, CLASH_PREFIX);
    }
    out
}

/// Maps the union of config label keys to distinct exported names, in sorted key order.
/// Keys that sanitize to the same name (`team-a`, `team_a`) are told apart by a `_2`, `_3`…
/// suffix, the first key in sorted order keeping the plain name. Duplicate keys count once.
pub fn plan_label_names(keys: &[String]) -> Vec<LabelName> {
    let keys: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut used: BTreeSet<String> = FIXED_LABELS
        .iter()
        .chain(super::images::INFO_KEYS.iter())
        .map(|s| (*s).to_owned())
        .collect();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let base = sanitize_label_name(key);
        let mut name = base.clone();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        used.insert(name.clone());
        out.push(LabelName {
            key: key.to_owned(),
            name,
        });
    }
    out
}

/// True when `name` is a valid Prometheus label name that does not use the reserved `__` prefix.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && !name.starts_with("__") && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_invalid_characters_and_prefixes() {
        assert_eq!(sanitize_label_name("team"), "team");
        assert_eq!(sanitize_label_name("cost-center"), "cost_center");
        assert_eq!(sanitize_label_name("a.b/c d"), "a_b_c_d");
        assert_eq!(sanitize_label_name("équipe"), "_quipe");
        assert_eq!(sanitize_label_name("1st"), "label_1st");
        assert_eq!(sanitize_label_name("__meta"), "label___meta");
        assert_eq!(sanitize_label_name(""), "label_");
        assert_eq!(sanitize_label_name("name"), "label_name");
        assert_eq!(sanitize_label_name("id"), "label_id");
        assert_eq!(sanitize_label_name("swr_path"), "label_swr_path");
    }

    #[test]
    fn plan_dedupes_collisions_and_never_reuses_fixed_names() {
        let keys: Vec<String> = ["team_a", "team-a", "id", "label_id", "team.a", "team_a"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let plan = plan_label_names(&keys);
        let names: Vec<&str> = plan.iter().map(|l| l.name.as_str()).collect();
        // Sorted keys: id, label_id, team-a, team.a, team_a.
        assert_eq!(
            names,
            ["label_id", "label_id_2", "team_a", "team_a_2", "team_a_3"]
        );
        for l in &plan {
            assert!(is_valid_label_name(&l.name), "{}", l.name);
            assert!(!is_fixed_info_label(&l.name));
        }
    }

    #[test]
    fn validity_check() {
        assert!(is_valid_label_name("_x1"));
        assert!(!is_valid_label_name("1x"));
        assert!(!is_valid_label_name("__x"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
    }
}
