//! Test support: a fake Globus Auth in pure Rust and a simulated-time
//! harness that drives app operations against it, in the manner of
//! quinn-proto's test `Pair`. No sockets, no clock, no randomness.
//!
//! Enabled by the `testing` feature.
//!
//! ```
//! use globus_app_proto::app::{GlobusApp, GlobusAppConfig, LoginOutcome};
//! use globus_app_proto::testing::{Sim, SIM_CLIENT_ID};
//!
//! let app = GlobusApp::user("Sim App")
//!     .client_id(SIM_CLIENT_ID)
//!     .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
//!     .build()?;
//! let mut sim = Sim::new(app);
//! let outcome = sim.drive(sim.app.login())?;
//! assert!(matches!(outcome, LoginOutcome::LoggedIn { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use url::Url;

use crate::UnixTime;
use crate::app::{
    Action, AuthorizationResponse, GlobusApp, Input, IoFailure, IoFailureKind, LoginFlowKind,
    Operation, Step, TokenSet,
};
use crate::scope::{Scope, parse_scopes};
use crate::token::TokenData;

const SIM: &str = include_str!("../fixtures/sim/sim_id_tokens.json");

/// The client id the simulated id_tokens are issued to.
pub const SIM_CLIENT_ID: &str = "5c1a7e1e-0000-4000-8000-00000000c1d0";
/// The simulation's starting time (the id_tokens' `iat`).
pub const SIM_START: UnixTime = UnixTime::from_secs(1_700_000_000);
/// The loopback redirect URI the harness's "browser" uses.
pub const SIM_LOOPBACK: &str = "http://127.0.0.1:49152";

fn sim_data() -> Value {
    serde_json::from_str(SIM).unwrap_or(Value::Null)
}

/// Which simulated person logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimUser {
    /// The first user.
    A,
    /// Another user (for identity-change tests).
    B,
}

