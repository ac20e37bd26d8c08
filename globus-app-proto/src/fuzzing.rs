//! Harnesses for every parser of untrusted input (feature `testing`). The
//! coverage-guided fuzz targets in `fuzz/` call them, and this crate's
//! `fuzz_corpus` test replays the committed corpus through them on stable.
//!
//! Each takes arbitrary bytes and panics only when an invariant breaks: a
//! parser that panics, output that does not parse again, a token handed
//! out expired.
// Panicking on a broken invariant is what these functions are for.
#![allow(clippy::missing_panics_doc)]

use std::sync::OnceLock;

use serde_json::Value;

use crate::UnixTime;
use crate::auth_error::AuthApiError;
use crate::authorize::{
    OAuthState, parse_pasted_code, parse_redirect_query, request_head_end, request_query,
};
use crate::gare::{gare_from_response, to_gare};
use crate::id_token::{IdTokenExpectations, Jwks, OidcConfiguration, verify_id_token};
use crate::response::parse_token_response;
use crate::scope::{merge_scopes, parse_scopes, serialize_scopes};
use crate::secret::IdToken;
use crate::storage::{JsonTokenFile, sqlite};

/// The clock of the harnesses.
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn response(status: u16, body: &[u8]) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap_or_default()
}

/// The status a byte picks: the ones the parsers treat differently.
fn status(byte: Option<&u8>) -> u16 {
    const STATUSES: [u16; 8] = [200, 400, 401, 403, 404, 429, 500, 503];
    STATUSES[usize::from(byte.copied().unwrap_or(0)) % STATUSES.len()]
}

/// Scope strings (two, split at the first `|`): parsing, and merging,
/// which must equal parsing both lists written out. (Written out, parsed
/// scopes need not parse again: as in the Python SDK, a last name of only
/// whitespace after `*` is an error then.)
pub fn scopes(data: &[u8]) {
    let input = text(data);
    let (a, b) = input.split_at(input.find('|').unwrap_or(input.len()));
    let (Ok(a), Ok(b)) = (parse_scopes(a), parse_scopes(b.trim_start_matches('|'))) else {
        return;
    };
    let written = serialize_scopes(a.iter().chain(&b));
    assert_eq!(merge_scopes(&a, &b), parse_scopes(&written));
}

/// JSON token files: what parses is written out and parses to the same
/// records, in every namespace.
pub fn token_file(data: &[u8]) {
    let Ok(file) = JsonTokenFile::parse(data) else {
        return;
    };
    let again = JsonTokenFile::parse(&file.to_bytes()).expect("a written token file parses");
    for namespace in file.namespaces() {
        assert_eq!(
            file.get_all(namespace).ok(),
            again.get_all(namespace).ok(),
            "namespace {namespace:?}"
        );
    }
}

/// SQLite record encoding: `resource server \0 record JSON`; a decoded
/// record encodes and decodes to itself.
pub fn sqlite_record(data: &[u8]) {
    let input = text(data);
    let (resource_server, json) = input.split_once('\0').unwrap_or(("rs", &input));
    let Ok(record) = sqlite::decode_record(resource_server, json) else {
        return;
    };
    let again = sqlite::decode_record(resource_server, &sqlite::encode_record(&record))
        .expect("an encoded record decodes");
    assert_eq!(again, record);
}

/// Token responses (first byte: the status): what parses holds only
/// tokens that are unexpired at receipt.
pub fn token_response(data: &[u8]) {
    let body = data.get(1..).unwrap_or_default();
    if let Ok(parsed) = parse_token_response(&response(status(data.first()), body), NOW) {
        assert!(parsed.tokens().iter().all(|t| t.expires_at > NOW));
    }
}

/// Globus Auth error documents (first byte: the status).
pub fn auth_error(data: &[u8]) {
    let body = data.get(1..).unwrap_or_default();
    let error = AuthApiError::from_body(status(data.first()), body);
    let _ = error.to_string();
}

/// GARE bodies (first byte: the status): a GARE found is written out and
/// read back as itself.
pub fn gare(data: &[u8]) {
    let body = data.get(1..).unwrap_or_default();
    if let Some(gare) = gare_from_response(&response(status(data.first()), body)) {
        let written = Value::Object(gare.to_json(true));
        assert!(to_gare(&written).is_some(), "a written GARE reads back");
    }
}

/// The keys and configuration the id_token harness verifies against: the
/// recorded production configuration and JWKS.
fn oidc() -> &'static (OidcConfiguration, Jwks) {
    static OIDC: OnceLock<(OidcConfiguration, Jwks)> = OnceLock::new();
    OIDC.get_or_init(|| {
        let body = |text: &str| {
            serde_json::from_str::<Value>(text)
                .map(|v| v["body"].clone())
                .unwrap_or_default()
        };
        let configuration = body(include_str!(
            "../../fixtures/oidc_openid_configuration.json"
        ));
        let jwks = body(include_str!("../../fixtures/oidc_jwks.json"));
        (
            OidcConfiguration::from_json(&configuration).expect("the recorded configuration"),
            Jwks::from_json(&jwks).expect("the recorded JWKS"),
        )
    })
}

/// id_tokens, JWKS and OpenID configurations: arbitrary bytes never verify
/// against the recorded keys, and key sets and configurations parse or
/// fail cleanly.
pub fn id_token(data: &[u8]) {
    let (configuration, jwks) = oidc();
    let expectations = IdTokenExpectations {
        configuration,
        client_id: "7fb58e00-839d-44e3-8047-10a502612dca",
        leeway_secs: 300,
    };
    let token = IdToken::new(text(data));
    assert!(
        verify_id_token(&token, jwks, &expectations, NOW).is_err(),
        "only Globus Auth's key signs"
    );
    if let Ok(json) = serde_json::from_slice::<Value>(data) {
        let _ = Jwks::from_json(&json);
        let _ = OidcConfiguration::from_json(&json);
    }
}

/// Redirect queries and pasted codes (or whole pasted URLs): a code that
/// comes out is non-empty and has no whitespace.
pub fn redirect(data: &[u8]) {
    let input = text(data);
    let state = OAuthState::from_random_bytes(&[7; 32]);
    for code in [
        parse_redirect_query(&input, &state),
        parse_pasted_code(&input),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!code.secret().is_empty());
        assert!(
            !code.secret().contains(char::is_whitespace),
            "{:?}",
            code.secret()
        );
    }
}

/// The loopback listener's request heads: the query found is part of the
/// head's first line.
pub fn listener_request(data: &[u8]) {
    let head = request_head_end(data).map_or(data, |end| &data[..end]);
    let query = request_query(head);
    if !query.is_empty() {
        let first_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        assert!(
            first_line
                .windows(query.len())
                .any(|w| w == query.as_bytes()),
            "the query is in the first line"
        );
    }
}
