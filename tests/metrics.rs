//! Integration tests of the `/metrics` text: `promtool check metrics` finds nothing, and no
//! family repeats a label set, after a realistic mix of updates, renames and removals.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::process::{Command, Stdio};

use modelarts_image_exporter::metrics::{ImageMetrics, Metrics, STATUSES};

/// Names that stress escaping: quotes, backslashes, newlines, unicode, braces, commas.
const TRICKY_NAMES: [&str; 7] = [
    "plain",
    "with \"quotes\"",
    r"back\slash\\",
    "new\nline\n",
    "ünïcödé 镜像 🚀",
    "braces{a=\"b\"},comma",
    "",
];

/// Fills a `Metrics` with every status, unknown sizes, config labels, tricky names, renames,
/// removals and all non-image families.
#[allow(clippy::cast_precision_loss)] // reason: small synthetic values
fn filled() -> Metrics {
    let m = Metrics::new("0.1.0", "0123abc");
    m.set_config_label_names(&[
        "team".into(),
        "cost-center".into(),
        "name".into(),
        "1st".into(),
        "__hidden".into(),
        "env.tier".into(),
    ]);
    let mut labels = BTreeMap::new();
    labels.insert("team".to_owned(), "ml \"core\"\n".to_owned());
    labels.insert("cost-center".to_owned(), "42\\x".to_owned());
    labels.insert("name".to_owned(), "clashes with name".to_owned());
    let no_labels = BTreeMap::new();
    let info = [
        ("arch", "x86_64"),
        ("image_type", "DEDICATED"),
        ("service_type", "COMMON"),
        ("origin", "CUSTOMIZE"),
        ("visibility", "PRIVATE"),
        ("namespace", "ns\"x"),
        ("tag", "v1\\2"),
        ("swr_path", "swr.eu-de.otc.t-systems.com/ns/img:v1"),
        ("workspace_id", "0"),
    ];
    let ids: Vec<String> = (0..40)
        .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let status = if i % 9 == 8 {
            "SOMETHING_NEW"
        } else {
            STATUSES[i % STATUSES.len()]
        };
        m.set_image(&ImageMetrics {
            id,
            name: TRICKY_NAMES[i % TRICKY_NAMES.len()],
            status,
            size_bytes: (i % 3 != 0).then_some(1_000_000 * i as u64),
            created: (i % 4 != 0).then_some(1.7e9 + i as f64),
            updated: (i % 5 != 0).then_some(1.71e9 + i as f64),
            up: i % 6 != 0,
            last_success: (i % 7 != 0).then_some(1.72e9),
            cloud: if i % 2 == 0 { "otc" } else { "hwc \"cn\"" },
            info: if i % 2 == 0 { &info } else { &[] },
            labels: if i % 2 == 0 { &labels } else { &no_labels },
        });
        m.inc_change(id, "status");
        if i % 3 == 0 {
            m.inc_change(id, "name");
        }
    }
    // Renames, info changes and status changes on existing images.
    for id in &ids[..10] {
        m.set_image(&ImageMetrics {
            id,
            name: "renamed \"again\"",
            status: "ACTIVE",
            size_bytes: None,
            created: None,
            updated: None,
            up: true,
            last_success: Some(1.73e9),
            cloud: "otc",
            info: &[("arch", "aarch64")],
            labels: &no_labels,
        });
    }
    m.remove_image(&ids[11]);
    let keep: HashSet<String> = ids
        .iter()
        .filter(|id| !id.ends_with("12"))
        .cloned()
        .collect();
    m.retain_images(&keep);
    // A reload that changes the config label set.
    m.set_config_label_names(&["team".into(), "region".into(), "name".into()]);

    for cloud in ["otc", "hwc"] {
        m.register_cloud(cloud);
        m.api_request(cloud, "200", 0.12);
        m.api_request(cloud, "429", 1.5);
        m.api_request(cloud, "timeout", 31.0);
        m.poll_failure(cloud, "throttled");
        m.poll_duration(cloud, 3.25);
        m.cycle_skipped(cloud);
        m.clock_skew(cloud, -0.75);
    }
    m.config_reload(true, 1.7e9);
    m.config_reload(false, 1.8e9);
    m.set_alerts_firing("ERROR", 2);
    for ch in ["email", "webhook", "alertmanager"] {
        m.register_channel(ch);
    }
    m.notification_sent("email");
    m.notification_failed("webhook");
    m.notification_dropped("webhook");
    m.set_queue_length(3);
    m
}

#[test]
fn promtool_check_metrics_finds_nothing() {
    let text = filled().render();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool not runnable ({e}): install Debian's `prometheus` package \
             (apt-get install -y --no-install-recommends prometheus)"
        ),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "promtool exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status.code()
    );
}

/// One parsed sample: the series name and its label pairs, unescaped, in order.
fn parse_sample(line: &str) -> (String, Vec<(String, String)>) {
    let Some(brace) = line.find('{') else {
        let name = line.split(' ').next().expect("sample name");
        return (name.to_owned(), Vec::new());
    };
    let name = line[..brace].to_owned();
    let mut labels = Vec::new();
    let mut chars = line[brace + 1..].chars();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "quote after {key}= in {line}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c @ ('\\' | '"')) => value.push(c),
                    other => panic!("bad escape {other:?} in {line}"),
                },
                '\n' => panic!("raw newline in {line}"),
                c => value.push(c),
            }
        }
        labels.push((key, value));
        match chars.next() {
            Some(',') => {}
            Some('}') => break,
            other => panic!("unexpected {other:?} after a label value in {line}"),
        }
    }
    (name, labels)
}

#[test]
fn no_two_series_in_a_family_share_a_label_set() {
    let m = filled();
    let text = m.render();
    let mut seen: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    let mut count = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, mut labels) = parse_sample(line);
        labels.sort();
        assert!(
            seen.insert((name.clone(), labels.clone())),
            "duplicate series {name} {labels:?}"
        );
        count += 1;
    }
    assert!(count > 300, "only {count} samples");

    // Per image, each keyed family holds exactly one `name`: renames left nothing behind.
    let mut names_per_id: BTreeMap<(String, String), HashSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("modelarts_image_")) {
        let (family, labels) = parse_sample(line);
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(id), Some(name)) = (get("id"), get("name")) {
            names_per_id.entry((family, id)).or_default().insert(name);
        }
    }
    for ((family, id), names) in &names_per_id {
        assert_eq!(names.len(), 1, "{family} {id}: {names:?}");
    }
    let renamed = "00000000-0000-0000-0000-000000000003";
    assert!(
        names_per_id
            .iter()
            .any(|((_, id), n)| id == renamed && n.contains("renamed \"again\""))
    );
    for gone in [
        "00000000-0000-0000-0000-000000000011",
        "00000000-0000-0000-0000-000000000012",
    ] {
        assert!(!text.contains(gone), "{gone} still exported");
    }
}
