//! Unit tests of `resolve`: defaults, endpoints, secrets (never leaked), state path.

use std::path::Path;

use super::*;
use crate::config::load::parse;
use crate::config::settings::{ChannelKind, Credentials};

fn loaded(src: &str) -> Loaded {
    parse(Path::new("c.toml"), src.to_string()).expect("parses")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn cloud(provider: &str, region: &str, auth: &str) -> String {
    format!(
        "[[clouds]]\nprovider = \"{provider}\"\nregion = \"{region}\"\nproject_id = \"0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d\"\n[clouds.auth]\ntype = \"aksk\"\naccess_key = \"AK\"\n{auth}\n"
    )
}

#[test]
fn default_endpoints_per_provider() {
    assert_eq!(
        default_endpoints(Provider::Huaweicloud, "cn-north-4"),
        (
            "https://modelarts.cn-north-4.myhuaweicloud.com".to_string(),
            "https://iam.cn-north-4.myhuaweicloud.com".to_string()
        )
    );
    assert_eq!(
        default_endpoints(Provider::Otc, "eu-de"),
        (
            "https://modelarts.eu-de.otc.t-systems.com".to_string(),
            "https://iam.eu-de.otc.t-systems.com".to_string()
        )
    );
    assert_eq!(
        default_endpoints(Provider::Otc, "eu-ch2").0,
        "https://modelarts.eu-ch2.sc.otc.t-systems.com"
    );
}

#[test]
fn unnamed_cloud_is_default_with_endpoints_and_rates() {
    let src = format!(
        "{}[[images]]\nid = \"abc\"\n[poll]\nmax_requests_per_second = 3\n",
        cloud("otc", "eu-nl", "secret_key = \"${SK}\"")
    );
    let env = |n: &str| (n == "SK").then(|| "sk-value".to_string());
    let s = resolve_with_env(&loaded(&src), SecretMode::Resolve, &env).unwrap();
    let c = &s.clouds[0];
    assert_eq!(c.name, "default");
    assert_eq!(c.endpoint, "https://modelarts.eu-nl.otc.t-systems.com");
    assert_eq!(c.iam_endpoint, "https://iam.eu-nl.otc.t-systems.com");
    assert!((c.max_requests_per_second - 3.0).abs() < f64::EPSILON);
    assert_eq!(s.images[0].cloud, "default");
    assert_eq!(s.poll.schedule, Schedule::Interval(DEFAULT_INTERVAL));
    match &c.credentials {
        Credentials::AkSk { secret_key, .. } => assert_eq!(secret_key.expose(), "sk-value"),
        Credentials::Password { .. } => panic!("wrong kind"),
    }
}

#[test]
fn overridden_endpoint_loses_trailing_slash_and_expands_env() {
    let src = cloud("huaweicloud", "cn-north-4", "secret_key_file = \"/x\"").replace(
        "[clouds.auth]",
        "endpoint = \"http://127.0.0.1:8080/\"\niam_endpoint = \"${IAM}//\"\nmax_requests_per_second = 2.5\n[clouds.auth]",
    );
    let env = |n: &str| (n == "IAM").then(|| "https://iam.internal".to_string());
    let s = resolve_with_env(&loaded(&src), SecretMode::Skip, &env).unwrap();
    assert_eq!(s.clouds[0].endpoint, "http://127.0.0.1:8080");
    // Skip mode does not expand `${ENV}`: the default stands in.
    assert_eq!(
        s.clouds[0].iam_endpoint,
        "https://iam.cn-north-4.myhuaweicloud.com"
    );
    assert!((s.clouds[0].max_requests_per_second - 2.5).abs() < f64::EPSILON);
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("sk");
    std::fs::write(&sk, "x\n").unwrap();
    let src = src.replace("/x", sk.to_str().unwrap());
    let s = resolve_with_env(&loaded(&src), SecretMode::Resolve, &env).unwrap();
    assert_eq!(s.clouds[0].iam_endpoint, "https://iam.internal");
    let bad = |n: &str| (n == "IAM").then(|| "http://iam.internal".to_string());
    let err = resolve_with_env(&loaded(&src), SecretMode::Resolve, &bad).unwrap_err();
    assert_eq!(err[0].key, "clouds[0].iam_endpoint");
}

#[test]
fn secret_file_trimmed_and_missing_file_named_not_leaked() {
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("sk");
    std::fs::write(&sk, "file-secret\n").unwrap();
    let src = cloud(
        "otc",
        "eu-de",
        &format!("secret_key_file = {:?}", sk.to_str().unwrap()),
    );
    let s = resolve_with_env(&loaded(&src), SecretMode::Resolve, &no_env).unwrap();
    match &s.clouds[0].credentials {
        Credentials::AkSk { secret_key, .. } => assert_eq!(secret_key.expose(), "file-secret"),
        Credentials::Password { .. } => panic!("wrong kind"),
    }
    assert!(!format!("{s:?}").contains("file-secret"));

    let missing = dir.path().join("nope");
    let src = cloud(
        "otc",
        "eu-de",
        &format!("secret_key_file = {:?}", missing.to_str().unwrap()),
    ) + "[[channels]]\nname = \"m\"\ntype = \"email\"\nsmtp = \"h:25\"\nfrom = \"a@b.example\"\nto = [\"c@d.example\"]\nusername = \"u\"\npassword = \"inline-pw-value\"\n";
    let err = resolve_with_env(&loaded(&src), SecretMode::Resolve, &no_env).unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0].key, "clouds[0].auth.secret_key_file");
    assert_eq!(err[0].line, Some(8));
    assert!(err[0].message.contains(missing.to_str().unwrap()));
    assert!(!format!("{err:?}").contains("inline-pw-value"));
    // Skip mode does not read the file.
    assert!(resolve_with_env(&loaded(&src), SecretMode::Skip, &no_env).is_ok());
}

