//! Webhook bodies for chat tools: Slack, Microsoft Teams (Workflows adaptive card), Feishu/Lark,
//! DingTalk, WeCom. Pure renderers: no I/O, no clock (Feishu's signature is passed in).
//! Everything from the cloud is escaped for the target's markup.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::text;
use crate::alert::Notification;

/// At most this many notifications are detailed in one grouped chat message; the rest are
/// counted (chat tools cap message sizes).
pub const MAX_DETAILED: usize = 20;

/// Fields worth showing in a chat (absent ones are left out; the summary is the title).
fn chat_fields(n: &Notification) -> Vec<(&'static str, String)> {
    text::fields(n)
        .into_iter()
        .filter(|(label, value)| *label != "Summary" && value != "-")
        .collect()
}

fn more_line(batch: &[Notification]) -> Option<String> {
    (batch.len() > MAX_DETAILED).then(|| format!("… and {} more", batch.len() - MAX_DETAILED))
}

/// Slack `mrkdwn` escaping (`&`, `<`, `>`), which also disarms `<!channel>` style mentions.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Markdown escaping for DingTalk/WeCom: backslash before markup characters.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '~' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Markdown for DingTalk/WeCom: the headline, then a bold title and a field list per
/// notification.
fn markdown(batch: &[Notification]) -> String {
    let mut out = format!("### {}\n", md_escape(&text::headline(batch)));
    for n in batch.iter().take(MAX_DETAILED) {
        if batch.len() > 1 {
            let _ = write!(out, "\n**{}**\n", md_escape(&n.summary));
        }
        for (label, value) in chat_fields(n) {
            let _ = writeln!(out, "> {label}: {}", md_escape(&value));
        }
    }
    if let Some(more) = more_line(batch) {
        let _ = write!(out, "\n{more}\n");
    }
    out
}

/// Slack incoming webhook: `{"text": headline, "blocks": [header, section per notification]}`.
pub fn slack(batch: &[Notification]) -> Value {
    let headline = text::headline(batch);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": text::truncate(&headline, 150)}
    })];
    for n in batch.iter().take(MAX_DETAILED) {
        let mut body = String::new();
        if batch.len() > 1 {
            let _ = writeln!(body, "*{}*", slack_escape(&n.summary));
        }
        for (label, value) in chat_fields(n) {
            let _ = writeln!(body, "*{label}:* {}", slack_escape(&value));
        }
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": text::truncate(&body, 3000)}
        }));
    }
    if let Some(more) = more_line(batch) {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
    }
    json!({"text": slack_escape(&headline), "blocks": blocks})
}

/// Teams via Power Automate Workflows: a message with one Adaptive Card 1.4 attachment.
pub fn teams(batch: &[Notification]) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": text::headline(batch), "weight": "Bolder",
        "size": "Medium", "wrap": true
    })];
    for n in batch.iter().take(MAX_DETAILED) {
        if batch.len() > 1 {
            body.push(json!({
                "type": "TextBlock", "text": n.summary, "weight": "Bolder",
                "wrap": true, "separator": true
            }));
        }
        let facts: Vec<Value> = chat_fields(n)
            .into_iter()
            .map(|(title, value)| json!({"title": title, "value": value}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    if let Some(more) = more_line(batch) {
        body.push(json!({"type": "TextBlock", "text": more, "wrap": true}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body
            }
        }]
    })
}

/// Feishu/Lark custom bot, plain text message. `signed` = `(timestamp_seconds, sign)` when the
/// bot has signing on.
pub fn feishu(batch: &[Notification], signed: Option<(i64, &str)>) -> Value {
    let mut msg = text::plain(&batch[..batch.len().min(MAX_DETAILED)]);
    if batch.len() > MAX_DETAILED {
        msg = format!("{}\n{}", text::headline(batch), msg);
        if let Some(more) = more_line(batch) {
            let _ = write!(msg, "\n{more}\n");
        }
    }
    let mut body = json!({"msg_type": "text", "content": {"text": text::truncate(&msg, 20_000)}});
    if let Some((timestamp, sign)) = signed {
        body["timestamp"] = Value::from(timestamp.to_string());
        body["sign"] = Value::from(sign);
    }
    body
}