impl SimUser {
    /// The user's identity id (the id_token `sub`).
    pub fn identity(self) -> String {
        let key = match self {
            Self::A => "user_a",
            Self::B => "user_b",
        };
        sim_data()["subjects"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Whom a token response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grantee {
    /// The person who approved the login.
    User,
    /// The confidential client itself (client credentials).
    Client,
}

/// A request the fake server received, with its form fields decoded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path, e.g. `/v2/oauth2/token`.
    pub path: String,
    /// The form fields (POST) or query pairs (GET).
    pub fields: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The value of a field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    offline: bool,
}

#[derive(Debug, Clone)]
struct AccessGrant {
    expires_at: UnixTime,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    resource_server: String,
    scope: String,
    family: u64,
    /// Replaced by a newer token of its family (rotation).
    rotated: bool,
    revoked: bool,
}

/// A fake Globus Auth: authorize (auto-approve), token (authorization code
/// with PKCE, refresh with optional rotation and reuse detection, client
/// credentials), revoke, consents, OpenID configuration and JWKS, with
/// scripted faults.
#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)]
#[non_exhaustive]
pub struct FakeGlobusAuth {
    /// The person who approves logins.
    pub user: SimUser,
    /// Refuse the next authorization (`error=access_denied`).
    pub deny_next_authorization: bool,
    /// The `error_description` of a refused authorization.
    pub denial_description: String,
    /// The `error` of a refused authorization (`access_denied`).
    pub denial_error: String,
    /// Lifetime of issued access tokens, in seconds.
    pub access_token_lifetime: i64,
    /// Issue a new refresh token on every refresh; reusing a rotated one
    /// revokes its whole family.
    pub rotate_refresh_tokens: bool,
    /// Put before every token and code issued (`at-1` by default): tests
    /// that look for leaked secrets make them unmistakable.
    pub secret_prefix: String,
    /// Serve the rotated JWKS (a second key) and sign with it.
    pub rotated_keys: bool,
    /// The confidential client's secret, if the app is one.
    pub client_secret: Option<String>,
    /// Answer token and revocation requests with a 401 whose
    /// `error_description` echoes everything the request sent, the
    /// client's credentials included, followed by 1000 characters of
    /// padding, and whose `errors[]` has an entry for each value (in
    /// `detail`, or split between `detail` and `title`): a server that
    /// leaks what it was sent.
    pub echo_requests_in_errors: bool,
    /// How an echoing server writes each value back
    /// ([`echo_requests_in_errors`](Self::echo_requests_in_errors)).
    pub echo_encoding: SecretEcho,
    /// The status of an echoing answer (401 by default; 400 too).
    pub echo_status: u16,
    /// With a `client_secret`, accept the client as a public (native) one
    /// too, without the secret: one server for `UserApp`s and `ClientApp`s
    /// (the dev server's setting).
    pub also_public_client: bool,
    /// Issue an id_token whose audience is another client.
    pub wrong_audience: bool,
    /// Answer a client-credentials request with the tokens of the first
    /// resource server its scopes name only, as if the others' scopes had
    /// not been granted in that request.
    pub client_credentials_one_resource_server: bool,
    /// The base URL the server is reachable at (its JWKS URI is
    /// `<base>jwk.json`); production Auth's by default.
    pub base_url: String,
    /// The query of every authorize URL visited, in order.
    pub authorizations: Vec<Vec<(String, String)>>,
    /// Every request received, in order.
    pub requests: Vec<RecordedRequest>,
    faults: VecDeque<(u16, Vec<u8>)>,
    codes: HashMap<String, CodeGrant>,
    access_tokens: HashMap<String, AccessGrant>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    consents: Vec<Value>,
    next_id: u64,
}

impl Default for FakeGlobusAuth {
    fn default() -> Self {
        Self::new()
    }
}

/// The resource server a scope string belongs to, by Globus's conventions.
fn resource_server_of(scope: &str) -> String {
    if ["openid", "email", "profile"].contains(&scope) {
        return "auth.globus.org".into();
    }
    if let Some(rest) = scope.strip_prefix("urn:globus:auth:scope:") {
        return rest.split(':').next().unwrap_or(rest).to_owned();
    }
    if let Some(rest) = scope.strip_prefix("https://auth.globus.org/scopes/") {
        return rest.split('/').next().unwrap_or(rest).to_owned();
    }
    scope.to_owned()
}

fn json_response(status: u16, body: &Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .unwrap_or_default()
}

fn oauth_error(status: u16, error: &str) -> http::Response<Vec<u8>> {
    json_response(status, &json!({"error": error}))
}

impl FakeGlobusAuth {
    /// A server whose logins are approved by [`SimUser::A`].
    pub fn new() -> Self {
        Self {
            user: SimUser::A,
            deny_next_authorization: false,
            echo_encoding: SecretEcho::Raw,
            echo_status: 401,
            denial_error: "access_denied".to_owned(),
            denial_description: "The user declined".into(),
            access_token_lifetime: 172_800,
            rotate_refresh_tokens: false,
            secret_prefix: String::new(),
            rotated_keys: false,
            client_secret: None,
            echo_requests_in_errors: false,
            also_public_client: false,
            wrong_audience: false,
            client_credentials_one_resource_server: false,
            base_url: "https://auth.globus.org/".into(),
            authorizations: Vec::new(),
            requests: Vec::new(),
            faults: VecDeque::new(),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            consents: Vec::new(),
            next_id: 1,
        }
    }

    /// Answers the next `count` requests with `status` and `body` instead of
    /// handling them.
    pub fn fail_next(&mut self, count: usize, status: u16, body: &[u8]) {
        for _ in 0..count {
            self.faults.push_back((status, body.to_vec()));
        }
    }

    /// How many requests went to `path`.
    pub fn count(&self, path: &str) -> usize {
        self.requests.iter().filter(|r| r.path == path).count()
    }

    /// Revokes every refresh token (as an administrator would).
    pub fn revoke_all_refresh_tokens(&mut self) {
        for grant in self.refresh_tokens.values_mut() {
            grant.revoked = true;
        }
    }

    /// Removes the user's consents (as if revoked in the web app).
    pub fn clear_consents(&mut self) {
        self.consents.clear();
    }

    /// Whether an access or refresh token is live (issued, not revoked).
    pub fn is_live(&self, token: &str, now: UnixTime) -> bool {
        self.access_tokens
            .get(token)
            .is_some_and(|g| !g.revoked && g.expires_at > now)
            || self
                .refresh_tokens
                .get(token)
                .is_some_and(|g| !g.revoked && !g.rotated)
    }

    /// How many refresh tokens are neither revoked nor rotated out.
    pub fn live_refresh_tokens(&self) -> usize {
        self.refresh_tokens
            .values()
            .filter(|g| !g.revoked && !g.rotated)
            .count()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The answer of a server that echoes what it was sent
    /// ([`echo_requests_in_errors`](Self::echo_requests_in_errors)).
    fn echo(&self, recorded: &RecordedRequest, basic: Option<&str>) -> http::Response<Vec<u8>> {
        let echo = self.echo_encoding;
        let credentials = basic.unwrap_or("none");
        let values = std::iter::once(("credentials", credentials)).chain(
            recorded
                .fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let mut described = Vec::new();
        let mut errors = Vec::new();
        for (name, value) in values {
            let (first, rest) = echo.write(value);
            described.push(format!("{name}={first}"));
            // Each value whole in one entry too (its two parts in two
            // fields), however long the description gets.
            errors.push(json!({
                "code": "INVALID_CLIENT", "id": "echo",
                "detail": format!("{name} {first}"), "title": format!("{name} {rest}"),
            }));
        }
        let echoed = format!(
            "invalid client in request {}; {}",
            described.join(" "),
            "x".repeat(1000)
        );
        json_response(
            self.echo_status,
            &json!({
                "error": "invalid_client",
                "error_description": echoed,
                "errors": errors,
            }),
        )
    }

    /// A new token or code value: the prefix, `kind`, `-`, a new id and,
    /// as long as Globus Auth's values are, 32 hex digits made from it.
    fn new_secret(&mut self, kind: &str) -> String {
        let id = self.id();
        let filler = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        format!(
            "{}{kind}-{id}-{filler:016x}{:016x}",
            self.secret_prefix,
            filler.rotate_left(29) ^ 0xa5a5_5a5a_c3c3_3c3c
        )
    }

    /// The browser visit to an authorize URL: the redirect query the user
    /// is sent back with (`code` and `state`, or `error`).
    pub fn authorize(&mut self, url: &Url) -> String {
        self.authorizations
            .push(url.query_pairs().into_owned().collect());
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let state = query.get("state").cloned().unwrap_or_default();
        let mut back = url::form_urlencoded::Serializer::new(String::new());
        if std::mem::take(&mut self.deny_next_authorization) {
            back.append_pair("error", &self.denial_error)
                .append_pair("error_description", &self.denial_description)
                .append_pair("state", &state);
            return back.finish();
        }
        let code = self.new_secret("code");
        self.codes.insert(
            code.clone(),
            CodeGrant {
                client_id: query.get("client_id").cloned().unwrap_or_default(),
                redirect_uri: query.get("redirect_uri").cloned().unwrap_or_default(),
                challenge: query.get("code_challenge").cloned(),
                scope: query.get("scope").cloned().unwrap_or_default(),
                offline: query.get("access_type").is_some_and(|a| a == "offline"),
            },
        );
        back.append_pair("code", &code).append_pair("state", &state);
        back.finish()
    }

    /// Handles one HTTP request at `now`.
    pub fn handle(
        &mut self,
        request: &http::Request<Vec<u8>>,
        now: UnixTime,
    ) -> http::Response<Vec<u8>> {
        let path = request.uri().path().to_owned();
        let fields: Vec<(String, String)> = if request.method() == http::Method::POST {
            url::form_urlencoded::parse(request.body())
                .into_owned()
                .collect()
        } else {
            url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
                .into_owned()
                .collect()
        };
        let recorded = RecordedRequest {
            method: request.method().to_string(),
            path: path.clone(),
            fields,
        };
        self.requests.push(recorded.clone());
        if let Some((status, body)) = self.faults.pop_front() {
            return http::Response::builder()
                .status(status)
                .body(body)
                .unwrap_or_default();
        }
        let basic = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| STANDARD.decode(v).ok())
            .and_then(|v| String::from_utf8(v).ok());
        if self.echo_requests_in_errors && path.starts_with("/v2/oauth2/token") {
            return self.echo(&recorded, basic.as_deref());
        }
        match (request.method().as_str(), path.as_str()) {
            ("POST", "/v2/oauth2/token") => self.token(&recorded, basic.as_deref(), now),
            ("POST", "/v2/oauth2/token/revoke") => {
                if let Some(token) = recorded.field("token") {
                    if let Some(grant) = self.access_tokens.get_mut(token) {
                        grant.revoked = true;
                    }
                    if let Some(grant) = self.refresh_tokens.get_mut(token) {
                        grant.revoked = true;
                    }
                }
                json_response(200, &json!({"active": false}))
            }
            ("GET", "/.well-known/openid-configuration") => json_response(
                200,
                &json!({
                    "issuer": "https://auth.globus.org",
                    "jwks_uri": format!("{}jwk.json", self.base_url),
                    "id_token_signing_alg_values_supported": ["RS512"],
                }),
            ),
            ("GET", "/jwk.json") => {
                let key = if self.rotated_keys {
                    "jwks_rotated"
                } else {
                    "jwks"
                };
                json_response(200, &sim_data()[key])
            }
            ("GET", p) if p.starts_with("/v2/api/identities/") && p.ends_with("/consents") => {
                let bearer = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default();
                if !self
                    .access_tokens
                    .get(bearer)
                    .is_some_and(|g| !g.revoked && g.expires_at > now)
                {
                    return oauth_error(401, "unauthorized");
                }
                json_response(200, &json!({"consents": self.consents}))
            }
            _ => json_response(
                404,
                &json!({"errors": [{"code": "NOT_FOUND", "status": "404"}]}),
            ),
        }
    }

    fn token(
        &mut self,
        request: &RecordedRequest,
        basic: Option<&str>,
        now: UnixTime,
    ) -> http::Response<Vec<u8>> {
        let client_ok = match (&self.client_secret, basic) {
            (Some(secret), Some(credentials)) => credentials == format!("{SIM_CLIENT_ID}:{secret}"),
            (None, None) => request.field("client_id") == Some(SIM_CLIENT_ID),
            (Some(_), None) if self.also_public_client => {
                request.field("client_id") == Some(SIM_CLIENT_ID)
            }
            _ => false,
        };
        if !client_ok {
            return oauth_error(401, "invalid_client");
        }
        match request.field("grant_type") {
            Some("authorization_code") => {
                let Some(grant) = request.field("code").and_then(|c| self.codes.remove(c)) else {
                    return oauth_error(401, "invalid_grant");
                };
                let verifier_ok = match (&grant.challenge, request.field("code_verifier")) {
                    (Some(challenge), Some(verifier)) => {
                        let digest =
                            ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
                        &URL_SAFE_NO_PAD.encode(digest.as_ref()) == challenge
                    }
                    (None, None) => true,
                    _ => false,
                };
                if !verifier_ok
                    || grant.client_id != SIM_CLIENT_ID
                    || request.field("redirect_uri") != Some(grant.redirect_uri.as_str())
                {
                    return oauth_error(401, "invalid_grant");
                }
                self.grant_consents(&grant.scope);
                self.issue(&grant.scope, grant.offline, Grantee::User, now)
            }
            Some("refresh_token") => {
                let token = request
                    .field("refresh_token")
                    .unwrap_or_default()
                    .to_owned();
                let Some(grant) = self.refresh_tokens.get(&token).cloned() else {
                    return oauth_error(401, "invalid_grant");
                };
                if grant.rotated {
                    // Reuse of a rotated token: revoke the whole family.
                    for g in self
                        .refresh_tokens
                        .values_mut()
                        .filter(|g| g.family == grant.family)
                    {
                        g.revoked = true;
                    }
                    return oauth_error(401, "invalid_grant");
                }
                if grant.revoked {
                    return oauth_error(401, "invalid_grant");
                }
                let access_token = self.new_access_token(now);
                let mut body = json!({
                    "access_token": access_token, "scope": grant.scope, "token_type": "Bearer",
                    "expires_in": self.access_token_lifetime, "resource_server": grant.resource_server,
                    "other_tokens": [],
                });
                if self.rotate_refresh_tokens {
                    let rotated = self.new_secret("rt");
                    if let Some(old) = self.refresh_tokens.get_mut(&token) {
                        old.rotated = true;
                    }
                    self.refresh_tokens.insert(
                        rotated.clone(),
                        RefreshGrant {
                            rotated: false,
                            ..grant
                        },
                    );
                    body["refresh_token"] = json!(rotated);
                }
                json_response(200, &body)
            }
            Some("client_credentials") => {
                let scope = request.field("scope").unwrap_or_default().to_owned();
                self.issue(&scope, false, Grantee::Client, now)
            }
            _ => oauth_error(400, "unsupported_grant_type"),
        }
    }

    fn new_access_token(&mut self, now: UnixTime) -> String {
        let token = self.new_secret("at");
        self.access_tokens.insert(
            token.clone(),
            AccessGrant {
                expires_at: now.saturating_add_secs(self.access_token_lifetime),
                revoked: false,
            },
        );
        token
    }

    /// Tokens for every resource server the scopes belong to, and an
    /// id_token for `grantee` when `openid` is among them.
    fn issue(
        &mut self,
        scope: &str,
        offline: bool,
        grantee: Grantee,
        now: UnixTime,
    ) -> http::Response<Vec<u8>> {
        let Ok(scopes) = parse_scopes(scope) else {
            return oauth_error(400, "invalid_scope");
        };
        let mut by_server: Vec<(String, Vec<String>)> = Vec::new();
        for s in &scopes {
            let rs = resource_server_of(s.name());
            match by_server.iter_mut().find(|(r, _)| *r == rs) {
                Some((_, names)) => names.push(s.name().to_owned()),
                None => by_server.push((rs, vec![s.name().to_owned()])),
            }
        }
        if by_server.is_empty() {
            return oauth_error(400, "invalid_scope");
        }
        if grantee == Grantee::Client && self.client_credentials_one_resource_server {
            by_server.truncate(1);
        }
        let mut tokens = Vec::new();
        for (rs, names) in &by_server {
            let family = self.id();
            let mut entry = json!({
                "access_token": self.new_access_token(now), "scope": names.join(" "), "token_type": "Bearer",
                "expires_in": self.access_token_lifetime, "resource_server": rs,
            });
            if offline {
                let refresh = self.new_secret("rt");
                self.refresh_tokens.insert(
                    refresh.clone(),
                    RefreshGrant {
                        resource_server: rs.clone(),
                        scope: names.join(" "),
                        family,
                        rotated: false,
                        revoked: false,
                    },
                );
                entry["refresh_token"] = json!(refresh);
            }
            tokens.push(entry);
        }
        let mut body = tokens.remove(0);
        body["other_tokens"] = Value::Array(tokens);
        let openid = by_server
            .iter()
            .any(|(rs, names)| rs == "auth.globus.org" && names.iter().any(|n| n == "openid"));
        if openid {
            let key = match (grantee, self.user, self.rotated_keys) {
                _ if self.wrong_audience => "wrong_audience",
                (Grantee::Client, ..) => "client",
                (Grantee::User, SimUser::A, false) => "user_a",
                (Grantee::User, SimUser::A, true) => "user_a_rotated_key",
                (Grantee::User, SimUser::B, _) => "user_b",
            };
            body["id_token"] = sim_data()["tokens"][key].clone();
        }
        json_response(200, &body)
    }

    /// Records consents for granted scopes: each scope a root, its
    /// dependencies children.
    fn grant_consents(&mut self, scope: &str) {
        let Ok(scopes) = parse_scopes(scope) else {
            return;
        };
        let mut pending: Vec<(Vec<u64>, Scope)> =
            scopes.into_iter().map(|s| (Vec::new(), s)).collect();
        while let Some((mut path, scope)) = pending.pop() {
            let id = self.id();
            path.push(id);
            self.consents.push(json!({
                "id": id, "client": SIM_CLIENT_ID, "scope": format!("scope-{id}"), "scope_name": scope.name(),
                "effective_identity": self.user.identity(), "dependency_path": path,
                "created": "2023-11-14T22:13:20+00:00", "updated": "2023-11-14T22:13:20+00:00",
                "last_used": "2023-11-14T22:13:20+00:00", "status": "approved", "allows_refresh": true,
                "auto_approved": false, "atomically_revocable": false,
            }));
            for dependency in scope.dependencies() {
                pending.push((path.clone(), dependency.clone()));
            }
        }
    }
}

/// How the simulated person answers a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimLogin {
    /// Approve in the browser (the server decides: see
    /// [`FakeGlobusAuth::deny_next_authorization`]).
    Approve,
    /// The login cannot run (no browser, closed terminal).
    Fail(IoFailure),
}

/// A harness: one app, one fake server, one in-memory token store and a
/// simulated clock.
#[derive(Debug)]
#[non_exhaustive]
pub struct Sim {
    /// The app under test.
    pub app: GlobusApp,
    /// The fake Globus Auth.
    pub auth: FakeGlobusAuth,
    /// The stored token records.
    pub storage: Vec<TokenData>,
    /// The simulated time.
    pub now: UnixTime,
    /// How logins are answered.
    pub login: SimLogin,
    /// Every action performed, in order.
    pub actions: Vec<String>,
    /// How many interactive logins ran.
    pub logins: usize,
    /// Resource servers whose renewal lock is held.
    pub locks: Vec<String>,
    /// Resource servers whose renewal lock another process holds:
    /// [`Action::LockIfFree`] finds it held ([`Action::Lock`], which would
    /// wait, gets it: the other process is taken to have finished).
    pub held_elsewhere: Vec<String>,
    /// The storage holds something unreadable (a corrupt token file):
    /// loads fail until it is set aside.
    pub unreadable: bool,
    /// How many of the next stores fail (a full disk, a busy database).
    pub failing_stores: usize,
    /// A record another machine stores just before the next store, which
    /// then fails as superseded (the newer record is kept).
    pub superseding: Option<TokenData>,
    random_counter: u8,
}

impl Sim {
    /// A harness for `app`, starting at [`SIM_START`] with empty storage.
    pub fn new(app: GlobusApp) -> Self {
        Self {
            app,
            auth: FakeGlobusAuth::new(),
            storage: Vec::new(),
            now: SIM_START,
            login: SimLogin::Approve,
            actions: Vec::new(),
            logins: 0,
            locks: Vec::new(),
            held_elsewhere: Vec::new(),
            unreadable: false,
            failing_stores: 0,
            superseding: None,
            random_counter: 0,
        }
    }

    /// Moves the clock forward.
    pub fn advance_time(&mut self, secs: i64) {
        self.now = self.now.saturating_add_secs(secs);
    }

    /// The stored record of a resource server.
    pub fn stored(&self, resource_server: &str) -> Option<&TokenData> {
        self.storage
            .iter()
            .find(|t| t.resource_server == resource_server)
    }

    /// Drives an operation to completion.
    ///
    /// # Panics
    /// If it takes more than 1,000 steps (an operation that loops).
    pub fn drive<O: Operation>(&mut self, mut op: O) -> O::Output {
        let mut input = None;
        for _ in 0..1_000 {
            match op.advance(input.take(), self.now) {
                Step::Done(output) => return output,
                Step::Action(action) => input = Some(self.perform(action)),
            }
        }
        panic!("operation did not finish within 1,000 steps");
    }

    /// Performs one action, as an adapter would.
    ///
    /// # Panics
    /// If a lock is taken twice or released without being held (a broken
    /// single-flight protocol).
    pub fn perform(&mut self, action: Action) -> Input {
        self.actions.push(action_name(&action));
        match action {
            Action::LoadTokens if self.unreadable => Input::Failed(IoFailure::new(
                IoFailureKind::UnreadableStorage,
                &"tokens.json is not a valid token file",
                false,
            )),
            Action::LoadTokens => Input::Tokens(TokenSet::new(self.storage.clone())),
            Action::SetAsideUnreadableTokens => {
                self.unreadable = false;
                Input::SetAside
            }
            Action::StoreTokens(_) if self.failing_stores > 0 => {
                self.failing_stores -= 1;
                Input::Failed(IoFailure::new(
                    IoFailureKind::Storage,
                    &"cannot replace /sim/tokens.json: No space left on device",
                    false,
                ))
            }
            Action::StoreTokens(_) if self.superseding.is_some() => {
                let newer = self.superseding.take().unwrap_or_else(|| unreachable!());
                self.storage
                    .retain(|t| t.resource_server != newer.resource_server);
                self.storage.push(newer);
                Input::Failed(IoFailure::new(
                    IoFailureKind::Superseded,
                    &"a newer record was written while this renewal was in flight",
                    false,
                ))
            }
            Action::StoreTokens(records) => {
                for record in records {
                    match self
                        .storage
                        .iter_mut()
                        .find(|t| t.resource_server == record.resource_server)
                    {
                        Some(slot) => *slot = record,
                        None => self.storage.push(record),
                    }
                }
                Input::Stored
            }
            Action::RemoveTokens(servers) => {
                self.storage
                    .retain(|t| !servers.contains(&t.resource_server));
                Input::Removed
            }
            Action::LockIfFree(rs) if self.held_elsewhere.contains(&rs) => Input::LockHeld,
            Action::Lock(rs) | Action::LockIfFree(rs) => {
                assert!(!self.locks.contains(&rs), "lock for {rs} taken twice");
                self.locks.push(rs);
                Input::Locked
            }
            Action::WaitForRenewal(rs) => {
                assert!(
                    !self.locks.contains(&rs),
                    "waiting for its own lock of {rs}"
                );
                Input::Waited
            }
            Action::Unlock(rs) => {
                assert!(self.locks.contains(&rs), "unlock of {rs} without lock");
                self.locks.retain(|l| l != &rs);
                Input::Unlocked
            }
            Action::Send(request) => Input::Response(self.auth.handle(request.as_http(), self.now)),
            Action::Random => {
                self.random_counter = self.random_counter.wrapping_add(1);
                Input::Random(Box::new([self.random_counter; 64]))
            }
            Action::Authorize(plan) => {
                self.logins += 1;
                if let SimLogin::Fail(failure) = &self.login {
                    return Input::Failed(failure.clone());
                }
                let redirect_uri = plan.redirect_uri().unwrap_or(SIM_LOOPBACK).to_owned();
                let query = self.auth.authorize(&plan.url(&redirect_uri));
                if plan.flow() == LoginFlowKind::LocalServer {
                    Input::Authorization(AuthorizationResponse::Redirect {
                        query,
                        redirect_uri,
                    })
                } else {
                    let code: HashMap<String, String> =
                        url::form_urlencoded::parse(query.as_bytes())
                            .into_owned()
                            .collect();
                    // The person reads the code off the page and pastes it.
                    let text = code.get("code").cloned().unwrap_or_default();
                    Input::Authorization(AuthorizationResponse::PastedCode {
                        text: format!("{text}\n"),
                        redirect_uri,
                    })
                }
            }
        }
    }
}

fn action_name(action: &Action) -> String {
    match action {
        Action::LoadTokens => "load".into(),
        Action::StoreTokens(records) => {
            format!(
                "store {}",
                records
                    .iter()
                    .map(|r| r.resource_server.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        Action::RemoveTokens(servers) => format!("remove {}", servers.join(",")),
        Action::SetAsideUnreadableTokens => "set aside".into(),
        Action::Lock(rs) => format!("lock {rs}"),
        Action::LockIfFree(rs) => format!("lock-if-free {rs}"),
        Action::Unlock(rs) => format!("unlock {rs}"),
        Action::WaitForRenewal(rs) => format!("wait {rs}"),
        Action::Send(request) => format!("send {}", request.as_http().uri().path()),
        Action::Authorize(_) => "authorize".into(),
        Action::Random => "random".into(),
    }
}

/// The token policy's verdicts ([`crate::origin`]), a row a URL: `true`
/// where a token may go (with no host allowed over plain http). The
/// core's test and the end-to-end one through both kinds of client read
/// this one table.
pub const TOKEN_POLICY_TABLE: &[(&str, bool)] = &[
    ("https://transfer.api.globus.org/v0.10/x", true),
    ("https://TRANSFER.API.GLOBUS.ORG/v0.10/x", true),
    ("https://transfer.api.globus.org./v0.10/x", true),
    ("https://transfer.api.globus.org:443/v0.10/x", true),
    ("http://transfer.api.globus.org/v0.10/x", false),
    ("http://transfer.api.globus.org:443/x", false),
    ("http://transfer.api.globus.org./", false),
    ("http://transfer.api.globus.org.:80/", false),
    ("http://TRANSFER.api.Globus.Org/", false),
    ("http://transfer%2eapi.globus.org/", false),
    ("http://transfer.api.globus%2Eorg/", false),
    ("http://transfer.api.globus.org%2e/", false),
    ("http://globus.org/", false),
    ("http://globus.org./", false),
    ("http://app.globusonline.org/", false),
    ("http://globusonline.org/", false),
    ("http://www.GLOBUSONLINE.org./", false),
    ("http://example.org/", false),
    ("http://example.org:8080/", false),
    ("http://notglobus.org/", false),
    ("http://globus.org.example.com/", false),
    ("http://xn--glbus-4qa.org/", false),
    ("http://glöbus.org/", false),
    ("http://127.0.0.1:8080/", true),
    ("http://127.1.2.3/", true),
    ("http://0x7f000001/", true),
    ("http://2130706433/", true),
    ("http://localhost:9000/", true),
    ("http://LOCALHOST./", true),
    ("http://[::1]:8080/", true),
    ("http://[0:0:0:0:0:0:0:1]/", true),
    ("http://[::ffff:127.0.0.1]/", true),
    ("http://[::2]/", false),
    ("http://10.0.0.1/", false),
    ("http://192.168.1.1/", false),
    ("http://128.0.0.1/", false),
    ("https://user@transfer.api.globus.org/", false),
    ("https://user:pass@transfer.api.globus.org/", false),
    ("https://transfer.api.globus.org@example.org/", false),
    ("http://user@127.0.0.1/", false),
    ("ftp://transfer.api.globus.org/", false),
    ("ws://127.0.0.1/", false),
    ("https://example.org/", true),
    ("https://[::1]/", true),
    ("https://xn--glbus-4qa.org/", true),
];

/// Hostile ids, as a caller or another service's answer may hand them to
/// a typed request: none may change the route (`..`, `.` and the empty
/// id are refused; every other one is one path segment).
pub const HOSTILE_IDS: &[&str] = &[
    "..",
    ".",
    "",
    "..\\",
    ".. ",
    "..\0",
    ".\t.",
    ".\n.",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "a/../b",
    "\\\\..\\\\x",
    "..\\..\\endpoint\\X",
    "../../x?y#z",
    "x y",
    "\u{7f}",
    "ü-ñ-日本",
    "a;b=c",
    "@:",
    "+",
];

/// Every invisible or direction-changing character
/// ([`is_hidden`](crate::redaction::is_hidden)), one after another: what
/// the tests put in server text to check that none reaches a page or an
/// error.
pub fn hidden_characters() -> String {
    ('\0'..=char::MAX)
        .filter(|c| crate::redaction::is_hidden(*c))
        .collect()
}

/// How a server that echoes what it was sent writes each value back: the
/// encodings that redaction must see through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretEcho {
    /// As sent.
    Raw,
    /// In upper case.
    Upper,
    /// In lower case.
    Lower,
    /// Form-encoded.
    Form,
    /// Every byte percent-encoded, upper-case hex.
    PercentAll,
    /// Every byte percent-encoded, lower-case hex.
    PercentAllLower,
    /// Every other ASCII byte percent-encoded (and every non-ASCII one).
    PercentSome,
    /// Base64 with padding.
    Base64,
    /// Base64url without padding.
    Base64Url,
    /// Base64 of the value after 1 or 2 other bytes (the value at an
    /// offset in a longer encoding).
    Base64AtOffset(usize),
    /// Hex, lower case.
    Hex,
    /// Hex, upper case.
    HexUpper,
    /// The first half in one field of the answer, the second in another.
    Split,
}

impl SecretEcho {
    /// Every encoding.
    pub const ALL: [Self; 14] = [
        Self::Raw,
        Self::Upper,
        Self::Lower,
        Self::Form,
        Self::PercentAll,
        Self::PercentAllLower,
        Self::PercentSome,
        Self::Base64,
        Self::Base64Url,
        Self::Base64AtOffset(1),
        Self::Base64AtOffset(2),
        Self::Hex,
        Self::HexUpper,
        Self::Split,
    ];

    /// `value` as this echo writes it: what goes in the first field and
    /// what in the second (the same, but for [`Split`](Self::Split)).
    pub fn write(self, value: &str) -> (String, String) {
        let bytes = value.as_bytes();
        let escaped = |escape: &dyn Fn(usize, u8) -> bool, lower: bool| {
            bytes
                .iter()
                .enumerate()
                .fold(String::new(), |mut out, (i, b)| {
                    if escape(i, *b) {
                        let _ = if lower {
                            write!(out, "%{b:02x}")
                        } else {
                            write!(out, "%{b:02X}")
                        };
                    } else {
                        out.push(char::from(*b));
                    }
                    out
                })
        };
        let hex = |upper: bool| {
            bytes.iter().fold(String::new(), |mut out, b| {
                let _ = if upper {
                    write!(out, "{b:02X}")
                } else {
                    write!(out, "{b:02x}")
                };
                out
            })
        };
        let written = match self {
            Self::Raw => value.to_owned(),
            Self::Upper => value.to_uppercase(),
            Self::Lower => value.to_lowercase(),
            Self::Form => url::form_urlencoded::byte_serialize(bytes).collect(),
            Self::PercentAll => escaped(&|_, _| true, false),
            Self::PercentAllLower => escaped(&|_, _| true, true),
            // Bytes of a non-ASCII character cannot stand raw.
            Self::PercentSome => escaped(&|i, b| i % 2 == 0 || !b.is_ascii(), false),
            Self::Base64 => STANDARD.encode(bytes),
            Self::Base64Url => URL_SAFE_NO_PAD.encode(bytes),
            Self::Base64AtOffset(offset) => {
                let mut prefixed = b"~?"
                    .repeat(offset)
                    .into_iter()
                    .take(offset)
                    .collect::<Vec<u8>>();
                prefixed.extend_from_slice(bytes);
                STANDARD.encode(prefixed)
            }
            Self::Hex => hex(false),
            Self::HexUpper => hex(true),
            Self::Split => {
                let middle = value
                    .char_indices()
                    .nth(value.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                return (value[..middle].to_owned(), value[middle..].to_owned());
            }
        };
        (written.clone(), written)
    }
}
