use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::UnixTime;
use crate::secret::{AccessToken, RefreshToken};
use crate::token::TokenData;

const V1: &[u8] = include_bytes!("../../fixtures/storage_json_v1_tokens.json");
const V2: &[u8] = include_bytes!("../../fixtures/storage_json_v2_tokens.json");
const SQLITE_DUMP: &str = include_str!("../../fixtures/storage_sqlite_v2_dump.sql");

const IDENTITY: &str = "c8aad43e-d274-11e5-bf98-8b02896cf782";

fn record(rs: &str, scope: &str, at: &str, rt: Option<&str>) -> TokenData {
    TokenData {
        resource_server: rs.into(),
        identity_id: Some(IDENTITY.into()),
        scope: scope.into(),
        access_token: AccessToken::new(at),
        refresh_token: rt.map(RefreshToken::new),
        expires_at: UnixTime::from_secs(1_700_000_000),
        token_type: Some("Bearer".into()),
        extra: serde_json::Map::new(),
    }
}

fn fixture_records() -> (TokenData, TokenData) {
    (
        record(
            "auth.globus.org",
            "openid profile email",
            "AUTH_ACCESS_TOKEN",
            Some("AUTH_REFRESH_TOKEN"),
        ),
        record(
            "transfer.api.globus.org",
            "urn:globus:auth:scope:transfer.api.globus.org:all",
            "TRANSFER_ACCESS_TOKEN",
            None,
        ),
    )
}

#[test]
fn v2_fixture_reads_and_writes_back_byte_for_byte() {
    let file = JsonTokenFile::parse(V2).unwrap();
    assert_eq!(
        file.namespaces().collect::<Vec<_>>(),
        ["DEFAULT", "other-namespace"]
    );
    let (auth, transfer) = fixture_records();
    assert_eq!(
        file.get(DEFAULT_NAMESPACE, "auth.globus.org").unwrap(),
        Some(auth)
    );
    assert_eq!(file.get_all(DEFAULT_NAMESPACE).unwrap()[1], transfer);
    assert_eq!(file.to_bytes(), V2);
}

#[test]
fn a_new_file_written_like_the_python_sdk_equals_the_fixture() {
    let (auth, transfer) = fixture_records();
    let mut file = JsonTokenFile::new();
    file.store(DEFAULT_NAMESPACE, [&auth, &transfer]);
    file.store("other-namespace", [&auth]);
    assert_eq!(
        String::from_utf8(file.to_bytes()).unwrap(),
        String::from_utf8(V2.to_vec()).unwrap()
    );
}

#[test]
fn v1_is_upgraded_into_default_and_written_as_python_does() {
    let mut file = JsonTokenFile::parse(V1).unwrap();
    let auth = file
        .get(DEFAULT_NAMESPACE, "auth.globus.org")
        .unwrap()
        .unwrap();
    assert_eq!(auth.identity_id, None);
    assert_eq!(auth.refresh_token, None);
    let mut transfer = record("transfer.api.globus.org", "urn:x:all", "TA", None);
    transfer.identity_id = Some("id\u{e9}".into());
    transfer.expires_at = UnixTime::from_secs(1_700_000_001);
    file.store(DEFAULT_NAMESPACE, [&transfer]);
    // Produced by globus-sdk 4.10.0: the untouched v1 record stays as it was.
    let python = r#"{"data": {"DEFAULT": {"auth.globus.org": {"scope": "openid", "access_token": "AUTH_ACCESS_TOKEN", "refresh_token": null, "token_type": "Bearer", "expires_at_seconds": 1700000000, "resource_server": "auth.globus.org"}, "transfer.api.globus.org": {"resource_server": "transfer.api.globus.org", "identity_id": "id\u00e9", "scope": "urn:x:all", "access_token": "TA", "expires_at_seconds": 1700000001, "token_type": "Bearer"}}}, "format_version": "2.0", "globus-sdk.version": "4.10.0"}"#;
    assert_eq!(String::from_utf8(file.to_bytes()).unwrap(), python);
}

#[test]
fn namespaces_are_isolated_and_remove_reports_what_it_did() {
    let mut file = JsonTokenFile::parse(V2).unwrap();
    assert!(file.remove("other-namespace", "auth.globus.org"));
    assert!(!file.remove("other-namespace", "auth.globus.org"));
    assert!(!file.remove("missing", "auth.globus.org"));
    assert_eq!(file.get_all("other-namespace").unwrap(), vec![]);
    assert_eq!(file.get_all(DEFAULT_NAMESPACE).unwrap().len(), 2);
    assert_eq!(file.get("nope", "auth.globus.org").unwrap(), None);
    assert_eq!(
        file.resource_servers(DEFAULT_NAMESPACE).collect::<Vec<_>>(),
        ["auth.globus.org", "transfer.api.globus.org"]
    );
}

