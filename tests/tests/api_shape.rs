//! Every public struct with public fields in the three library crates is
//! `#[non_exhaustive]`, so a field added later breaks no user: users build
//! them with constructors (`TokenData::new`, `ServiceSpec::new`...) or
//! `Default` and set the fields they need.

use std::path::Path;

#[test]
fn every_public_struct_with_public_fields_is_non_exhaustive() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut missing = Vec::new();
    let mut seen = 0;
    let mut pending: Vec<_> = [
        "globus-app-proto/src",
        "globus-app-blocking/src",
        "globus-app-async/src",
    ]
    .iter()
    .map(|dir| root.join(dir))
    .collect();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (at, line) in lines.iter().enumerate() {
                let Some(rest) = line.strip_prefix("pub struct ") else {
                    continue;
                };
                if !rest.trim_end().ends_with('{') {
                    continue; // a tuple or unit struct
                }
                let has_public_field = lines[at + 1..]
                    .iter()
                    .take_while(|l| !l.starts_with('}'))
                    .any(|l| l.trim_start().starts_with("pub ") && l.contains(':'));
                if !has_public_field {
                    continue;
                }
                seen += 1;
                let attributes = lines[..at]
                    .iter()
                    .rev()
                    .take_while(|l| l.starts_with("#[") || l.starts_with("///"));
                if !attributes.into_iter().any(|l| l.contains("non_exhaustive")) {
                    missing.push(format!("{}:{}: {line}", path.display(), at + 1));
                }
            }
        }
    }
    assert!(seen > 20, "the structs were found ({seen})");
    assert!(
        missing.is_empty(),
        "not #[non_exhaustive]:\n{}",
        missing.join("\n")
    );
}
