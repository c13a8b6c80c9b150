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
