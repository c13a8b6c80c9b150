//! Unit tests of the pure status page renderer: escaping of every cloud-sourced field,
//! ordering, summary and empty states.

use std::collections::BTreeMap;

use super::*;
use crate::state::Field;

/// Breaks out of text, of a double- and of a single-quoted attribute, and tries an entity.
const HOSTILE: &str = "<evil a=\"1\" b='2'>&amp;</evil><script>x()</script>";

/// Every tag the page template itself uses; anything else after a `<` came from data.
const TEMPLATE_TAGS: &[&str] = &[
    "!doctype", "html", "head", "meta", "title", "style", "body", "header", "h1", "nav", "a",
    "main", "p", "span", "h2", "table", "thead", "tbody", "tr", "th", "td", "time", "footer",
    "div",
];

fn view(id: &str, name: Option<&str>) -> ImageView {
    ImageView {
        id: id.to_string(),
        cloud: "sim".to_string(),
        name: name.map(str::to_string),
        status: Some("ACTIVE".to_string()),
        status_message: None,
        condition: None,
        firing_since: None,
        size_bytes: Some(2048),
        create_at: Some(1_638_234_504_492),
        update_at: Some(1_638_234_504_492),
        swr_path: None,
        first_seen: Some(1_638_234_504),
        last_change: None,
        last_success: Some(1_700_000_000),
        consecutive_failures: 0,
        consecutive_not_found: 0,
        last_error: None,
        labels: BTreeMap::new(),
    }
}

fn event(field: Field, old: Option<&str>, new: Option<&str>) -> ChangeEvent {
    ChangeEvent {
        id: "img:1".to_string(),
        image_id: "img".to_string(),
        seq: 1,
        field,
        old: old.map(str::to_string),
        new: new.map(str::to_string),
        at: 1_700_000_000,
        image_name: Some("img-name".to_string()),
    }
}

/// Tag names that follow a `<` in `html` and are not part of the template.
fn foreign_tags(html: &str) -> Vec<String> {
    html.match_indices('<')
        .map(|(at, _)| {
            let rest = html[at + 1..].trim_start_matches('/');
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                .collect::<String>()
                .to_ascii_lowercase()
        })
        .filter(|tag| !TEMPLATE_TAGS.contains(&tag.as_str()))
        .collect()
}

#[test]
fn hostile_cloud_data_never_becomes_markup() {
    let mut v = view(HOSTILE, Some(HOSTILE));
    v.cloud = HOSTILE.to_string();
    v.status = Some(HOSTILE.to_string());
    v.status_message = Some(HOSTILE.to_string());
    v.condition = Some(HOSTILE.to_string());
    v.firing_since = Some(1_700_000_000);
    v.swr_path = Some(HOSTILE.to_string());
    v.consecutive_failures = 3;
    v.last_error = Some(HOSTILE.to_string());
    v.labels.insert(HOSTILE.to_string(), HOSTILE.to_string());
    let mut e = event(Field::Status, Some(HOSTILE), Some(HOSTILE));
    e.id = HOSTILE.to_string();
    e.image_id = HOSTILE.to_string();
    e.image_name = Some(HOSTILE.to_string());
    // Non-numeric values in numeric fields fall back to the raw (escaped) text.
    let size = event(Field::Size, Some(HOSTILE), Some(HOSTILE));
    let upd = event(Field::UpdateAt, Some(HOSTILE), Some(HOSTILE));
    let html = render(&[v], &[e, size, upd], HOSTILE);

    assert_eq!(foreign_tags(&html), Vec::<String>::new(), "{html}");
    assert!(!html.contains("a=\"1\""), "double quote escaped: {html}");
    assert!(!html.contains("b='2'"), "single quote escaped: {html}");
    assert!(!html.contains("<script"), "{html}");
    // Each field shows up escaped (text, attributes and labels alike), `&` included.
    let escaped = "&lt;evil a=&quot;1&quot; b=&#39;2&#39;&gt;&amp;amp;&lt;/evil&gt;";
    let shown = html.matches(escaped).count();
    // Image: data-id, id, name, swr_path title, cloud, status, message, condition, last_error,
    // label key and value (11); version (1); status event: name, image id, old, new, id (5);
    // size and update_at events: old, new (4).
    assert_eq!(shown, 21, "escaped copies:\n{html}");
}

#[test]
fn firing_first_then_failing_then_by_name() {
    let mut late = view("id-late", Some("zeta"));
    late.condition = Some("CREATE_FAILED".to_string());
    late.firing_since = Some(2_000);
    let mut early = view("id-early", Some("omega"));
    early.condition = Some("NOT_FOUND".to_string());
    early.firing_since = Some(1_000);
    let mut failing = view("id-fail", Some("yak"));
    failing.consecutive_failures = 2;
    failing.last_error = Some("HTTP 500 ModelArts.0010".to_string());
    let beta = view("id-beta", Some("Beta"));
    let alpha = view("id-alpha", Some("alpha"));
    let unnamed = view("id-0", None);
    let html = render(&[alpha, beta, unnamed, failing, late, early], &[], "1.0.0");
    let pos = |id: &str| {
        html.find(&format!("data-id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    let order = [
        "id-early", "id-late", "id-fail", "id-alpha", "id-beta", "id-0",
    ];
    // "id-0" sorts by id among names: "alpha" < "beta" < "id-0".
    for pair in order.windows(2) {
        assert!(
            pos(pair[0]) < pos(pair[1]),
            "{} before {}",
            pair[0],
            pair[1]
        );
    }
    assert!(html.contains(">6 images<"), "{html}");
    assert!(html.contains(">2 firing<"), "{html}");
    assert!(html.contains(">1 poll failing<"), "{html}");
    assert!(html.contains("2 consecutive failures"), "{html}");
    assert!(html.contains("HTTP 500 ModelArts.0010"));
    assert!(html.contains("class=\"firing\" data-id=\"id-early\""));
}

#[test]
fn empty_page_is_complete_and_links_the_rest() {
    let html = render(&[], &[], "1.2.3");
    for link in [
        "href=\"/metrics\"",
        "href=\"/api/v1/images\"",
        "href=\"/api/v1/events\"",
    ] {
        assert!(html.contains(link), "{link} missing: {html}");
    }
    assert!(html.contains("http-equiv=\"refresh\" content=\"10\""));
    assert!(html.contains("No images configured."));
    assert!(html.contains("No changes recorded yet."));
    assert!(html.contains(">0 firing<"));
    assert!(html.contains("1.2.3"));
    assert!(html.trim_end().ends_with("</html>"));
    // Self-contained: nothing is fetched from elsewhere.
    assert!(!html.contains("src="), "{html}");
    assert!(!html.contains("<link"), "{html}");
}

#[test]
fn event_values_are_made_readable() {
    let html = render(
        &[],
        &[
            event(Field::Size, Some("1024"), Some("5242880")),
            event(Field::UpdateAt, None, Some("1638234504492")),
            event(Field::Status, Some("ACTIVE"), Some("CREATE_FAILED")),
        ],
        "v",
    );
    assert!(html.contains("5.0 MiB"), "{html}");
    assert!(
        html.contains("1024 B") || html.contains("1.0 KiB"),
        "{html}"
    );
    assert!(html.contains("2021-11-30 01:08:24"), "{html}");
    assert!(
        html.contains("<span class=\"st bad\">CREATE_FAILED</span>"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"st ok\">ACTIVE</span>"),
        "{html}"
    );
}
