//! Email delivery over SMTP (lettre, tokio, rustls): builds a multipart plain text + HTML
//! message and sends it. Credentials never travel over plain text: with auth, `none` is refused
//! and STARTTLS is required, never opportunistic.

use std::fmt::Write as _;

use anyhow::Context as _;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{DeliveryError, text};
use crate::alert::Notification;
use crate::config::SmtpTls;
use crate::config::settings::{ChannelSettings, EmailSettings};

/// One SMTP relay and its recipients.
pub(super) struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// `host:port`, for error messages (not a secret).
    relay: String,
}

impl EmailChannel {
    pub(super) fn new(settings: &ChannelSettings, email: &EmailSettings) -> anyhow::Result<Self> {
        let name = &settings.name;
        let from: Mailbox = email.from.parse().with_context(|| {
            format!("channel {name}: `from` {:?} is not an address", email.from)
        })?;
        let to = email
            .to
            .iter()
            .map(|a| {
                a.parse::<Mailbox>()
                    .with_context(|| format!("channel {name}: `to` {a:?} is not an address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!to.is_empty(), "channel {name}: `to` lists no recipient");
        let auth = match (&email.username, &email.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            (None, None) => None,
            _ => anyhow::bail!("channel {name}: give both `username` and `password`, or neither"),
        };
        let tls = match email.tls {
            SmtpTls::None => {
                anyhow::ensure!(
                    auth.is_none(),
                    "channel {name}: SMTP auth over tls = \"none\" would send the password in plain text; use starttls or tls"
                );
                Tls::None
            }
            SmtpTls::Starttls => Tls::Required(tls_parameters(settings, &email.host)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(settings, &email.host)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
            .port(email.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some(credentials) = auth {
            builder = builder.credentials(credentials);
        }
        Ok(Self {
            transport: builder.build(),
            from,
            to,
            relay: format!("{}:{}", email.host, email.port),
        })
    }

    pub(super) async fn send(&self, batch: &[Notification]) -> Result<(), DeliveryError> {
        let message = self.message(batch).map_err(|e| DeliveryError {
            permanent: true,
            message: format!("cannot build the email: {e}"),
            retry_after: None,
        })?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| DeliveryError {
                // 5xx replies are permanent; 4xx, timeouts, connection and TLS trouble transient.
                permanent: e.is_permanent(),
                message: format!("SMTP {}: {e}", self.relay),
                retry_after: None,
            })
    }

    fn message(&self, batch: &[Notification]) -> Result<Message, lettre::error::Error> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(text::headline(batch));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder.multipart(MultiPart::alternative_plain_html(
            text::plain(batch),
            html(batch),
        ))
    }
}

fn tls_parameters(settings: &ChannelSettings, host: &str) -> anyhow::Result<TlsParameters> {
    // lettre picks the process-wide rustls provider when one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).with_context(|| {
            format!(
                "channel {}: cannot read ca_file {}",
                settings.name,
                path.display()
            )
        })?;
        let cert = Certificate::from_pem(&pem).with_context(|| {
            format!(
                "channel {}: ca_file {} is not a PEM certificate",
                settings.name,
                path.display()
            )
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .with_context(|| format!("channel {}: cannot set up TLS", settings.name))
}

pub use crate::text::html_escape;

/// The HTML part: the headline, then one table of fields per notification. Everything is
/// escaped (names and messages come from the cloud).
pub fn html(batch: &[Notification]) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>{}</h2>",
        html_escape(&text::headline(batch))
    );
    for n in batch {
        let _ = write!(
            out,
            "<h3>{}</h3><table cellpadding=\"3\">",
            html_escape(&n.summary)
        );
        for (label, value) in text::fields(n) {
            let _ = write!(
                out,
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                html_escape(label),
                html_escape(&value)
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::channel::text::tests::firing;

    #[test]
    fn html_escapes_cloud_text() {
        let mut n = firing();
        n.image_name = Some("<script>alert(1)</script>".into());
        n.summary = "ModelArts image <script> is ERROR".into();
        let page = html(&[n]);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("build &lt;failed&gt; &amp; &quot;stopped&quot;"));
        assert!(page.contains("278e88d1-5b71-4766-8502-b3ba72e824d9-7"));
    }
}
