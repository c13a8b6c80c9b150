//! Test harness for real receivers: free ports, child processes killed on drop, bounded waits,
//! and a throwaway Alertmanager.
#![allow(dead_code)] // reason: each test binary uses a subset

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Every wait on a real component gives up after this long.
const WAIT: Duration = Duration::from_secs(15);
const STEP: Duration = Duration::from_millis(50);

/// A loopback port that was free a moment ago (bind port 0, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (and reaped) when dropped.
pub struct Child(std::process::Child);

impl Child {
    pub fn spawn(command: &mut Command) -> Self {
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Self(child)
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `.venv-test/bin/python` of this crate; fails (never skips) when missing.
pub fn venv_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test-deps.sh to install the test SMTP server (aiosmtpd)",
        python.display()
    );
    python
}

/// Waits until `port` accepts connections.
pub async fn wait_for_port(port: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {WAIT:?}"
        );
        tokio::time::sleep(STEP).await;
    }
}

/// Waits until `dir` holds a file and returns it.
pub async fn wait_for_file(dir: &Path) -> PathBuf {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(entry) = std::fs::read_dir(dir).ok().and_then(|mut d| d.next()) {
            return entry.unwrap().path();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no file in {} after {WAIT:?}",
            dir.display()
        );
        tokio::time::sleep(STEP).await;
    }
}

/// A throwaway Alertmanager on loopback (Debian's `prometheus-alertmanager`).
pub struct Alertmanager {
    pub url: String,
    _dir: tempfile::TempDir,
    _child: Child,
}

impl Alertmanager {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
        )
        .unwrap();
        let port = free_port();
        let mut child = Child::spawn(
            Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
        );
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = client.get(format!("{url}/-/ready")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                child.exited().is_none(),
                "prometheus-alertmanager exited early"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "Alertmanager not ready after {WAIT:?}"
            );
            tokio::time::sleep(STEP).await;
        }
        Self {
            url,
            _dir: dir,
            _child: child,
        }
    }

    /// `GET /api/v2/alerts{query}`.
    pub async fn alerts(&self, query: &str) -> Vec<Value> {
        reqwest::get(format!("{}/api/v2/alerts{query}", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// The alert whose `id` label is `id`.
pub fn find_alert<'a>(alerts: &'a [Value], id: &str) -> Option<&'a Value> {
    alerts.iter().find(|a| a["labels"]["id"] == id)
}

// ---- the real daemon binary and the simulator -------------------------------------------

/// The built binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_modelarts-image-exporter")
}

/// Polls `f` until it returns `Some`, every 50 ms, failing after `WAIT` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for: {what}"
        );
        tokio::time::sleep(STEP).await;
    }
}

/// A simulator with the demo credentials on a free loopback port.
pub async fn start_sim(
    images: Vec<modelarts_image_exporter::cloud::Image>,
) -> modelarts_image_exporter::sim::SimHandle {
    modelarts_image_exporter::cloud::ensure_crypto_provider();
    modelarts_image_exporter::sim::spawn(
        modelarts_image_exporter::sim::SimConfig::default().with_images(images),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// An image as the simulator should serve it.
pub fn image(id: &str, name: &str, status: &str) -> modelarts_image_exporter::cloud::Image {
    modelarts_image_exporter::cloud::Image {
        id: Some(id.to_string()),
        name: Some(name.to_string()),
        status: Some(status.to_string()),
        size: Some(1024),
        create_at: Some(1_638_234_504_492),
        update_at: Some(1_638_234_504_492),
        image_type: Some("DEDICATED".to_string()),
        ..Default::default()
    }
}

/// `[[clouds]]` for the simulator with AK/SK (`secret_key` overridable).
pub fn aksk_cloud(sim_url: &str, secret_key: &str) -> String {
    format!(
        "[[clouds]]\nname = \"sim\"\nprovider = \"otc\"\nregion = \"eu-de\"\nproject_id = \"{}\"\nendpoint = \"{sim_url}\"\niam_endpoint = \"{sim_url}\"\n[clouds.auth]\ntype = \"aksk\"\naccess_key = \"{}\"\nsecret_key = \"{secret_key}\"\n",
        modelarts_image_exporter::sim::DEMO_PROJECT_ID,
        modelarts_image_exporter::sim::DEMO_AK,
    )
}

/// `[[clouds]]` for the simulator with IAM password auth (project scoped by name).
pub fn password_cloud(sim_url: &str) -> String {
    format!(
        "[[clouds]]\nname = \"sim\"\nprovider = \"huaweicloud\"\nregion = \"eu-de\"\nendpoint = \"{sim_url}\"\niam_endpoint = \"{sim_url}\"\n[clouds.auth]\ntype = \"password\"\nuser = \"{}\"\npassword = \"{}\"\ndomain = \"{}\"\nproject_name = \"{}\"\n",
        modelarts_image_exporter::sim::DEMO_USER,
        modelarts_image_exporter::sim::DEMO_PASSWORD,
        modelarts_image_exporter::sim::DEMO_DOMAIN,
        modelarts_image_exporter::sim::DEMO_PROJECT_NAME,
    )
}

/// `[[images]]` entries.
pub fn images_toml(ids: &[&str]) -> String {
    let mut out = String::new();
    for id in ids {
        out.push_str("[[images]]\nid = \"");
        out.push_str(id);
        out.push_str("\"\n");
    }
    out
}

/// The real daemon as a child process; SIGKILLed on drop unless stopped.
pub struct Daemon {
    pub child: Option<std::process::Child>,
    pub base: String,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `run` with `config` (which must listen on `port`) and waits for `/readyz`.
    pub async fn start(config: &Path, port: u16, envs: &[(&str, &str)]) -> Self {
        modelarts_image_exporter::cloud::ensure_crypto_provider();
        let client = reqwest::Client::new();
        Self::start_with(config, &format!("http://127.0.0.1:{port}"), &client, envs).await
    }

    /// Like [`Daemon::start`] for any scheme: waits for `{base}/readyz` using `client` (e.g. one
    /// trusting a test certificate). `/readyz` needs no credentials even with basic auth.
    pub async fn start_with(
        config: &Path,
        base: &str,
        client: &reqwest::Client,
        envs: &[(&str, &str)],
    ) -> Self {
        let stderr_path = config.with_extension(format!("stderr.{}", std::process::id()));
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let child = Command::new(bin())
            .arg("--config.file")
            .arg(config)
            .arg("--log.level=debug")
            .arg("run")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the daemon");
        let mut d = Self {
            child: Some(child),
            base: base.to_string(),
            stderr_path,
        };
        let url = format!("{}/readyz", d.base);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited early with {status}:\n{}", d.logs());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "daemon not ready after {WAIT:?}:\n{}",
                d.logs()
            );
            tokio::time::sleep(STEP).await;
        }
        d
    }

    /// What the daemon logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub async fn get_text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit code.
    pub async fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code();
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("daemon did not stop on SIGTERM:\n{}", self.logs());
            }
            tokio::time::sleep(STEP).await;
        }
    }

    /// SIGKILL, no chance to flush.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A webhook receiver on loopback that answers 200 to every POST and records the requests.
pub async fn webhook_receiver() -> wiremock::MockServer {
    let hook = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    hook
}
