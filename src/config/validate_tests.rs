//! Unit tests of `validate`: each rule, with its key path and line.

use std::fmt::Write as _;
use std::path::Path;

use super::*;
use crate::config::load::parse;

fn problems(src: &str) -> Vec<Problem> {
    validate(&parse(Path::new("c.toml"), src.to_string()).expect("parses"))
}

/// `(key, line, severity)` of each problem, for compact assertions.
fn keys(src: &str) -> Vec<(String, Option<usize>, Severity)> {
    problems(src)
        .into_iter()
        .map(|p| (p.key, p.line, p.severity))
        .collect()
}

fn has(src: &str, key: &str, sev: Severity) -> bool {
    keys(src).iter().any(|(k, _, s)| k == key && *s == sev)
}

const CLOUD: &str = r#"
[[clouds]]
provider = "otc"
region = "eu-de"
project_id = "0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d"
[clouds.auth]
type = "aksk"
access_key = "AK"
secret_key_file = "/run/sk"
"#;

#[test]
fn minimal_config_is_clean() {
    assert_eq!(keys(CLOUD), vec![]);
}

#[test]
fn no_cloud_is_an_error() {
    assert!(has("", "clouds", Severity::Error));
}

#[test]
fn several_clouds_need_unique_names() {
    let src = format!("{CLOUD}{CLOUD}");
    let k = keys(&src);
    assert!(
        k.contains(&("clouds[0].name".into(), Some(2), Severity::Error)),
        "{k:?}"
    );
    assert!(
        k.contains(&("clouds[1].name".into(), Some(11), Severity::Error)),
        "{k:?}"
    );
    let named = src.replacen("[[clouds]]", "[[clouds]]\nname = \"a\"", 2);
    let k = keys(&named);
    assert!(
        k.contains(&("clouds[1].name".into(), Some(13), Severity::Error)),
        "{k:?}"
    );
    assert!(
        problems(&named)[0]
            .message
            .contains("duplicate cloud name \"a\"")
    );
}

#[test]
fn aksk_needs_project_id_and_rejects_password_keys() {
    let src = CLOUD
        .replace("project_id = \"0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d\"\n", "")
        .replace("access_key = \"AK\"\n", "user = \"bob\"\n");
    let k = keys(&src);
    assert!(has(&src, "clouds[0].project_id", Severity::Error), "{k:?}");
    assert!(
        has(&src, "clouds[0].auth.access_key", Severity::Error),
        "{k:?}"
    );
    let user = problems(&src)
        .into_iter()
        .find(|p| p.key == "clouds[0].auth.user")
        .expect("user flagged");
    assert!(
        user.message.contains("type = \"password\""),
        "{}",
        user.message
    );
    assert_eq!(user.line, Some(7));
}

#[test]
fn password_auth_rules() {
    let src = r#"
[[clouds]]
provider = "huaweicloud"
region = "cn-north-4"
[clouds.auth]
type = "password"
access_key = "AK"
password = "x"
password_file = "/run/pw"
"#;
    let k = keys(src);
    for key in [
        "clouds[0].auth.access_key",
        "clouds[0].auth.user",
        "clouds[0].auth.domain",
        "clouds[0].auth.password_file",
        "clouds[0].auth.project_name",
    ] {
        assert!(has(src, key, Severity::Error), "{key} in {k:?}");
    }
    let ok = "[[clouds]]\nprovider = \"otc\"\nregion = \"eu-de\"\n[clouds.auth]\ntype = \"password\"\nuser = \"u\"\ndomain = \"d\"\npassword_file = \"/p\"\nproject_name = \"eu-de\"\n";
    assert_eq!(keys(ok), vec![]);
}

#[test]
fn poll_rules() {
    let both = format!("{CLOUD}[poll]\ninterval = \"1m\"\nschedule = \"0 */5 * * * *\"\n");
    assert!(has(&both, "poll.schedule", Severity::Error));
    let fast = format!("{CLOUD}[poll]\ninterval = \"50ms\"\n");
    assert_eq!(
        keys(&fast),
        vec![("poll.interval".into(), Some(11), Severity::Error)]
    );
    let warn = format!("{CLOUD}[poll]\ninterval = \"100ms\"\n");
    assert_eq!(
        keys(&warn),
        vec![("poll.interval".into(), Some(11), Severity::Warning)]
    );
    let five = format!("{CLOUD}[poll]\nschedule = \"*/5 * * * *\"\n");
    assert!(
        has(&five, "poll.schedule", Severity::Error),
        "5-field cron rejected"
    );
    let six = format!("{CLOUD}[poll]\nschedule = \"0 */5 * * * *\"\n");
    assert_eq!(keys(&six), vec![]);
    let zero =
        format!("{CLOUD}[poll]\ntimeout = \"0s\"\nconcurrency = 0\nmax_requests_per_second = 0\n");
    for key in [
        "poll.timeout",
        "poll.concurrency",
        "poll.max_requests_per_second",
    ] {
        assert!(has(&zero, key, Severity::Error), "{key}");
    }
}

