//! Configuration: the TOML schema (PRODUCT 3.10), loading, and the semantic check.
//!
//! The structs here mirror the file one to one (`deny_unknown_fields` everywhere) and hold raw
//! values; secrets are still in their three forms (inline, `${ENV}`, `*_file`). `validate`
//! reports every problem at once; `resolve` turns a valid file into the runtime settings the
//! rest of the crate uses. Nothing here does network I/O.

pub mod check;
pub mod load;
pub mod locate;
pub mod resolve;
pub mod secret;
pub mod settings;
pub mod urls;
pub mod validate;
mod validate_channels;
mod validate_clouds;
mod validate_watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use check::{EX_CONFIG, check_config};
pub use load::{ConfigError, Loaded, load};
pub use resolve::{SecretMode, resolve};
pub use secret::Secret;
pub use settings::Settings;
pub use validate::{Problem, Severity, validate};

/// Loads, validates and resolves a config for the daemon and `once`: warnings are logged,
/// and on any error the message lists every problem with its location.
///
/// # Errors
/// A printable report of every problem (never a secret value).
pub fn load_settings(path: &std::path::Path) -> Result<Settings, String> {
    let loaded = load(path).map_err(|e| e.to_string())?;
    for p in validate(&loaded).iter().filter(|p| !p.is_error()) {
        tracing::warn!("{p}");
    }
    resolve(&loaded, SecretMode::Resolve).map_err(|problems| {
        let errors: Vec<String> = problems
            .iter()
            .filter(|p| p.is_error())
            .map(ToString::to_string)
            .collect();
        format!(
            "{}\n{}: configuration invalid ({} errors); see config/example.toml for every key",
            errors.join("\n"),
            path.display(),
            errors.len()
        )
    })
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub clouds: Vec<CloudConfig>,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub images: Vec<ImageConfig>,
    #[serde(default)]
    pub discovery: Vec<DiscoveryConfig>,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub state: StateConfig,
}

/// Which public cloud's endpoint patterns apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Open Telekom Cloud: `https://modelarts.{region}.otc.t-systems.com`.
    Otc,
    /// Huawei Cloud: `https://modelarts.{region}.myhuaweicloud.com`.
    Huaweicloud,
}

/// One `[[clouds]]` entry: an account/project/region and how to authenticate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    /// May be omitted when there is only one cloud; it is then called `default`.
    pub name: Option<String>,
    pub provider: Provider,
    pub region: String,
    /// Hex project id; with password auth it may come from the token instead.
    pub project_id: Option<String>,
    pub endpoint: Option<String>,
    pub iam_endpoint: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub max_requests_per_second: Option<f64>,
    pub auth: AuthConfig,
}

/// `type` of `[clouds.auth]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    Aksk,
    Password,
}

/// `[clouds.auth]`: one flat table; `validate` checks which keys go with which `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(rename = "type")]
    pub kind: AuthType,
    // aksk
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub secret_key_file: Option<PathBuf>,
    pub security_token: Option<String>,
    pub security_token_file: Option<PathBuf>,
    // password
    pub user: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Account (domain) name.
    pub domain: Option<String>,
    /// Project scope by name (e.g. `eu-de`); used when `project_id` is not set.
    pub project_name: Option<String>,
}

/// `[poll]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Six-field cron (seconds first), UTC.
    pub schedule: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Default per-cloud limit; a `[[clouds]]` entry may override it.
    pub max_requests_per_second: Option<f64>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: None,
            schedule: None,
            timeout: default_timeout(),
            concurrency: default_concurrency(),
            max_requests_per_second: None,
        }
    }
}

/// Interval used when neither `interval` nor `schedule` is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Per-cloud request rate used when none is configured.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    8
}

/// One `[[images]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub id: String,
    pub cloud: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Channel names; `None` means every channel.
    pub channels: Option<Vec<String>>,
}

/// One `[[discovery]]` entry: watch the images ListImage returns for these filters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryConfig {
    pub cloud: Option<String>,
    /// ListImage `type`; defaults to `DEDICATED` (the user's own images).
    #[serde(rename = "type")]
    pub image_type: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub workspace_id: Option<String>,
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub channels: Option<Vec<String>>,
}

fn default_refresh() -> Duration {
    Duration::from_secs(600)
}

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default = "default_conditions")]
    pub conditions: Vec<String>,
    #[serde(default = "default_not_found_after")]
    pub not_found_after: u32,
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    #[serde(default, with = "humantime_serde")]
    pub repeat_interval: Option<Duration>,
    #[serde(default = "default_stale_after", with = "humantime_serde")]
    pub stale_after: Duration,
    #[serde(default)]
    pub notify_on_change: bool,
    #[serde(default = "default_group_threshold")]
    pub group_threshold: usize,
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            conditions: default_conditions(),
            not_found_after: default_not_found_after(),
            send_resolved: true,
            repeat_interval: None,
            stale_after: default_stale_after(),
            notify_on_change: false,
            group_threshold: default_group_threshold(),
            max_age: default_max_age(),
        }
    }
}

fn default_conditions() -> Vec<String> {
    ["CREATE_FAILED", "ERROR", "DELETED", "NOT_FOUND"]
        .iter()
        .map(|s| (*s).to_string())
        .collect()
}
fn default_not_found_after() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_stale_after() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_group_threshold() -> usize {
    5
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `type` of a `[[channels]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Email,
    Webhook,
    Alertmanager,
}

/// SMTP transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

/// Webhook body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    Json,
    Alertmanager,
    Slack,
    Teams,
    Feishu,
    Dingtalk,
    Wecom,
}

/// One `[[channels]]` entry: one flat table; `validate` checks which keys go with which `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    // email
    /// `host:port`.
    pub smtp: Option<String>,
    pub tls: Option<SmtpTls>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    // webhook / alertmanager
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
    pub format: Option<WebhookFormat>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    // common
    pub ca_file: Option<PathBuf>,
    pub max_per_minute: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `[web]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// user → bcrypt hash.
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
    #[serde(default)]
    pub enable_reload: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls_cert_file: None,
            tls_key_file: None,
            basic_auth_users: BTreeMap::new(),
            enable_reload: false,
        }
    }
}

fn default_listen() -> String {
    "0.0.0.0:9917".to_string()
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Default: `$STATE_DIRECTORY/state.db`, else `./state.db`.
    pub path: Option<PathBuf>,
}
