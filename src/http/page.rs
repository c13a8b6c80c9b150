//! The status page at `/`: one self-contained, server-rendered HTML document (inline CSS, no
//! scripts, no external assets, so it works offline) that refreshes itself every
//! [`REFRESH_SECS`] seconds. It only reads views; it must never show unescaped cloud data —
//! every name, message, id, event value, label and error goes through [`escape`], in text and
//! in attributes alike.
//!
//! Order of the images table: firing alerts first (oldest alert on top, the one waiting
//! longest), then images whose polls are failing, then everything else; within each group by
//! name (case-insensitive, images without a known name by id).

use std::cmp::Ordering;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;

use super::{HttpState, ImageView, escape, image_views};
use crate::once::{format_ms, human_bytes};
use crate::state::ChangeEvent;

/// Seconds between automatic reloads (`<meta http-equiv="refresh">`).
pub const REFRESH_SECS: u32 = 10;

/// How many recent events the page shows.
pub const EVENTS_SHOWN: usize = 50;

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}\
header{background:#24292f;color:#fff;padding:.7rem 1.5rem;display:flex;align-items:baseline;gap:2rem;flex-wrap:wrap}\
header h1{font-size:1.15rem;margin:0;font-weight:600}\
nav a{color:#9cd1ff;margin-right:1.1rem;text-decoration:none}nav a:hover{text-decoration:underline}\
main{padding:1rem 1.5rem}\
h2{font-size:1rem;margin:1.2rem 0 .5rem}\
.summary{display:flex;gap:.6rem;flex-wrap:wrap;margin:0 0 .5rem;padding:0}\
.pill{background:#fff;border:1px solid #d0d7de;border-radius:1rem;padding:.15rem .8rem}\
.pill.alarm{background:#ffebe9;border-color:#ff8182;color:#82071e;font-weight:600}\
.pill.calm{background:#dafbe1;border-color:#4ac26b;color:#116329}\
.pill.warn{background:#fff8c5;border-color:#d4a72c;color:#7d4e00}\
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de;border-radius:6px}\
th,td{text-align:left;padding:.45rem .65rem;border-bottom:1px solid #eaeef2;vertical-align:top}\
th{background:#f6f8fa;font-weight:600;font-size:.8rem;color:#57606a;white-space:nowrap}\
tbody tr:hover{background:#f6f8fa}\
tr.firing td:first-child{box-shadow:inset 4px 0 #cf222e}\
tr.failing td:first-child{box-shadow:inset 4px 0 #d4a72c}\
.name{font-weight:600;overflow-wrap:anywhere}time{white-space:nowrap}.scroll{overflow-x:auto;margin-bottom:.5rem}\
.st{display:inline-block;font-weight:600;font-size:.78rem;padding:.05rem .45rem;border-radius:.3rem;white-space:nowrap}\
.ok{background:#dafbe1;color:#116329}.warn{background:#fff8c5;color:#7d4e00}\
.bad{background:#ffebe9;color:#a40e26}.unk{background:#eaeef2;color:#57606a}\
.sub{display:block;font-size:.78rem;color:#57606a;margin-top:.15rem;overflow-wrap:anywhere}\
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.76rem}\
.lbl{display:inline-block;background:#ddf4ff;color:#0550ae;border-radius:.8rem;padding:0 .45rem;font-size:.72rem;margin:.2rem .25rem 0 0}\
.nw,.id{white-space:nowrap}.muted{color:#8c959f}\
footer{color:#57606a;font-size:.78rem;padding:.2rem 1.5rem 1.2rem}";

/// CSS class for a status.
fn class_of(status: Option<&str>) -> &'static str {
    match status {
        Some("ACTIVE") => "ok",
        Some("INIT" | "CREATING") => "warn",
        Some("CREATE_FAILED" | "ERROR" | "DELETED" | "NOT_FOUND") => "bad",
        _ => "unk",
    }
}

/// `2021-11-30 01:08:24` (UTC, said once in the summary) from unix milliseconds.
fn when_ms(ms: i64) -> String {
    format_ms(ms).replacen('T', " ", 1).replace('Z', "")
}

/// A `<time>` cell content for unix seconds, `-` when unknown.
fn when(secs: Option<i64>) -> String {
    secs.map_or_else(
        || "<span class=\"muted\">-</span>".to_string(),
        |s| {
            let ms = s.saturating_mul(1000);
            format!(
                "<time datetime=\"{}\">{}</time>",
                escape(&format_ms(ms)),
                escape(&when_ms(ms))
            )
        },
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The order of the images table (see the module docs).
fn display_order(a: &ImageView, b: &ImageView) -> Ordering {
    let group = |i: &ImageView| match (i.condition.is_some(), i.consecutive_failures > 0) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    };
    let name = |i: &ImageView| i.name.as_deref().unwrap_or(&i.id).to_lowercase();
    group(a)
        .cmp(&group(b))
        .then_with(|| match (a.firing_since, b.firing_since) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        })
        .then_with(|| name(a).cmp(&name(b)))
        .then_with(|| a.id.cmp(&b.id))
}

/// An event value made readable: sizes in bytes and times in ms are formatted, the rest is
/// shown (escaped) as it came.
fn event_value(field: &str, v: Option<&str>) -> String {
    let Some(v) = v else {
        return "<span class=\"muted\">-</span>".to_string();
    };
    match field {
        "size" => v.parse::<u64>().map_or_else(|_| escape(v), human_bytes),
        "update_at" => v
            .parse::<i64>()
            .map_or_else(|_| escape(v), |ms| escape(&when_ms(ms))),
        "status" => format!(
            "<span class=\"st {}\">{}</span>",
            class_of(Some(v)),
            escape(v)
        ),
        _ => escape(v),
    }
}

/// Renders the page from views and events (pure, so tests can check the escaping).
pub fn render(images: &[ImageView], events: &[ChangeEvent], version: &str) -> String {
    let mut o = String::with_capacity(4096 + images.len() * 700 + events.len() * 300);
    let firing = images.iter().filter(|i| i.condition.is_some()).count();
    let failing = images.iter().filter(|i| i.consecutive_failures > 0).count();
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"><title>ModelArts image exporter</title>\
<style>{STYLE}</style></head><body><header><h1>ModelArts image exporter</h1>\
<nav><a href=\"/metrics\">/metrics</a><a href=\"/api/v1/images\">/api/v1/images</a>\
<a href=\"/api/v1/events\">/api/v1/events</a><a href=\"/healthz\">/healthz</a>\
<a href=\"/readyz\">/readyz</a></nav></header><main>\
<p class=\"summary\" id=\"summary\"><span class=\"pill\" id=\"count\">{} image{}</span>\
<span class=\"pill {}\" id=\"firing\">{firing} firing</span>\
<span class=\"pill {}\" id=\"failing\">{failing} poll{} failing</span></p>",
        images.len(),
        plural(images.len()),
        if firing > 0 { "alarm" } else { "calm" },
        if failing > 0 { "warn" } else { "calm" },
        plural(failing),
    );
    images_table(&mut o, images);
    events_table(&mut o, events);
    let _ = writeln!(
        o,
        "</main><footer>modelarts-image-exporter {} · times in UTC · this page reloads every \
{REFRESH_SECS} s</footer></body></html>",
        escape(version)
    );
    o
}

fn images_table(o: &mut String, images: &[ImageView]) {
    let mut sorted: Vec<&ImageView> = images.iter().collect();
    sorted.sort_by(|a, b| display_order(a, b));
    o.push_str(
        "<h2>Images</h2><div class=\"scroll\"><table id=\"images\"><thead><tr><th>Image</th><th>Cloud</th>\
<th>Status</th><th>Alert</th><th>Size</th><th>Last change</th><th>Poll health</th></tr>\
</thead><tbody>",
    );
    if sorted.is_empty() {
        o.push_str("<tr><td colspan=\"7\" class=\"muted\">No images configured.</td></tr>");
    }
    for i in sorted {
        let status = i.status.as_deref();
        let row_class = if i.condition.is_some() {
            "firing"
        } else if i.consecutive_failures > 0 {
            "failing"
        } else {
            "quiet"
        };
        let _ = write!(
            o,
            "<tr class=\"{row_class}\" data-id=\"{}\"><td><span class=\"name\" title=\"{}\">{}</span>\
<span class=\"sub mono id\">{}</span>",
            escape(&i.id),
            escape(i.swr_path.as_deref().unwrap_or("")),
            escape(i.name.as_deref().unwrap_or("(name unknown)")),
            escape(&i.id),
        );
        for (k, v) in &i.labels {
            let _ = write!(o, "<span class=\"lbl\">{}={}</span>", escape(k), escape(v));
        }
        let _ = write!(
            o,
            "</td><td>{}</td><td><span class=\"st {}\">{}</span>",
            escape(&i.cloud),
            class_of(status),
            escape(status.unwrap_or("not polled yet")),
        );
        if let Some(m) = i.status_message.as_deref().filter(|m| !m.is_empty()) {
            let _ = write!(o, "<span class=\"sub\">{}</span>", escape(m));
        }
        o.push_str("</td><td>");
        match i.condition.as_deref() {
            Some(c) => {
                let _ = write!(
                    o,
                    "<span class=\"st bad\">{}</span><span class=\"sub\">since {}</span>",
                    escape(c),
                    when(i.firing_since)
                );
            }
            None => o.push_str("<span class=\"muted\">none</span>"),
        }
        let _ = write!(
            o,
            "</td><td class=\"nw\">{}</td><td>{}<span class=\"sub\">cloud update_at {}</span></td><td>",
            i.size_bytes.map_or_else(|| "-".to_string(), human_bytes),
            i.last_change.map_or_else(
                || "<span class=\"muted\">none seen</span>".to_string(),
                |t| when(Some(t))
            ),
            when(i.update_at.map(|ms| ms.div_euclid(1000))),
        );
        if i.consecutive_failures == 0 {
            o.push_str("<span class=\"st ok\">ok</span>");
        } else {
            let _ = write!(
                o,
                "<span class=\"st bad\">{} consecutive failure{}</span><span class=\"sub\">last error: {}</span>",
                i.consecutive_failures,
                plural(i.consecutive_failures as usize),
                escape(i.last_error.as_deref().unwrap_or("no error text")),
            );
        }
        let _ = write!(
            o,
            "<span class=\"sub\">last success {}</span></td></tr>",
            when(i.last_success)
        );
    }
    o.push_str("</tbody></table></div>");
}

fn events_table(o: &mut String, events: &[ChangeEvent]) {
    o.push_str(
        "<h2>Recent events</h2><div class=\"scroll\"><table id=\"events\"><thead><tr><th>Time</th><th>Image</th>\
<th>Field</th><th>Old</th><th>New</th><th>Event id</th></tr></thead><tbody>",
    );
    if events.is_empty() {
        o.push_str("<tr><td colspan=\"6\" class=\"muted\">No changes recorded yet.</td></tr>");
    }
    for e in events {
        let field = e.field.as_str();
        let _ = write!(
            o,
            "<tr><td class=\"nw\">{}</td><td><span class=\"name\">{}</span>\
<span class=\"sub mono\">{}</span></td><td>{}</td><td>{}</td><td>{}</td>\
<td class=\"mono\">{}</td></tr>",
            when(Some(e.at)),
            escape(e.image_name.as_deref().unwrap_or("(name unknown)")),
            escape(&e.image_id),
            escape(field),
            event_value(field, e.old.as_deref()),
            event_value(field, e.new.as_deref()),
            escape(&e.id),
        );
    }
    o.push_str("</tbody></table></div>");
}

/// `GET /`.
pub async fn status_page(State(st): State<HttpState>) -> Html<String> {
    let views = image_views(&st.watcher);
    let events = st
        .watcher
        .with_store(|s| s.recent_events(EVENTS_SHOWN, None))
        .unwrap_or_default();
    Html(render(&views, &events, env!("CARGO_PKG_VERSION")))
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