#[test]
fn unknown_fields_and_top_level_keys_survive_a_store() {
    let input = br#"{"globus-sdk.version": "9.0", "data": {"DEFAULT": {"rs": {"resource_server": "rs", "scope": "s", "access_token": "a", "expires_at_seconds": 1, "future": [1.5, {"x": "\u00e9"}]}}}, "format_version": "2.0", "extra_top": 1}"#;
    let mut file = JsonTokenFile::parse(input).unwrap();
    let rs = file.get(DEFAULT_NAMESPACE, "rs").unwrap().unwrap();
    assert_eq!(rs.extra["future"], json!([1.5, {"x": "é"}]));
    let mut other = rs.clone();
    other.resource_server = "rs2".into();
    file.store(DEFAULT_NAMESPACE, [&rs, &other]);
    let out = String::from_utf8(file.to_bytes()).unwrap();
    assert_eq!(
        out,
        r#"{"globus-sdk.version": "4.10.0", "data": {"DEFAULT": {"rs": {"resource_server": "rs", "scope": "s", "access_token": "a", "expires_at_seconds": 1, "future": [1.5, {"x": "\u00e9"}]}, "rs2": {"resource_server": "rs2", "scope": "s", "access_token": "a", "expires_at_seconds": 1, "future": [1.5, {"x": "\u00e9"}]}}}, "format_version": "2.0", "extra_top": 1}"#
    );
}

