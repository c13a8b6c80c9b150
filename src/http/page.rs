//! The status page at `/`: server-rendered HTML, no external assets, auto-refresh. Everything
//! that came from the cloud (names, messages, ids) is escaped.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;

use super::{HttpState, ImageView, escape, image_views};
use crate::once::{format_ms, human_bytes};
use crate::state::ChangeEvent;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd;font-size:.9rem}\
th{background:#f4f4f4}.st{font-weight:600;padding:.1rem .4rem;border-radius:.3rem}\
.ok{background:#d4f7d4;color:#145214}.warn{background:#fff2c2;color:#6b5200}.bad{background:#ffd6d6;color:#8a1010}.unk{background:#e6e6e6;color:#444}\
.mono{font-family:ui-monospace,monospace;font-size:.8rem}nav a{margin-right:1rem}.summary span{margin-right:1.5rem}";

/// CSS class for a status.
fn class_of(status: Option<&str>) -> &'static str {
    match status {
        Some("ACTIVE") => "ok",
        Some("INIT" | "CREATING") => "warn",
        Some("CREATE_FAILED" | "ERROR" | "DELETED" | "NOT_FOUND") => "bad",
        _ => "unk",
    }
}

fn ts(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".to_string(), |s| format_ms(s * 1000))
}

/// Renders the page from views and events (pure, so tests can check the escaping).
pub fn render(images: &[ImageView], events: &[ChangeEvent], version: &str) -> String {
    let mut o = String::with_capacity(4096 + images.len() * 400);
    let firing = images.iter().filter(|i| i.condition.is_some()).count();
    let failing = images.iter().filter(|i| i.consecutive_failures > 0).count();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"10\"><title>ModelArts image exporter</title>\
<style>{STYLE}</style></head><body><h1>ModelArts image exporter</h1>\
<nav><a href=\"/metrics\">/metrics</a><a href=\"/api/v1/images\">/api/v1/images</a>\
<a href=\"/api/v1/events\">/api/v1/events</a><a href=\"/healthz\">/healthz</a><a href=\"/readyz\">/readyz</a></nav>\
<p class=\"summary\"><span>{} images</span><span id=\"firing\">{firing} firing</span><span>{failing} with poll errors</span><span>version {}</span></p>",
        images.len(),
        escape(version)
    );
    o.push_str("<h2>Images</h2><table id=\"images\"><tr><th>Name</th><th>ID</th><th>Cloud</th><th>Status</th><th>Alert</th><th>Size</th><th>Updated</th><th>Last change</th><th>Last success</th><th>Poll health</th></tr>");
    for i in images {
        let status = i.status.as_deref();
        let health = if i.consecutive_failures == 0 {
            "ok".to_string()
        } else {
            format!(
                "{} failures: {}",
                i.consecutive_failures,
                escape(i.last_error.as_deref().unwrap_or(""))
            )
        };
        let alert = i.condition.as_deref().map_or_else(String::new, |c| {
            format!(
                "<span class=\"st bad\">{}</span> since {}",
                escape(c),
                ts(i.firing_since)
            )
        });
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td><span class=\"st {}\" title=\"{}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(i.name.as_deref().unwrap_or("-")),
            escape(&i.id),
            escape(&i.cloud),
            class_of(status),
            escape(i.status_message.as_deref().unwrap_or("")),
            escape(status.unwrap_or("not polled yet")),
            alert,
            i.size_bytes.map_or_else(|| "-".to_string(), human_bytes),
            i.update_at.map_or_else(|| "-".to_string(), format_ms),
            ts(i.last_change),
            ts(i.last_success),
            health,
        );
    }
    o.push_str("</table><h2>Recent events</h2><table id=\"events\"><tr><th>Time</th><th>Image</th><th>Field</th><th>Old</th><th>New</th><th>Event id</th></tr>");
    for e in events {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            ts(Some(e.at)),
            escape(e.image_name.as_deref().unwrap_or(&e.image_id)),
            escape(e.field.as_str()),
            escape(e.old.as_deref().unwrap_or("-")),
            escape(e.new.as_deref().unwrap_or("-")),
            escape(&e.id),
        );
    }
    o.push_str("</table></body></html>\n");
    o
}

/// `GET /`.
pub async fn status_page(State(st): State<HttpState>) -> Html<String> {
    let views = image_views(&st.watcher);
    let events = st
        .watcher
        .with_store(|s| s.recent_events(50, None))
        .unwrap_or_default();
    Html(render(&views, &events, env!("CARGO_PKG_VERSION")))
}
