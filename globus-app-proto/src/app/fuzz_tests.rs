//! "Fuzz the state machine": random sequences of operations, clock jumps,
//! server answers and storage changes, with invariants checked on every
//! action the machines emit.

use proptest::prelude::*;

use super::*;
use crate::testing::{SIM_CLIENT_ID, Sim, SimUser};

const SERVERS: [&str; 3] = [
    "auth.globus.org",
    "transfer.api.globus.org",
    "groups.api.globus.org",
];

#[derive(Debug, Clone, Copy)]
enum Shape {
    UserAccess,
    UserRefresh,
    UserRefreshRotating,
    UserDependent,
    Client,
}

#[derive(Debug, Clone)]
enum Body {
    Empty,
    Html,
    OAuth(&'static str),
    Truncated,
    MissingField,
}

#[derive(Debug, Clone)]
enum Op {
    Get(usize),
    LoginRequired,
    Login { force: bool },
    Logout { sweep: bool },
    Advance(i64),
    Fault { status: u16, body: Body },
    RevokeRefreshTokens,
    SwitchUser,
    DropRecord(usize),
    ExpireRecord(usize),
    StripRefreshToken(usize),
    DenyNextLogin,
    ClearConsents,
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Empty),
        Just(Body::Html),
        prop::sample::select(vec![
            "invalid_grant",
            "invalid_client",
            "invalid_request",
            "invalid_scope",
            "unauthorized_client",
            "unsupported_grant_type",
            "server_error",
            "temporarily_unavailable",
        ])
        .prop_map(Body::OAuth),
        Just(Body::Truncated),
        Just(Body::MissingField),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SERVERS.len()).prop_map(Op::Get),
        1 => Just(Op::LoginRequired),
        2 => any::<bool>().prop_map(|force| Op::Login { force }),
        1 => any::<bool>().prop_map(|sweep| Op::Logout { sweep }),
        3 => prop_oneof![Just(30i64), Just(3_600), Just(172_740), Just(172_800), Just(400_000)].prop_map(Op::Advance),
        2 => (prop::sample::select(vec![200u16, 400, 401, 403, 429, 500, 502, 503]), body())
            .prop_map(|(status, body)| Op::Fault { status, body }),
        1 => Just(Op::RevokeRefreshTokens),
        1 => Just(Op::SwitchUser),
        1 => (0..SERVERS.len()).prop_map(Op::DropRecord),
        1 => (0..SERVERS.len()).prop_map(Op::ExpireRecord),
        1 => (0..SERVERS.len()).prop_map(Op::StripRefreshToken),
        1 => Just(Op::DenyNextLogin),
        1 => Just(Op::ClearConsents),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::UserAccess),
        Just(Shape::UserRefresh),
        Just(Shape::UserRefreshRotating),
        Just(Shape::UserDependent),
        Just(Shape::Client),
    ]
}

fn sim_for(shape: Shape) -> Sim {
    let transfer = "urn:globus:auth:scope:transfer.api.globus.org:all";
    let refresh = matches!(shape, Shape::UserRefresh | Shape::UserRefreshRotating);
    let app = match shape {
        Shape::Client => GlobusApp::client("Fuzz")
            .client_id(SIM_CLIENT_ID)
            .client_secret(crate::secret::ClientSecret::new("s"))
            .scope_requirements(SERVERS[1], transfer),
        Shape::UserDependent => GlobusApp::user("Fuzz")
            .client_id(SIM_CLIENT_ID)
            .scope_requirements(
                SERVERS[1],
                format!("{transfer}[*https://auth.globus.org/scopes/c/data_access]"),
            ),
        _ => GlobusApp::user("Fuzz")
            .client_id(SIM_CLIENT_ID)
            .scope_requirements(SERVERS[1], transfer),
    }
    .config(GlobusAppConfig::default().with_request_refresh_tokens(refresh))
    .build()
    .unwrap();
    let mut sim = Sim::new(app);
    sim.auth.rotate_refresh_tokens = matches!(shape, Shape::UserRefreshRotating);
    if matches!(shape, Shape::Client) {
        sim.auth.client_secret = Some("s".into());
    }
    sim
}

