//! Criterion benchmarks of the protocol core's hot paths.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use globus_app_proto::UnixTime;
use globus_app_proto::app::{Action, GlobusApp, GlobusAppConfig, Input, Operation, Step, TokenSet};
use globus_app_proto::response::parse_token_response;
use globus_app_proto::scope::{Scope, merge_scopes};
use globus_app_proto::secret::AccessToken;
use globus_app_proto::storage::{DEFAULT_NAMESPACE, JsonTokenFile};
use globus_app_proto::token::TokenData;

const NESTED: &str = "urn:globus:auth:scope:transfer.api.globus.org:all[https://auth.globus.org/scopes/c1/data_access[https://auth.globus.org/scopes/x/y *https://auth.globus.org/scopes/x/z]]";

fn scopes(c: &mut Criterion) {
    c.bench_function("scope_parse_simple", |b| {
        b.iter(|| Scope::parse(black_box("openid")).unwrap());
    });
    c.bench_function("scope_parse_nested_3_levels", |b| {
        b.iter(|| Scope::parse(black_box(NESTED)).unwrap());
    });
    let a: Vec<Scope> = (0..25)
        .map(|i| Scope::parse(&format!("urn:globus:auth:scope:rs{i}:all[dep{i} *opt{i}]")).unwrap())
        .collect();
    let b_half: Vec<Scope> = (15..40)
        .map(|i| Scope::parse(&format!("urn:globus:auth:scope:rs{i}:all[other{i}]")).unwrap())
        .collect();
    c.bench_function("merge_scopes_50", |b| {
        b.iter(|| merge_scopes(black_box(&a), black_box(&b_half)).unwrap());
    });
    c.bench_function("scope_display_nested", |b| {
        let scope = Scope::parse(NESTED).unwrap();
        b.iter(|| black_box(&scope).to_string());
    });
}

fn token_response(c: &mut Criterion) {
    let body = serde_json::json!({
        "access_token": "AT", "scope": "openid profile email", "expires_in": 172_800,
        "token_type": "Bearer", "resource_server": "auth.globus.org", "refresh_token": "RT",
        "id_token": "a.b.c",
        "other_tokens": [
            {"access_token": "AT2", "scope": "urn:globus:auth:scope:transfer.api.globus.org:all",
             "expires_in": 172_800, "token_type": "Bearer", "resource_server": "transfer.api.globus.org",
             "refresh_token": "RT2"}
        ]
    });
    let response = http::Response::builder()
        .status(200)
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    c.bench_function("token_response_parse_2_servers", |b| {
        b.iter(|| {
            parse_token_response(black_box(&response), UnixTime::from_secs(1_700_000_000)).unwrap()
        });
    });
}

fn token_file(c: &mut Criterion) {
    let mut file = JsonTokenFile::new();
    let records: Vec<TokenData> = (0..10)
        .map(|i| {
            let value = serde_json::json!({
                "resource_server": format!("rs{i}.api.globus.org"),
                "identity_id": "c8aad43e-d274-11e5-bf98-8b02896cf782",
                "scope": format!("urn:globus:auth:scope:rs{i}.api.globus.org:all"),
                "access_token": format!("ACCESS_TOKEN_{i}_0123456789abcdef"),
                "refresh_token": format!("REFRESH_TOKEN_{i}_0123456789abcdef"),
                "expires_at_seconds": 1_700_000_000 + i,
                "token_type": "Bearer",
            });
            TokenData::from_json(&value).unwrap()
        })
        .collect();
    file.store(DEFAULT_NAMESPACE, &records);
    let bytes = file.to_bytes();
    c.bench_function("json_token_file_read_10_servers", |b| {
        b.iter(|| {
            let file = JsonTokenFile::parse(black_box(&bytes)).unwrap();
            file.get_all(DEFAULT_NAMESPACE).unwrap()
        });
    });
    c.bench_function("json_token_file_write_10_servers", |b| {
        b.iter(|| {
            let mut file = JsonTokenFile::new();
            file.store(DEFAULT_NAMESPACE, black_box(&records));
            file.to_bytes()
        });
    });
    let mut record = records[0].clone();
    record.access_token = AccessToken::new("NEW");
    c.bench_function("json_token_file_update_one_of_10", |b| {
        b.iter(|| {
            let mut file = JsonTokenFile::parse(black_box(&bytes)).unwrap();
            file.store(DEFAULT_NAMESPACE, [&record]);
            file.to_bytes()
        });
    });
}

/// A refresh-mode app requiring `servers` resource servers, and valid
/// stored tokens for all of them.
fn app_with(servers: usize) -> (GlobusApp, TokenSet) {
    let mut builder = GlobusApp::user("Bench")
        .client_id("5c1a7e1e-0000-4000-8000-00000000c1d0")
        .config(GlobusAppConfig::default().with_request_refresh_tokens(true));
    let mut records = vec![record("auth.globus.org", "openid")];
    for i in 1..servers {
        let rs = format!("rs{i}.api.globus.org");
        let scope = format!("urn:globus:auth:scope:{rs}:all");
        builder = builder.scope_requirements(rs.clone(), scope.clone());
        records.push(record(&rs, &scope));
    }
    (builder.build().unwrap(), TokenSet::new(records))
}

fn record(rs: &str, scope: &str) -> TokenData {
    TokenData::from_json(&serde_json::json!({
        "resource_server": rs, "identity_id": "c8aad43e-d274-11e5-bf98-8b02896cf782",
        "scope": scope, "access_token": format!("AT-{rs}"), "refresh_token": format!("RT-{rs}"),
        "expires_at_seconds": 1_700_172_800, "token_type": "Bearer",
    }))
    .unwrap()
}

fn app(c: &mut Criterion) {
    let now = UnixTime::from_secs(1_700_000_000);
    let (app, tokens) = app_with(5);
    c.bench_function("get_authorizer_warm", |b| {
        b.iter(|| {
            let mut op = app.get_authorizer(black_box("rs1.api.globus.org"));
            let Step::Action(Action::LoadTokens) = op.advance(None, now) else {
                unreachable!()
            };
            let Step::Done(Ok(authorization)) =
                op.advance(Some(Input::Tokens(tokens.clone())), now)
            else {
                unreachable!()
            };
            authorization
        });
    });
    c.bench_function("login_required_5_servers", |b| {
        b.iter(|| app.login_required_for(black_box(&tokens), now));
    });
    let (app50, tokens50) = app_with(50);
    c.bench_function("login_required_50_servers", |b| {
        b.iter(|| app50.login_required_for(black_box(&tokens50), now));
    });
}

criterion_group!(benches, scopes, token_response, token_file, app);
criterion_main!(benches);
