//! Scenario tests: the app machines against the fake Globus Auth, on a
//! simulated clock.

use serde_json::json;

use super::*;
use crate::auth_params::AuthorizationParameters;
use crate::authorize::RedirectError;
use crate::response::ResponseError;
use crate::secret::ClientSecret;
use crate::testing::{SIM_CLIENT_ID, Sim, SimLogin, SimUser};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
const DAY: i64 = 24 * 3600;

fn user_app(config: GlobusAppConfig) -> GlobusApp {
    GlobusApp::user("Sim App")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(config)
        .build()
        .unwrap()
}

fn refresh_mode() -> GlobusAppConfig {
    GlobusAppConfig::default().with_request_refresh_tokens(true)
}

fn client_sim() -> Sim {
    let app = GlobusApp::client("Sim Service")
        .client_id(SIM_CLIENT_ID)
        .client_secret(ClientSecret::new("sim-secret"))
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .build()
        .unwrap();
    let mut sim = Sim::new(app);
    sim.auth.client_secret = Some("sim-secret".into());
    sim
}

fn logged_in(config: GlobusAppConfig) -> Sim {
    let mut sim = Sim::new(user_app(config));
    sim.drive(sim.app.login()).unwrap();
    sim
}

fn get(sim: &mut Sim, rs: &str) -> Result<Authorization, AppError> {
    let app = sim.app.clone();
    sim.drive(app.get_authorizer(rs))
}

fn login_required(sim: &mut Sim) -> bool {
    let op = sim.app.login_required();
    sim.drive(op).unwrap()
}

// ---------------------------------------------------------------- config

#[test]
fn configuration_misuse_gives_typed_errors() {
    let native = || {
        LoginClient::native(
            SIM_CLIENT_ID,
            url::Url::parse("https://auth.globus.org/").unwrap(),
        )
    };
    let cases: Vec<(AppBuilder, ConfigError)> = vec![
        (
            GlobusApp::user("a").client_id("x").login_client(native()),
            ConfigError::ClientIdAndLoginClient,
        ),
        (GlobusApp::user("a"), ConfigError::MissingClient),
        (
            GlobusApp::client("a").client_id("x"),
            ConfigError::ClientAppRequiresSecret,
        ),
        (
            GlobusApp::client("a").login_client(native()),
            ConfigError::ClientAppRequiresConfidentialClient,
        ),
        (
            GlobusApp::client("a")
                .client_id("x")
                .client_secret(ClientSecret::new("s"))
                .config(GlobusAppConfig::default().with_login_flow(LoginFlowKind::CommandLine)),
            ConfigError::ClientAppCannotUseLoginFlow,
        ),
        (
            GlobusApp::user("a")
                .client_id("x")
                .client_secret(ClientSecret::new("s")),
            ConfigError::ConfidentialClientRequiresRedirectUri,
        ),
        (
            GlobusApp::user("a").client_id("x").config(
                GlobusAppConfig::default()
                    .with_login_flow(LoginFlowKind::LocalServer)
                    .with_login_redirect_uri("https://x/cb".to_owned()),
            ),
            ConfigError::LocalServerCustomRedirectUri,
        ),
        (
            GlobusApp::user("a")
                .client_id("x")
                .client_secret(ClientSecret::new("s"))
                .config(GlobusAppConfig::default().with_login_flow(LoginFlowKind::LocalServer)),
            ConfigError::LocalServerRequiresNativeClient,
        ),
        (
            GlobusApp::user("a")
                .login_client(native())
                .client_secret(ClientSecret::new("s")),
            ConfigError::SecretWithLoginClient,
        ),
        (
            GlobusApp::user("a")
                .client_id("x")
                .config(GlobusAppConfig::default().with_namespace(String::new())),
            ConfigError::EmptyNamespace,
        ),
    ];
    for (builder, expected) in cases {
        assert_eq!(builder.build().unwrap_err(), expected);
    }
    assert!(matches!(
        GlobusApp::user("a")
            .client_id("x")
            .scope_requirements("rs", "a[")
            .build(),
        Err(ConfigError::InvalidScopeRequirement { .. })
    ));
    assert_eq!(
        LoginFlowKind::from_name("x").unwrap_err().to_string(),
        r#"unknown login flow "x" (expected "command-line" or "local-server")"#
    );
    assert_eq!(
        LoginFlowKind::from_name("local-server").unwrap(),
        LoginFlowKind::LocalServer
    );
    assert!(TokenStorageKind::from_name("yaml").is_err());
    assert_eq!(
        ConfigError::MissingClient.to_string(),
        "no client: give a client id (or a login client)"
    );
}

#[test]
fn defaults_redirects_prefill_and_base_urls() {
    let app = GlobusApp::user("My App")
        .client_id("c")
        .hostname("laptop.local")
        .build()
        .unwrap();
    assert_eq!(
        app.inner.redirect_uri.as_deref(),
        Some("https://auth.globus.org/v2/web/auth-code")
    );
    assert_eq!(
        app.inner.prefill_named_grant.as_deref(),
        Some("My App on laptop")
    );
    assert_eq!(app.config().namespace, "DEFAULT");
    assert!(!app.config().request_refresh_tokens);
    let local = GlobusApp::user("My App")
        .client_id("c")
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url("http://127.0.0.1:8000".to_owned())
                .with_login_flow(LoginFlowKind::LocalServer),
        )
        .build()
        .unwrap();
    assert_eq!(local.inner.redirect_uri, None);
    assert_eq!(local.inner.prefill_named_grant.as_deref(), Some("My App"));
    assert_eq!(
        local.login_client().auth_base().as_str(),
        "http://127.0.0.1:8000/"
    );
    let sandbox = GlobusApp::user("a")
        .client_id("c")
        .config(
            GlobusAppConfig::default().with_environment(crate::environment::Environment::Sandbox),
        )
        .build()
        .unwrap();
    assert_eq!(
        sandbox.inner.redirect_uri.as_deref(),
        Some("https://auth.sandbox.globuscs.info/v2/web/auth-code")
    );
    let confidential = GlobusApp::user("a")
        .client_id("c")
        .client_secret(ClientSecret::new("s"))
        .config(
            GlobusAppConfig::default().with_login_redirect_uri("https://example.com/cb".to_owned()),
        )
        .build()
        .unwrap();
    assert_eq!(confidential.inner.prefill_named_grant, None);
}

#[test]
fn app_is_send_sync_and_operations_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<GlobusApp>();
    send::<GetAuthorizer<'static>>();
    send::<Login>();
    send::<Logout>();
    send::<LoginRequired>();
}

// ---------------------------------------------------------------- requirements

#[test]
fn openid_is_always_required_and_requirements_deduplicate() {
    let app = user_app(GlobusAppConfig::default());
    app.add_scope_requirements_str("auth.globus.org", "openid email openid")
        .unwrap();
    app.add_scope_requirements_str(TRANSFER, &format!("{TRANSFER_ALL}[a]"))
        .unwrap();
    app.add_scope_requirements_str(TRANSFER, &format!("{TRANSFER_ALL}[b]"))
        .unwrap();
    let requirements = app.scope_requirements();
    let auth: Vec<String> = requirements
        .get("auth.globus.org")
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(auth, ["openid", "email"]);
    assert_eq!(
        requirements.get(TRANSFER).unwrap()[0].to_string(),
        format!("{TRANSFER_ALL}[a b]")
    );
    // The copy is independent.
    let mut copy = app.scope_requirements();
    copy.add_str("groups.api.globus.org", "g").unwrap();
    assert!(
        app.scope_requirements()
            .get("groups.api.globus.org")
            .is_none()
    );
}

