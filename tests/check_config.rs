//! `check-config` end to end: every problem reported with key and line, exit codes, secrets
//! never in the output, and the shipped example config passes.

use std::path::{Path, PathBuf};

use modelarts_image_exporter::config::check::check_config_with_env;
use modelarts_image_exporter::config::{
    EX_CONFIG, SecretMode, Severity, check_config, load, resolve, validate,
};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const MANY_MISTAKES: &str = r#"[[clouds]]
name = "prod"
provider = "otc"
region = "EU DE"
project_id = "0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d"
endpoint = "http://modelarts.example.com"
[clouds.auth]
type = "aksk"
access_key = "AK"
secret_key = "inline-secret-value"
secret_key_file = "/run/sk"

[poll]
interval = "10ms"

[[images]]
id = "278e88d1-5b71-4766-8502-b3ba72e824d9"
channels = ["nobody"]

[[images]]
id = "278e88d1-5b71-4766-8502-b3ba72e824d9"
"#;

#[test]
fn every_mistake_is_reported_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.toml", MANY_MISTAKES);
    let loaded = load(&path).unwrap();
    let problems = validate(&loaded);
    let got: Vec<(&str, Option<usize>)> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.key.as_str(), p.line))
        .collect();
    let want = [
        ("clouds[0].region", Some(4)),
        ("clouds[0].endpoint", Some(6)),
        ("clouds[0].auth.secret_key_file", Some(11)),
        ("poll.interval", Some(14)),
        ("images[0].channels[0]", Some(18)),
        ("images[1].id", Some(21)),
    ];
    for w in want {
        assert!(got.contains(&w), "missing {w:?} in {got:?}");
    }
    assert_eq!(got.len(), want.len(), "{got:?}");

    let (code, out) = check_config(&path, true);
    assert_eq!(code, EX_CONFIG);
    let file = path.display().to_string();
    assert!(
        out.contains(&format!("{file}:4: error: clouds[0].region: ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{file}:14: error: poll.interval: ")),
        "{out}"
    );
    assert!(out.contains("invalid (6 errors, 0 warnings)"), "{out}");
    assert!(!out.contains("inline-secret-value"), "{out}");
}

#[test]
fn unknown_key_is_a_parse_error_with_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "typo.toml",
        "[[clouds]]\nprovider = \"otc\"\nregion = \"eu-de\"\n[clouds.auth]\ntype = \"aksk\"\n\n[poll]\nintervall = \"60s\"\n",
    );
    let (code, out) = check_config(&path, true);
    assert_eq!(code, EX_CONFIG);
    let file = path.display().to_string();
    assert!(
        out.starts_with(&format!(
            "{file}:8:1: error: poll.intervall: unknown field `intervall`"
        )),
        "{out}"
    );
    assert!(out.contains("`interval`"), "names valid keys: {out}");
}

fn good_config(dir: &tempfile::TempDir, sk_file: &Path) -> PathBuf {
    write(
        dir,
        "good.toml",
        &format!(
            "[[clouds]]\nprovider = \"otc\"\nregion = \"eu-de\"\nproject_id = \"0bf8e7b0c1a94b6a9d1c2f3e4a5b6c7d\"\n[clouds.auth]\ntype = \"aksk\"\naccess_key = \"AK\"\nsecret_key_file = {:?}\n\n[[channels]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"${{HOOK_URL}}\"\n\n[[images]]\nid = \"abc\"\n",
            sk_file.to_str().unwrap()
        ),
    )
}

#[test]
fn exit_codes_and_secret_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("sk");
    let path = good_config(&dir, &sk);
    let env = |n: &str| (n == "HOOK_URL").then(|| "https://hooks.example/TOKEN-123".to_string());

    // --syntax-only does not read the (missing) secret file.
    let (code, out) = check_config_with_env(&path, true, &env);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK (0 warnings)"), "{out}");

    // Full check: the missing file is an error naming key and path.
    let (code, out) = check_config_with_env(&path, false, &env);
    assert_eq!(code, EX_CONFIG, "{out}");
    assert!(out.contains("clouds[0].auth.secret_key_file"), "{out}");
    assert!(out.contains(sk.to_str().unwrap()), "{out}");
    assert!(!out.contains("TOKEN-123"), "{out}");

    std::fs::write(&sk, "the-secret-key\n").unwrap();
    let (code, out) = check_config_with_env(&path, false, &env);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("the-secret-key"), "{out}");

    // An unset variable is named, with its key.
    let (code, out) = check_config_with_env(&path, false, &|_: &str| None);
    assert_eq!(code, EX_CONFIG, "{out}");
    assert!(
        out.contains("channels[0].url: environment variable HOOK_URL is not set"),
        "{out}"
    );
}

#[test]
fn missing_config_file_exits_78() {
    let (code, out) = check_config(Path::new("/nonexistent/modelarts.toml"), true);
    assert_eq!(code, EX_CONFIG);
    assert!(out.contains("/nonexistent/modelarts.toml"), "{out}");
}

#[test]
fn shipped_example_passes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let loaded = load(&path).unwrap_or_else(|e| panic!("{e}"));
    let problems = validate(&loaded);
    assert!(
        problems.iter().all(|p| p.severity != Severity::Error),
        "{problems:#?}"
    );
    let settings = resolve(&loaded, SecretMode::Skip).unwrap_or_else(|p| panic!("{p:#?}"));
    assert_eq!(settings.clouds.len(), 2);
    assert_eq!(settings.channels.len(), 4);
    let (code, out) = check_config(&path, true);
    assert_eq!(code, 0, "{out}");
}
