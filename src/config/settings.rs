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
    /// `--shard=i/n`: watch only this instance's share of the fleet.
    pub shard: Option<Shard>,
}

/// One instance's share of the fleet (`--shard=i/n`, 0-based): the images whose id hashes to
/// `index` modulo `count`. The hash is FNV-1a 64 of the id's bytes, fixed across versions so a
/// fleet split does not move when the binary is upgraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether this shard watches `id`.
    pub fn owns(&self, id: &str) -> bool {
        fnv1a64(id.as_bytes()) % u64::from(self.count.max(1)) == u64::from(self.index)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("--shard wants I/N with 0 <= I < N (e.g. 0/2, 1/2), got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

/// FNV-1a, 64 bit: tiny, stable, and good enough to spread UUIDs evenly.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_published_function() {
        // Published FNV-1a 64 test values.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_partition_the_fleet() {
        let shards: Vec<Shard> = (0..3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        let ids: Vec<String> = (0..300)
            .map(|i| format!("{i:08x}-0000-4000-8000-000000000000"))
            .collect();
        let mut sizes = [0usize; 3];
        for id in &ids {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(id)).collect();
            assert_eq!(owners.len(), 1, "exactly one shard owns {id}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 60), "roughly even: {sizes:?}");
        assert!("3/3".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
    }
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