#[test]
fn scopes_with_characters_outside_the_grammar_are_refused_and_nothing_is_added() {
    let app = user_app(GlobusAppConfig::default());
    let before = app.scope_requirements();
    for bad in [
        "a\"b",
        "a\\b",
        "a\u{1}b",
        "a\u{7f}b",
        "\u{e9}t\u{e9}",
        "good other\u{202e}",
        "ok[dep\"x]",
        "ok[*dep[deeper\u{0}]]",
    ] {
        let error = app.add_scope_requirements_str("t", bad).unwrap_err();
        assert!(
            matches!(error, ScopeParseError::InvalidCharacter { .. }),
            "{bad:?}: {error:?}"
        );
        assert_eq!(app.scope_requirements(), before, "{bad:?} added something");
        let built = GlobusApp::user("Sim App")
            .client_id(SIM_CLIENT_ID)
            .scope_requirements(TRANSFER, bad)
            .build();
        assert!(
            matches!(
                built,
                Err(ConfigError::InvalidScopeRequirement {
                    source: ScopeParseError::InvalidCharacter { .. },
                    ..
                })
            ),
            "{bad:?}"
        );
    }
    // Every printable ASCII character but the quote and the backslash is
    // a scope character (`[`, `]` and `*` being the grammar's own).
    app.add_scope_requirements_str("t", "urn:x!#$%&'()+,-./:;<=>?@^_`{|}~")
        .unwrap();
}

// ---------------------------------------------------------------- login

