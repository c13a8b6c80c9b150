//! Notification channels: email (SMTP), webhooks in several formats, and the Alertmanager push.
//! A [`Channel`] delivers one message per call and classifies failures; it does not queue,
//! retry, group or rate-limit (the outbox does), and it never puts a secret or a full webhook
//! URL into an error.

pub mod alertmanager;
pub mod chat;
pub mod chat_sign;
mod email;
pub mod formats;
mod http;
pub mod stdwebhooks;
pub mod text;
pub mod webhook;

use std::fmt;
use std::time::Duration;

pub use alertmanager::{AmAlert, am_alert};
pub use email::{html, html_escape};
pub use http::redact_url;

use crate::alert::Notification;
use crate::config::settings::{ChannelKind, ChannelSettings};

/// Why a delivery failed. The message is safe to log: no secret, no webhook URL beyond
/// `scheme://host/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Retrying cannot help (4xx other than 408/429, SMTP 5xx, bad signature or token): the
    /// outbox should drop the message (counted and logged) instead of retrying until `max_age`.
    pub permanent: bool,
    pub message: String,
    /// The receiver's `Retry-After`, when it gave one on a transient failure.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.permanent {
            "permanent"
        } else {
            "transient"
        };
        write!(f, "{kind} delivery failure: {}", self.message)
    }
}

impl std::error::Error for DeliveryError {}

enum Inner {
    Email(email::EmailChannel),
    Webhook(webhook::WebhookChannel),
    Alertmanager(alertmanager::AlertmanagerChannel),
}

/// One configured channel, ready to deliver.
pub struct Channel {
    name: String,
    max_per_minute: u32,
    inner: Inner,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Email(_) => "email",
            Inner::Webhook(_) => "webhook",
            Inner::Alertmanager(_) => "alertmanager",
        };
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Builds the channel's client (reqwest with rustls, the channel's `ca_file`, no redirects,
    /// its timeout) or SMTP transport. Reads `ca_file`; does not connect.
    pub fn new(settings: &ChannelSettings) -> anyhow::Result<Channel> {
        let inner = match &settings.kind {
            ChannelKind::Email(email) => Inner::Email(email::EmailChannel::new(settings, email)?),
            ChannelKind::Webhook(hook) => Inner::Webhook(webhook::WebhookChannel {
                client: http::client(settings)?,
                url: http::parse_url(hook.url.expose(), &settings.name)?,
                format: hook.format,
                secret: hook.secret.clone(),
                receiver: settings.name.clone(),
            }),
            ChannelKind::Alertmanager(am) => {
                let base = http::parse_url(am.url.expose(), &settings.name)?;
                Inner::Alertmanager(alertmanager::AlertmanagerChannel::new(
                    http::client(settings)?,
                    &base,
                ))
            }
        };
        Ok(Channel {
            name: settings.name.clone(),
            max_per_minute: settings.max_per_minute,
            inner,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages per minute this channel may send (the outbox enforces it).
    pub fn max_per_minute(&self) -> u32 {
        self.max_per_minute
    }

    /// Whether this is an Alertmanager channel (synced with [`Channel::push`], not `send`).
    pub fn is_alertmanager(&self) -> bool {
        matches!(self.inner, Inner::Alertmanager(_))
    }

    /// Delivers one message: a batch of one is a single notification, a longer batch ONE
    /// grouped message (the caller decides when to group). Signatures and timestamps are made
    /// fresh on every call.
    pub async fn send(&self, batch: &[Notification]) -> Result<(), DeliveryError> {
        if batch.is_empty() {
            return Ok(());
        }
        match &self.inner {
            Inner::Email(email) => email.send(batch).await,
            Inner::Webhook(hook) => hook.send(batch).await,
            Inner::Alertmanager(_) => Err(self.wrong_kind("send", "push")),
        }
    }

    /// Alertmanager channels only: `POST {url}/api/v2/alerts` with `alerts`.
    pub async fn push(&self, alerts: &[AmAlert]) -> Result<(), DeliveryError> {
        match &self.inner {
            Inner::Alertmanager(am) => am.push(alerts).await,
            _ => Err(self.wrong_kind("push", "send")),
        }
    }

    fn wrong_kind(&self, called: &str, use_instead: &str) -> DeliveryError {
        DeliveryError {
            permanent: true,
            message: format!(
                "channel {}: `{called}` is not supported by this channel kind; use `{use_instead}`",
                self.name
            ),
            retry_after: None,
        }
    }
}
