//! Unit tests for `Metrics`: state-set shape, removal, renames, label names, gzip.

use std::collections::{BTreeMap, HashSet};
use std::io::Read as _;

use super::*;

const NO_INFO: &[(&str, &str)] = &[];

fn img<'a>(
    id: &'a str,
    name: &'a str,
    status: &'a str,
    labels: &'a BTreeMap<String, String>,
) -> ImageMetrics<'a> {
    ImageMetrics {
        id,
        name,
        status,
        size_bytes: Some(1024),
        created: Some(1_700_000_000.0),
        updated: None,
        up: true,
        last_success: Some(1_700_000_100.0),
        cloud: "otc",
        info: NO_INFO,
        labels,
    }
}

/// Sample lines (no comments) of `family` exactly (not its `_bucket`-style children).
fn samples<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .collect()
}

/// Text without the `process_*` families, whose values move between two renders.
fn without_process(text: &str) -> String {
    let mut out = String::new();
    for l in text
        .lines()
        .filter(|l| !l.starts_with("process_") && !l.contains(" process_"))
    {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[test]
fn status_is_a_state_set_with_exactly_one_1_per_image() {
    let m = Metrics::new("1.0.0", "abc");
    let none = BTreeMap::new();
    let statuses = [
        "INIT",
        "CREATING",
        "CREATE_FAILED",
        "ERROR",
        "DELETED",
        "ACTIVE",
        "NOT_FOUND",
        "UNKNOWN",
        "WEIRD_NEW",
    ];
    let ids: Vec<String> = (0..statuses.len()).map(|i| format!("img-{i}")).collect();
    for (id, st) in ids.iter().zip(statuses) {
        m.set_image(&img(id, "n", st, &none));
    }
    let text = m.render();
    let lines = samples(&text, "modelarts_image_status");
    assert_eq!(lines.len(), ids.len() * 8);
    for (id, st) in ids.iter().zip(statuses) {
        let mine: Vec<&&str> = lines
            .iter()
            .filter(|l| l.contains(&format!("id=\"{id}\"")))
            .collect();
        assert_eq!(mine.len(), 8, "{id}");
        let ones: Vec<&&&str> = mine.iter().filter(|l| l.ends_with(" 1")).collect();
        assert_eq!(ones.len(), 1, "{id}: {mine:?}");
        let expect = if st == "WEIRD_NEW" { "UNKNOWN" } else { st };
        assert!(
            ones[0].contains(&format!("status=\"{expect}\"")),
            "{}",
            ones[0]
        );
        assert_eq!(mine.iter().filter(|l| l.ends_with(" 0")).count(), 7);
    }
}

#[test]
fn removed_image_vanishes_from_every_family() {
    let m = Metrics::new("1", "r");
    let none = BTreeMap::new();
    m.set_image(&img("keep", "k", "ACTIVE", &none));
    m.set_image(&img("gone", "g", "ERROR", &none));
    m.inc_change("gone", "status");
    m.inc_change("keep", "status");
    let before = m.render();
    assert!(before.contains("id=\"gone\""));
    m.remove_image("gone");
    let after = m.render();
    assert!(!after.contains("id=\"gone\""), "{after}");
    assert!(after.contains("modelarts_image_changes_total{id=\"keep\",field=\"status\"} 1"));

    m.retain_images(&HashSet::new());
    let empty = m.render();
    assert!(!empty.contains("modelarts_image_"), "{empty}");
}

#[test]
fn renamed_image_leaves_no_old_name_series() {
    let m = Metrics::new("1", "r");
    let none = BTreeMap::new();
    m.set_image(&img("i1", "old-name", "ACTIVE", &none));
    assert!(m.render().contains("name=\"old-name\""));
    m.set_image(&img("i1", "new-name", "ERROR", &none));
    let text = m.render();
    assert!(!text.contains("old-name"), "{text}");
    assert_eq!(samples(&text, "modelarts_image_status").len(), 8);
    assert_eq!(samples(&text, "modelarts_image_info").len(), 1);
    assert_eq!(samples(&text, "modelarts_image_size_bytes").len(), 1);
}

#[test]
fn unknown_values_have_no_series_and_changes_count() {
    let m = Metrics::new("1", "r");
    let none = BTreeMap::new();
    let mut i = img("i1", "", "INIT", &none);
    i.size_bytes = None;
    i.created = None;
    i.last_success = None;
    i.up = false;
    m.set_image(&i);
    m.inc_change("i1", "status");
    m.inc_change("i1", "status");
    let text = m.render();
    assert!(samples(&text, "modelarts_image_size_bytes").is_empty());
    assert!(samples(&text, "modelarts_image_created_timestamp_seconds").is_empty());
    assert!(samples(&text, "modelarts_image_updated_timestamp_seconds").is_empty());
    assert!(samples(&text, "modelarts_image_last_success_timestamp_seconds").is_empty());
    assert_eq!(
        samples(&text, "modelarts_image_up"),
        ["modelarts_image_up{id=\"i1\"} 0"]
    );
    assert!(text.contains("modelarts_image_changes_total{id=\"i1\",field=\"status\"} 2"));
}

#[test]
fn info_carries_fixed_and_sanitized_config_labels_and_rebuilds_on_reload() {
    let m = Metrics::new("1", "r");
    m.set_config_label_names(&["team".into(), "cost-center".into(), "name".into()]);
    let mut labels = BTreeMap::new();
    labels.insert("team".to_owned(), "ml".to_owned());
    labels.insert("name".to_owned(), "clash".to_owned());
    let info = [("arch", "x86_64"), ("tag", "v1"), ("bogus", "ignored")];
    let mut i = img("i1", "n1", "ACTIVE", &labels);
    i.info = &info;
    m.set_image(&i);
    let text = m.render();
    let line = samples(&text, "modelarts_image_info");
    assert_eq!(
        line,
        [
            "modelarts_image_info{id=\"i1\",name=\"n1\",cloud=\"otc\",arch=\"x86_64\",image_type=\"\",service_type=\"\",origin=\"\",visibility=\"\",namespace=\"\",tag=\"v1\",swr_path=\"\",workspace_id=\"\",cost_center=\"\",label_name=\"clash\",team=\"ml\"} 1"
        ]
    );
    assert!(!text.contains("ignored"));

    m.set_config_label_names(&["team".into()]);
    let text = m.render();
    let line = samples(&text, "modelarts_image_info");
    assert_eq!(line.len(), 1);
    assert!(line[0].ends_with(",team=\"ml\"} 1"), "{}", line[0]);
    assert!(!line[0].contains("label_name"));
}

#[test]
fn daemon_and_alert_families_exist_from_start() {
    let m = Metrics::new("1.2.3", "deadbeef");
    m.register_channel("email");
    let text = m.render();
    assert!(
        text.contains("modelarts_exporter_build_info{revision=\"deadbeef\",version=\"1.2.3\"} 1"),
        "{text}"
    );
    for c in ALERT_CONDITIONS {
        assert!(
            text.contains(&format!("modelarts_alerts_firing{{condition=\"{c}\"}} 0")),
            "{c}"
        );
    }
    for f in [
        "modelarts_notifications_total",
        "modelarts_notifications_failed_total",
        "modelarts_notifications_dropped_total",
    ] {
        assert!(text.contains(&format!("{f}{{channel=\"email\"}} 0")), "{f}");
    }
    assert!(text.contains("modelarts_notification_queue_length 0"));
    assert!(text.contains("\nprocess_"), "process metrics missing");
    m.set_alerts_firing("ERROR", 3);
    m.notification_sent("email");
    m.set_queue_length(4);
    m.config_reload(true, 1234.0);
    let text = m.render();
    assert!(text.contains("modelarts_alerts_firing{condition=\"ERROR\"} 3"));
    assert!(text.contains("modelarts_notifications_total{channel=\"email\"} 1"));
    assert!(text.contains("modelarts_notification_queue_length 4"));
    assert!(text.contains("modelarts_config_last_reload_successful 1"));
    assert!(text.contains("modelarts_config_last_reload_success_timestamp_seconds 1234"));
    m.config_reload(false, 9999.0);
    let text = m.render();
    assert!(text.contains("modelarts_config_last_reload_successful 0"));
    assert!(text.contains("modelarts_config_last_reload_success_timestamp_seconds 1234"));
}

#[test]
fn poller_families_carry_cloud() {
    let m = Metrics::new("1", "r");
    m.api_request("otc", "200", 0.2);
    m.api_request("otc", "200", 40.0);
    m.poll_failure("otc", "throttled");
    m.poll_duration("otc", 12.5);
    m.cycle_skipped("otc");
    m.clock_skew("otc", -1.5);
    let text = m.render();
    assert!(text.contains("modelarts_api_requests_total{cloud=\"otc\",code=\"200\"} 2"));
    assert!(
        text.contains("modelarts_api_request_duration_seconds_bucket{cloud=\"otc\",le=\"0.25\"} 1")
    );
    assert!(
        text.contains("modelarts_api_request_duration_seconds_bucket{cloud=\"otc\",le=\"30\"} 1")
    );
    assert!(
        text.contains("modelarts_api_request_duration_seconds_bucket{cloud=\"otc\",le=\"+Inf\"} 2")
    );
    assert!(text.contains("modelarts_poll_failures_total{cloud=\"otc\",reason=\"throttled\"} 1"));
    assert!(text.contains("modelarts_poll_duration_seconds{cloud=\"otc\"} 12.5"));
    assert!(text.contains("modelarts_poll_cycles_skipped_total{cloud=\"otc\"} 1"));
    assert!(text.contains("modelarts_clock_skew_seconds{cloud=\"otc\"} -1.5"));
}

#[test]
fn gzip_decompresses_to_the_text_output() {
    let m = Metrics::new("1", "r");
    let none = BTreeMap::new();
    for i in 0..50 {
        m.set_image(&img(
            &format!("id-{i}"),
            "name \"q\" \\ \n ü",
            "ACTIVE",
            &none,
        ));
    }
    let text = m.render();
    let gz = m.render_gzip();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut plain)
        .expect("valid gzip");
    assert_eq!(without_process(&plain), without_process(&text));
    assert!(gz.len() < text.len() / 4, "{} vs {}", gz.len(), text.len());
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new("1", "r");
    let none = BTreeMap::new();
    m.set_image(&img("i1", "a\"b\\c\nd", "ACTIVE", &none));
    let text = m.render();
    assert!(text.contains(r#"name="a\"b\\c\nd""#), "{text}");
}

#[test]
fn clones_share_one_registry() {
    let m = Metrics::new("1", "r");
    let c = m.clone();
    c.cycle_skipped("x");
    assert!(
        m.render()
            .contains("modelarts_poll_cycles_skipped_total{cloud=\"x\"} 1")
    );
}
