//! The `login` operation.

use std::sync::Arc;

use super::driver::{
    Action, AuthorizationResponse, AuthorizePlan, Cancellation, Input, Operation, PlanInner, Step,
    TokenSet,
};
use super::errors::{AppError, IoFailureKind, TokenValidationError};
use super::{AppKind, GlobusApp, OidcKeys, missing_root_scopes, unexpected};
use crate::UnixTime;
use crate::auth_params::AuthorizationParameters;
use crate::authorize::{OAuthState, Pkce, parse_pasted_code, parse_redirect_query};
use crate::id_token::{IdTokenExpectations, Jwks, OidcConfiguration, verify_id_token};
use crate::redaction::SentSecrets;
use crate::response::{TokenResponse, parse_json, parse_token_response};
use crate::scope::{merge_scopes, parse_scopes, serialize_scopes};

/// What a login did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// No login was needed (and none was forced).
    NotNeeded,
    /// Tokens were obtained, validated and stored.
    LoggedIn {
        /// The identity that logged in: the user's, or a `ClientApp`'s own
        /// when its response carried an id_token (`openid` granted).
        identity: Option<String>,
    },
}

/// How a login should run; see [`GlobusApp::login_with`].
///
/// ```
/// use globus_app_proto::app::LoginOptions;
/// use globus_app_proto::auth_params::AuthorizationParameters;
///
/// let mut params = AuthorizationParameters::default();
/// params.session_required_mfa = Some(true);
/// let options = LoginOptions::new().force(true).authorization_parameters(params);
/// assert!(options.is_forced());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct LoginOptions {
    authorization_parameters: Option<AuthorizationParameters>,
    force: bool,
    cancellation: Cancellation,
}

impl LoginOptions {
    /// Log in only if a login is required (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Log in even if the stored tokens satisfy the app.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Log in with these requirements (session, MFA, extra scopes: a GARE's
    /// parameters, for example). Given parameters always cause a login.
    pub fn authorization_parameters(mut self, params: AuthorizationParameters) -> Self {
        self.authorization_parameters = Some(params);
        self
    }

    /// Stops the interactive part of the login when `cancellation` is
    /// cancelled (from another thread, say): the flow gives up soon after,
    /// and the login fails.
    pub fn cancellation(mut self, cancellation: Cancellation) -> Self {
        self.cancellation = cancellation;
        self
    }

    /// Whether the login runs even if none is required.
    pub fn is_forced(&self) -> bool {
        self.force || self.authorization_parameters.is_some()
    }
}

/// The [`GlobusApp::login`] operation.
///
/// `UserApp`: the authorization-code flow with PKCE and a random, checked
/// `state` ([`Action::Random`], [`Action::Authorize`]), the code exchange,
/// and id_token verification (OpenID configuration and JWKS fetched once
/// per app, the JWKS again once on an unknown key). `ClientApp`: one
/// client-credentials request for every required scope, then, for each
/// required resource server the response lacks, one request for its scopes
/// alone; its id_token, if any, is verified the same way and names the
/// client's identity. Either way the response is validated whole —
/// every required resource server present with its root scopes, and for a
/// `UserApp` a verified identity equal to the stored one — before
/// [`Action::StoreTokens`]; a rejected response stores nothing.
#[derive(Debug)]
pub struct Login {
    app: GlobusApp,
    params: Option<AuthorizationParameters>,
    force: bool,
    cancellation: Cancellation,
    jwks_refetched: bool,
    /// The resource servers a `ClientApp` asked for on their own.
    requested_alone: Vec<String>,
    /// Whether unreadable storage was already set aside.
    set_aside: bool,
    /// The secrets of the requests sent (code, verifier, client secret):
    /// struck from the errors returned.
    sent: SentSecrets,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    Loading,
    /// A forced login setting unreadable storage aside.
    SettingAside,
    Randomizing {
        scope: String,
    },
    Authorizing {
        state: OAuthState,
        pkce: Pkce,
    },
    Exchanging,
    /// A `ClientApp`'s request for one resource server's scopes alone,
    /// after the combined response lacked its tokens.
    Completing {
        response: TokenResponse,
    },
    FetchingConfiguration {
        response: TokenResponse,
    },
    FetchingJwks {
        response: TokenResponse,
        configuration: OidcConfiguration,
    },
    Storing {
        identity: Option<String>,
        resource_servers: Vec<String>,
    },
    Finished,
}

