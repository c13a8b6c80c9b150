//! The status page in a real headless browser: the real daemon polls the simulator, Chromium
//! (Debian's `chromium`) loads `/` and we assert on the DOM it built — every image, its status,
//! firing alerts, events, links — and that cloud data with markup in it stayed text and ran
//! nothing. Also saves a screenshot to `artifacts/status-page.png` for people to look at.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use modelarts_image_exporter::cloud::Image;
use modelarts_image_exporter::sim::{FaultMode, FaultSpec};
use serde_json::Value;
use support::{Daemon, aksk_cloud, eventually, free_port, image, start_sim};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium can hang (GPU, D-Bus, first-run); no browser run may take longer than this.
const BROWSER_DEADLINE: Duration = Duration::from_secs(30);

const OK: &str = "cccccccc-0000-4000-8000-00000000000a";
const FAILED: &str = "cccccccc-0000-4000-8000-00000000000b";
const SCRIPT: &str = "cccccccc-0000-4000-8000-00000000000c";
const GONE: &str = "cccccccc-0000-4000-8000-00000000000d";
const FLAKY: &str = "cccccccc-0000-4000-8000-00000000000e";

const SCRIPT_NAME: &str = "<script>alert(1)</script>";
/// Would retitle the page if the status message were ever parsed as markup.
const TITLE_HIJACK: &str = "<img src=x onerror=\"document.title='pwned'\"> quota exceeded";
const TITLE: &str = "ModelArts image exporter";

/// Fails (never skips) when the browser is missing.
fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test-deps.sh (Debian package chromium)"
    );
    CHROMIUM
}

/// Runs headless Chromium with `extra` args against `url`, killed after [`BROWSER_DEADLINE`];
/// returns stdout. A fresh profile directory each time, so no state leaks between runs.
async fn browse(extra: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let child = cmd.spawn().expect("start chromium");
    let out = tokio::time::timeout(BROWSER_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "chromium {extra:?} did not finish in {BROWSER_DEADLINE:?} (a script on the page \
                 opening a dialog, e.g. unescaped alert(1), hangs it too)"
            )
        })
        .unwrap();
    assert!(
        out.status.success(),
        "chromium {extra:?} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn config(sim_url: &str, port: u16, state: &Path) -> String {
    let mut images = String::new();
    for id in [OK, FAILED, SCRIPT, GONE, FLAKY] {
        let _ = writeln!(images, "[[images]]\nid = \"{id}\"");
        if id == OK {
            images.push_str("labels = { team = \"ml-platform\", severity = \"page\" }\n");
        }
    }
    format!(
        "{}[poll]\ninterval = \"200ms\"\ntimeout = \"1s\"\n{images}[web]\nlisten = \"127.0.0.1:{port}\"\n[state]\npath = \"{}\"\n",
        aksk_cloud(sim_url, modelarts_image_exporter::sim::DEMO_SK),
        state.display()
    )
}

/// The `/api/v1/images` entry of `id`.
fn view<'a>(all: &'a Value, id: &str) -> &'a Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in /api/v1/images: {all}"))
}

/// The `<tr ...>...</tr>` of the images table whose `data-id` is `id`.
fn row<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}:\n{dom}"));
    let start = dom[..at].rfind("<tr").unwrap();
    let end = at + dom[at..].find("</tr>").unwrap();
    &dom[start..end]
}

/// The inside of `<table id="{id}">`.
fn table<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}:\n{dom}"));
    let end = start + dom[start..].find("</table>").unwrap();
    &dom[start..end]
}

fn artifact_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/status-page.png")
}