fn fault_body(body: &Body) -> Vec<u8> {
    match body {
        Body::Empty => Vec::new(),
        Body::Html => b"<html><body>Bad gateway</body></html>".to_vec(),
        Body::OAuth(error) => format!(r#"{{"error": "{error}"}}"#).into_bytes(),
        Body::Truncated => {
            br#"{"access_token": "at-x", "scope": "openid", "expires_in": 17"#.to_vec()
        }
        Body::MissingField => {
            br#"{"access_token": "at-x", "expires_in": 100, "resource_server": "auth.globus.org"}"#
                .to_vec()
        }
    }
}

/// Drives an operation like `Sim::drive`, checking invariants on every
/// action before performing it.
fn checked<O: Operation>(sim: &mut Sim, mut op: O) -> Result<O::Output, TestCaseError> {
    let requirements = sim.app.scope_requirements();
    let refresh_mode = sim.app.config().request_refresh_tokens;
    let user = sim.app.kind() == AppKind::User;
    let mut input = None;
    // Whether the last answer rejected a refresh token (invalid_grant): the
    // one case where a record is stored without its refresh token.
    let mut refresh_rejected = false;
    for _ in 0..1_000 {
        match op.advance(input.take(), sim.now) {
            Step::Done(output) => return Ok(output),
            Step::Action(action) => {
                if let Action::StoreTokens(records) = &action {
                    let stored_identity = TokenSet::new(sim.storage.clone())
                        .identity()
                        .ok()
                        .flatten()
                        .map(str::to_owned);
                    for record in records {
                        // Tokens are stored only after validation.
                        if let Some(required) = requirements.get(&record.resource_server) {
                            prop_assert!(
                                missing_root_scopes(record, required).is_empty(),
                                "unvalidated store {record:?}"
                            );
                        }
                        if user {
                            // No identity change is ever stored.
                            prop_assert!(
                                record.identity_id.is_some(),
                                "user token without identity"
                            );
                            if let Some(stored) = &stored_identity {
                                prop_assert_eq!(
                                    record.identity_id.as_ref(),
                                    Some(stored),
                                    "identity changed"
                                );
                            }
                        }
                        // A refresh token is never lost, unless Globus
                        // Auth has just rejected it.
                        if refresh_mode {
                            prop_assert!(
                                record.refresh_token.is_some() || refresh_rejected,
                                "refresh token lost"
                            );
                        }
                    }
                }
                let refresh = matches!(&action, Action::Send(request)
                    if request.form_fields().iter().any(|(k, v)| k == "grant_type" && v == "refresh_token"));
                let answer = sim.perform(action);
                refresh_rejected = refresh
                    && matches!(&answer, Input::Response(response)
                        if String::from_utf8_lossy(response.body()).contains("invalid_grant"));
                input = Some(answer);
            }
        }
    }
    Err(TestCaseError::fail(
        "operation did not finish in 1,000 steps",
    ))
}

fn run(shape: Shape, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut sim = sim_for(shape);
    let app = sim.app.clone();
    for op in ops {
        match op {
            Op::Get(i) => {
                let result = checked(&mut sim, app.get_authorizer(SERVERS[*i]))?;
                if let Ok(authorization) = result {
                    // No expired token is ever handed out.
                    prop_assert!(
                        authorization.expires_at() > sim.now,
                        "expired token handed out"
                    );
                }
            }
            Op::LoginRequired => {
                let before = sim.auth.requests.len();
                checked(&mut sim, app.login_required())?.unwrap();
                prop_assert_eq!(
                    sim.auth.requests.len(),
                    before,
                    "login_required made a request"
                );
            }
            Op::Login { force } => {
                let _ = checked(&mut sim, app.login_with(LoginOptions::new().force(*force)))?;
            }
            Op::Logout { sweep } => {
                let _ = checked(
                    &mut sim,
                    app.logout_with(LogoutOptions::new().all_stored_resource_servers(*sweep)),
                )?;
            }
            Op::Advance(secs) => sim.advance_time(*secs),
            Op::Fault { status, body } => sim.auth.fail_next(1, *status, &fault_body(body)),
            Op::RevokeRefreshTokens => sim.auth.revoke_all_refresh_tokens(),
            Op::SwitchUser => {
                sim.auth.user = if sim.auth.user == SimUser::A {
                    SimUser::B
                } else {
                    SimUser::A
                };
            }
            Op::DropRecord(i) => sim.storage.retain(|t| t.resource_server != SERVERS[*i]),
            Op::ExpireRecord(i) => {
                let now = sim.now;
                for t in sim
                    .storage
                    .iter_mut()
                    .filter(|t| t.resource_server == SERVERS[*i])
                {
                    t.expires_at = now.saturating_sub_secs(1);
                }
            }
            Op::StripRefreshToken(i) => {
                for t in sim
                    .storage
                    .iter_mut()
                    .filter(|t| t.resource_server == SERVERS[*i])
                {
                    t.refresh_token = None;
                }
            }
            Op::DenyNextLogin => sim.auth.deny_next_authorization = true,
            Op::ClearConsents => sim.auth.clear_consents(),
        }
        prop_assert!(sim.locks.is_empty(), "a renewal lock was left held");
    }
    Ok(())
}

// 256 cases by default; set PROPTEST_CASES for longer runs.
proptest! {
    #[test]
    fn invariants_hold_for_any_sequence(shape in shape(), ops in prop::collection::vec(op(), 1..40)) {
        run(shape, &ops)?;
    }
}

/// An operation that stores an unvalidated record, to show the checker fails.
struct StoresGarbage(bool);

impl Operation for StoresGarbage {
    type Output = ();

    fn advance(&mut self, _input: Option<Input>, _now: UnixTime) -> Step<()> {
        if std::mem::replace(&mut self.0, true) {
            return Step::Done(());
        }
        let record = crate::token::TokenData::from_json(&serde_json::json!({
            "resource_server": SERVERS[1], "scope": "not-the-required-scope",
            "access_token": "x", "expires_at_seconds": 0,
        }))
        .unwrap();
        Step::Action(Action::StoreTokens(vec![record]))
    }
}

#[test]
fn the_checker_rejects_an_unvalidated_store() {
    let mut sim = sim_for(Shape::UserRefresh);
    assert!(checked(&mut sim, StoresGarbage(false)).is_err());
}