type Out = Step<Result<LoginOutcome, AppError>>;

impl Login {
    pub(crate) fn new(app: GlobusApp, options: LoginOptions) -> Self {
        Self {
            app,
            params: options.authorization_parameters,
            force: options.force,
            cancellation: options.cancellation,
            jwks_refetched: false,
            requested_alone: Vec::new(),
            set_aside: false,
            sent: SentSecrets::default(),
            state: State::Start,
        }
    }

    fn done(&mut self, result: Result<LoginOutcome, AppError>) -> Out {
        self.state = State::Finished;
        Step::Done(result)
    }

    /// The app's scopes merged with the parameters' `required_scopes`.
    fn scope(&self) -> Result<String, AppError> {
        let mut merged = self.app.read().requirements.all_scopes()?;
        for extra in self
            .params
            .iter()
            .flat_map(|p| p.required_scopes.iter().flatten())
        {
            merged = merge_scopes(&merged, &parse_scopes(extra)?)?;
        }
        Ok(serialize_scopes(&merged))
    }

    fn on_loaded(&mut self, tokens: &TokenSet, now: UnixTime) -> Out {
        if let Err(e) = self.app.observe_identity(tokens) {
            return self.done(Err(e.into()));
        }
        if !self.force && self.params.is_none() && !self.app.login_required_for(tokens, now) {
            return self.done(Ok(LoginOutcome::NotNeeded));
        }
        let scope = match self.scope() {
            Ok(scope) => scope,
            Err(e) => return self.done(Err(e)),
        };
        match self.app.kind() {
            AppKind::User => {
                self.state = State::Randomizing { scope };
                Step::Action(Action::Random)
            }
            AppKind::Client => {
                if scope.trim().is_empty() {
                    return self.done(Err(AppError::NoScopesToRequest));
                }
                match self.app.login_client().client_credentials(&scope) {
                    Ok(request) => {
                        self.state = State::Exchanging;
                        Step::Action(Action::Send(request))
                    }
                    Err(e) => self.done(Err(e.into())),
                }
            }
        }
    }

    fn on_random(&mut self, random: &[u8; 64], scope: String) -> Out {
        let (mut pkce_bytes, mut state_bytes) = ([0u8; 32], [0u8; 32]);
        pkce_bytes.copy_from_slice(&random[..32]);
        state_bytes.copy_from_slice(&random[32..]);
        let pkce = Pkce::from_random_bytes(&pkce_bytes);
        let state = OAuthState::from_random_bytes(&state_bytes);
        let inner = &self.app.inner;
        let plan = AuthorizePlan::new(PlanInner {
            client: inner.client.clone(),
            flow: inner
                .config
                .login_flow
                .unwrap_or(super::LoginFlowKind::CommandLine),
            redirect_uri: inner.redirect_uri.clone(),
            scope,
            state: state.clone(),
            pkce: pkce.clone(),
            refresh_tokens: inner.config.request_refresh_tokens,
            prefill_named_grant: inner.prefill_named_grant.clone(),
            params: self.params.clone().unwrap_or_default(),
            cancellation: self.cancellation.clone(),
        });
        self.state = State::Authorizing { state, pkce };
        Step::Action(Action::Authorize(plan))
    }

    fn on_code(&mut self, input: Input, state: &OAuthState, pkce: &Pkce) -> Out {
        let (code, redirect_uri) = match input {
            Input::Authorization(AuthorizationResponse::Redirect {
                query,
                redirect_uri,
            }) => (parse_redirect_query(&query, state), redirect_uri),
            Input::Authorization(AuthorizationResponse::PastedCode { text, redirect_uri }) => {
                (parse_pasted_code(&text), redirect_uri)
            }
            other => return self.done(Err(unexpected("Authorization", Some(&other)))),
        };
        let code = match code {
            Ok(code) => code,
            Err(e) => return self.done(Err(e.into())),
        };
        match self
            .app
            .login_client()
            .exchange_code(&code, Some(pkce.verifier()), &redirect_uri)
        {
            Ok(request) => {
                self.state = State::Exchanging;
                Step::Action(Action::Send(request))
            }
            Err(e) => self.done(Err(e.into())),
        }
    }