#[test]
fn user_login_runs_pkce_with_a_random_checked_state_and_stores_validated_tokens() {
    let mut sim = Sim::new(user_app(GlobusAppConfig::default()));
    assert!(login_required(&mut sim));
    let outcome = sim.drive(sim.app.login()).unwrap();
    let user = SimUser::A.identity();
    assert_eq!(
        outcome,
        LoginOutcome::LoggedIn {
            identity: Some(user.clone())
        }
    );
    assert_eq!(sim.logins, 1);
    let exchange = sim
        .auth
        .requests
        .iter()
        .find(|r| r.field("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(exchange.field("code_verifier").map(str::len), Some(43));
    assert_eq!(
        exchange.field("redirect_uri"),
        Some("https://auth.globus.org/v2/web/auth-code")
    );
    for rs in ["auth.globus.org", TRANSFER] {
        let record = sim.stored(rs).unwrap();
        assert_eq!(record.identity_id.as_deref(), Some(user.as_str()));
        assert!(record.refresh_token.is_none());
    }
    assert_eq!(sim.app.identity(), Some(user));
    assert!(!login_required(&mut sim));
    let auth = get(&mut sim, TRANSFER).unwrap();
    assert!(sim.auth.is_live(auth.access_token().secret(), sim.now));
    let header = auth.header_value().unwrap();
    assert!(header.is_sensitive());
    assert_eq!(
        header.to_str().unwrap(),
        format!("Bearer {}", auth.access_token().secret())
    );
}

#[test]
fn login_is_a_no_op_unless_required_forced_or_given_parameters() {
    let mut sim = logged_in(GlobusAppConfig::default());
    assert_eq!(sim.drive(sim.app.login()).unwrap(), LoginOutcome::NotNeeded);
    assert_eq!(sim.logins, 1);
    sim.drive(sim.app.login_with(LoginOptions::new().force(true)))
        .unwrap();
    assert_eq!(sim.logins, 2);
    let params = AuthorizationParameters {
        session_message: Some("hi".into()),
        ..Default::default()
    };
    sim.drive(
        sim.app
            .login_with(LoginOptions::new().authorization_parameters(params.clone())),
    )
    .unwrap();
    assert_eq!(sim.logins, 3);
    assert_eq!(
        params.required_scopes, None,
        "the caller's parameters are not touched"
    );
}

#[test]
fn login_merges_gare_scopes_and_session_parameters_into_the_authorize_url() {
    let mut sim = logged_in(GlobusAppConfig::default());
    let extra = format!("{TRANSFER_ALL}[https://auth.globus.org/scopes/c1/data_access]");
    let params = AuthorizationParameters {
        required_scopes: Some(vec![extra.clone()]),
        session_required_mfa: Some(true),
        ..Default::default()
    };
    sim.drive(
        sim.app
            .login_with(LoginOptions::new().authorization_parameters(params)),
    )
    .unwrap();
    let query = sim.auth.authorizations.last().unwrap();
    let field = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // App scopes merged with the GARE's: transfer:all gains the dependency.
    assert_eq!(field("scope"), Some(format!("openid {extra}").as_str()));
    assert_eq!(field("session_required_mfa"), Some("True"));
    assert_eq!(field("access_type"), Some("online"));
    assert_eq!(field("state").map(str::len), Some(43));
    // The requirements themselves are unchanged (GARE scopes are per login).
    assert_eq!(
        sim.app.scope_requirements().get(TRANSFER).unwrap()[0].to_string(),
        TRANSFER_ALL
    );
}

#[test]
fn local_server_flow_checks_the_state_of_the_redirect() {
    let config = GlobusAppConfig::default().with_login_flow(LoginFlowKind::LocalServer);
    let mut sim = Sim::new(user_app(config));
    sim.drive(sim.app.login()).unwrap();
    let exchange = sim
        .auth
        .requests
        .iter()
        .find(|r| r.field("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(
        exchange.field("redirect_uri"),
        Some(crate::testing::SIM_LOOPBACK)
    );

    // A redirect with another state is refused and nothing is exchanged.
    let mut login = sim.app.login_with(LoginOptions::new().force(true));
    let mut input = None;
    loop {
        match login.advance(input.take(), sim.now) {
            Step::Action(Action::Authorize(plan)) => {
                assert_eq!(
                    plan.check_redirect("code=x&state=forged"),
                    Err(RedirectError::StateMismatch)
                );
                input = Some(Input::Authorization(AuthorizationResponse::Redirect {
                    query: "code=x&state=forged".into(),
                    redirect_uri: "r".into(),
                }));
            }
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => {
                assert_eq!(
                    result,
                    Err(AppError::Authorization(RedirectError::StateMismatch))
                );
                break;
            }
        }
    }
}

#[test]
fn denied_and_failed_logins_store_nothing() {
    // Local server: the denial comes back on the redirect.
    let mut sim = Sim::new(user_app(
        GlobusAppConfig::default().with_login_flow(LoginFlowKind::LocalServer),
    ));
    sim.auth.deny_next_authorization = true;
    let denied = sim.drive(sim.app.login()).unwrap_err();
    assert!(
        matches!(
            denied,
            AppError::Authorization(RedirectError::Denied { .. })
        ),
        "{denied:?}"
    );
    // Command line: the person has no code to paste.
    let mut sim = Sim::new(user_app(GlobusAppConfig::default()));
    sim.auth.deny_next_authorization = true;
    let nothing = sim.drive(sim.app.login()).unwrap_err();
    assert_eq!(nothing, AppError::Authorization(RedirectError::InvalidCode));
    sim.login = SimLogin::Fail(IoFailure {
        kind: IoFailureKind::Interaction,
        message: "no browser".into(),
        retryable: false,
    });
    assert!(matches!(sim.drive(sim.app.login()), Err(AppError::Io(_))));
    assert!(sim.storage.is_empty());
}

#[test]
fn oidc_configuration_and_keys_are_fetched_once_per_app() {
    let mut sim = logged_in(GlobusAppConfig::default());
    sim.drive(sim.app.logout()).unwrap();
    sim.drive(sim.app.login()).unwrap();
    assert_eq!(sim.auth.count("/.well-known/openid-configuration"), 1);
    assert_eq!(sim.auth.count("/jwk.json"), 1);
}

#[test]
fn rotated_signing_keys_are_refetched_once() {
    let mut sim = logged_in(GlobusAppConfig::default());
    sim.auth.rotated_keys = true;
    sim.drive(sim.app.login_with(LoginOptions::new().force(true)))
        .unwrap();
    assert_eq!(sim.auth.count("/jwk.json"), 2);
}

#[test]
fn an_id_token_for_another_client_is_rejected_and_nothing_is_stored() {
    let mut sim = Sim::new(user_app(GlobusAppConfig::default()));
    sim.auth.wrong_audience = true;
    let err = sim.drive(sim.app.login()).unwrap_err();
    assert_eq!(
        err,
        AppError::IdToken(crate::id_token::IdTokenError::WrongAudience)
    );
    assert!(sim.storage.is_empty());
    assert_eq!(sim.app.identity(), None);
}

#[test]
fn a_response_missing_a_required_resource_server_is_rejected_whole() {
    let mut sim = Sim::new(user_app(GlobusAppConfig::default()));
    // Answer the code exchange with a token for auth.globus.org only.
    let mut login = sim.app.login();
    let mut input = None;
    let result = loop {
        match login.advance(input.take(), sim.now) {
            Step::Action(Action::Send(request))
                if request.as_http().uri().path() == "/v2/oauth2/token" =>
            {
                let real = sim.auth.handle(request.as_http(), sim.now);
                let mut body: serde_json::Value = serde_json::from_slice(real.body()).unwrap();
                body["other_tokens"] = json!([]);
                input = Some(Input::Response(
                    http::Response::builder()
                        .status(200)
                        .body(serde_json::to_vec(&body).unwrap())
                        .unwrap(),
                ));
            }
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => break result,
        }
    };
    assert!(matches!(
        result,
        Err(AppError::Validation(TokenValidationError::MissingToken { ref resource_server })) if resource_server == TRANSFER
    ));
    assert!(sim.storage.is_empty());
}

// ---------------------------------------------------------------- expiry and refresh

#[test]
fn bug_9_expired_access_tokens_are_never_handed_out_and_login_required_says_so() {
    let mut sim = logged_in(GlobusAppConfig::default());
    let first = get(&mut sim, TRANSFER).unwrap();
    sim.advance_time(2 * DAY + 1);
    assert!(
        login_required(&mut sim),
        "an expired access token needs a login"
    );
    // get_authorizer runs the login once (★4) and returns a fresh token.
    let second = get(&mut sim, TRANSFER).unwrap();
    assert_eq!(sim.logins, 2);
    assert_ne!(first.access_token(), second.access_token());
    assert!(second.expires_at() > sim.now);
}

#[test]
fn a_resource_server_outside_the_requirements_is_an_error_without_a_login() {
    let mut sim = Sim::new(user_app(GlobusAppConfig::default()));
    assert_eq!(
        get(&mut sim, "groups.api.globus.org"),
        Err(AppError::NoScopeRequirements(
            "groups.api.globus.org".into()
        ))
    );
    assert_eq!(
        sim.logins, 0,
        "no login can bring a token it does not ask for"
    );
    // After a login, the same: still no login, still the typed error.
    sim.drive(sim.app.login()).unwrap();
    assert_eq!(
        get(&mut sim, "groups.api.globus.org"),
        Err(AppError::NoScopeRequirements(
            "groups.api.globus.org".into()
        ))
    );
    assert_eq!(sim.logins, 1);
    // A required one is served; and once required, the other logs in.
    assert!(get(&mut sim, TRANSFER).is_ok());
    sim.app
        .add_scope_requirements_str(
            "groups.api.globus.org",
            "urn:globus:auth:scope:groups.api.globus.org:all",
        )
        .unwrap();
    assert!(get(&mut sim, "groups.api.globus.org").is_ok());
    assert_eq!(sim.logins, 2);
}

#[test]
fn handler_raise_returns_the_validation_error_without_logging_in() {
    let config = GlobusAppConfig::default()
        .with_token_validation_error_handler(TokenValidationErrorHandler::Raise);
    let mut sim = logged_in(config);
    sim.advance_time(2 * DAY + 1);
    assert!(matches!(
        get(&mut sim, TRANSFER),
        Err(AppError::Validation(TokenValidationError::Expired { .. }))
    ));
    assert_eq!(sim.logins, 1);
}

#[test]
fn refresh_mode_refreshes_a_minute_ahead_once_and_keeps_the_refresh_token() {
    let mut sim = logged_in(refresh_mode());
    let original = sim.stored(TRANSFER).unwrap().clone();
    sim.advance_time(2 * DAY - 59);
    let auth = get(&mut sim, TRANSFER).unwrap();
    assert_eq!(
        sim.auth
            .requests
            .iter()
            .filter(|r| r.field("grant_type") == Some("refresh_token"))
            .count(),
        1
    );
    let stored = sim.stored(TRANSFER).unwrap();
    assert_eq!(stored.access_token, *auth.access_token());
    assert_ne!(stored.access_token, original.access_token);
    // Bug 11: the response had no refresh_token; the old one is kept.
    assert_eq!(stored.refresh_token, original.refresh_token);
    assert_eq!(stored.identity_id, original.identity_id);
    assert_eq!(sim.logins, 1);
    assert!(sim.locks.is_empty());
    // Warm: no more requests.
    let before = sim.auth.requests.len();
    get(&mut sim, TRANSFER).unwrap();
    assert_eq!(sim.auth.requests.len(), before);
}

#[test]
fn rotated_refresh_tokens_are_stored() {
    let mut sim = logged_in(refresh_mode());
    sim.auth.rotate_refresh_tokens = true;
    let original = sim.stored(TRANSFER).unwrap().refresh_token.clone();
    sim.advance_time(2 * DAY);
    get(&mut sim, TRANSFER).unwrap();
    let rotated = sim.stored(TRANSFER).unwrap().refresh_token.clone();
    assert_ne!(rotated, original);
    assert!(sim.auth.is_live(rotated.unwrap().secret(), sim.now));
}

#[test]
fn bug_10_a_rejected_refresh_token_means_login_required_and_a_new_login() {
    let mut sim = logged_in(refresh_mode());
    sim.auth.revoke_all_refresh_tokens();
    assert!(!login_required(&mut sim), "not known to be dead yet");
    sim.advance_time(2 * DAY);
    let auth = get(&mut sim, TRANSFER).unwrap();
    assert_eq!(sim.logins, 2, "invalid_grant led to one new login");
    assert!(sim.auth.is_live(auth.access_token().secret(), sim.now));
    assert!(!login_required(&mut sim));

    let config =
        refresh_mode().with_token_validation_error_handler(TokenValidationErrorHandler::Raise);
    let mut sim = logged_in(config);
    sim.auth.revoke_all_refresh_tokens();
    sim.advance_time(2 * DAY);
    assert!(matches!(
        get(&mut sim, TRANSFER),
        Err(AppError::Validation(
            TokenValidationError::RefreshTokenRejected { .. }
        ))
    ));
    assert!(
        login_required(&mut sim),
        "a refresh token known to be dead requires a login"
    );
}

#[test]
fn a_transient_refresh_failure_is_retryable_and_leaves_no_lock_or_poison() {
    let mut sim = logged_in(refresh_mode());
    sim.advance_time(2 * DAY);
    sim.auth.fail_next(1, 503, b"<html>busy</html>");
    let err = get(&mut sim, TRANSFER).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(sim.locks.is_empty());
    assert!(get(&mut sim, TRANSFER).is_ok());
}

#[test]
fn concurrent_callers_with_an_expired_token_cause_one_refresh() {
    let mut sim = logged_in(refresh_mode());
    sim.advance_time(2 * DAY);
    let app = sim.app.clone();
    let mut first = app.get_authorizer(TRANSFER);
    let mut second = app.get_authorizer(TRANSFER);
    // Both load the expired token and ask for the lock.
    let Step::Action(load1) = first.advance(None, sim.now) else {
        panic!()
    };
    let Step::Action(load2) = second.advance(None, sim.now) else {
        panic!()
    };
    let tokens1 = sim.perform(load1);
    let tokens2 = sim.perform(load2);
    let Step::Action(Action::Lock(_)) = second.advance(Some(tokens2), sim.now) else {
        panic!()
    };
    // The first takes the lock and finishes its refresh while the second waits.
    let mut input = Some(tokens1);
    let first_result = loop {
        match first.advance(input.take(), sim.now) {
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => break result.unwrap(),
        }
    };
    // Now the second gets the lock, reloads, and finds the fresh token.
    let mut input = Some(sim.perform(Action::Lock(TRANSFER.into())));
    let second_result = loop {
        match second.advance(input.take(), sim.now) {
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => break result.unwrap(),
        }
    };
    assert_eq!(first_result, second_result);
    assert_eq!(
        sim.auth
            .requests
            .iter()
            .filter(|r| r.field("grant_type") == Some("refresh_token"))
            .count(),
        1
    );
    assert!(sim.locks.is_empty());
}

// ---------------------------------------------------------------- identity

#[test]
fn bug_12_identity_is_checked_on_login_and_forgotten_on_logout() {
    let mut sim = logged_in(GlobusAppConfig::default());
    sim.auth.user = SimUser::B;
    let before = sim.storage.clone();
    let err = sim
        .drive(sim.app.login_with(LoginOptions::new().force(true)))
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Validation(TokenValidationError::IdentityMismatch { .. })
    ));
    assert_eq!(sim.storage, before, "nothing was stored");
    // After logout another user can log in on the same app.
    sim.drive(sim.app.logout()).unwrap();
    assert_eq!(sim.app.identity(), None);
    sim.drive(sim.app.login()).unwrap();
    assert_eq!(sim.app.identity(), Some(SimUser::B.identity()));
}

#[test]
fn an_identity_mismatch_in_storage_is_never_resolved_by_logging_in() {
    let mut sim = logged_in(GlobusAppConfig::default());
    for record in &mut sim.storage {
        record.identity_id = Some("someone-else".into());
    }
    let err = get(&mut sim, TRANSFER).unwrap_err();
    assert!(matches!(
        err,
        AppError::Validation(TokenValidationError::IdentityMismatch { .. })
    ));
    assert_eq!(sim.logins, 1);
    sim.storage[0].identity_id = Some("a-third-person".into());
    assert!(matches!(
        get(&mut sim, TRANSFER),
        Err(AppError::Validation(TokenValidationError::MixedIdentities))
    ));
}

// ---------------------------------------------------------------- logout

#[test]
fn bug_13_logout_revokes_refresh_then_access_tokens_and_a_second_logout_is_a_no_op() {
    let mut sim = logged_in(refresh_mode());
    let records = sim.storage.clone();
    let report = sim.drive(sim.app.logout()).unwrap();
    assert!(report.is_complete());
    assert_eq!(report.revoked, ["auth.globus.org", TRANSFER]);
    let revoked: Vec<&str> = sim
        .auth
        .requests
        .iter()
        .filter(|r| r.path == "/v2/oauth2/token/revoke")
        .filter_map(|r| r.field("token"))
        .collect();
    let expected: Vec<&str> = records
        .iter()
        .flat_map(|r| {
            [
                r.refresh_token.as_ref().unwrap().secret(),
                r.access_token.secret(),
            ]
        })
        .collect();
    assert_eq!(revoked, expected);
    assert!(
        records
            .iter()
            .all(|r| !sim.auth.is_live(r.access_token.secret(), sim.now))
    );
    assert!(sim.storage.is_empty());
    assert!(login_required(&mut sim));
    let requests = sim.auth.requests.len();
    let again = sim.drive(sim.app.logout()).unwrap();
    assert_eq!(again, LogoutReport::default());
    assert_eq!(sim.auth.requests.len(), requests);
}

#[test]
fn logout_goes_on_after_a_failed_revocation_and_keeps_that_record() {
    let mut sim = logged_in(GlobusAppConfig::default());
    sim.auth.fail_next(1, 500, b"oops");
    let report = sim.drive(sim.app.logout()).unwrap();
    assert_eq!(report.revoked, [TRANSFER]);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, "auth.globus.org");
    assert!(sim.stored("auth.globus.org").is_some());
    assert!(sim.stored(TRANSFER).is_none());
    // The identity is still that of the remaining record; a retry completes.
    assert!(sim.app.identity().is_some());
    assert!(sim.drive(sim.app.logout()).unwrap().is_complete());
    assert_eq!(sim.app.identity(), None);
}