#[tokio::test(flavor = "multi_thread")]
#[allow(clippy::too_many_lines)] // reason: one end-to-end story, step by step
async fn status_page_renders_in_a_real_browser() {
    chromium();
    let sim = start_sim(vec![
        Image {
            size: Some(6_815_744),
            ..image(OK, "pytorch-train", "ACTIVE")
        },
        Image {
            status_message: Some(TITLE_HIJACK.to_string()),
            size: Some(2_252_800),
            ..image(FAILED, "tf-serving", "CREATE_FAILED")
        },
        image(SCRIPT, SCRIPT_NAME, "ACTIVE"),
        image(GONE, "notebook-base", "ACTIVE"),
        image(FLAKY, "flaky-image", "ACTIVE"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config(&sim.url(), port, &dir.path().join("state.db"))).unwrap();
    let d = Daemon::start(&cfg, port, &[]).await;

    // Both seen once; then one is deleted (NOT_FOUND, with a status event) and the other's
    // polls start failing (HTTP 500, which pages nobody but shows in poll health).
    eventually("notebook-base and flaky-image polled", || async {
        let all = d.get_json("/api/v1/images").await;
        (view(&all, GONE)["status"] == "ACTIVE" && view(&all, FLAKY)["status"] == "ACTIVE")
            .then_some(())
    })
    .await;
    assert!(sim.delete_image(GONE));
    sim.set_fault(FaultSpec {
        image_id: Some(FLAKY.to_string()),
        ..FaultSpec::new(FaultMode::Http500)
    })
    .unwrap();
    let all = eventually(
        "every image polled, alerts firing, one poll failing",
        || async {
            let all = d.get_json("/api/v1/images").await;
            let ready = view(&all, OK)["status"] == "ACTIVE"
                && view(&all, SCRIPT)["status"] == "ACTIVE"
                && view(&all, FAILED)["condition"] == "CREATE_FAILED"
                && view(&all, GONE)["condition"] == "NOT_FOUND"
                && view(&all, FLAKY)["consecutive_failures"].as_u64() >= Some(2);
            ready.then_some(all)
        },
    )
    .await;
    assert_eq!(view(&all, SCRIPT)["name"], SCRIPT_NAME);

    let url = format!("{}/", d.base);
    let dom = browse(&["--dump-dom".to_string()], &url).await;

    // Nothing from the cloud became markup, and nothing ran: no script or img element, and the
    // title the onerror handler would have rewritten is intact.
    assert!(
        dom.contains(&format!("<title>{TITLE}</title>")),
        "title changed, so a script from cloud data ran:\n{dom}"
    );
    let lower = dom.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "a <script> element exists:\n{dom}"
    );
    assert!(!lower.contains("<img"), "an <img> element exists:\n{dom}");
    // ... and both show up as text in their cells.
    let script_row = row(&dom, SCRIPT);
    assert!(
        script_row.contains(">&lt;script&gt;alert(1)&lt;/script&gt;</span>"),
        "{script_row}"
    );
    let failed_row = row(&dom, FAILED);
    assert!(
        failed_row.contains("&lt;img src=x onerror=\"document.title='pwned'\"&gt; quota exceeded"),
        "{failed_row}"
    );

    // Every image with its status; the two alerts firing; the failing poll with its error.
    for (id, name, status) in [
        (OK, "pytorch-train", "ACTIVE"),
        (FAILED, "tf-serving", "CREATE_FAILED"),
        (GONE, "notebook-base", "NOT_FOUND"),
    ] {
        let r = row(&dom, id);
        assert!(r.contains(&format!(">{name}</span>")), "{name}: {r}");
        assert!(r.contains(&format!(">{status}</span>")), "{status}: {r}");
    }
    assert!(row(&dom, SCRIPT).contains("class=\"st ok\">ACTIVE</span>"));
    assert!(
        row(&dom, OK).contains("team=ml-platform"),
        "{}",
        row(&dom, OK)
    );
    assert!(row(&dom, OK).contains("6.5 GiB"), "{}", row(&dom, OK));
    for (id, condition) in [(FAILED, "CREATE_FAILED"), (GONE, "NOT_FOUND")] {
        let r = row(&dom, id);
        assert!(r.starts_with("<tr class=\"firing\""), "{r}");
        assert!(
            r.contains(&format!(
                "class=\"st bad\">{condition}</span><span class=\"sub\">since <time"
            )),
            "{condition} not shown as firing: {r}"
        );
    }
    assert!(row(&dom, OK).starts_with("<tr class=\"quiet\""));
    let flaky = row(&dom, FLAKY);
    assert!(flaky.starts_with("<tr class=\"failing\""), "{flaky}");
    assert!(flaky.contains("consecutive failures</span>"), "{flaky}");
    assert!(flaky.contains(">flaky-image</span>"), "{flaky}");
    let last_error = d.get_json("/api/v1/images").await;
    let last_error = view(&last_error, FLAKY)["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        flaky.contains(&format!("last error: {last_error}</span>")),
        "{flaky}"
    );

    // Sorted: firing first, then the failing poll, then the rest by name.
    let pos = |id: &str| dom.find(&format!("data-id=\"{id}\"")).unwrap();
    assert!(
        pos(GONE) < pos(FLAKY) && pos(FAILED) < pos(FLAKY),
        "firing first"
    );
    assert!(
        pos(FLAKY) < pos(SCRIPT) && pos(SCRIPT) < pos(OK),
        "then failing, then by name"
    );

    assert!(dom.contains(">5 images</span>"), "{dom}");
    assert!(dom.contains(">2 firing</span>"), "{dom}");
    assert!(dom.contains(">1 poll failing</span>"), "{dom}");

    // Events: at least the deletion, shown with the image's name.
    let events = table(&dom, "events");
    let rows = events.matches("<tr>").count() - 1; // minus the header row
    assert!(rows >= 1, "{events}");
    assert!(!events.contains("No changes recorded yet"), "{events}");
    assert!(events.contains(">notebook-base</span>"), "{events}");
    assert!(
        events.contains("class=\"st bad\">NOT_FOUND</span>"),
        "{events}"
    );

    for link in ["/metrics", "/api/v1/images", "/api/v1/events"] {
        assert!(
            dom.contains(&format!("<a href=\"{link}\">")),
            "no link to {link}"
        );
    }
    assert!(dom.contains("http-equiv=\"refresh\""), "no auto-refresh");

    // A screenshot for people (and the CI artifact).
    let shot = artifact_path();
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    browse(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".to_string(),
        ],
        &url,
    )
    .await;
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10 * 1024, "screenshot only {} bytes", png.len());
}
