//! `demo`: the simulator, a webhook sink that prints what it receives, and the daemon with
//! `config/demo.toml`, all on loopback; then a scripted story so a newcomer sees status
//! changes, a firing and a resolved alert within a minute. Ctrl-C stops everything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::post;
use tokio_util::sync::CancellationToken;

use crate::alert::Notification;
use crate::cloud::Image;
use crate::config::SecretMode;
use crate::sim::{SimConfig, SimControl};

/// The demo config, compiled in so `demo` works from any directory.
pub const DEMO_TOML: &str = include_str!("../config/demo.toml");

/// Flags of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the daemon listens (status page, /metrics, API).
    #[arg(long, default_value = "127.0.0.1:9917")]
    pub listen: SocketAddr,
    /// Stop once the story has shown a firing and a resolved alert (for tests and CI).
    #[arg(long)]
    pub exit_after_story: bool,
}

/// The demo fleet: (id, name, initial status).
const FLEET: [(&str, &str, &str); 4] = [
    (
        "6f1c2a00-0000-4000-8000-000000000001",
        "pytorch-train",
        "ACTIVE",
    ),
    (
        "6f1c2a00-0000-4000-8000-000000000002",
        "tensorflow-serve",
        "CREATING",
    ),
    (
        "6f1c2a00-0000-4000-8000-000000000003",
        "notebook-base",
        "ACTIVE",
    ),
    (
        "6f1c2a00-0000-4000-8000-000000000004",
        "llm-finetune",
        "ACTIVE",
    ),
];

fn fleet() -> Vec<Image> {
    let now_ms = crate::watch::apply::unix_now() * 1000;
    FLEET
        .iter()
        .enumerate()
        .map(|(i, (id, name, status))| Image {
            id: Some((*id).to_string()),
            name: Some((*name).to_string()),
            status: Some((*status).to_string()),
            size: Some(4_194_304 + 1024 * i as u64),
            create_at: Some(now_ms - 86_400_000),
            update_at: Some(now_ms - 3_600_000),
            arch: Some("X86_64".into()),
            image_type: Some("DEDICATED".into()),
            service_type: Some("COMMON".into()),
            namespace: Some("team-ml".into()),
            swr_path: Some(format!("swr.eu-de.otc.t-systems.com/team-ml/{name}:v1")),
            tag: Some("v1".into()),
            visibility: Some("PRIVATE".into()),
            origin: Some("CUSTOMIZE".into()),
            workspace_id: Some("0".into()),
            ..Image::default()
        })
        .collect()
}

/// What the sink has seen.
#[derive(Default)]
struct Seen {
    firing: AtomicUsize,
    resolved: AtomicUsize,
}

async fn spawn_sink(seen: Arc<Seen>, stop: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the demo webhook sink")?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                print_received(&body, &seen);
                "ok"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(addr)
}

fn print_received(body: &[u8], seen: &Seen) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        println!("  [sink] received a non-JSON body ({} bytes)", body.len());
        return;
    };
    let items: Vec<serde_json::Value> = match v.get("notifications") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        _ => vec![v],
    };
    for item in items {
        let Ok(n) = serde_json::from_value::<Notification>(item) else {
            continue;
        };
        match n.kind {
            crate::alert::NotificationKind::Firing => seen.firing.fetch_add(1, Ordering::Relaxed),
            crate::alert::NotificationKind::Resolved => {
                seen.resolved.fetch_add(1, Ordering::Relaxed)
            }
            _ => 0,
        };
        println!(
            "  [sink] {:<8} {}  (event {})",
            n.kind.as_str().to_uppercase(),
            n.summary,
            n.event_id
        );
    }
}