#[test]
fn sweep_decides_whether_tokens_outside_the_requirements_go() {
    for sweep in [false, true] {
        let mut sim = logged_in(GlobusAppConfig::default());
        let mut extra = sim.stored(TRANSFER).unwrap().clone();
        extra.resource_server = "groups.api.globus.org".into();
        sim.storage.push(extra);
        sim.drive(
            sim.app
                .logout_with(LogoutOptions::new().all_stored_resource_servers(sweep)),
        )
        .unwrap();
        assert_eq!(sim.stored("groups.api.globus.org").is_some(), !sweep);
        assert!(sim.stored(TRANSFER).is_none());
    }
}

// ---------------------------------------------------------------- client app

#[test]
fn bug_14_client_app_login_required_makes_no_requests() {
    let mut sim = client_sim();
    assert!(login_required(&mut sim));
    assert!(sim.auth.requests.is_empty());
    let outcome = sim.drive(sim.app.login()).unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::LoggedIn {
            identity: Some(SIM_CLIENT_ID.into())
        }
    );
    assert_eq!(grants(&sim, "client_credentials"), 1);
    let requests = sim.auth.requests.len();
    assert!(!login_required(&mut sim));
    sim.advance_time(3 * DAY);
    assert!(!login_required(&mut sim), "expiry is renewed, not a login");
    assert_eq!(sim.auth.requests.len(), requests);
}

#[test]
fn client_app_login_verifies_the_id_token_and_stores_the_client_identity() {
    let mut sim = client_sim();
    sim.drive(sim.app.login()).unwrap();
    // One combined request; the id_token verified against the JWKS.
    assert_eq!(grants(&sim, "client_credentials"), 1);
    assert_eq!(sim.auth.count("/.well-known/openid-configuration"), 1);
    assert_eq!(sim.auth.count("/jwk.json"), 1);
    for rs in ["auth.globus.org", TRANSFER] {
        assert_eq!(
            sim.stored(rs).unwrap().identity_id.as_deref(),
            Some(SIM_CLIENT_ID),
            "{rs}"
        );
    }
    // A renewal keeps the identity.
    sim.advance_time(3 * DAY);
    get(&mut sim, "auth.globus.org").unwrap();
    assert_eq!(grants(&sim, "client_credentials"), 2);
    assert_eq!(
        sim.stored("auth.globus.org")
            .unwrap()
            .identity_id
            .as_deref(),
        Some(SIM_CLIENT_ID)
    );

    // An id_token for another audience is refused: nothing is stored.
    let mut sim = client_sim();
    sim.auth.wrong_audience = true;
    assert!(matches!(
        sim.drive(sim.app.login()),
        Err(AppError::IdToken(_))
    ));
    assert!(sim.stored(TRANSFER).is_none());
}