    fn on_tokens(&mut self, response: &http::Response<Vec<u8>>, now: UnixTime) -> Out {
        let response = match parse_token_response(response, now) {
            Ok(response) => response,
            Err(e) => return self.done(Err(e.into())),
        };
        match self.app.kind() {
            AppKind::Client => self.complete_client_response(response, now),
            AppKind::User => self.identify(response, now),
        }
    }

    /// A `ClientApp`'s combined response may lack a required resource
    /// server's tokens: ask for that resource server's scopes on their own
    /// (once each) instead of failing.
    fn complete_client_response(&mut self, response: TokenResponse, now: UnixTime) -> Out {
        let requirements = self.app.scope_requirements();
        let missing = requirements.iter().find(|(resource_server, _)| {
            response.token_for(resource_server).is_none()
                && !self.requested_alone.iter().any(|r| r == resource_server)
        });
        let Some((resource_server, scopes)) = missing else {
            return self.identify(response, now);
        };
        self.requested_alone.push(resource_server.to_owned());
        match self
            .app
            .login_client()
            .client_credentials(&serialize_scopes(scopes))
        {
            Ok(request) => {
                self.state = State::Completing { response };
                Step::Action(Action::Send(request))
            }
            Err(e) => self.done(Err(e.into())),
        }
    }

    /// Verifies the id_token, if any, then validates and stores. A
    /// `UserApp` needs one (its identity); a `ClientApp`'s, present when
    /// `openid` was granted, names the client's own identity.
    fn identify(&mut self, response: TokenResponse, now: UnixTime) -> Out {
        if response.id_token().is_none() {
            return match self.app.kind() {
                AppKind::Client => self.validate_and_store(response, None),
                AppKind::User => self.done(Err(TokenValidationError::MissingIdentity.into())),
            };
        }
        let cached = self.app.read().state.oidc.clone();
        match cached {
            Some(keys) => self.verify(response, &keys, now),
            None => match self.app.login_client().openid_configuration() {
                Ok(request) => {
                    self.state = State::FetchingConfiguration { response };
                    Step::Action(Action::Send(request))
                }
                Err(e) => self.done(Err(e.into())),
            },
        }
    }

    fn fetch_jwks(&mut self, response: TokenResponse, configuration: OidcConfiguration) -> Out {
        match self.app.login_client().jwks(&configuration.jwks_uri) {
            Ok(request) => {
                self.state = State::FetchingJwks {
                    response,
                    configuration,
                };
                Step::Action(Action::Send(request))
            }
            Err(e) => self.done(Err(e.into())),
        }
    }

    fn verify(&mut self, response: TokenResponse, keys: &OidcKeys, now: UnixTime) -> Out {
        let Some(id_token) = response.id_token() else {
            return self.done(Err(TokenValidationError::MissingIdentity.into()));
        };
        let expectations = IdTokenExpectations {
            configuration: &keys.configuration,
            client_id: self.app.client_id(),
            leeway_secs: self.app.config().id_token_leeway_secs,
        };
        match verify_id_token(id_token, &keys.jwks, &expectations, now) {
            Ok(claims) => self.validate_and_store(response, Some(claims.sub)),
            Err(e) if e.may_need_new_keys() && !self.jwks_refetched => {
                // Keys may have rotated: fetch the JWKS again, once.
                self.jwks_refetched = true;
                self.fetch_jwks(response, keys.configuration.clone())
            }
            Err(e) => self.done(Err(e.into())),
        }
    }

    fn validate_and_store(&mut self, response: TokenResponse, identity: Option<String>) -> Out {
        if let Some(new) = &identity {
            let stored = self.app.read().state.identity.clone();
            if let Some(stored) = stored
                && &stored != new
            {
                return self.done(Err(TokenValidationError::IdentityMismatch {
                    stored,
                    new: new.clone(),
                }
                .into()));
            }
        }
        let requirements = self.app.scope_requirements();
        for (resource_server, required) in requirements.iter() {
            let Some(token) = response.token_for(resource_server) else {
                return self.done(Err(TokenValidationError::MissingToken {
                    resource_server: resource_server.to_owned(),
                }
                .into()));
            };
            let missing = missing_root_scopes(token, required);
            if !missing.is_empty() {
                return self.done(Err(TokenValidationError::UnmetScopeRequirements {
                    resource_server: resource_server.to_owned(),
                    missing,
                }
                .into()));
            }
        }
        let response = match &identity {
            Some(identity) => response.with_identity(identity),
            None => response,
        };
        let records = response.into_tokens();
        let resource_servers = records.iter().map(|r| r.resource_server.clone()).collect();
        self.state = State::Storing {
            identity,
            resource_servers,
        };
        Step::Action(Action::StoreTokens(records))
    }

