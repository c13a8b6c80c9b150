//! Turns a valid config into runtime [`Settings`]: default endpoints, defaults, secrets read
//! from files or `${ENV}`. Reads files and the environment; never prints a secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::load::Loaded;
use super::secret::{expand_env_with, read_secret_file};
use super::settings::{
    AlertmanagerSettings, ChannelKind, ChannelSettings, CloudSettings, Credentials,
    DiscoverySettings, EmailSettings, PollSettings, ProjectScope, Schedule, Settings, WatchedImage,
    WebhookSettings,
};
use super::urls::check_url;
use super::validate::{Problem, Report, cloud_name, cloud_ref};
use super::validate_channels::split_smtp;
use super::{
    AuthType, ChannelConfig, ChannelType, CloudConfig, Config, DEFAULT_INTERVAL,
    DEFAULT_REQUESTS_PER_SECOND, Provider, Secret, SmtpTls, WebhookFormat,
};
use crate::cloud::{ImageId, ProjectId, Region};

/// Whether `resolve` reads secrets, or fills placeholders (`check-config --syntax-only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    Resolve,
    Skip,
}

/// What a skipped secret becomes; never used to talk to anything.
const PLACEHOLDER: &str = "<secret not resolved>";
/// What a skipped secret URL becomes.
const PLACEHOLDER_URL: &str = "https://secret-not-resolved.invalid";

/// Default channel timeout.
pub const DEFAULT_CHANNEL_TIMEOUT: Duration = Duration::from_secs(10);

/// `(modelarts, iam)` base URLs for a provider and region.
pub fn default_endpoints(provider: Provider, region: &str) -> (String, String) {
    match provider {
        Provider::Huaweicloud => (
            format!("https://modelarts.{region}.myhuaweicloud.com"),
            format!("https://iam.{region}.myhuaweicloud.com"),
        ),
        // The Swiss region lives under a separate sovereign-cloud domain.
        Provider::Otc if region == "eu-ch2" => (
            "https://modelarts.eu-ch2.sc.otc.t-systems.com".to_string(),
            "https://iam.eu-ch2.sc.otc.t-systems.com".to_string(),
        ),
        Provider::Otc => (
            format!("https://modelarts.{region}.otc.t-systems.com"),
            format!("https://iam.{region}.otc.t-systems.com"),
        ),
    }
}

/// The state database path: `[state].path`, else `$STATE_DIRECTORY/state.db` (first entry of
/// a `:`-separated list), else `./state.db`.
pub fn state_path(configured: Option<&Path>, state_directory: Option<&str>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    state_directory
        .and_then(|d| d.split(':').find(|s| !s.is_empty()))
        .map_or_else(
            || PathBuf::from("./state.db"),
            |d| Path::new(d).join("state.db"),
        )
}

/// Validates, then builds [`Settings`] with secrets from the process environment and files.
///
/// # Errors
/// Every problem found (warnings included) when any of them is an error.
pub fn resolve(loaded: &Loaded, secrets: SecretMode) -> Result<Settings, Vec<Problem>> {
    resolve_with_env(loaded, secrets, &|name| std::env::var(name).ok())
}

