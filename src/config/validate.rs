//! Semantic checks of a parsed config: reports every problem at once, each with its key path
//! and line. Pure: no file or network I/O (secret files are read by `resolve`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::Loaded;
use super::locate::Locator;
use super::urls::check_url;
use super::{AuthConfig, AuthType, CloudConfig, Config, DEFAULT_INTERVAL, PollConfig, WebConfig};
use crate::cloud::{ProjectId, Region};

/// How bad a [`Problem`] is: errors make the config unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The config file.
    pub file: PathBuf,
    /// Key path, e.g. `clouds[0].auth.secret_key_file`.
    pub key: String,
    /// 1-based line of the key (or of the table that should hold it).
    pub line: Option<usize>,
    /// What is wrong and what would be valid. Never contains a secret value.
    pub message: String,
    pub severity: Severity,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    /// `config.toml:12: error: clouds[0].region: region "EU DE" may contain only ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {sev}: {}: {}", self.key, self.message)
    }
}

/// Collects problems for one file, locating each key's line.
pub(crate) struct Report<'a> {
    locator: Locator<'a>,
    file: &'a Path,
    pub problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub fn new(loaded: &'a Loaded) -> Self {
        Self {
            locator: Locator::new(&loaded.source),
            file: &loaded.path,
            problems: Vec::new(),
        }
    }

    fn push(&mut self, severity: Severity, key: String, message: String) {
        let line = self.locator.line(&key);
        self.problems.push(Problem {
            file: self.file.to_path_buf(),
            key,
            line,
            message,
            severity,
        });
    }

    pub fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, key.into(), message.into());
    }

    pub fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, key.into(), message.into());
    }
}

/// Checks everything that can be checked without reading secrets; see the module doc.
pub fn validate(loaded: &Loaded) -> Vec<Problem> {
    let mut r = Report::new(loaded);
    let c = &loaded.config;
    clouds(&mut r, c);
    poll(&mut r, &c.poll);
    super::validate_watch::images(&mut r, c);
    super::validate_watch::discovery(&mut r, c);
    super::validate_watch::alerts(&mut r, &c.alerts);
    super::validate_channels::channels(&mut r, c);
    web(&mut r, &c.web);
    rate_warning(&mut r, c);
    r.problems
}

/// The name a cloud goes by: its `name`, or `default` for the one unnamed cloud.
pub(crate) fn cloud_name(cloud: &CloudConfig) -> &str {
    cloud.name.as_deref().unwrap_or("default")
}

/// Resolves an image's or discovery's `cloud` reference to a cloud name.
pub(crate) fn cloud_ref(config: &Config, wanted: Option<&str>) -> Result<String, String> {
    let names: Vec<&str> = config.clouds.iter().map(cloud_name).collect();
    match wanted {
        Some(w) if names.contains(&w) => Ok(w.to_string()),
        Some(w) => Err(format!(
            "unknown cloud {w:?} (configured: {})",
            list_or_none(&names)
        )),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None if names.is_empty() => Err("no cloud is configured".to_string()),
        None => Err(format!(
            "several clouds are configured: name one with cloud = \"...\" (one of {})",
            names.join(", ")
        )),
    }
}

pub(crate) fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn clouds(r: &mut Report<'_>, c: &Config) {
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

fn rate(r: &mut Report<'_>, key: &str, value: Option<f64>) {
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

/// Minimum poll interval (tests run fast); below [`WARN_INTERVAL`] a warning.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Intervals below this get a warning (API quota).
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Parses a six-field cron expression (seconds first) the way tokio-cron-scheduler 0.15 does.
///
/// # Errors
/// croner's message, e.g. the expected number of fields.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Disallowed)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!("cron expression {expr:?} is not valid: {e} (six fields, seconds first, e.g. \"0 */5 * * * *\")")
        })
}

fn poll(r: &mut Report<'_>, p: &PollConfig) {
    if p.interval.is_some() && p.schedule.is_some() {
        r.error("poll.schedule", "set either interval or schedule, not both");
    }
    if let Some(i) = p.interval {
        if i < MIN_INTERVAL {
            r.error(
                "poll.interval",
                format!(
                    "interval {} is too short; the minimum is 100ms",
                    humantime::format_duration(i)
                ),
            );
        } else if i < WARN_INTERVAL {
            r.warning(
                "poll.interval",
                format!(
                    "interval {} is under 10s: fine for tests, but it spends the API quota fast",
                    humantime::format_duration(i)
                ),
            );
        }
    }
    if let Some(s) = &p.schedule {
        if let Err(e) = parse_cron(s) {
            r.error("poll.schedule", e);
        }
    }
    if p.timeout.is_zero() {
        r.error("poll.timeout", "timeout must be above 0 (e.g. \"10s\")");
    }
    if p.concurrency == 0 {
        r.error("poll.concurrency", "concurrency must be at least 1");
    }
    rate(r, "poll.max_requests_per_second", p.max_requests_per_second);
}

fn web(r: &mut Report<'_>, w: &WebConfig) {
    if w.listen.parse::<SocketAddr>().is_err() {
        r.error(
            "web.listen",
            format!(
                "{:?} is not a socket address; write e.g. \"0.0.0.0:9917\", \"127.0.0.1:9917\" or \"[::]:9917\"",
                w.listen
            ),
        );
    }
    match (&w.tls_cert_file, &w.tls_key_file) {
        (Some(_), None) => r.error(
            "web.tls_key_file",
            "tls_cert_file is set but tls_key_file is not; set both or neither",
        ),
        (None, Some(_)) => r.error(
            "web.tls_cert_file",
            "tls_key_file is set but tls_cert_file is not; set both or neither",
        ),
        _ => {}
    }
    for (user, hash) in &w.basic_auth_users {
        let key = format!("web.basic_auth_users.{user}");
        if user.is_empty() || user.contains(':') {
            r.error(
                &key,
                "a basic-auth user name must be non-empty and contain no ':'",
            );
        }
        if !looks_like_bcrypt(hash) {
            r.error(
                key,
                "is not a bcrypt hash ($2a$/$2b$/$2y$, 60 characters); make one with `htpasswd -nbBC 12 USER PASSWORD`",
            );
        }
    }
}

fn looks_like_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
        && hash.len() == 60
        && hash.as_bytes()[4..6].iter().all(u8::is_ascii_digit)
        && hash.as_bytes()[6] == b'$'
}

/// Warns when a cloud's images cannot all be polled within one interval at its request rate.
fn rate_warning(r: &mut Report<'_>, c: &Config) {
    if c.poll.schedule.is_some() {
        return;
    }
    let interval = c.poll.interval.unwrap_or(DEFAULT_INTERVAL);
    if interval < MIN_INTERVAL {
        return; // already an error
    }
    for cloud in &c.clouds {
        let name = cloud_name(cloud);
        let images = c
            .images
            .iter()
            .filter(|i| cloud_ref(c, i.cloud.as_deref()).is_ok_and(|n| n == name))
            .count();
        let limit = cloud
            .max_requests_per_second
            .or(c.poll.max_requests_per_second)
            .unwrap_or(super::DEFAULT_REQUESTS_PER_SECOND);
        #[allow(clippy::cast_precision_loss)] // reason: image counts are far below 2^52
        let needed = images as f64 / interval.as_secs_f64();
        if needed > limit {
            r.warning(
                "poll.interval",
                format!(
                    "cloud {name:?} watches {images} images: one poll every {} needs {needed:.1} requests/s, more than its limit of {limit}/s, so a cycle takes longer than the interval (raise max_requests_per_second or the interval)",
                    humantime::format_duration(interval)
                ),
            );
        }
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