#[test]
fn cron_parses_like_the_scheduler() {
    assert!(parse_cron("0 */5 * * * *").is_ok());
    assert!(parse_cron("0 0 12 * * Mon-Fri").is_ok());
    assert!(parse_cron("*/5 * * * *").is_err());
    assert!(parse_cron("0 0 0 * * * 2030").is_err());
    assert!(parse_cron("0 61 * * * *").is_err());
}

#[test]
fn rate_warning_when_images_outrun_the_limit() {
    let mut src = format!("{CLOUD}[poll]\ninterval = \"10s\"\nmax_requests_per_second = 1\n");
    for i in 0..11 {
        writeln!(src, "[[images]]\nid = \"img-{i}\"").unwrap();
    }
    let p = problems(&src);
    let w = p.iter().find(|p| p.key == "poll.interval").expect("warned");
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("11 images"), "{}", w.message);
    let ten = src.replace("[[images]]\nid = \"img-10\"\n", "");
    assert!(!has(&ten, "poll.interval", Severity::Warning));
}

#[test]
fn images_clouds_and_channels() {
    let src = format!(
        "{CLOUD}[[images]]\nid = \"a/b\"\n[[images]]\nid = \"x\"\ncloud = \"nope\"\nchannels = [\"ghost\"]\nlabels = {{ \"bad-name\" = \"v\" }}\n[[images]]\nid = \"y\"\n[[images]]\nid = \"y\"\n"
    );
    let k = keys(&src);
    for key in [
        "images[0].id",
        "images[1].cloud",
        "images[1].channels[0]",
        "images[1].labels",
        "images[3].id",
    ] {
        assert!(has(&src, key, Severity::Error), "{key} in {k:?}");
    }
    assert_eq!(k.len(), 5, "{k:?}");
}

#[test]
fn conditions_and_alert_numbers() {
    let src = format!(
        "{CLOUD}[alerts]\nconditions = [\"ERROR\", \"WATCHER_DEGRADED\", \"BROKEN\", \"ERROR\"]\nnot_found_after = 0\ngroup_threshold = 0\n"
    );
    assert!(has(&src, "alerts.conditions[1]", Severity::Error));
    assert!(has(&src, "alerts.conditions[2]", Severity::Error));
    assert!(has(&src, "alerts.conditions[3]", Severity::Warning));
    assert!(has(&src, "alerts.not_found_after", Severity::Error));
    assert!(has(&src, "alerts.group_threshold", Severity::Error));
}

#[test]
fn channel_rules() {
    let src = format!(
        r#"{CLOUD}
[[channels]]
name = "m"
type = "email"
smtp = "smtp.example.com"
from = "not an address"
tls = "none"
password_file = "/p"
url = "https://x.example"

[[channels]]
name = "m"
type = "webhook"
url = "http://hooks.example.com/T0KEN"
format = "slack"
secret = "s"
to = ["a@b.example"]

[[channels]]
name = "am"
type = "alertmanager"
"#
    );
    let p = problems(&src);
    let k: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
    for key in [
        "channels[0].smtp",
        "channels[0].from",
        "channels[0].to",
        "channels[0].username",
        "channels[0].url",
        "channels[1].name",
        "channels[1].url",
        "channels[1].secret",
        "channels[1].to",
        "channels[2]",
    ] {
        assert!(k.contains(&key), "{key} in {k:?}");
    }
    assert!(p.iter().all(|p| !p.message.contains("T0KEN")), "URL leaked");
    // tls = none with a password to a non-loopback host.
    let tls = src.replace(
        "smtp.example.com\"",
        "smtp.example.com:25\"\nusername = \"u\"",
    );
    assert!(has(&tls, "channels[0].tls", Severity::Error));
    let local = tls.replace("smtp.example.com:25", "127.0.0.1:25");
    assert!(!has(&local, "channels[0].tls", Severity::Error));
}

#[test]
fn web_rules() {
    let src = format!(
        "{CLOUD}[web]\nlisten = \":9917\"\ntls_cert_file = \"/c\"\nbasic_auth_users = {{ prom = \"plain\", ok = \"$2b$12$abcdefghijklmnopqrstuuJ0F6Q4vBqZ6Q9nDq9Jm1Xl2Wm4zQ5Gy\" }}\n"
    );
    let k = keys(&src);
    assert!(has(&src, "web.listen", Severity::Error), "{k:?}");
    assert!(has(&src, "web.tls_key_file", Severity::Error), "{k:?}");
    assert!(
        has(&src, "web.basic_auth_users.prom", Severity::Error),
        "{k:?}"
    );
    assert!(
        !has(&src, "web.basic_auth_users.ok", Severity::Error),
        "{k:?}"
    );
}

#[test]
fn display_has_file_line_severity_key() {
    let src = CLOUD.replace("eu-de", "EU DE");
    let p = &problems(&src)[0];
    let text = p.to_string();
    assert!(
        text.starts_with("c.toml:4: error: clouds[0].region: region \"EU DE\" may contain only"),
        "{text}"
    );
}
