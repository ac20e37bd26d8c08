//! The README's feature table says what the library crates' `Cargo.toml`s
//! say: every feature has its row, and a row says "yes" under "default"
//! exactly when the feature is on by default.

use std::collections::BTreeSet;
use std::path::Path;

/// The feature names of a `Cargo.toml`, and those on by default.
fn features(manifest: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    let mut defaults = BTreeSet::new();
    let mut in_features = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_features = line == "[features]";
            continue;
        }
        if !in_features || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name == "default" {
            defaults.extend(value.split('"').skip(1).step_by(2).map(str::to_owned));
        } else {
            names.insert(name.to_owned());
        }
    }
    (names, defaults)
}

/// The README's feature rows: name and whether "default" says yes.
fn readme_rows(readme: &str) -> Vec<(String, bool)> {
    let table = readme
        .split("### Features")
        .nth(1)
        .expect("a Features section");
    table
        .lines()
        .skip_while(|line| !line.starts_with("| `"))
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_owned(), cells[3] == "yes")
        })
        .collect()
}

#[test]
fn the_feature_table_matches_the_manifests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let rows = readme_rows(&readme);
    let mut all = BTreeSet::new();
    let mut defaults = BTreeSet::new();
    for krate in [
        "globus-app-proto",
        "globus-app-blocking",
        "globus-app-async",
    ] {
        let manifest = std::fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        let (names, on) = features(&manifest);
        assert!(on.is_subset(&names), "{krate}: {on:?} not in {names:?}");
        all.extend(names);
        defaults.extend(on);
    }
    let listed: BTreeSet<String> = rows.iter().map(|(name, _)| name.clone()).collect();
    assert_eq!(listed, all, "README rows against the manifests' features");
    let listed_default: BTreeSet<String> = rows
        .iter()
        .filter(|(_, default)| *default)
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(listed_default, defaults, "the README's default column");
}
