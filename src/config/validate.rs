//! Semantic checks of a parsed config: reports every problem at once, each with its key path
//! and line. Pure: no file or network I/O (secret files are read by `resolve`).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::Loaded;
use super::locate::Locator;
use super::{CloudConfig, Config, DEFAULT_INTERVAL, PollConfig, WebConfig};

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
    super::validate_clouds::clouds(&mut r, c);
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
    super::validate_clouds::rate(r, "poll.max_requests_per_second", p.max_requests_per_second);
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
