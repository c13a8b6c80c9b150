//! Runtime settings: what a valid config resolves to (endpoints filled in, secrets read).
//! The rest of the crate consumes these, never the raw TOML structs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{AlertsConfig, SmtpTls, WebConfig, WebhookFormat};
use crate::cloud::{ImageId, ProjectId, Region};
use crate::config::Secret;

/// Everything the daemon needs, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub clouds: Vec<CloudSettings>,
    pub images: Vec<WatchedImage>,
    pub discovery: Vec<DiscoverySettings>,
    pub poll: PollSettings,
    pub alerts: AlertsConfig,
    pub channels: Vec<ChannelSettings>,
    pub web: WebConfig,
    pub state_path: PathBuf,
}

/// How and when to poll.
#[derive(Debug, Clone)]
pub struct PollSettings {
    pub schedule: Schedule,
    /// Per request.
    pub timeout: Duration,
    pub concurrency: usize,
}

/// Fixed interval or cron (six fields, seconds first, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Interval(Duration),
    Cron(String),
}

/// One cloud account/project/region, ready for a client.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// `default` when the config has one unnamed cloud.
    pub name: String,
    pub region: Region,
    /// Base URL of ModelArts, no trailing slash, e.g. `https://modelarts.eu-de.otc.t-systems.com`.
    pub endpoint: String,
    /// Base URL of IAM, no trailing slash.
    pub iam_endpoint: String,
    /// `None` only with password auth, where the token's project is used.
    pub project_id: Option<ProjectId>,
    pub ca_file: Option<PathBuf>,
    pub credentials: Credentials,
    /// Token-bucket rate shared by all of this cloud's requests.
    pub max_requests_per_second: f64,
    /// Per request.
    pub timeout: Duration,
}

/// How to authenticate against one cloud.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `SDK-HMAC-SHA256` signing; `security_token` for temporary credentials.
    AkSk {
        access_key: String,
        secret_key: Secret,
        security_token: Option<Secret>,
    },
    /// IAM password token.
    Password {
        user: String,
        password: Secret,
        /// Account (domain) name.
        domain: String,
        scope: ProjectScope,
    },
}

/// The project an IAM token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    Id(ProjectId),
    Name(String),
}

/// One image to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedImage {
    pub id: ImageId,
    /// Name of a [`CloudSettings`].
    pub cloud: String,
    pub labels: BTreeMap<String, String>,
    /// `None`: every channel.
    pub channels: Option<Vec<String>>,
}

/// One discovery source (ListImage filters).
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    pub cloud: String,
    pub image_type: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub workspace_id: Option<String>,
    pub refresh: Duration,
    pub labels: BTreeMap<String, String>,
    pub channels: Option<Vec<String>>,
}

/// One notification channel.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    pub name: String,
    /// Default 20 for chat formats, 60 otherwise.
    pub max_per_minute: u32,
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub kind: ChannelKind,
}

/// What a channel delivers to.
#[derive(Debug, Clone)]
pub enum ChannelKind {
    Email(EmailSettings),
    Webhook(WebhookSettings),
    Alertmanager(AlertmanagerSettings),
}

/// SMTP delivery.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub host: String,
    pub port: u16,
    /// Default `tls` on 465, `starttls` otherwise.
    pub tls: SmtpTls,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// Webhook delivery. The URL is a secret: chat URLs embed tokens.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: Secret,
    pub format: WebhookFormat,
    /// Standard Webhooks key (`whsec_...` or raw) for `json`; bot signing secret for
    /// feishu/dingtalk.
    pub secret: Option<Secret>,
}

/// Alertmanager push (`POST {url}/api/v2/alerts`).
#[derive(Debug, Clone)]
pub struct AlertmanagerSettings {
    pub url: Secret,
}
