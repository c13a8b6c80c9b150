//! `once`: poll every configured image one time, without the state database, and print a
//! table or JSON. Exit 1 if any image is alerting, else 2 if any could not be polled, else 0.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::cloud::{ApiErrorKind, Image, ImageStatus, ModelArtsClient};
use crate::condition::{Condition, ConditionRules};
use crate::config::settings::{Settings, WatchedImage};

/// One line of `once --output json` (PRODUCT 3.10).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnceRow {
    pub id: String,
    pub name: Option<String>,
    /// API status, or `NOT_FOUND`; `None` when the image could not be polled.
    pub status: Option<String>,
    pub size_bytes: Option<u64>,
    /// UTC milliseconds.
    pub update_at: Option<i64>,
    pub condition: Option<Condition>,
    /// A short reason when the image could not be polled.
    pub error: Option<String>,
}

/// Turns one poll result into a row. Pure; `once` uses a single not-found answer as enough.
pub fn row_for(
    id: &str,
    result: &Result<Image, crate::cloud::ApiError>,
    rules: &ConditionRules,
) -> OnceRow {
    match result {
        Ok(img) => {
            let status = img.status();
            OnceRow {
                id: id.to_string(),
                name: img.name.clone(),
                status: img.status.clone(),
                size_bytes: img.size_bytes(),
                update_at: img.update_at,
                condition: rules.condition_of(status.as_ref(), 0),
                error: None,
            }
        }
        Err(e) if e.kind == ApiErrorKind::NotFound => OnceRow {
            id: id.to_string(),
            name: None,
            status: Some("NOT_FOUND".to_string()),
            size_bytes: None,
            update_at: None,
            condition: rules.condition_of(None::<&ImageStatus>, rules.not_found_after.max(1)),
            error: None,
        },
        Err(e) => OnceRow {
            id: id.to_string(),
            name: None,
            status: None,
            size_bytes: None,
            update_at: None,
            condition: None,
            error: Some(e.to_string()),
        },
    }
}

/// The exit code for a set of rows: 1 alerting, else 2 unpolled, else 0.
pub fn exit_code(rows: &[OnceRow]) -> u8 {
    if rows.iter().any(|r| r.condition.is_some()) {
        1
    } else if rows.iter().any(|r| r.error.is_some()) {
        2
    } else {
        0
    }
}

/// Polls every image once with bounded concurrency; rows come back in config order.
pub async fn poll_all(settings: &Settings) -> anyhow::Result<Vec<OnceRow>> {
    let mut clients: HashMap<String, Arc<ModelArtsClient>> = HashMap::new();
    for c in &settings.clouds {
        clients.insert(c.name.clone(), Arc::new(ModelArtsClient::new(c, None)?));
    }
    let rules = ConditionRules {
        enabled: conditions(settings),
        // A single not-found answer counts in `once`.
        not_found_after: 1,
    };
    let rows = futures::stream::iter(settings.images.iter().cloned())
        .map(|img: WatchedImage| {
            let client = clients.get(&img.cloud).cloned();
            let rules = &rules;
            async move {
                let Some(client) = client else {
                    return OnceRow {
                        id: img.id.to_string(),
                        name: None,
                        status: None,
                        size_bytes: None,
                        update_at: None,
                        condition: None,
                        error: Some(format!("unknown cloud {:?}", img.cloud)),
                    };
                };
                let res = client.show_image(&img.id).await;
                row_for(img.id.as_str(), &res, rules)
            }
        })
        .buffered(settings.poll.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    Ok(rows)
}

/// The enabled image conditions of a config.
pub fn conditions(settings: &Settings) -> Vec<Condition> {
    settings
        .alerts
        .conditions
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// Renders rows as an aligned text table.
pub fn table(rows: &[OnceRow]) -> String {
    let header = [
        "ID",
        "NAME",
        "STATUS",
        "SIZE",
        "UPDATED",
        "CONDITION",
        "ERROR",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.name.clone().unwrap_or_else(|| "-".into()),
                r.status.clone().unwrap_or_else(|| "-".into()),
                r.size_bytes.map_or_else(|| "-".into(), human_bytes),
                r.update_at.map_or_else(|| "-".into(), format_ms),
                r.condition.map_or_else(|| "-".into(), |c| c.to_string()),
                r.error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate().take(6) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[&str]| {
        let mut l = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i < 6 {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            } else {
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &cells {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// `1.5 GiB`-style sizes.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// UTC milliseconds as `2021-11-30T01:08:24Z`.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).map_or_else(
        |_| ms.to_string(),
        |t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| ms.to_string())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{ApiError, error::classify};

    fn img(status: &str) -> Image {
        Image {
            id: Some("a".into()),
            name: Some("n".into()),
            status: Some(status.into()),
            size: Some(2),
            ..Image::default()
        }
    }

    #[test]
    fn rows_and_exit_codes() {
        let rules = ConditionRules::default();
        let ok = row_for("a", &Ok(img("ACTIVE")), &rules);
        assert_eq!(ok.condition, None);
        assert_eq!(ok.size_bytes, Some(2048));
        let failed = row_for("a", &Ok(img("CREATE_FAILED")), &rules);
        assert_eq!(failed.condition, Some(Condition::CreateFailed));
        let gone = row_for("a", &Err(classify(404, b"", None, None)), &rules);
        assert_eq!(gone.status.as_deref(), Some("NOT_FOUND"));
        assert_eq!(gone.condition, Some(Condition::NotFound));
        let err = row_for("a", &Err(ApiError::new(ApiErrorKind::Server)), &rules);
        assert!(err.error.is_some());
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        assert_eq!(exit_code(&[ok.clone(), err.clone()]), 2);
        assert_eq!(exit_code(&[err, failed, ok]), 1);
    }

    #[test]
    fn table_and_json_shape() {
        let rules = ConditionRules::default();
        let rows = vec![row_for("a", &Ok(img("ACTIVE")), &rules)];
        let t = table(&rows);
        assert!(t.starts_with("ID"));
        assert!(t.contains("ACTIVE") && t.contains("2.0 KiB"));
        let v: serde_json::Value = serde_json::to_value(&rows).unwrap();
        let keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for k in [
            "id",
            "name",
            "status",
            "size_bytes",
            "update_at",
            "condition",
            "error",
        ] {
            assert!(keys.contains(&k), "{k}");
        }
    }
}
