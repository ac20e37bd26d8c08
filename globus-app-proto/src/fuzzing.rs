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
        // A namespace that decodes decodes again to the same records; one
        // that does not is kept as it was (and still does not decode).
        match (file.get_all(namespace), again.get_all(namespace)) {
            (Ok(first), Ok(second)) => assert_eq!(first, second, "namespace {namespace:?}"),
            (Err(_), Err(_)) => {}
            (first, second) => panic!("namespace {namespace:?}: {first:?} then {second:?}"),
        }
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

/// A secret the Auth error harness strikes: the corpus holds answers that
/// echo it, raw and encoded.
pub const ECHOED_SECRET: &str = "SECRET-refresh-token-4f9a2c7e81b3";

/// Globus Auth error documents (first byte: the status): every text the
/// error keeps is bounded and safe to show, and once the request's secret
/// is struck, no piece of it (raw, in any case) is shown.
pub fn auth_error(data: &[u8]) {
    let body = data.get(1..).unwrap_or_default();
    let mut error = AuthApiError::from_body(status(data.first()), body);
    let texts = |error: &AuthApiError| {
        let mut texts: Vec<String> = [&error.error_description, &error.code, &error.request_id]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for item in &error.errors {
            texts.extend(
                [
                    &item.code,
                    &item.id,
                    &item.title,
                    &item.detail,
                    &item.status,
                ]
                .into_iter()
                .flatten()
                .cloned(),
            );
        }
        texts
    };
    for text in texts(&error) {
        assert_shown_safely(&text);
    }
    error.redact(&crate::redaction::SentSecrets::of(&[ECHOED_SECRET]));
    let shown = format!("{error} {error:?}").to_lowercase();
    for piece in ECHOED_SECRET
        .as_bytes()
        .windows(crate::redaction::SECRET_PIECE)
    {
        let piece = String::from_utf8_lossy(piece).to_lowercase();
        assert!(
            !shown.contains(&piece),
            "{piece:?} of the secret shown: {shown}"
        );
    }
}

