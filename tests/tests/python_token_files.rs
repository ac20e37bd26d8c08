//! Token files and databases shared with the Python SDK: Rust writes,
//! globus-sdk 4.10.0 reads the same records; Python writes, Rust reads them
//! and its own records are intact (JSON and SQLite).

#[path = "../../globus-app-blocking/tests/common/contract.rs"]
#[allow(dead_code, unreachable_pub)]
mod contract;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use contract::record;
use globus_app_blocking::storage::{JsonTokenStorage, SqliteTokenStorage, TokenStorage};
use globus_app_proto::storage::TOKEN_FILE_WRITER_VERSION;
use globus_app_tests::TempDir;

fn run_python(python: &str, script: &str, path: &Path) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

const PYTHON_READ: &str = r#"
import sys, json, globus_sdk
from globus_sdk.token_storage import JSONTokenStorage, SQLiteTokenStorage
path = sys.argv[1]
cls = SQLiteTokenStorage if path.endswith(".db") else JSONTokenStorage
s = cls(path)
print("SDK", globus_sdk.__version__)
print(json.dumps({rs: d.to_dict() for rs, d in sorted(s.get_token_data_by_resource_server().items())}, sort_keys=True))
"#;

/// The `globus-sdk.version` a token file or database records.
fn recorded_version(path: &Path) -> String {
    if path.extension().is_some_and(|e| e == "db") {
        let connection = rusqlite::Connection::open(path).unwrap();
        return connection
            .query_row(
                "SELECT value FROM sdk_storage_adapter_internal WHERE attribute = 'globus-sdk.version'",
                [],
                |row| row.get(0),
            )
            .unwrap();
    }
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    file["globus-sdk.version"].as_str().unwrap().to_owned()
}

const PYTHON_WRITE: &str = r#"
import sys
from globus_sdk.token_storage import JSONTokenStorage, SQLiteTokenStorage, TokenStorageData
path = sys.argv[1]
cls = SQLiteTokenStorage if path.endswith(".db") else JSONTokenStorage
s = cls(path)
s.store_token_data_by_resource_server({"py.example.org": TokenStorageData(
    resource_server="py.example.org", identity_id="c8aad43e-d274-11e5-bf98-8b02896cf782",
    scope="urn:globus:auth:scope:py.example.org:all", access_token="PY", refresh_token=None,
    expires_at_seconds=1900000000, token_type="Bearer")})
s.close()
"#;

fn interop(file: &str) {
    let Some(python) = globus_app_tests::python_reference() else {
        return;
    };
    let dir = TempDir::new("interop");
    let path = dir.0.join(file);
    // Looking at the file on every load, to see Python's write at once.
    let storage: Box<dyn TokenStorage> = match path.extension() {
        Some(extension) if extension == "db" => Box::new(
            SqliteTokenStorage::new(&path, "DEFAULT")
                .unwrap()
                .with_recheck_interval(Duration::ZERO),
        ),
        _ => Box::new(
            JsonTokenStorage::new(&path, "DEFAULT")
                .unwrap()
                .with_recheck_interval(Duration::ZERO),
        ),
    };
    // Rust writes, Python reads the same records.
    storage
        .store(&[record("a.example.org", "A"), record("b.example.org", "B")])
        .unwrap();
    let read = run_python(&python, PYTHON_READ, &path);
    assert!(
        read.contains(r#""a.example.org": {"access_token": "A", "expires_at_seconds": 1900000000"#),
        "{read}"
    );
    assert!(read.contains(r#""refresh_token": "B-refresh""#), "{read}");
    // The reference release these tests run against is the one Rust
    // records as the writer of the format.
    assert!(
        read.starts_with(&format!("SDK {TOKEN_FILE_WRITER_VERSION}\n")),
        "{read}"
    );
    assert_eq!(recorded_version(&path), TOKEN_FILE_WRITER_VERSION);
    // Python writes, Rust reads it, and its own records are intact.
    run_python(&python, PYTHON_WRITE, &path);
    assert_eq!(recorded_version(&path), TOKEN_FILE_WRITER_VERSION);
    let tokens = storage.load().unwrap();
    let py = tokens.get("py.example.org").unwrap();
    assert_eq!(py.access_token.secret(), "PY");
    assert_eq!(py.refresh_token, None);
    assert_eq!(
        tokens.get("a.example.org").unwrap(),
        &record("a.example.org", "A")
    );
}

#[test]
fn python_and_rust_share_json_token_files() {
    interop("tokens.json");
}

#[test]
fn python_and_rust_share_sqlite_token_databases() {
    interop("tokens.db");
}