/// Runs the demo until Ctrl-C (or, with `--exit-after-story`, until the story has shown a
/// firing and a resolved alert; an error if that takes more than 90 s).
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let stop = crate::app::shutdown_on_signal();
    let sim = crate::sim::spawn(
        SimConfig::default().with_images(fleet()),
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let seen = Arc::new(Seen::default());
    let sink = spawn_sink(seen.clone(), stop.clone()).await?;
    let state_dir = std::env::temp_dir().join(format!(
        "modelarts-image-exporter-demo-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&state_dir)?;

    let mut loaded = crate::config::load::parse(
        std::path::Path::new("config/demo.toml"),
        DEMO_TOML.to_string(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for c in &mut loaded.config.clouds {
        c.endpoint = Some(sim.url());
        c.iam_endpoint = Some(sim.url());
    }
    for ch in &mut loaded.config.channels {
        ch.url = Some(format!("http://{sink}/hook"));
    }
    loaded.config.web.listen = args.listen.to_string();
    loaded.config.state.path = Some(state_dir.join("state.db"));
    let settings = crate::config::resolve(&loaded, SecretMode::Resolve).map_err(|p| {
        anyhow::anyhow!(
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;

    let daemon = match crate::app::Daemon::start(
        std::path::PathBuf::from("config/demo.toml"),
        settings,
        stop.clone(),
    )
    .await
    {
        Ok(d) => d,
        Err(crate::app::StartError::Config(m)) => anyhow::bail!(m),
        Err(crate::app::StartError::Other(e)) => return Err(e),
    };
    let base = format!("http://{}", daemon.addr);
    println!("\nmodelarts-image-exporter demo — everything on loopback, no cloud account needed\n");
    println!("  status page   {base}/");
    println!("  metrics       {base}/metrics");
    println!("  images API    {base}/api/v1/images");
    println!("  events API    {base}/api/v1/events");
    println!("  simulator     {} (ModelArts + IAM)", sim.url());
    println!("  webhook sink  http://{sink}/hook (prints every notification below)\n");

    let control = sim.control();
    let story = tokio::spawn(story(control, stop.clone()));
    let outcome = if args.exit_after_story {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if seen.firing.load(Ordering::Relaxed) > 0 && seen.resolved.load(Ordering::Relaxed) > 0
            {
                println!("\ndemo: a firing and a resolved alert arrived; stopping.");
                break Ok(());
            }
            if tokio::time::Instant::now() > deadline || stop.is_cancelled() {
                break Err(anyhow::anyhow!(
                    "demo: no firing + resolved pair within 90 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else {
        stop.cancelled().await;
        Ok(())
    };
    stop.cancel();
    story.abort();
    let _ = daemon.wait().await;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&state_dir);
    outcome
}

/// The scripted story; each step prints what it does.
async fn story(sim: SimControl, stop: CancellationToken) {
    let steps: [(u64, &str, &str, Step); 4] = [
        (
            4,
            "tensorflow-serve",
            "finishes building: CREATING → ACTIVE",
            Step::Status(FLEET[1].0, "ACTIVE", None),
        ),
        (
            4,
            "notebook-base",
            "fails to save: ACTIVE → CREATE_FAILED (expect a FIRING alert)",
            Step::Status(
                FLEET[2].0,
                "CREATE_FAILED",
                Some("save image failed: layer push timeout"),
            ),
        ),
        (
            6,
            "llm-finetune",
            "is deleted in the console: the API answers 404 (expect a FIRING NOT_FOUND alert)",
            Step::Delete(FLEET[3].0),
        ),
        (
            8,
            "notebook-base",
            "is rebuilt: CREATE_FAILED → ACTIVE (expect a RESOLVED alert)",
            Step::Status(FLEET[2].0, "ACTIVE", Some("")),
        ),
    ];
    for (wait, name, what, step) in steps {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(wait)) => {}
        }
        println!("story: {name} {what}");
        match step {
            Step::Status(id, status, msg) => {
                sim.set_status(id, status);
                if let Some(m) = msg {
                    sim.set_status_message(id, m);
                }
            }
            Step::Delete(id) => {
                sim.delete_image(id);
            }
        }
    }
    println!("story: done. The daemon keeps watching; press Ctrl-C to stop.");
}

enum Step {
    Status(&'static str, &'static str, Option<&'static str>),
    Delete(&'static str),
}
