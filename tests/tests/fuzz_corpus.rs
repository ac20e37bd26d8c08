//! Replays the committed, minimised fuzz corpus (`fuzz/corpus/<target>/`,
//! grown by the cargo-fuzz targets in `fuzz/`) through the same harnesses
//! on stable, so every input the fuzzers kept stays a regression test.

use std::path::{Path, PathBuf};

use globus_app_proto::fuzzing;

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 16] = [
    ("scopes", fuzzing::scopes),
    ("token_file", fuzzing::token_file),
    ("sqlite_record", fuzzing::sqlite_record),
    ("token_response", fuzzing::token_response),
    ("auth_error", fuzzing::auth_error),
    ("gare", fuzzing::gare),
    ("id_token", fuzzing::id_token),
    ("redirect", fuzzing::redirect),
    ("listener_request", fuzzing::listener_request),
    ("service_answer", fuzzing::service_answer),
    ("pager", fuzzing::pager),
    ("service_ids", fuzzing::service_ids),
    ("dependent_tokens", fuzzing::dependent_tokens),
    ("consents", fuzzing::consents),
    ("sealed_row", fuzzing::sealed_row),
    ("service_urls", fuzzing::service_urls),
];

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_target_file_and_a_corpus() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for (target, _) in TARGETS {
        assert!(targets.join(format!("{target}.rs")).is_file(), "{target}");
        assert!(!corpus(target).is_empty(), "{target}: empty corpus");
    }
    let files = std::fs::read_dir(&targets).unwrap().count();
    assert_eq!(files, TARGETS.len(), "a fuzz target is not replayed here");
}

#[test]
fn the_fuzz_corpus_replays_without_a_failure() {
    for (target, harness) in TARGETS {
        for input in corpus(target) {
            let data = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| harness(&data));
            assert!(outcome.is_ok(), "{target}: {} fails", input.display());
        }
    }
}