#[test]
fn unset_env_secret_names_the_variable() {
    let src = cloud("otc", "eu-de", "secret_key = \"${MISSING_SK}\"");
    let err = resolve_with_env(&loaded(&src), SecretMode::Resolve, &no_env).unwrap_err();
    assert_eq!(err[0].key, "clouds[0].auth.secret_key");
    assert!(err[0].message.contains("MISSING_SK"));
}

#[test]
fn channel_defaults() {
    let src = cloud("otc", "eu-de", "secret_key_file = \"/x\"")
        + r#"
[[channels]]
name = "mail465"
type = "email"
smtp = "smtp.example.com:465"
from = "a@example.com"
to = ["b@example.com"]
[[channels]]
name = "mail587"
type = "email"
smtp = "smtp.example.com:587"
from = "a@example.com"
to = ["b@example.com"]
[[channels]]
name = "slack"
type = "webhook"
url = "https://hooks.slack.example/T/"
format = "slack"
[[channels]]
name = "json"
type = "webhook"
url_file = "/run/url"
[[channels]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"
timeout = "3s"
"#;
    let s = resolve_with_env(&loaded(&src), SecretMode::Skip, &no_env).unwrap();
    let per_min: Vec<u32> = s.channels.iter().map(|c| c.max_per_minute).collect();
    assert_eq!(per_min, vec![60, 60, 20, 60, 60]);
    assert_eq!(s.channels[0].timeout, DEFAULT_CHANNEL_TIMEOUT);
    assert_eq!(s.channels[4].timeout, Duration::from_secs(3));
    let tls: Vec<_> = s.channels[..2]
        .iter()
        .map(|c| match &c.kind {
            ChannelKind::Email(e) => e.tls,
            _ => panic!("not email"),
        })
        .collect();
    assert_eq!(tls, vec![SmtpTls::Tls, SmtpTls::Starttls]);
    match &s.channels[2].kind {
        ChannelKind::Webhook(w) => assert_eq!(w.url.expose(), "https://hooks.slack.example/T"),
        _ => panic!("not webhook"),
    }
    match &s.channels[3].kind {
        ChannelKind::Webhook(w) => assert_eq!(w.format, WebhookFormat::Json),
        _ => panic!("not webhook"),
    }
}

#[test]
fn url_file_is_read_and_checked_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("url");
    std::fs::write(&f, "http://hooks.example.com/SECRET-TOKEN\n").unwrap();
    let src = cloud("otc", "eu-de", "secret_key = \"k\"")
        + &format!(
            "[[channels]]\nname = \"w\"\ntype = \"webhook\"\nurl_file = {:?}\n",
            f.to_str().unwrap()
        );
    let err = resolve_with_env(&loaded(&src), SecretMode::Resolve, &no_env).unwrap_err();
    assert_eq!(err[0].key, "channels[0].url_file");
    assert!(!format!("{err:?}").contains("SECRET-TOKEN"));
    std::fs::write(&f, "https://hooks.example.com/SECRET-TOKEN\n").unwrap();
    let s = resolve_with_env(&loaded(&src), SecretMode::Resolve, &no_env).unwrap();
    match &s.channels[0].kind {
        ChannelKind::Webhook(w) => {
            assert_eq!(w.url.expose(), "https://hooks.example.com/SECRET-TOKEN");
        }
        _ => panic!("not webhook"),
    }
}

#[test]
fn password_auth_scope() {
    let src = "[[clouds]]\nname = \"hw\"\nprovider = \"huaweicloud\"\nregion = \"ap-southeast-1\"\n[clouds.auth]\ntype = \"password\"\nuser = \"u\"\ndomain = \"d\"\npassword = \"${PW}\"\nproject_name = \"ap-southeast-1\"\n[[discovery]]\nnamespace = \"team\"\n";
    let env = |n: &str| (n == "PW").then(|| "pw".to_string());
    let s = resolve_with_env(&loaded(src), SecretMode::Resolve, &env).unwrap();
    assert_eq!(s.clouds[0].name, "hw");
    assert!(s.clouds[0].project_id.is_none());
    match &s.clouds[0].credentials {
        Credentials::Password {
            scope, password, ..
        } => {
            assert_eq!(scope, &ProjectScope::Name("ap-southeast-1".into()));
            assert_eq!(password.expose(), "pw");
        }
        Credentials::AkSk { .. } => panic!("wrong kind"),
    }
    assert_eq!(s.discovery[0].cloud, "hw");
    assert_eq!(s.discovery[0].image_type, "DEDICATED");
}

#[test]
fn state_path_defaults() {
    assert_eq!(
        state_path(Some(Path::new("/x/s.db")), Some("/var/lib/a")),
        PathBuf::from("/x/s.db")
    );
    assert_eq!(
        state_path(None, Some("/var/lib/a:/var/lib/b")),
        PathBuf::from("/var/lib/a/state.db")
    );
    assert_eq!(state_path(None, None), PathBuf::from("./state.db"));
    assert_eq!(state_path(None, Some("")), PathBuf::from("./state.db"));
    let src = cloud("otc", "eu-de", "secret_key = \"k\"");
    let env = |n: &str| (n == "STATE_DIRECTORY").then(|| "/sd".to_string());
    let s = resolve_with_env(&loaded(&src), SecretMode::Resolve, &env).unwrap();
    assert_eq!(s.state_path, PathBuf::from("/sd/state.db"));
}

#[test]
fn validation_errors_stop_resolution() {
    let src = cloud("otc", "EU", "secret_key = \"k\"");
    let err = resolve_with_env(&loaded(&src), SecretMode::Skip, &no_env).unwrap_err();
    assert_eq!(err[0].key, "clouds[0].region");
}
