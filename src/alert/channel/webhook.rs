//! Webhook delivery: renders the body in the channel's format, signs it fresh for this attempt
//! (Standard Webhooks for `json`, bot signing for Feishu/DingTalk) and POSTs it. The URL and the
//! secret never leave this module except inside the request.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::header::CONTENT_TYPE;

use super::http::{self, ReplyCheck};
use super::{DeliveryError, chat, chat_sign, formats, stdwebhooks};
use crate::alert::Notification;
use crate::config::{Secret, WebhookFormat};

/// One webhook target.
pub(super) struct WebhookChannel {
    pub(super) client: reqwest::Client,
    pub(super) url: Url,
    pub(super) format: WebhookFormat,
    pub(super) secret: Option<Secret>,
    /// Channel name: the Alertmanager payload's `receiver`.
    pub(super) receiver: String,
}

/// A rendered, signed request: everything but the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Renders and signs one message for `format` at time `now` (fresh per attempt). Pure.
pub fn prepare(
    format: WebhookFormat,
    url: &Url,
    secret: Option<&str>,
    receiver: &str,
    batch: &[Notification],
    now: SystemTime,
) -> Prepared {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let millis = i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX);
    let mut url = url.clone();
    let mut headers = Vec::new();
    let value = match format {
        WebhookFormat::Json => formats::json(batch),
        WebhookFormat::Alertmanager => formats::alertmanager(batch, receiver),
        WebhookFormat::Slack => chat::slack(batch),
        WebhookFormat::Teams => chat::teams(batch),
        WebhookFormat::Feishu => {
            let sign = secret.map(|s| chat_sign::feishu_sign(s, seconds));
            chat::feishu(batch, sign.as_deref().map(|s| (seconds, s)))
        }
        WebhookFormat::Dingtalk => {
            if let Some(secret) = secret {
                url.query_pairs_mut()
                    .append_pair("timestamp", &millis.to_string())
                    .append_pair("sign", &chat_sign::dingtalk_sign(secret, millis));
            }
            chat::dingtalk(batch)
        }
        WebhookFormat::Wecom => chat::wecom(batch),
    };
    let body = serde_json::to_vec(&value).unwrap_or_default();
    if format == WebhookFormat::Json {
        if let Some(secret) = secret {
            let id = formats::message_id(batch);
            headers.extend(stdwebhooks::headers(secret, &id, seconds, &body));
        }
    }
    Prepared { url, headers, body }
}

/// Whether a format's 200 answers carry an error code to check.
fn reply_check(format: WebhookFormat) -> ReplyCheck {
    match format {
        WebhookFormat::Json | WebhookFormat::Alertmanager => ReplyCheck::StatusOnly,
        WebhookFormat::Slack
        | WebhookFormat::Teams
        | WebhookFormat::Feishu
        | WebhookFormat::Dingtalk
        | WebhookFormat::Wecom => ReplyCheck::ChatCode,
    }
}

impl WebhookChannel {
    pub(super) async fn send(&self, batch: &[Notification]) -> Result<(), DeliveryError> {
        let prepared = prepare(
            self.format,
            &self.url,
            self.secret.as_ref().map(Secret::expose),
            &self.receiver,
            batch,
            SystemTime::now(),
        );
        let mut request = self
            .client
            .post(prepared.url)
            .header(CONTENT_TYPE, "application/json")
            .body(prepared.body);
        for (name, value) in prepared.headers {
            request = request.header(name, value);
        }
        // Classify against the configured URL (the signed one only adds query parameters).
        http::deliver(request, &self.url, reply_check(self.format)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::channel::text::tests::firing;
    use std::time::Duration;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(seconds * 1000 + 123)
    }

    #[test]
    fn json_signed_headers_verify() {
        let url = Url::parse("https://hooks.example.com/x").unwrap();
        let p = prepare(
            WebhookFormat::Json,
            &url,
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "r",
            &[firing()],
            at(1_614_265_330),
        );
        assert_eq!(p.headers[0], ("webhook-id", firing().event_id));
        assert_eq!(
            p.headers[1],
            ("webhook-timestamp", "1614265330".to_string())
        );
        let expected = stdwebhooks::signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &firing().event_id,
            1_614_265_330,
            &p.body,
        );
        assert_eq!(p.headers[2], ("webhook-signature", expected));
        let unsigned = prepare(WebhookFormat::Json, &url, None, "r", &[firing()], at(1));
        assert!(unsigned.headers.is_empty());
        assert_eq!(
            unsigned.body, p.body,
            "the body does not depend on time or signing"
        );
    }

    #[test]
    fn dingtalk_signs_the_url_and_feishu_the_body() {
        let url = Url::parse("https://oapi.dingtalk.com/robot/send?access_token=T").unwrap();
        let p = prepare(
            WebhookFormat::Dingtalk,
            &url,
            Some("SEC0123456789abcdef"),
            "r",
            &[firing()],
            at(1_700_000_000),
        );
        let pairs: Vec<(String, String)> = p
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs[0], ("access_token".into(), "T".into()));
        assert_eq!(pairs[1], ("timestamp".into(), "1700000000123".into()));
        assert_eq!(
            pairs[2].1,
            chat_sign::dingtalk_sign("SEC0123456789abcdef", 1_700_000_000_123)
        );

        let url = Url::parse("https://open.feishu.cn/open-apis/bot/v2/hook/T").unwrap();
        let p = prepare(
            WebhookFormat::Feishu,
            &url,
            Some("s"),
            "r",
            &[firing()],
            at(1_599_360_473),
        );
        let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(body["timestamp"], "1599360473");
        assert_eq!(body["sign"], chat_sign::feishu_sign("s", 1_599_360_473));
        assert_eq!(p.url, url);
    }
}