#[test]
fn client_app_asks_for_a_missing_resource_servers_scopes_on_their_own() {
    let mut sim = client_sim();
    sim.app
        .add_scope_requirements(
            "groups.api.globus.org",
            &parse_scopes("urn:globus:auth:scope:groups.api.globus.org:all").unwrap(),
        )
        .unwrap();
    sim.auth.client_credentials_one_resource_server = true;
    sim.drive(sim.app.login()).unwrap();
    let scopes: Vec<_> = sim
        .auth
        .requests
        .iter()
        .filter(|r| r.field("grant_type") == Some("client_credentials"))
        .map(|r| r.field("scope").unwrap().to_owned())
        .collect();
    // The combined request first, then each missing resource server alone.
    assert_eq!(scopes.len(), 3, "{scopes:?}");
    assert!(scopes[0].contains("openid") && scopes[0].contains("groups"));
    assert_eq!(
        scopes[1..],
        [
            TRANSFER_ALL.to_owned(),
            "urn:globus:auth:scope:groups.api.globus.org:all".to_owned()
        ]
    );
    for rs in ["auth.globus.org", TRANSFER, "groups.api.globus.org"] {
        assert!(sim.stored(rs).is_some(), "{rs}");
    }
    assert!(!login_required(&mut sim));
}

#[test]
fn client_app_renews_expired_tokens_and_rejects_unknown_resource_servers() {
    let mut sim = client_sim();
    // No login needed: the first use fetches a token.
    let first = get(&mut sim, TRANSFER).unwrap();
    sim.advance_time(3 * DAY);
    let renewed = get(&mut sim, TRANSFER).unwrap();
    assert_ne!(first.access_token(), renewed.access_token());
    assert_eq!(
        sim.stored(TRANSFER).unwrap().access_token,
        *renewed.access_token()
    );
    let cc = sim
        .auth
        .requests
        .iter()
        .filter(|r| r.field("grant_type") == Some("client_credentials"))
        .count();
    assert_eq!(cc, 2);
    assert!(
        sim.auth
            .requests
            .iter()
            .all(|r| r.field("scope") != Some(""))
    );
    assert_eq!(
        get(&mut sim, "groups.api.globus.org"),
        Err(AppError::NoScopeRequirements(
            "groups.api.globus.org".into()
        ))
    );
    let report = sim.drive(sim.app.logout()).unwrap();
    assert_eq!(report.revoked, [TRANSFER]);
    assert!(login_required(&mut sim));
}

// ---------------------------------------------------------------- dependent scopes

#[test]
fn dependent_scopes_are_checked_against_consents_cached_until_login() {
    let app = GlobusApp::user("Sim App")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(
            TRANSFER,
            format!("{TRANSFER_ALL}[*https://auth.globus.org/scopes/c1/data_access]"),
        )
        .build()
        .unwrap();
    let mut sim = Sim::new(app);
    sim.drive(sim.app.login()).unwrap();
    get(&mut sim, TRANSFER).unwrap();
    get(&mut sim, TRANSFER).unwrap();
    let consents_path = format!("/v2/api/identities/{}/consents", SimUser::A.identity());
    assert_eq!(sim.auth.count(&consents_path), 1, "the forest is cached");
    assert_eq!(
        sim.auth
            .requests
            .iter()
            .find(|r| r.path == consents_path)
            .unwrap()
            .field("all"),
        Some("False")
    );

    // Consents withdrawn: after a login the cache is dropped, the check
    // fails, and the handler logs in again (which grants them again).
    sim.auth.clear_consents();
    sim.drive(sim.app.login_with(LoginOptions::new().force(true)))
        .unwrap();
    sim.auth.clear_consents();
    get(&mut sim, TRANSFER).unwrap();
    assert_eq!(sim.logins, 3);
    assert_eq!(sim.auth.count(&consents_path), 3);
}

#[test]
fn a_client_apps_dependent_scopes_are_left_to_the_service_as_in_the_python_sdk() {
    let app = GlobusApp::client("Sim Service")
        .client_id(SIM_CLIENT_ID)
        .client_secret(ClientSecret::new("sim-secret"))
        .scope_requirements(
            TRANSFER,
            format!("{TRANSFER_ALL}[*https://auth.globus.org/scopes/c1/data_access]"),
        )
        .build()
        .unwrap();
    let mut sim = Sim::new(app);
    sim.auth.client_secret = Some("sim-secret".into());
    sim.auth.clear_consents();
    // No consent is recorded for the client: its token is handed out, and
    // no consents request (nor a second grant) is made.
    get(&mut sim, TRANSFER).unwrap();
    get(&mut sim, TRANSFER).unwrap();
    let consents = format!("/v2/api/identities/{SIM_CLIENT_ID}/consents");
    assert_eq!(sim.auth.count(&consents), 0);
    assert_eq!(
        sim.auth
            .requests
            .iter()
            .filter(|r| r.field("grant_type") == Some("client_credentials"))
            .count(),
        1
    );
}

// ---------------------------------------------------------------- GARE

#[test]
fn gare_redrive_needs_the_config_flag_and_finds_nested_gares() {
    let body = json!({"errors": [{"code": "ConsentRequired", "authorization_parameters": {
        "required_scopes": [format!("{TRANSFER_ALL}[*https://auth.globus.org/scopes/c2/data_access]")]}}]});
    let response = http::Response::builder()
        .status(403)
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let off = user_app(GlobusAppConfig::default());
    assert_eq!(off.gare_redrive_parameters(&response), None);
    let mut sim = logged_in(GlobusAppConfig::default().with_auto_redrive_gares(true));
    let params = sim.app.gare_redrive_parameters(&response).unwrap();
    sim.drive(
        sim.app
            .login_with(LoginOptions::new().authorization_parameters(params)),
    )
    .unwrap();
    assert_eq!(sim.logins, 2);
    let ok = http::Response::builder()
        .status(200)
        .body(Vec::new())
        .unwrap();
    assert_eq!(sim.app.gare_redrive_parameters(&ok), None);
}

// ---------------------------------------------------------------- robustness

#[test]
fn inputs_that_do_not_answer_the_action_are_typed_errors() {
    let app = user_app(GlobusAppConfig::default());
    let mut op = app.get_authorizer(TRANSFER);
    let Step::Action(Action::LoadTokens) = op.advance(None, crate::testing::SIM_START) else {
        panic!()
    };
    let result = op.advance(Some(Input::Stored), crate::testing::SIM_START);
    assert!(matches!(
        result,
        Step::Done(Err(AppError::UnexpectedInput {
            expected: "Tokens",
            got: "Stored"
        }))
    ));
    let mut login = app.login_with(LoginOptions::new().force(true));
    let _ = login.advance(None, crate::testing::SIM_START);
    assert!(matches!(
        login.advance(Some(Input::Locked), crate::testing::SIM_START),
        Step::Done(Err(AppError::UnexpectedInput { .. }))
    ));
}