#[test]
fn corrupt_and_unknown_files_are_typed_errors() {
    assert!(matches!(
        JsonTokenFile::parse(b""),
        Err(StorageCodecError::NotJson { .. })
    ));
    assert!(matches!(
        JsonTokenFile::parse(&V2[..V2.len() / 2]),
        Err(StorageCodecError::NotJson { .. })
    ));
    assert_eq!(
        JsonTokenFile::parse(b"[]"),
        Err(StorageCodecError::NotAnObject)
    );
    assert_eq!(
        JsonTokenFile::parse(br#"{"format_version": "3.0", "data": {}}"#),
        Err(StorageCodecError::UnknownFormatVersion(Some("3.0".into())))
    );
    assert_eq!(
        JsonTokenFile::parse(br#"{"data": {}}"#)
            .unwrap_err()
            .to_string(),
        "existing data file is in an unknown format (format_version=None)"
    );
    assert!(matches!(
        JsonTokenFile::parse(br#"{"format_version": "1.0"}"#),
        Err(StorageCodecError::Malformed(_))
    ));
    assert!(matches!(
        JsonTokenFile::parse(
            br#"{"format_version": "2.0", "data": [], "globus-sdk.version": "x"}"#
        ),
        Err(StorageCodecError::Malformed(_))
    ));
    assert!(matches!(
        JsonTokenFile::parse(br#"{"format_version": "2.0", "data": {"DEFAULT": 1}, "globus-sdk.version": "x"}"#),
        Err(StorageCodecError::InvalidNamespace(ns)) if ns == "DEFAULT"
    ));
    assert!(matches!(
        JsonTokenFile::parse(br#"{"format_version": "2.0", "data": {}}"#),
        Err(StorageCodecError::Malformed(_))
    ));
    let bad_record = br#"{"format_version": "2.0", "data": {"DEFAULT": {"rs": {"scope": "s"}}}, "globus-sdk.version": "x"}"#;
    let file = JsonTokenFile::parse(bad_record).unwrap();
    let err = file.get(DEFAULT_NAMESPACE, "rs").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid token data for resource server 'rs': 'resource_server' must be a string"
    );
}

#[test]
fn error_messages_never_contain_tokens() {
    let input = br#"{"format_version": "2.0", "data": {"DEFAULT": {"rs": {"resource_server": "rs", "scope": "s", "access_token": "SECRET_TOKEN", "expires_at_seconds": "x"}}}, "globus-sdk.version": "x"}"#;
    let err = JsonTokenFile::parse(input)
        .unwrap()
        .get_all(DEFAULT_NAMESPACE)
        .unwrap_err();
    assert!(!err.to_string().contains("SECRET_TOKEN"));
    assert!(!format!("{err:?}").contains("SECRET_TOKEN"));
}

#[test]
fn sqlite_records_match_the_python_dump() {
    let (auth, transfer) = fixture_records();
    for record in [&auth, &transfer] {
        let encoded = sqlite::encode_record(record);
        let row = format!(
            "INSERT INTO \"token_storage\" VALUES('DEFAULT','{}','{}');",
            record.resource_server, encoded
        );
        assert!(SQLITE_DUMP.contains(&row), "missing row {row}");
        assert_eq!(
            &sqlite::decode_record(&record.resource_server, &encoded).unwrap(),
            record
        );
    }
    for line in sqlite::CREATE_SCHEMA.split(";\n") {
        let table = line.lines().next().unwrap();
        assert!(SQLITE_DUMP.contains(table), "{table}");
    }
    assert!(SQLITE_DUMP.contains("'globus-sdk.database_schema_version','2'"));
    assert!(matches!(
        sqlite::decode_record("rs", "{"),
        Err(StorageCodecError::NotJson { .. })
    ));
}

#[test]
fn slugs_match_the_python_sdk() {
    // Expected values produced by globus-sdk 4.10.0's _slugify_app_name.
    for (name, slug) in [
        ("Globus CLI v3.30.0", "globus-cli-v3-30-0"),
        ("..", "--"),
        ("a/b", "a+b"),
        ("Ünïcode App", "ünïcode-app"),
        ("a\tb\u{200b}c", "abc"),
        ("x<>:\"/\\|?*y", "x+++++++++y"),
        ("Continuous Deployment App", "continuous-deployment-app"),
        ("com10", "com10"),
        ("con.txt", "con-txt"),
        ("\u{130}", "i\u{307}"),
    ] {
        assert_eq!(slugify_app_name(name).unwrap(), slug, "{name:?}");
    }
    for reserved in ["CON", "PRN\n", "nul", "LPT9", "COM1", "aux"] {
        assert!(
            matches!(slugify_app_name(reserved), Err(AppNameError::Reserved(_))),
            "{reserved:?}"
        );
    }
    assert_eq!(slugify_app_name("\n\t"), Err(AppNameError::Empty));
    assert_eq!(
        slugify_app_name("").unwrap_err().to_string(),
        "the app name gives an empty directory name; choose another"
    );
    assert_eq!(
        default_token_file_relative_path("cid", "test app", "production", TokenFileFormat::Sqlite)
            .unwrap(),
        ["cid", "test-app", "tokens.db"]
    );
}

fn arb_record() -> impl Strategy<Value = TokenData> {
    (
        "[a-z.]{1,12}",
        proptest::option::of("[a-f0-9-]{1,36}"),
        "\\PC{0,20}",
        "\\PC{1,20}",
        proptest::option::of("\\PC{1,20}"),
        any::<i64>(),
        proptest::option::of("[A-Za-z]{0,8}"),
        proptest::option::of(("[a-z_]{1,8}", any::<i32>())),
    )
        .prop_map(|(rs, id, scope, at, rt, exp, tt, extra)| TokenData {
            resource_server: rs,
            identity_id: id,
            scope,
            access_token: AccessToken::new(at),
            refresh_token: rt.map(RefreshToken::new),
            expires_at: UnixTime::from_secs(exp),
            token_type: tt,
            extra: extra
                .map(|(k, v)| std::iter::once((format!("x_{k}"), json!(v))).collect())
                .unwrap_or_default(),
        })
}

proptest! {
    #[test]
    fn json_file_round_trips(records in prop::collection::vec(arb_record(), 0..6), ns in "[A-Za-z]{1,8}") {
        let mut file = JsonTokenFile::new();
        file.store(&ns, &records);
        let bytes = file.to_bytes();
        prop_assert!(bytes.is_ascii());
        let back = JsonTokenFile::parse(&bytes).unwrap();
        prop_assert_eq!(back.to_bytes(), bytes);
        for record in &records {
            // The last record stored for a resource server wins.
            let last = records.iter().rev().find(|r| r.resource_server == record.resource_server).unwrap();
            let stored = back.get(&ns, &record.resource_server).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(last));
        }
    }

    #[test]
    fn sqlite_record_round_trips(record in arb_record()) {
        let encoded = sqlite::encode_record(&record);
        prop_assert_eq!(sqlite::decode_record("x", &encoded).unwrap(), record);
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = JsonTokenFile::parse(&bytes);
    }
}

#[test]
fn numbers_in_unknown_fields_are_read_back_exactly_as_written() {
    // Found by the token_file fuzz target: 1.7e+118, written, was read
    // back as 1.7000000000000002e118.
    let input = br#"{"data": {"DEFAULT": {"rs": {"resource_server": "rs", "scope": "s", "access_token": "a", "expires_at_seconds": 1, "big": 17000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000012297829382473034404, "small": 0.1, "tiny": 5e-324}}}, "format_version": "2.0", "globus-sdk.version": "4.10.0"}"#;
    let first = JsonTokenFile::parse(input).unwrap();
    let written = first.to_bytes();
    let second = JsonTokenFile::parse(&written).unwrap();
    assert_eq!(
        first.get_all(DEFAULT_NAMESPACE).unwrap(),
        second.get_all(DEFAULT_NAMESPACE).unwrap()
    );
    assert_eq!(second.to_bytes(), written, "stable after one write");
}
