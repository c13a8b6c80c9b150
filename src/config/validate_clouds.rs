//! Semantic checks of `[[clouds]]` and their `[clouds.auth]`: names, ids, endpoints, and auth
//! keys that fit the auth type. Pure; part of `validate`.

use super::urls::check_url;
use super::validate::Report;
use super::{AuthConfig, AuthType, CloudConfig, Config};
use crate::cloud::{ProjectId, Region};

pub(crate) fn clouds(r: &mut Report<'_>, c: &Config) {
    if c.clouds.is_empty() {
        r.error(
            "clouds",
            "no [[clouds]] entry: add one with provider, region and [clouds.auth]",
        );
    }
    let several = c.clouds.len() > 1;
    for (i, cloud) in c.clouds.iter().enumerate() {
        let k = format!("clouds[{i}]");
        match &cloud.name {
            None if several => r.error(
                format!("{k}.name"),
                "name is required when there are several clouds",
            ),
            Some(n) if n.trim().is_empty() => r.error(format!("{k}.name"), "name is empty"),
            Some(n) => {
                if let Some(j) = c.clouds[..i]
                    .iter()
                    .position(|o| o.name.as_deref() == Some(n))
                {
                    r.error(
                        format!("{k}.name"),
                        format!(
                            "duplicate cloud name {n:?} (also clouds[{j}]); names must be unique"
                        ),
                    );
                }
            }
            None => {}
        }
        if let Err(e) = Region::parse(&cloud.region) {
            r.error(format!("{k}.region"), e);
        }
        if let Some(p) = &cloud.project_id {
            if let Err(e) = ProjectId::parse(p) {
                r.error(format!("{k}.project_id"), e);
            }
        }
        for (key, value) in [
            ("endpoint", &cloud.endpoint),
            ("iam_endpoint", &cloud.iam_endpoint),
        ] {
            if let Some(u) = value {
                // `${ENV}` is expanded by `resolve`, which checks the result.
                if !u.contains("${") {
                    if let Err(e) = check_url(u) {
                        r.error(format!("{k}.{key}"), e);
                    }
                }
            }
        }
        rate(
            r,
            &format!("{k}.max_requests_per_second"),
            cloud.max_requests_per_second,
        );
        auth(r, &k, cloud);
    }
}

pub(crate) fn rate(r: &mut Report<'_>, key: &str, value: Option<f64>) {
    if let Some(v) = value {
        if !(v.is_finite() && v > 0.0) {
            r.error(
                key,
                format!("must be a number above 0 (requests per second), got {v}"),
            );
        }
    }
}

/// Keys of `[clouds.auth]` that belong to each type (for "wrong type" errors).
fn foreign_keys(a: &AuthConfig) -> Vec<&'static str> {
    let present = |set: bool, name: &'static str| set.then_some(name);
    match a.kind {
        AuthType::Aksk => [
            present(a.user.is_some(), "user"),
            present(a.password.is_some(), "password"),
            present(a.password_file.is_some(), "password_file"),
            present(a.domain.is_some(), "domain"),
            present(a.project_name.is_some(), "project_name"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        AuthType::Password => [
            present(a.access_key.is_some(), "access_key"),
            present(a.secret_key.is_some(), "secret_key"),
            present(a.secret_key_file.is_some(), "secret_key_file"),
            present(a.security_token.is_some(), "security_token"),
            present(a.security_token_file.is_some(), "security_token_file"),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// "exactly one of inline / file" for one secret; both is an error, neither is `missing`.
pub(crate) fn one_secret(
    r: &mut Report<'_>,
    table: &str,
    (inline_key, inline): (&str, bool),
    (file_key, file): (&str, bool),
    required: bool,
) {
    if inline && file {
        r.error(
            format!("{table}.{file_key}"),
            format!("give this secret once: {inline_key} or {file_key}, not both"),
        );
    } else if required && !inline && !file {
        r.error(
            table.to_string(),
            format!("{file_key} (or {inline_key}) is required"),
        );
    }
}

fn auth(r: &mut Report<'_>, k: &str, cloud: &CloudConfig) {
    let a = &cloud.auth;
    let t = format!("{k}.auth");
    let (this, other) = match a.kind {
        AuthType::Aksk => ("aksk", "password"),
        AuthType::Password => ("password", "aksk"),
    };
    for key in foreign_keys(a) {
        r.error(
            format!("{t}.{key}"),
            format!("{key} belongs to type = \"{other}\", but this auth is type = \"{this}\""),
        );
    }
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    match a.kind {
        AuthType::Aksk => {
            if blank(&a.access_key) {
                r.error(
                    format!("{t}.access_key"),
                    "access_key is required for type = \"aksk\"",
                );
            }
            one_secret(
                r,
                &t,
                ("secret_key", a.secret_key.is_some()),
                ("secret_key_file", a.secret_key_file.is_some()),
                true,
            );
            one_secret(
                r,
                &t,
                ("security_token", a.security_token.is_some()),
                ("security_token_file", a.security_token_file.is_some()),
                false,
            );
            if cloud.project_id.is_none() {
                r.error(
                    format!("{k}.project_id"),
                    "project_id is required with type = \"aksk\" (it goes into every request URL)",
                );
            }
        }
        AuthType::Password => {
            if blank(&a.user) {
                r.error(
                    format!("{t}.user"),
                    "user is required for type = \"password\"",
                );
            }
            if blank(&a.domain) {
                r.error(
                    format!("{t}.domain"),
                    "domain (the account name) is required for type = \"password\"",
                );
            }
            one_secret(
                r,
                &t,
                ("password", a.password.is_some()),
                ("password_file", a.password_file.is_some()),
                true,
            );
            match (&cloud.project_id, &a.project_name) {
                (None, None) => r.error(
                    format!("{t}.project_name"),
                    format!("set {k}.project_id or {t}.project_name (the token's project scope)"),
                ),
                (Some(_), Some(_)) => r.warning(
                    format!("{t}.project_name"),
                    "project_name is ignored because project_id is set",
                ),
                _ => {}
            }
        }
    }
}