/// [`resolve`] with an injectable environment (tests cannot set variables safely).
///
/// # Errors
/// As [`resolve`].
pub fn resolve_with_env(
    loaded: &Loaded,
    secrets: SecretMode,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, Vec<Problem>> {
    let (settings, problems) = resolve_all(loaded, secrets, env);
    match settings {
        Some(s) if !problems.iter().any(Problem::is_error) => Ok(s),
        _ => Err(problems),
    }
}

/// Validation plus resolution: the settings when there is no error, and every problem.
pub(crate) fn resolve_all(
    loaded: &Loaded,
    mode: SecretMode,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<Settings>, Vec<Problem>) {
    let problems = super::validate::validate(loaded);
    if problems.iter().any(Problem::is_error) {
        return (None, problems);
    }
    let mut r = Report::new(loaded);
    r.problems = problems;
    let mut ctx = Ctx { r, mode, env };
    let settings = ctx.build(&loaded.config);
    let problems = ctx.r.problems;
    (settings, problems)
}

struct Ctx<'a, 'e> {
    r: Report<'a>,
    mode: SecretMode,
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_, '_> {
    /// One secret from its inline (`${ENV}`-expanded) or file form; `None` when not given or
    /// on error (recorded as a problem naming the key, never the value).
    fn secret(
        &mut self,
        table: &str,
        (inline_key, inline): (&str, Option<&str>),
        (file_key, file): (&str, Option<&Path>),
    ) -> Option<Secret> {
        if self.mode == SecretMode::Skip {
            return (inline.is_some() || file.is_some()).then(|| Secret::new(PLACEHOLDER));
        }
        if let Some(raw) = inline {
            return match expand_env_with(raw, self.env) {
                Ok(v) => Some(Secret::new(v)),
                Err(e) => {
                    self.r.error(format!("{table}.{inline_key}"), e);
                    None
                }
            };
        }
        let path = file?;
        match read_secret_file(path) {
            Ok(v) => Some(Secret::new(v)),
            Err(e) => {
                self.r.error(format!("{table}.{file_key}"), e);
                None
            }
        }
    }

    /// A URL that may hold `${ENV}`; checked after expansion.
    fn url(&mut self, key: &str, raw: &str) -> Option<String> {
        if !raw.contains("${") {
            return Some(raw.trim_end_matches('/').to_string());
        }
        if self.mode == SecretMode::Skip {
            return None;
        }
        let expanded = match expand_env_with(raw, self.env) {
            Ok(v) => v,
            Err(e) => {
                self.r.error(key, e);
                return None;
            }
        };
        match check_url(&expanded) {
            Ok(_) => Some(expanded.trim_end_matches('/').to_string()),
            Err(e) => {
                self.r.error(key, format!("after expanding ${{...}}: {e}"));
                None
            }
        }
    }

    fn file_exists(&mut self, key: &str, path: Option<&Path>) {
        if self.mode == SecretMode::Resolve {
            if let Some(p) = path {
                if !p.is_file() {
                    self.r
                        .error(key, format!("file {} does not exist", p.display()));
                }
            }
        }
    }

    fn build(&mut self, c: &Config) -> Option<Settings> {
        let clouds: Vec<_> = c
            .clouds
            .iter()
            .enumerate()
            .map(|(i, cloud)| self.cloud(c, i, cloud))
            .collect();
        let channels: Vec<_> = c
            .channels
            .iter()
            .enumerate()
            .map(|(i, ch)| self.channel(i, ch))
            .collect();
        let mut images = Vec::with_capacity(c.images.len());
        for (i, img) in c.images.iter().enumerate() {
            match (ImageId::parse(&img.id), cloud_ref(c, img.cloud.as_deref())) {
                (Ok(id), Ok(cloud)) => images.push(WatchedImage {
                    id,
                    cloud,
                    labels: img.labels.clone(),
                    channels: img.channels.clone(),
                }),
                (Err(e), _) | (_, Err(e)) => self.r.error(format!("images[{i}]"), e),
            }
        }
        let mut discovery = Vec::with_capacity(c.discovery.len());
        for (i, d) in c.discovery.iter().enumerate() {
            match cloud_ref(c, d.cloud.as_deref()) {
                Ok(cloud) => discovery.push(DiscoverySettings {
                    cloud,
                    image_type: d
                        .image_type
                        .clone()
                        .unwrap_or_else(|| "DEDICATED".to_string()),
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    workspace_id: d.workspace_id.clone(),
                    refresh: d.refresh,
                    labels: d.labels.clone(),
                    channels: d.channels.clone(),
                }),
                Err(e) => self.r.error(format!("discovery[{i}].cloud"), e),
            }
        }
        self.file_exists("web.tls_cert_file", c.web.tls_cert_file.as_deref());
        self.file_exists("web.tls_key_file", c.web.tls_key_file.as_deref());
        let schedule = match &c.poll.schedule {
            Some(s) => Schedule::Cron(s.clone()),
            None => Schedule::Interval(c.poll.interval.unwrap_or(DEFAULT_INTERVAL)),
        };
        let state_dir = (self.env)("STATE_DIRECTORY");
        Some(Settings {
            clouds: clouds.into_iter().collect::<Option<Vec<_>>>()?,
            images,
            discovery,
            poll: PollSettings {
                schedule,
                timeout: c.poll.timeout,
                concurrency: c.poll.concurrency,
            },
            alerts: c.alerts.clone(),
            channels: channels.into_iter().collect::<Option<Vec<_>>>()?,
            web: c.web.clone(),
            state_path: state_path(c.state.path.as_deref(), state_dir.as_deref()),
            shard: None,
        })
    }

    fn cloud(&mut self, c: &Config, i: usize, cloud: &CloudConfig) -> Option<CloudSettings> {
        let k = format!("clouds[{i}]");
        let region = Region::parse(&cloud.region).ok()?;
        let project_id = match &cloud.project_id {
            Some(p) => Some(ProjectId::parse(p).ok()?),
            None => None,
        };
        let (default_ep, default_iam) = default_endpoints(cloud.provider, region.as_str());
        let endpoint = match &cloud.endpoint {
            Some(raw) => self.url(&format!("{k}.endpoint"), raw),
            None => Some(default_ep.clone()),
        }
        .unwrap_or(default_ep);
        let iam_endpoint = match &cloud.iam_endpoint {
            Some(raw) => self.url(&format!("{k}.iam_endpoint"), raw),
            None => Some(default_iam.clone()),
        }
        .unwrap_or(default_iam);
        self.file_exists(&format!("{k}.ca_file"), cloud.ca_file.as_deref());
        let auth = &cloud.auth;
        let table = format!("{k}.auth");
        let credentials = match auth.kind {
            AuthType::Aksk => {
                let secret_key = self.secret(
                    &table,
                    ("secret_key", auth.secret_key.as_deref()),
                    ("secret_key_file", auth.secret_key_file.as_deref()),
                );
                let security_token = self.secret(
                    &table,
                    ("security_token", auth.security_token.as_deref()),
                    ("security_token_file", auth.security_token_file.as_deref()),
                );
                Credentials::AkSk {
                    access_key: auth.access_key.clone().unwrap_or_default(),
                    secret_key: secret_key?,
                    security_token,
                }
            }
            AuthType::Password => {
                let password = self.secret(
                    &table,
                    ("password", auth.password.as_deref()),
                    ("password_file", auth.password_file.as_deref()),
                );
                let scope = match (&project_id, &auth.project_name) {
                    (Some(id), _) => ProjectScope::Id(id.clone()),
                    (None, Some(name)) => ProjectScope::Name(name.clone()),
                    (None, None) => return None,
                };
                Credentials::Password {
                    user: auth.user.clone().unwrap_or_default(),
                    password: password?,
                    domain: auth.domain.clone().unwrap_or_default(),
                    scope,
                }
            }
        };
        Some(CloudSettings {
            name: cloud_name(cloud).to_string(),
            region,
            endpoint,
            iam_endpoint,
            project_id,
            ca_file: cloud.ca_file.clone(),
            credentials,
            max_requests_per_second: cloud
                .max_requests_per_second
                .or(c.poll.max_requests_per_second)
                .unwrap_or(DEFAULT_REQUESTS_PER_SECOND),
            timeout: c.poll.timeout,
        })
    }

    /// A channel URL: a secret (chat URLs embed tokens), checked after resolution.
    fn channel_url(&mut self, k: &str, ch: &ChannelConfig) -> Option<Secret> {
        let from_file = ch.url_file.is_some();
        let needs_check = from_file || ch.url.as_deref().is_some_and(|u| u.contains("${"));
        if self.mode == SecretMode::Skip {
            return Some(Secret::new(match &ch.url {
                Some(u) if !needs_check => u.trim_end_matches('/').to_string(),
                _ => PLACEHOLDER_URL.to_string(),
            }));
        }
        let url = self.secret(
            k,
            ("url", ch.url.as_deref()),
            ("url_file", ch.url_file.as_deref()),
        )?;
        if needs_check {
            if let Err(e) = check_url(url.expose()) {
                let key = if from_file { "url_file" } else { "url" };
                self.r
                    .error(format!("{k}.{key}"), format!("the resolved URL {e}"));
                return None;
            }
        }
        Some(Secret::new(url.expose().trim_end_matches('/')))
    }

    fn channel(&mut self, i: usize, ch: &ChannelConfig) -> Option<ChannelSettings> {
        let k = format!("channels[{i}]");
        self.file_exists(&format!("{k}.ca_file"), ch.ca_file.as_deref());
        let chat = matches!(
            ch.format,
            Some(
                WebhookFormat::Slack
                    | WebhookFormat::Teams
                    | WebhookFormat::Feishu
                    | WebhookFormat::Dingtalk
                    | WebhookFormat::Wecom
            )
        );
        let kind = match ch.kind {
            ChannelType::Email => {
                let (host, port) = split_smtp(ch.smtp.as_deref()?).ok()?;
                let password = self.secret(
                    &k,
                    ("password", ch.password.as_deref()),
                    ("password_file", ch.password_file.as_deref()),
                );
                let password_given = ch.password.is_some() || ch.password_file.is_some();
                if password_given && password.is_none() {
                    return None;
                }
                ChannelKind::Email(EmailSettings {
                    host,
                    port,
                    tls: ch.tls.unwrap_or(if port == 465 {
                        SmtpTls::Tls
                    } else {
                        SmtpTls::Starttls
                    }),
                    from: ch.from.clone()?,
                    to: ch.to.clone(),
                    username: ch.username.clone(),
                    password,
                })
            }
            ChannelType::Webhook => {
                let url = self.channel_url(&k, ch);
                let secret = self.secret(
                    &k,
                    ("secret", ch.secret.as_deref()),
                    ("secret_file", ch.secret_file.as_deref()),
                );
                ChannelKind::Webhook(WebhookSettings {
                    url: url?,
                    format: ch.format.unwrap_or(WebhookFormat::Json),
                    secret,
                })
            }
            ChannelType::Alertmanager => ChannelKind::Alertmanager(AlertmanagerSettings {
                url: self.channel_url(&k, ch)?,
            }),
        };
        Some(ChannelSettings {
            name: ch.name.clone(),
            max_per_minute: ch.max_per_minute.unwrap_or(if chat { 20 } else { 60 }),
            timeout: ch.timeout.unwrap_or(DEFAULT_CHANNEL_TIMEOUT),
            ca_file: ch.ca_file.clone(),
            kind,
        })
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