#[test]
fn store_failures_of_a_renewal_are_retried_then_reported_and_release_locks() {
    let mut sim = logged_in(refresh_mode());
    sim.advance_time(2 * DAY);
    let app = sim.app.clone();
    let mut op = app.get_authorizer(TRANSFER);
    let mut input = None;
    let mut attempts = 0;
    let result = loop {
        match op.advance(input.take(), sim.now) {
            Step::Action(Action::StoreTokens(_)) => {
                attempts += 1;
                input = Some(Input::Failed(IoFailure {
                    kind: IoFailureKind::Storage,
                    message: "disk full".into(),
                    retryable: true,
                }));
            }
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => break result,
        }
    };
    assert!(
        matches!(&result, Err(AppError::RenewalNotSaved { reason, .. }) if reason == "disk full"),
        "{result:?}"
    );
    assert_eq!(attempts, 3);
    assert!(sim.locks.is_empty());
}

#[test]
fn a_token_snapshot_shared_by_two_apps_is_judged_by_each_apps_requirements() {
    let sim = logged_in(GlobusAppConfig::default());
    let tokens = TokenSet::new(sim.storage.clone());
    assert!(!sim.app.login_required_for(&tokens, sim.now));
    let app = sim.app.clone();
    let mut op = app.get_authorizer(TRANSFER);
    let _ = op.advance(None, sim.now);
    assert!(matches!(
        op.advance(Some(Input::Tokens(tokens.clone())), sim.now),
        Step::Done(Ok(_))
    ));
    // Another app needs a scope the stored transfer token lacks.
    let other = GlobusApp::user("Other")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:other",
        )
        .config(
            GlobusAppConfig::default()
                .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
        )
        .build()
        .unwrap();
    let mut op = other.get_authorizer(TRANSFER);
    let _ = op.advance(None, sim.now);
    assert!(matches!(
        op.advance(Some(Input::Tokens(tokens.clone())), sim.now),
        Step::Done(Err(AppError::Validation(
            TokenValidationError::UnmetScopeRequirements { .. }
        )))
    ));
    // And the first app sees a change to its own requirements at once.
    sim.app
        .add_scope_requirements_str(
            TRANSFER,
            "urn:globus:auth:scope:transfer.api.globus.org:more",
        )
        .unwrap();
    assert!(sim.app.login_required_for(&tokens, sim.now));
}

// ---------------------------------------------------------------- services

fn grants(sim: &Sim, grant_type: &str) -> usize {
    sim.auth
        .requests
        .iter()
        .filter(|r| r.field("grant_type") == Some(grant_type))
        .count()
}

#[test]
fn a_rejected_token_is_replaced_once_and_a_replaced_one_is_not_renewed_again() {
    let mut sim = logged_in(refresh_mode());
    let first = get(&mut sim, TRANSFER).unwrap();
    let app = sim.app.clone();
    let second = sim
        .drive(app.get_authorizer_replacing(TRANSFER, first.access_token()))
        .unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_eq!(grants(&sim, "refresh_token"), 1);
    // A second caller that saw the same 401: the stored token is no longer
    // the rejected one, so it takes it without another grant.
    let third = sim
        .drive(app.get_authorizer_replacing(TRANSFER, first.access_token()))
        .unwrap();
    assert_eq!(third.access_token(), second.access_token());
    assert_eq!(grants(&sim, "refresh_token"), 1);
    assert!(sim.locks.is_empty());

    // A client app gets new client credentials.
    let mut client = client_sim();
    let app = client.app.clone();
    let old = client.drive(app.get_authorizer(TRANSFER)).unwrap();
    let new = client
        .drive(app.get_authorizer_replacing(TRANSFER, old.access_token()))
        .unwrap();
    assert_ne!(new.access_token(), old.access_token());
    assert_eq!(grants(&client, "client_credentials"), 2);

    // Without a refresh token, the handler logs in again; with `Raise`, the
    // rejection is a typed error.
    let mut sim = logged_in(GlobusAppConfig::default());
    let old = get(&mut sim, TRANSFER).unwrap();
    let app = sim.app.clone();
    let new = sim
        .drive(app.get_authorizer_replacing(TRANSFER, old.access_token()))
        .unwrap();
    assert_ne!(new.access_token(), old.access_token());
    assert_eq!(sim.logins, 2);
    let mut sim = logged_in(
        GlobusAppConfig::default()
            .with_token_validation_error_handler(TokenValidationErrorHandler::Raise),
    );
    let old = get(&mut sim, TRANSFER).unwrap();
    let app = sim.app.clone();
    assert_eq!(
        sim.drive(app.get_authorizer_replacing(TRANSFER, old.access_token())),
        Err(AppError::Validation(
            TokenValidationError::AccessTokenRejected {
                resource_server: TRANSFER.into()
            }
        ))
    );
}

#[test]
fn service_responses_are_judged_once_and_hosts_map_to_resource_servers() {
    let response = |status: u16, body: &serde_json::Value| {
        http::Response::builder()
            .status(status)
            .body(serde_json::to_vec(body).unwrap())
            .unwrap()
    };
    let gare = json!({"code": "ConsentRequired", "authorization_parameters": {
        "session_message": "consent", "required_scopes": [TRANSFER_ALL]}});
    let app = user_app(GlobusAppConfig::default().with_auto_redrive_gares(true));
    assert_eq!(
        app.judge_service_response(&response(401, &json!({})), false),
        ServiceVerdict::RenewAndRetry
    );
    assert!(matches!(
        app.judge_service_response(&response(403, &gare), false),
        ServiceVerdict::LoginAndRetry(_)
    ));
    let nested = json!({"errors": [gare.clone()]});
    assert!(matches!(
        app.judge_service_response(&response(403, &nested), false),
        ServiceVerdict::LoginAndRetry(_)
    ));
    for (status, body, is_retry) in [
        (401, json!({}), true),
        (403, gare.clone(), true),
        (403, json!({"code": "PermissionDenied"}), false),
        (200, json!({}), false),
        (500, json!({}), false),
    ] {
        assert_eq!(
            app.judge_service_response(&response(status, &body), is_retry),
            ServiceVerdict::Final,
            "{status} {body} retry={is_retry}"
        );
    }
    // GAREs are redriven only when the app asks for it.
    let plain = user_app(GlobusAppConfig::default());
    assert_eq!(
        plain.judge_service_response(&response(403, &gare), false),
        ServiceVerdict::Final
    );

    let uri = |text: &str| text.parse::<http::Uri>().unwrap();
    for (url, resource_server) in [
        (
            "https://transfer.api.globus.org/v0.10/task_list",
            Some(TRANSFER),
        ),
        (
            "https://groups.api.globus.org/v2/groups",
            Some("groups.api.globus.org"),
        ),
        (
            "https://auth.globus.org/v2/api/identities",
            Some("auth.globus.org"),
        ),
        (
            "https://timer.automate.globus.org/jobs/",
            Some("524230d7-ea86-4a52-8312-86065a9e0417"),
        ),
        ("https://TRANSFER.api.globus.org:443/", Some(TRANSFER)),
        ("https://transfer.api.globus.org:8443/", None),
        ("https://example.org/", None),
    ] {
        assert_eq!(
            plain.resource_server_for(&uri(url)),
            resource_server,
            "{url}"
        );
    }
    let sandbox = user_app(
        GlobusAppConfig::default()
            .with_environment(crate::environment::Environment::Sandbox)
            .with_auth_base_url("http://127.0.0.1:5000/".to_owned()),
    );
    assert_eq!(
        sandbox.resource_server_for(&uri("http://127.0.0.1:5000/v2/oauth2/userinfo")),
        Some("auth.globus.org")
    );
    assert_eq!(
        sandbox.resource_server_for(&uri("https://transfer.api.sandbox.globuscs.info/")),
        Some(TRANSFER)
    );
    assert_eq!(
        sandbox.resource_server_for(&uri("https://transfer.api.globus.org/")),
        None
    );
}

