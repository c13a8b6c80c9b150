//! HTTP plumbing shared by webhooks and the Alertmanager push: the client (rustls, optional
//! extra CA, no redirects, timeout), one POST, and the classification of its outcome into a
//! [`DeliveryError`]. Must never put a URL beyond `scheme://host/…` into an error.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use reqwest::{StatusCode, Url};

use super::DeliveryError;
use crate::config::settings::ChannelSettings;

/// Largest reply body read (chat tools answer a few bytes of JSON).
const MAX_REPLY: usize = 64 * 1024;

/// `scheme://host/…`: all an error or log may show of a webhook URL (paths and queries of chat
/// webhooks carry tokens; user info carries passwords).
pub fn redact_url(url: &Url) -> String {
    format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("?"))
}

/// Removes from `message` anything of `url` beyond scheme and host (the whole URL, its path,
/// query values, user info), in case a receiver or a library echoes it back.
pub(super) fn scrub(message: &str, url: &Url) -> String {
    let mut secrets: Vec<String> = vec![url.as_str().to_string()];
    if url.path().len() > 1 {
        secrets.push(url.path().to_string());
        secrets.extend(
            url.path_segments()
                .into_iter()
                .flatten()
                .filter(|s| s.len() >= 4)
                .map(str::to_string),
        );
    }
    secrets.extend(
        url.query_pairs()
            .map(|(_, v)| v.into_owned())
            .filter(|v| v.len() >= 4),
    );
    secrets.extend(url.password().map(str::to_string));
    if !url.username().is_empty() {
        secrets.push(url.username().to_string());
    }
    // Longest first, so a path is removed whole before its segments.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for secret in secrets {
        if !secret.is_empty() {
            out = out.replace(&secret, "…");
        }
    }
    out
}

/// Parses a channel URL without ever echoing it.
pub(super) fn parse_url(raw: &str, channel: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw).map_err(|e| {
        anyhow::anyhow!("channel {channel}: the url is not a valid URL ({e}); it is not shown because it may hold a token")
    })?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "channel {channel}: the url must start with http:// or https://"
    );
    Ok(url)
}

/// The reqwest client of one channel.
pub(super) fn client(settings: &ChannelSettings) -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default provider; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .user_agent(concat!(
            "modelarts-image-exporter/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).with_context(|| {
            format!(
                "channel {}: cannot read ca_file {}",
                settings.name,
                path.display()
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
            format!(
                "channel {}: ca_file {} holds no valid PEM certificate",
                settings.name,
                path.display()
            )
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .with_context(|| format!("channel {}: cannot build the HTTP client", settings.name))
}

/// How to judge a 2xx answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyCheck {
    /// Any 2xx is success.
    StatusOnly,
    /// Chat tools answer 200 with `{"code"|"errcode"|"StatusCode": non-zero}` on failure.
    ChatCode,
}

/// Error codes of chat tools that retrying cannot fix (bad signature, unknown token, blocked
/// by the bot's security settings). Other non-zero codes (e.g. rate limits) are transient.
const PERMANENT_CHAT_CODES: &[i64] = &[
    19021,   // feishu: signature mismatch or timestamp out of range
    19022,   // feishu: IP not allowed
    19024,   // feishu: keyword not found
    310_000, // dingtalk: security setting (sign/keyword/IP) not met
    300_001, // dingtalk: token is not exist
    300_005, // dingtalk: token not found
    93000,   // wecom: invalid webhook key
];

/// Sends one request and classifies the outcome: 2xx (and for chat tools a zero code) is
/// success; 408, 429, 5xx and transport errors are transient (honouring `Retry-After`); other
/// 4xx and 3xx (redirects are not followed) are permanent.
pub(super) async fn deliver(
    request: reqwest::RequestBuilder,
    url: &Url,
    check: ReplyCheck,
) -> Result<(), DeliveryError> {
    deliver_unscrubbed(request, url, check)
        .await
        .map_err(|e| DeliveryError {
            message: scrub(&e.message, url),
            ..e
        })
}

async fn deliver_unscrubbed(
    request: reqwest::RequestBuilder,
    url: &Url,
    check: ReplyCheck,
) -> Result<(), DeliveryError> {
    let target = redact_url(url);
    let response = request.send().await.map_err(|e| DeliveryError {
        permanent: false,
        message: format!("POST {target} failed: {}", describe(&e)),
        retry_after: None,
    })?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let body = read_capped(response).await;
    if status.is_success() {
        if check == ReplyCheck::ChatCode {
            chat_code(&body, &target)?;
        }
        return Ok(());
    }
    let transient = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error();
    let detail = String::from_utf8_lossy(&body);
    let detail = super::text::truncate(detail.trim(), 200);
    Err(DeliveryError {
        permanent: !transient,
        message: format!("POST {target} answered {status}: {detail}"),
        retry_after: if transient { retry_after } else { None },
    })
}

async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_REPLY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_REPLY {
            break;
        }
    }
    body
}

/// A reqwest error with its causes, without the URL.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut out = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Judges a chat tool's 200 answer by its `code` / `errcode` / `StatusCode`.
fn chat_code(body: &[u8], target: &str) -> Result<(), DeliveryError> {
    let Ok(serde_json::Value::Object(reply)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        // Slack answers `ok` as text, Teams an empty 202: a non-JSON 2xx is success.
        return Ok(());
    };
    for field in ["code", "errcode", "StatusCode"] {
        let Some(code) = reply.get(field).and_then(serde_json::Value::as_i64) else {
            continue;
        };
        if code == 0 {
            return Ok(());
        }
        let msg = ["msg", "errmsg", "StatusMessage"]
            .iter()
            .find_map(|k| reply.get(*k).and_then(serde_json::Value::as_str))
            .unwrap_or("");
        return Err(DeliveryError {
            permanent: PERMANENT_CHAT_CODES.contains(&code),
            message: format!(
                "POST {target} answered 200 with {field} {code}: {}",
                super::text::truncate(msg, 200)
            ),
            retry_after: None,
        });
    }
    Ok(())
}

/// `Retry-After` as seconds or an HTTP date, relative to `now`.
pub(super) fn retry_after(
    headers: &reqwest::header::HeaderMap,
    now: SystemTime,
) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn redaction_keeps_only_scheme_and_host() {
        let url =
            Url::parse("https://user:pw@oapi.dingtalk.com:8443/robot/send?access_token=SECRET")
                .unwrap();
        assert_eq!(redact_url(&url), "https://oapi.dingtalk.com/…");
        let err = parse_url("not a url SECRET", "c").unwrap_err().to_string();
        assert!(!err.contains("SECRET"), "{err}");
        let echoed = scrub(
            "bad token SECRET at https://user:pw@oapi.dingtalk.com:8443/robot/send?access_token=SECRET",
            &url,
        );
        assert!(
            !echoed.contains("SECRET") && !echoed.contains("robot/send"),
            "{echoed}"
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
    }

    #[test]
    fn chat_codes() {
        assert!(chat_code(br#"{"errcode":0,"errmsg":"ok"}"#, "t").is_ok());
        assert!(chat_code(br#"{"StatusCode":0,"code":0}"#, "t").is_ok());
        assert!(chat_code(b"ok", "t").is_ok());
        let e = chat_code(br#"{"errcode":310000,"errmsg":"sign not match"}"#, "t").unwrap_err();
        assert!(
            e.permanent && e.message.contains("310000") && e.message.contains("sign not match")
        );
        let e = chat_code(br#"{"code":11232,"msg":"frequency limited"}"#, "t").unwrap_err();
        assert!(!e.permanent);
    }
}