    /// The new tokens are stored: what the app learned, and the outcome.
    fn on_stored(&mut self, identity: Option<String>, resource_servers: &[String]) -> Out {
        let mut shared = self.app.write();
        let state = &mut shared.state;
        if identity.is_some() {
            state.identity.clone_from(&identity);
        }
        state.forget_tokens_of(resource_servers);
        drop(shared);
        self.done(Ok(LoginOutcome::LoggedIn { identity }))
    }
}

impl Operation for Login {
    fn name(&self) -> &'static str {
        "login"
    }

    type Output = Result<LoginOutcome, AppError>;

    fn advance(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        let step = self.step(input, now);
        self.sent.watch(step)
    }
}

impl Login {
    /// The next step, before [`SentSecrets::watch`] sees it.
    fn step(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        if let Some(Input::Failed(failure)) = input {
            if matches!(self.state, State::Loading)
                && failure.kind == IoFailureKind::UnreadableStorage
                && self.force
                && !self.set_aside
            {
                // A forced login starts over: the unreadable content is
                // kept beside the original, and the storage loaded again.
                self.state = State::SettingAside;
                return Step::Action(Action::SetAsideUnreadableTokens);
            }
            return self.done(Err(failure.into()));
        }
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, None) => {
                self.state = State::Loading;
                Step::Action(Action::LoadTokens)
            }
            (State::Loading, Some(Input::Tokens(tokens))) => self.on_loaded(&tokens, now),
            (State::SettingAside, Some(Input::SetAside)) => {
                // Once: a second unreadable load is the caller's error.
                self.set_aside = true;
                self.state = State::Loading;
                Step::Action(Action::LoadTokens)
            }
            (State::Randomizing { scope }, Some(Input::Random(random))) => {
                self.on_random(&random, scope)
            }
            (State::Authorizing { state, pkce }, Some(input)) => self.on_code(input, &state, &pkce),
            (State::Exchanging, Some(Input::Response(response))) => self.on_tokens(&response, now),
            (State::Completing { response }, Some(Input::Response(answer))) => {
                match parse_token_response(&answer, now) {
                    Ok(more) => self.complete_client_response(response.joined_with(more), now),
                    Err(e) => self.done(Err(e.into())),
                }
            }
            (State::FetchingConfiguration { response }, Some(Input::Response(answer))) => {
                match parse_json(&answer)
                    .map_err(AppError::from)
                    .and_then(|body| OidcConfiguration::from_json(&body).map_err(AppError::from))
                {
                    Ok(configuration) => self.fetch_jwks(response, configuration),
                    Err(e) => self.done(Err(e)),
                }
            }
            (
                State::FetchingJwks {
                    response,
                    configuration,
                },
                Some(Input::Response(answer)),
            ) => {
                match parse_json(&answer)
                    .map_err(AppError::from)
                    .and_then(|body| Jwks::from_json(&body).map_err(AppError::from))
                {
                    Ok(jwks) => {
                        let keys = Arc::new(OidcKeys {
                            configuration,
                            jwks,
                        });
                        self.app.write().state.oidc = Some(keys.clone());
                        self.verify(response, &keys, now)
                    }
                    Err(e) => self.done(Err(e)),
                }
            }
            (
                State::Storing {
                    identity,
                    resource_servers,
                },
                Some(Input::Stored),
            ) => self.on_stored(identity, &resource_servers),
            (state, input) => {
                let expected = match state {
                    State::Start => "nothing",
                    State::Loading => "Tokens",
                    State::SettingAside => "SetAside",
                    State::Randomizing { .. } => "Random",
                    State::Authorizing { .. } => "Authorization",
                    State::Exchanging
                    | State::Completing { .. }
                    | State::FetchingConfiguration { .. }
                    | State::FetchingJwks { .. } => "Response",
                    State::Storing { .. } => "Stored",
                    State::Finished => "no further input",
                };
                self.done(Err(unexpected(expected, input.as_ref())))
            }
        }
    }
}
