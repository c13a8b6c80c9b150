//! The README's first command: `demo` shows a firing and a resolved alert within 90 s of the
//! binary starting (the binary itself enforces the 90 s with `--exit-after-story`).

mod support;

use std::process::Command;
use std::time::Instant;

#[test]
fn demo_shows_firing_and_resolved_within_90_seconds() {
    let started = Instant::now();
    let out = Command::new(support::bin())
        .args([
            "--log.level=warn",
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--exit-after-story",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("[sink] FIRING   ModelArts image notebook-base is CREATE_FAILED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[sink] RESOLVED ModelArts image notebook-base recovered"),
        "{stdout}"
    );
    assert!(stdout.contains("is gone (NOT_FOUND)"), "{stdout}");
    assert!(
        stdout.contains("status page   http://127.0.0.1:"),
        "{stdout}"
    );
    println!("demo took {:?}", started.elapsed());
}