#[test]
fn a_refresh_answered_with_an_expired_or_non_bearer_token_stores_and_hands_out_nothing() {
    let mut sim = logged_in(refresh_mode());
    let stored = sim.stored(TRANSFER).unwrap().clone();
    sim.advance_time(2 * DAY);
    for body in [
        json!({"access_token": "new", "scope": TRANSFER_ALL, "expires_in": 0,
               "resource_server": TRANSFER, "token_type": "Bearer"}),
        json!({"access_token": "new", "scope": TRANSFER_ALL, "expires_in": 3600,
               "resource_server": TRANSFER, "token_type": "MAC"}),
    ] {
        sim.auth
            .fail_next(1, 200, &serde_json::to_vec(&body).unwrap());
        let error = get(&mut sim, TRANSFER).unwrap_err();
        assert!(
            matches!(
                error,
                AppError::Response(
                    ResponseError::ExpiredOnArrival { .. } | ResponseError::NotBearer { .. }
                )
            ),
            "{error:?}"
        );
        assert_eq!(sim.stored(TRANSFER), Some(&stored), "nothing stored");
        assert!(sim.locks.is_empty());
    }
    // The next good answer is used.
    assert!(get(&mut sim, TRANSFER).unwrap().expires_at() > sim.now);
}

#[test]
fn a_rejected_refresh_token_is_removed_from_storage_so_other_processes_send_no_grant() {
    let config =
        refresh_mode().with_token_validation_error_handler(TokenValidationErrorHandler::Raise);
    let mut sim = logged_in(config.clone());
    sim.advance_time(2 * DAY);
    sim.auth.fail_next(1, 400, br#"{"error": "invalid_grant"}"#);
    assert_eq!(
        get(&mut sim, TRANSFER),
        Err(AppError::Validation(
            TokenValidationError::RefreshTokenRejected {
                resource_server: TRANSFER.into()
            }
        ))
    );
    let stored = sim.stored(TRANSFER).unwrap();
    assert_eq!(
        stored.refresh_token, None,
        "the dead refresh token was removed"
    );
    assert!(sim.locks.is_empty());

    // Another process, sharing the storage but not this one's memory:
    // login required, and no grant is sent.
    let mut other = Sim::new(user_app(config));
    other.storage = sim.storage.clone();
    other.now = sim.now;
    assert!(login_required(&mut other));
    assert_eq!(
        get(&mut other, TRANSFER),
        Err(AppError::Validation(
            TokenValidationError::MissingRefreshToken {
                resource_server: TRANSFER.into()
            }
        ))
    );
    assert!(other.auth.requests.is_empty(), "{:?}", other.auth.requests);
}

// ---------------------------------------------------------------- unreadable storage

#[test]
fn only_a_forced_login_sets_unreadable_storage_aside_and_starts_over() {
    let mut sim = Sim::new(user_app(refresh_mode()));
    sim.unreadable = true;
    let error = sim.drive(sim.app.login()).unwrap_err();
    assert!(
        matches!(&error, AppError::Io(failure) if failure.kind == IoFailureKind::UnreadableStorage),
        "{error:?}"
    );
    let forced = LoginOptions::new().force(true);
    assert!(matches!(
        sim.drive(sim.app.login_with(forced.clone())),
        Ok(LoginOutcome::LoggedIn { .. })
    ));
    assert!(!sim.unreadable);
    let set_aside = sim.actions.iter().position(|a| a == "set aside").unwrap();
    assert_eq!(sim.actions[..set_aside], ["load", "load"]);
    assert_eq!(sim.actions[set_aside + 1], "load", "loaded again");
    assert!(sim.stored(TRANSFER).is_some());

    // Set aside once: storage that stays unreadable is the caller's error.
    let mut sim = Sim::new(user_app(refresh_mode()));
    sim.unreadable = true;
    let mut op = sim.app.login_with(forced);
    let Step::Action(Action::LoadTokens) = op.advance(None, sim.now) else {
        panic!("load first")
    };
    let unreadable = || {
        Input::Failed(IoFailure::new(
            IoFailureKind::UnreadableStorage,
            &"still unreadable",
            false,
        ))
    };
    let Step::Action(Action::SetAsideUnreadableTokens) = op.advance(Some(unreadable()), sim.now)
    else {
        panic!("set aside")
    };
    let Step::Action(Action::LoadTokens) = op.advance(Some(Input::SetAside), sim.now) else {
        panic!("load again")
    };
    assert!(matches!(
        op.advance(Some(unreadable()), sim.now),
        Step::Done(Err(AppError::Io(_)))
    ));
}

// ---------------------------------------------------------------- unsaved renewals

/// A logged-in refresh-mode app against a server that rotates refresh
/// tokens (and revokes the family on reuse), with expired access tokens.
fn rotating_and_expired() -> Sim {
    let mut sim = logged_in(refresh_mode());
    sim.auth.rotate_refresh_tokens = true;
    sim.advance_time(3 * DAY);
    sim
}

fn stored_refresh_token(sim: &Sim) -> String {
    sim.stored(TRANSFER)
        .unwrap()
        .refresh_token
        .as_ref()
        .unwrap()
        .secret()
        .to_owned()
}

#[test]
fn a_rotated_refresh_token_whose_store_failed_is_retried_then_kept_and_reported() {
    // Two failures: the third attempt stores, the caller sees nothing.
    let mut sim = rotating_and_expired();
    sim.failing_stores = 2;
    get(&mut sim, TRANSFER).unwrap();
    assert!(sim.auth.is_live(&stored_refresh_token(&sim), sim.now));

    // Every attempt fails: a typed error naming the resource server and
    // the file; the old (now rotated, spent) refresh token is still stored.
    let mut sim = rotating_and_expired();
    let spent = stored_refresh_token(&sim);
    sim.failing_stores = 3;
    let error = get(&mut sim, TRANSFER).unwrap_err();
    let AppError::RenewalNotSaved {
        resource_server,
        reason,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(resource_server, TRANSFER);
    assert!(reason.contains("/sim/tokens.json"), "{reason}");
    assert!(error.to_string().contains("login may need repeating"));
    assert!(error.is_retryable());
    assert!(sim.locks.is_empty(), "the lock was released");
    assert_eq!(stored_refresh_token(&sim), spent);
    assert!(!sim.auth.is_live(&spent, sim.now), "rotated out");

    // The next call stores the renewal kept in memory first (it never
    // presents the spent refresh token), then hands out its token.
    let refreshes = grants(&sim, "refresh_token");
    let authorization = get(&mut sim, TRANSFER).unwrap();
    assert_eq!(grants(&sim, "refresh_token"), refreshes, "no new refresh");
    assert!(sim.auth.is_live(&stored_refresh_token(&sim), sim.now));
    assert!(
        sim.auth
            .is_live(authorization.access_token().secret(), sim.now)
    );
    assert_eq!(
        sim.auth.live_refresh_tokens(),
        sim.storage
            .iter()
            .filter(|r| r.refresh_token.is_some())
            .count(),
        "the family survived"
    );
}

#[test]
fn a_still_unsaved_renewal_fails_each_call_and_logout_revokes_it() {
    let mut sim = rotating_and_expired();
    sim.failing_stores = 4;
    assert!(matches!(
        get(&mut sim, TRANSFER),
        Err(AppError::RenewalNotSaved { .. })
    ));
    // Still failing: reported again, never handed out silently.
    assert!(matches!(
        get(&mut sim, TRANSFER),
        Err(AppError::RenewalNotSaved { .. })
    ));
    // Logout revokes the renewal that exists only in memory.
    let report = sim.drive(sim.app.logout()).unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(sim.auth.live_refresh_tokens(), 0);
    assert!(sim.storage.is_empty());
}

// ---------------------------------------------------------------- waiting for a renewal

#[test]
fn an_operation_that_finds_a_renewal_in_flight_waits_for_it_instead_of_locking() {
    let mut sim = logged_in(refresh_mode());
    sim.advance_time(3 * DAY);
    let app = sim.app.clone();
    let mut renewer = app.get_authorizer(TRANSFER);
    let mut waiter = app.get_authorizer(TRANSFER);
    // The renewer takes the lock and sends its refresh.
    let mut input = None;
    loop {
        match renewer.advance(input.take(), sim.now) {
            Step::Action(action @ Action::Send(_)) => {
                input = Some(sim.perform(action));
                break;
            }
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(_) => panic!("the renewer finished early"),
        }
    }
    // The waiter finds the expired token and a renewal in flight: it waits
    // rather than asking for the lock.
    let Step::Action(Action::LoadTokens) = waiter.advance(None, sim.now) else {
        panic!("load first")
    };
    let tokens = sim.perform(Action::LoadTokens);
    let Step::Action(Action::WaitForRenewal(rs)) = waiter.advance(Some(tokens), sim.now) else {
        panic!("wait for the renewal")
    };
    assert_eq!(rs, TRANSFER);
    // The renewer finishes; the waiter looks again and takes its token.
    let renewed = loop {
        match renewer.advance(input.take(), sim.now) {
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => break result.unwrap(),
        }
    };
    let Step::Action(Action::LoadTokens) = waiter.advance(Some(Input::Waited), sim.now) else {
        panic!("load again")
    };
    let tokens = sim.perform(Action::LoadTokens);
    let Step::Done(Ok(taken)) = waiter.advance(Some(tokens), sim.now) else {
        panic!("the new token")
    };
    assert_eq!(taken, renewed);
    assert_eq!(grants(&sim, "refresh_token"), 1);
    assert!(app.read().state.renewing.is_empty(), "the mark is gone");
}

// ---------------------------------------------------------------- never waiting on a valid token

#[test]
fn a_due_but_valid_token_is_handed_out_while_someone_else_holds_the_lock() {
    for (name, mut sim) in [
        ("refresh", logged_in(refresh_mode())),
        ("client", client_sim()),
    ] {
        let first = get(&mut sim, TRANSFER).unwrap();
        // Due (renewed a minute ahead), not expired.
        sim.advance_time(2 * DAY - 30);
        sim.held_elsewhere.push(TRANSFER.to_owned());
        sim.actions.clear();
        let before = sim.auth.requests.len();
        let handed = get(&mut sim, TRANSFER).unwrap();
        assert_eq!(handed, first, "{name}: the stored, still valid token");
        assert_eq!(
            sim.actions,
            ["load", &format!("lock-if-free {TRANSFER}")],
            "{name}: asked without waiting, sent nothing"
        );
        assert_eq!(sim.auth.requests.len(), before, "{name}");
        assert!(
            sim.app.read().state.renewing.is_empty(),
            "{name}: no mark left"
        );
        assert!(sim.locks.is_empty(), "{name}");

        // Free again: the caller that finds it free renews, once.
        sim.held_elsewhere.clear();
        let renewed = get(&mut sim, TRANSFER).unwrap();
        assert_ne!(renewed, first, "{name}");
        assert_eq!(sim.auth.requests.len(), before + 1, "{name}");

        // Expired: the caller waits for the lock (`Lock`, not `LockIfFree`).
        sim.advance_time(3 * DAY);
        sim.held_elsewhere.push(TRANSFER.to_owned());
        sim.actions.clear();
        let after_expiry = get(&mut sim, TRANSFER).unwrap();
        assert_ne!(after_expiry, renewed, "{name}");
        assert!(
            sim.actions.contains(&format!("lock {TRANSFER}")),
            "{name}: {:?}",
            sim.actions
        );
    }
}

#[test]
fn a_refused_token_is_never_handed_out_even_if_it_is_still_valid() {
    let mut sim = client_sim();
    let first = get(&mut sim, TRANSFER).unwrap();
    sim.held_elsewhere.push(TRANSFER.to_owned());
    sim.actions.clear();
    let app = sim.app.clone();
    let replaced = sim
        .drive(app.get_authorizer_replacing(TRANSFER, first.access_token()))
        .unwrap();
    assert_ne!(replaced, first);
    assert!(
        sim.actions.contains(&format!("lock {TRANSFER}")),
        "{:?}",
        sim.actions
    );
}

#[test]
fn an_operation_that_finds_a_renewal_in_flight_hands_out_a_still_valid_token() {
    let mut sim = logged_in(refresh_mode());
    let first = get(&mut sim, TRANSFER).unwrap();
    sim.advance_time(2 * DAY - 30);
    let app = sim.app.clone();
    let mut renewer = app.get_authorizer(TRANSFER);
    let mut input = None;
    loop {
        match renewer.advance(input.take(), sim.now) {
            Step::Action(action @ Action::Send(_)) => {
                input = Some(sim.perform(action));
                break;
            }
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(_) => panic!("the renewer finished early"),
        }
    }
    // Another caller of this app: the valid token at once, no wait.
    let mut other = app.get_authorizer(TRANSFER);
    let Step::Action(Action::LoadTokens) = other.advance(None, sim.now) else {
        panic!("load first")
    };
    let tokens = sim.perform(Action::LoadTokens);
    let Step::Done(Ok(handed)) = other.advance(Some(tokens), sim.now) else {
        panic!("the valid token, without waiting")
    };
    assert_eq!(handed, first);
    let renewed = loop {
        match renewer.advance(input.take(), sim.now) {
            Step::Action(action) => input = Some(sim.perform(action)),
            Step::Done(result) => break result.unwrap(),
        }
    };
    assert_ne!(renewed, first);
    assert_eq!(grants(&sim, "refresh_token"), 1);
}

#[test]
fn a_superseded_renewal_hands_out_the_newer_stored_record() {
    for (name, mut sim) in [
        ("client", client_sim()),
        ("refresh", logged_in(refresh_mode())),
    ] {
        let first = get(&mut sim, TRANSFER).unwrap();
        sim.advance_time(3 * DAY);
        // Another machine's renewal lands between this one's read and write.
        let mut newer = sim.stored(TRANSFER).unwrap().clone();
        newer.access_token = AccessToken::new("written-by-another-machine");
        newer.expires_at = sim.now.saturating_add_secs(DAY);
        sim.superseding = Some(newer.clone());
        let handed = get(&mut sim, TRANSFER).unwrap();
        assert_eq!(handed.access_token(), &newer.access_token, "{name}");
        assert_ne!(handed, first, "{name}");
        assert_eq!(sim.stored(TRANSFER).unwrap(), &newer, "{name}: kept");
        let state = &sim.app.read().state;
        assert!(state.unsaved.is_empty(), "{name}: nothing kept in memory");
        assert!(state.renewing.is_empty(), "{name}");
        assert!(sim.locks.is_empty(), "{name}");
    }
}
