//! Semantic checks of `[[channels]]`: names, keys that fit the type, addresses and URLs.
//! Pure; part of `validate`. Messages never echo URLs or secrets.

use super::urls::{check_url, is_loopback_host};
use super::validate::Report;
use super::validate_clouds::one_secret;
use super::{ChannelConfig, ChannelType, Config, SmtpTls, WebhookFormat};

/// Splits `host:port` (IPv6 in brackets).
///
/// # Errors
/// What would be valid.
pub fn split_smtp(raw: &str) -> Result<(String, u16), String> {
    let bad = || format!("smtp {raw:?} must be host:port, e.g. \"smtp.example.com:587\"");
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn kind_name(t: ChannelType) -> &'static str {
    match t {
        ChannelType::Email => "email",
        ChannelType::Webhook => "webhook",
        ChannelType::Alertmanager => "alertmanager",
    }
}

/// Keys set on `ch` that its type does not use, with the type(s) they belong to.
fn foreign_keys(ch: &ChannelConfig) -> Vec<(&'static str, &'static str)> {
    let email = [
        ("smtp", ch.smtp.is_some()),
        ("tls", ch.tls.is_some()),
        ("from", ch.from.is_some()),
        ("to", !ch.to.is_empty()),
        ("username", ch.username.is_some()),
        ("password", ch.password.is_some()),
        ("password_file", ch.password_file.is_some()),
    ];
    let webhook_only = [
        ("format", ch.format.is_some()),
        ("secret", ch.secret.is_some()),
        ("secret_file", ch.secret_file.is_some()),
    ];
    let url = [
        ("url", ch.url.is_some()),
        ("url_file", ch.url_file.is_some()),
    ];
    let mut out = Vec::new();
    let mut add = |set: &[(&'static str, bool)], owner: &'static str| {
        out.extend(set.iter().filter(|(_, on)| *on).map(|(k, _)| (*k, owner)));
    };
    match ch.kind {
        ChannelType::Email => {
            add(&url, "webhook and alertmanager");
            add(&webhook_only, "webhook");
        }
        ChannelType::Webhook => add(&email, "email"),
        ChannelType::Alertmanager => {
            add(&email, "email");
            add(&webhook_only, "webhook");
        }
    }
    out
}

pub(crate) fn channels(r: &mut Report<'_>, c: &Config) {
    for (i, ch) in c.channels.iter().enumerate() {
        let k = format!("channels[{i}]");
        if ch.name.trim().is_empty() {
            r.error(format!("{k}.name"), "name is empty");
        } else if let Some(j) = c.channels[..i].iter().position(|o| o.name == ch.name) {
            r.error(
                format!("{k}.name"),
                format!(
                    "duplicate channel name {:?} (also channels[{j}]); names must be unique",
                    ch.name
                ),
            );
        }
        let this = kind_name(ch.kind);
        for (key, owner) in foreign_keys(ch) {
            r.error(
                format!("{k}.{key}"),
                format!("{key} belongs to type = {owner}, but this channel is type = \"{this}\""),
            );
        }
        if ch.max_per_minute == Some(0) {
            r.error(
                format!("{k}.max_per_minute"),
                "max_per_minute must be at least 1",
            );
        }
        if ch.timeout.is_some_and(|t| t.is_zero()) {
            r.error(
                format!("{k}.timeout"),
                "timeout must be above 0 (e.g. \"10s\")",
            );
        }
        match ch.kind {
            ChannelType::Email => email(r, &k, ch),
            ChannelType::Webhook => {
                url(r, &k, ch);
                let format = ch.format.unwrap_or(WebhookFormat::Json);
                let signed = matches!(
                    format,
                    WebhookFormat::Json | WebhookFormat::Feishu | WebhookFormat::Dingtalk
                );
                let has_secret = ch.secret.is_some() || ch.secret_file.is_some();
                if has_secret && !signed {
                    let key = if ch.secret.is_some() {
                        "secret"
                    } else {
                        "secret_file"
                    };
                    r.error(
                        format!("{k}.{key}"),
                        "a signing secret is used only with format = \"json\", \"feishu\" or \"dingtalk\"",
                    );
                }
                one_secret(
                    r,
                    &k,
                    ("secret", ch.secret.is_some()),
                    ("secret_file", ch.secret_file.is_some()),
                    false,
                );
            }
            ChannelType::Alertmanager => url(r, &k, ch),
        }
    }
}

fn url(r: &mut Report<'_>, k: &str, ch: &ChannelConfig) {
    one_secret(
        r,
        k,
        ("url", ch.url.is_some()),
        ("url_file", ch.url_file.is_some()),
        true,
    );
    if let Some(u) = &ch.url {
        if !u.contains("${") {
            if let Err(e) = check_url(u) {
                r.error(format!("{k}.url"), e);
            }
        }
    }
}

/// An address lettre accepts: `a@b.example` or `Name <a@b.example>`.
fn check_address(raw: &str) -> Result<(), String> {
    raw.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("{raw:?} is not an e-mail address ({e}); write \"user@example.com\" or \"Name <user@example.com>\""))
}

fn email(r: &mut Report<'_>, k: &str, ch: &ChannelConfig) {
    let host = match ch.smtp.as_deref().map(split_smtp) {
        None => {
            r.error(
                format!("{k}.smtp"),
                "smtp (host:port) is required for type = \"email\"",
            );
            None
        }
        Some(Err(e)) => {
            r.error(format!("{k}.smtp"), e);
            None
        }
        Some(Ok((host, _))) => Some(host),
    };
    match &ch.from {
        None => r.error(format!("{k}.from"), "from is required for type = \"email\""),
        Some(f) => {
            if let Err(e) = check_address(f) {
                r.error(format!("{k}.from"), e);
            }
        }
    }
    if ch.to.is_empty() {
        r.error(format!("{k}.to"), "to must list at least one address");
    }
    for (j, to) in ch.to.iter().enumerate() {
        if let Err(e) = check_address(to) {
            r.error(format!("{k}.to[{j}]"), e);
        }
    }
    one_secret(
        r,
        k,
        ("password", ch.password.is_some()),
        ("password_file", ch.password_file.is_some()),
        false,
    );
    let has_password = ch.password.is_some() || ch.password_file.is_some();
    if has_password && ch.username.is_none() {
        r.error(
            format!("{k}.username"),
            "a password is set but no username; set both or neither",
        );
    }
    if ch.username.is_some() && !has_password {
        r.error(
            format!("{k}.password_file"),
            "username is set but no password; set password_file (or password) too",
        );
    }
    if has_password
        && ch.tls == Some(SmtpTls::None)
        && host.as_deref().is_some_and(|h| !is_loopback_host(h))
    {
        r.error(
            format!("{k}.tls"),
            "tls = \"none\" would send the SMTP password in plain text; use \"starttls\" or \"tls\" (\"none\" is for a local relay on loopback)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_host_port() {
        assert_eq!(
            split_smtp("smtp.example.com:587").unwrap(),
            ("smtp.example.com".to_string(), 587)
        );
        assert_eq!(split_smtp("[::1]:25").unwrap(), ("::1".to_string(), 25));
        assert!(split_smtp("smtp.example.com").is_err());
        assert!(split_smtp(":25").is_err());
        assert!(split_smtp("h:0").is_err());
        assert!(split_smtp("h:99999").is_err());
    }

    #[test]
    fn addresses() {
        assert!(check_address("a@example.com").is_ok());
        assert!(check_address("On Call <a@example.com>").is_ok());
        assert!(check_address("not an address").is_err());
        assert!(check_address("a@").is_err());
    }
}