/// DingTalk custom robot, markdown message (signing goes into the URL, not the body).
pub fn dingtalk(batch: &[Notification]) -> Value {
    json!({
        "msgtype": "markdown",
        "markdown": {
            "title": text::truncate(&text::headline(batch), 64),
            "text": text::truncate(&markdown(batch), 18_000)
        }
    })
}

/// WeCom group robot, markdown message (content is capped at 4096 bytes by WeCom).
pub fn wecom(batch: &[Notification]) -> Value {
    json!({"msgtype": "markdown", "markdown": {"content": text::truncate(&markdown(batch), 4096)}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::channel::text::tests::firing;

    const REQUIRED: [&str; 6] = [
        "278e88d1-5b71-4766-8502-b3ba72e824d9-7",
        "CREATE_FAILED",
        "pytorch-1.8",
        "otc-prod",
        "2023-11-14T22:13:20.123Z",
        "team=ml-platform",
    ];

    fn assert_all(haystack: &str) {
        for needle in REQUIRED {
            assert!(
                haystack.contains(needle),
                "missing {needle:?} in {haystack}"
            );
        }
    }

    #[test]
    fn slack_shape_and_escaping() {
        let v = slack(&[firing()]);
        assert_eq!(
            v["text"],
            "[FIRING] ModelArts image pytorch-1.8 is CREATE_FAILED"
        );
        assert_eq!(v["blocks"][0]["type"], "header");
        let section = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_all(section);
        assert!(section.contains("build &lt;failed&gt; &amp; \"stopped\""));
        assert!(!section.contains("<failed>"));
        let many = slack(&vec![firing(); 25]);
        assert_eq!(many["text"], "[FIRING] 25 ModelArts images need attention");
        let blocks = many["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1 + MAX_DETAILED + 1);
        assert_eq!(
            blocks.last().unwrap()["elements"][0]["text"],
            "… and 5 more"
        );
    }

    #[test]
    fn teams_is_a_workflows_adaptive_card() {
        let v = teams(&[firing()]);
        assert_eq!(v["type"], "message");
        let att = &v["attachments"][0];
        assert_eq!(
            att["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(att["content"]["type"], "AdaptiveCard");
        assert_eq!(att["content"]["version"], "1.4");
        assert_eq!(
            att["content"]["body"][0]["text"],
            "[FIRING] ModelArts image pytorch-1.8 is CREATE_FAILED"
        );
        assert_all(&att["content"]["body"][1]["facts"].to_string());
    }

    #[test]
    fn feishu_text_with_and_without_sign() {
        let v = feishu(&[firing()], None);
        assert_eq!(v["msg_type"], "text");
        assert!(v.get("sign").is_none());
        assert_all(v["content"]["text"].as_str().unwrap());
        let v = feishu(&[firing()], Some((1_599_360_473, "SIG")));
        assert_eq!(v["timestamp"], "1599360473");
        assert_eq!(v["sign"], "SIG");
    }

    #[test]
    fn dingtalk_and_wecom_markdown() {
        let d = dingtalk(&[firing()]);
        assert_eq!(d["msgtype"], "markdown");
        assert_eq!(
            d["markdown"]["title"],
            "[FIRING] ModelArts image pytorch-1.8 is CREATE_FAILED"
        );
        let text = d["markdown"]["text"].as_str().unwrap();
        assert!(text.contains(r"build \<failed\>"));
        assert!(text.contains(r"CREATE\_FAILED"));
        let w = wecom(&vec![firing(); 30]);
        assert_eq!(w["msgtype"], "markdown");
        let content = w["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= 4096);
        assert!(content.starts_with(r"### \[FIRING\] 30 ModelArts images need attention"));
    }
}