/// GARE bodies (first byte: the status): a GARE found is written out, and
/// what is written reads back to a GARE with the same code and the same
/// parameters (every one the original had), which writes out the same
/// again. (Not the very same value: a legacy GARE keeps `required_scopes`
/// among its extra fields, as the Python SDK does, and written out in the
/// canonical shape they are the field.)
pub fn gare(data: &[u8]) {
    let body = data.get(1..).unwrap_or_default();
    if let Some(gare) = gare_from_response(&response(status(data.first()), body)) {
        let written = Value::Object(gare.to_json(true));
        let again = to_gare(&written).expect("a written GARE reads back");
        assert_eq!(again.code, gare.code);
        let (first, second) = (
            &gare.authorization_parameters,
            &again.authorization_parameters,
        );
        assert_eq!(first.session_message, second.session_message);
        assert_eq!(
            first.session_required_identities,
            second.session_required_identities
        );
        assert_eq!(
            first.session_required_policies,
            second.session_required_policies
        );
        assert_eq!(
            first.session_required_single_domain,
            second.session_required_single_domain
        );
        assert_eq!(first.session_required_mfa, second.session_required_mfa);
        assert_eq!(first.prompt, second.prompt);
        if first.required_scopes.is_some() {
            assert_eq!(first.required_scopes, second.required_scopes);
        }
        assert_eq!(
            Value::Object(again.to_json(true)),
            written,
            "the written GARE is written again the same"
        );
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
        let configuration = body(include_str!("../fixtures/oidc_openid_configuration.json"));
        let jwks = body(include_str!("../fixtures/oidc_jwks.json"));
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
/// comes out is non-empty and has no whitespace, and a redirect gives one
/// only when the expected `state` is in it exactly once, and nothing else
/// as a state.
pub fn redirect(data: &[u8]) {
    let input = text(data);
    let state = OAuthState::from_random_bytes(&[7; 32]);
    if parse_redirect_query(&input, &state).is_ok() {
        let states: Vec<String> = url::form_urlencoded::parse(input.as_bytes())
            .filter(|(key, _)| key == "state")
            .map(|(_, value)| value.into_owned())
            .collect();
        assert_eq!(states, [state.as_str()], "a code without our state, once");
    }
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

// ------------------------------------------------------- service clients

/// The base URL the service harnesses build requests under.
fn transfer_base() -> url::Url {
    url::Url::parse("https://transfer.api.globus.org/").unwrap_or_else(|_| unreachable!())
}

/// Whether a server's text, as an error keeps it, is bounded and shows no
/// invisible or direction-changing character.
fn assert_shown_safely(text: &str) {
    assert!(
        text.chars().count() <= crate::redaction::MAX_SERVER_TEXT_CHARS + 1,
        "unbounded: {} characters",
        text.chars().count()
    );
    assert!(
        !text.chars().any(crate::redaction::is_hidden),
        "a hidden character in {text:?}"
    );
}

/// Service answers (first byte: the status; the rest: the body, and the
/// `X-Request-Id` after a `\0`): a 2xx parses or is a typed error, and an
/// error's code, message and request id are bounded and safe to show.
pub fn service_answer(data: &[u8]) {
    use crate::service::{ServiceError, ServiceResponse};
    let rest = data.get(1..).unwrap_or_default();
    let (body, request_id) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let mut response = response(status(data.first()), body);
    if let Some(id) = request_id.and_then(|id| http::HeaderValue::from_bytes(id).ok()) {
        response.headers_mut().insert("x-request-id", id);
    }
    let check = |error: &ServiceError| {
        assert_shown_safely(&error.code);
        assert_shown_safely(&error.message);
        if let Some(id) = &error.request_id {
            assert_shown_safely(id);
        }
        let _ = error.to_string();
    };
    match ServiceResponse::from_http(&response) {
        Ok(answer) => assert!(answer.status.is_success()),
        Err(error) => check(&error),
    }
    check(&ServiceError::from_http(&response));
}

/// Pagers (byte 0: the style and page size, byte 1: the item limit, byte
/// 2: the caller's offset; then pages, separated by `\xff`): a pager never
/// sends one request twice, never sends a `limit` of 0, and never yields
/// more items than its limit.
pub fn pager(data: &[u8]) {
    use crate::service::paging::{Pager, PagingStyle};
    use crate::service::transfer::{EndpointSearch, endpoint_search};
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let page_size = u64::from(byte(0) % 4) + 1;
    let style = match byte(0) / 4 % 4 {
        0 => PagingStyle::HasNextPage {
            page_size,
            max_total: 10 + u64::from(byte(0) / 16),
        },
        1 => PagingStyle::LimitOffsetTotal {
            page_size,
            max_total: 10 + u64::from(byte(0) / 16),
        },
        2 => PagingStyle::Marker {
            marker_key: "marker",
            nullable: byte(0) >= 128,
        },
        _ => PagingStyle::LastKey,
    };
    let mut search = EndpointSearch::fulltext("x");
    search.offset = match byte(2) {
        0 => None,
        255 => Some(u64::MAX),
        n => Some(u64::from(n)),
    };
    let max_items = (byte(1) > 0).then(|| usize::from(byte(1) % 32));
    let mut pager = Pager::new(endpoint_search(&search), style, "DATA");
    if let Some(max) = max_items {
        pager = pager.with_max_items(max);
    }
    let mut sent = std::collections::HashSet::new();
    let mut yielded = 0;
    for page in data
        .get(3..)
        .unwrap_or_default()
        .split(|b| *b == 0xff)
        .take(64)
    {
        let Some(request) = pager.next_request() else {
            break;
        };
        assert_ne!(request.query_value("limit"), Some("0"), "a limit of 0");
        assert!(
            sent.insert(format!(
                "{:?}",
                (&request.path, &request.query, &request.body)
            )),
            "the same request twice: {request:?}"
        );
        let Ok(page) = serde_json::from_slice::<Value>(page) else {
            break;
        };
        match pager.page_received(&page) {
            Ok(items) => yielded += items.len(),
            Err(_) => break,
        }
        if let Some(max) = max_items {
            assert!(yielded <= max, "{yielded} items past the limit {max}");
        }
    }
}

/// Ids in the typed requests, and generic paths: a request's URL is either
/// a typed error or its route with the id as exactly one segment (and a
/// generic path stays as written under the base URL).
pub fn service_ids(data: &[u8]) {
    use crate::service::{ServiceRequest, search, transfer};
    let id = text(data);
    let base = transfer_base();
    let routes: [(&str, ServiceRequest); 9] = [
        ("/v0.10/endpoint/{}", transfer::get_endpoint(&id)),
        (
            "/v0.10/operation/endpoint/{}/ls",
            transfer::operation_ls(&id, &transfer::Listing::default()),
        ),
        (
            "/v0.10/operation/endpoint/{}/mkdir",
            transfer::operation_mkdir(&id, "/p"),
        ),
        (
            "/v0.10/operation/endpoint/{}/rename",
            transfer::operation_rename(&id, "/a", "/b"),
        ),
        (
            "/v0.10/operation/endpoint/{}/stat",
            transfer::operation_stat(&id, "/p"),
        ),
        ("/v0.10/task/{}", transfer::get_task(&id)),
        ("/v0.10/task/{}/cancel", transfer::cancel_task(&id)),
        ("/v1/index/{}/search", search::search(&id, "q", None)),
        ("/v1/index/{}/search", search::post_search(&id, Value::Null)),
    ];
    for (route, request) in routes {
        let Ok(url) = request.url(&base) else {
            continue;
        };
        let (before, after) = route.split_once("{}").unwrap_or((route, ""));
        let path = url.path();
        let segment = path
            .strip_prefix(before)
            .and_then(|rest| rest.strip_suffix(after))
            .unwrap_or_else(|| panic!("{path} left the route {route}"));
        assert!(
            !segment.contains('/'),
            "{path}: the id is more than one segment"
        );
        let decoded: Vec<u8> =
            url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned().into_bytes())
                .unwrap_or_default();
        assert_eq!(decoded, id.as_bytes(), "{path}: the segment is not the id");
    }
    if let Ok(url) = ServiceRequest::get(id.clone()).url(&base) {
        let relative = id.strip_prefix('/').unwrap_or(&id);
        assert_eq!(url.path().strip_prefix(base.path()), Some(relative));
    }
}

/// Dependent-token responses (first byte: the status): what parses holds
/// one unexpired token per resource server.
pub fn dependent_tokens(data: &[u8]) {
    let body = data.get(1..).unwrap_or_default();
    if let Ok(parsed) =
        crate::response::parse_dependent_token_response(&response(status(data.first()), body), NOW)
    {
        let mut servers = std::collections::HashSet::new();
        for token in parsed.tokens() {
            assert!(token.expires_at > NOW);
            assert!(servers.insert(token.resource_server.clone()), "a duplicate");
        }
    }
}

/// Consents answers (then, after a `\0`, a scope string to check): a
/// forest that builds has no cycle (every path is its parent's plus its
/// own id, with distinct ids), and checking scopes against it ends.
pub fn consents(data: &[u8]) {
    use crate::consent::ConsentForest;
    let (body, scopes) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let Ok(forest) = ConsentForest::from_json(&json) else {
        return;
    };
    let by_id: std::collections::HashMap<u64, &[u64]> = forest
        .consents()
        .iter()
        .map(|c| (c.id, c.dependency_path.as_slice()))
        .collect();
    for consent in forest.consents() {
        let path = &consent.dependency_path;
        assert_eq!(path.last(), Some(&consent.id));
        let distinct: std::collections::HashSet<_> = path.iter().collect();
        assert_eq!(distinct.len(), path.len(), "a consent is its own ancestor");
        if path.len() > 1 {
            assert_eq!(
                by_id.get(&path[path.len() - 2]).copied(),
                Some(&path[..path.len() - 1])
            );
        }
    }
    if let Ok(scopes) = parse_scopes(&text(scopes)) {
        let _ = forest.meets_scope_requirements(&scopes);
    }
}

/// Sealed PostgreSQL rows: a row the bytes make (or a genuine one they
/// change) opens only to the record that was sealed, only with its key, in
/// its slot.
pub fn sealed_row(data: &[u8]) {
    use crate::storage::sealing::{SealingKey, SealingKeys};
    const RECORD: &str = r#"{"resource_server": "rs", "access_token": "AT"}"#;
    let keys = SealingKeys::new(SealingKey::new("k", [7; 32]));
    let other = SealingKeys::new(SealingKey::new("k", [8; 32]));
    let genuine = keys.seal("ns", "rs", RECORD, [3; 12]);
    // The bytes as a row.
    if let Ok(opened) = keys.open("k", "ns", "rs", &text(data)) {
        assert_eq!(opened, RECORD, "a forged row opened");
    }
    // The genuine row, changed where the bytes say.
    let mut changed = genuine.text.clone().into_bytes();
    for pair in data.chunks(2) {
        if let [at, byte] = pair {
            let at = usize::from(*at) % changed.len().max(1);
            changed[at] ^= byte;
        }
    }
    let changed = String::from_utf8_lossy(&changed).into_owned();
    if let Ok(opened) = keys.open("k", "ns", "rs", &changed) {
        assert_eq!(opened, RECORD);
    }
    assert!(
        other.open("k", "ns", "rs", &genuine.text).is_err(),
        "another key opened it"
    );
    assert!(
        keys.open("k", "ns", "other", &genuine.text).is_err(),
        "another slot opened it"
    );
    assert_eq!(
        keys.open("k", "ns", "rs", &genuine.text).as_deref(),
        Ok(RECORD)
    );
}

/// `Retry-After` values and service URL overrides: a wait is read only
/// from digits, and an override that is accepted is a base URL the token
/// policy allows.
pub fn service_urls(data: &[u8]) {
    use crate::environment::Environment;
    use crate::origin::{TokenOrigin, is_globus_production};
    use crate::service::{AUTH, GROUPS, SEARCH, TRANSFER, parse_retry_after};
    let value = text(data);
    if parse_retry_after(&value).is_some() {
        assert!(value.trim().bytes().all(|b| b.is_ascii_digit()));
    }
    let none = std::collections::BTreeSet::new();
    for spec in [TRANSFER, AUTH, GROUPS, SEARCH] {
        if let Ok(url) = spec.base_url(Environment::Production, Some(&value), &none) {
            assert!(url.path().ends_with('/'), "{url}");
            let origin = TokenOrigin::of_url(&url, &none).expect("the policy allows it");
            assert!(
                origin.is_https() || !is_globus_production(origin.host()),
                "{url}"
            );
        }
    }
}
