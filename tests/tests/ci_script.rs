//! `.ci/run`'s scripts: the advisory step (`.ci/advisories.sh`) with
//! neither the snapshot nor the live database fails and says why, never
//! skipping the check; the packaged-crates step (`.ci/packaged.sh`) fails
//! for a package that was not made.

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

/// `.ci/packaged.sh`: a crate whose package was not made fails the step by
/// name; nothing is tested in its place.
#[test]
fn the_packaged_crates_step_fails_for_a_package_that_was_not_made() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scratch = std::env::temp_dir().join(format!("globus-app-packaged-{}", std::process::id()));
    let output = Command::new("bash")
        .current_dir(&root)
        .args([
            "-c",
            "source .ci/packaged.sh && test_packaged_crates \"$1\" globus-app-not-a-crate",
            "packaged-step",
        ])
        .arg(&scratch)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(!output.status.success(), "the step passed with no package");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("globus-app-not-a-crate-"), "{said}");
    assert!(said.contains("is missing"), "{said}");
}
