//! `.ci/run`'s advisory step (`.ci/advisories.sh`): with neither the
//! snapshot nor the live database it fails and says why; it never skips
//! the check.

use std::path::Path;
use std::process::Command;

#[test]
fn the_advisory_step_fails_loudly_without_a_database() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scratch =
        std::env::temp_dir().join(format!("globus-app-advisories-{}", std::process::id()));
    let output = Command::new("bash")
        .current_dir(&root)
        .args([
            "-c",
            "source .ci/advisories.sh && advisory_check \"$1\"",
            "advisory-step",
        ])
        .arg(&scratch)
        .env("ADVISORY_SNAPSHOT_TOOL", "/nonexistent/advisory-db")
        .env("ADVISORY_FETCH", "false")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!output.status.success(), "the step passed with no database");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("no database"), "{said}");
    assert!(said.contains("cannot run"), "{said}");
    // It stopped before running cargo-deny at all.
    assert!(String::from_utf8_lossy(&output.stdout).trim().is_empty());
}
