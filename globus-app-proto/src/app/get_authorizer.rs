//! The `get_authorizer` operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::driver::{Action, Authorization, Input, Operation, Step, TokenSet};
use super::errors::{AppError, TokenValidationError};
use super::login::{Login, LoginOptions};
use super::{
    AppKind, Evaluation, GlobusApp, Renewal, RenewingMark, TokenValidationErrorHandler,
    has_dependencies, missing_root_scopes, unexpected,
};
use crate::UnixTime;
use crate::consent::ConsentForest;
use crate::redaction::SentSecrets;
use crate::response::{ResponseError, TokenResponse, parse_json, parse_token_response};
use crate::scope::{Scope, serialize_scopes, well_known};
use crate::secret::AccessToken;
use crate::token::TokenData;

/// The [`GlobusApp::get_authorizer`] operation.
///
/// The warm path is one [`Action::LoadTokens`]. A token that expires within
/// a minute is renewed under [`Action::Lock`] after reloading the tokens,
/// so concurrent callers renew once. While that token is still valid, no
/// caller waits for another's renewal: it asks [`Action::LockIfFree`] and,
/// if someone else holds the lock (or another operation of this app is
/// renewing), hands out the valid token; only a caller whose token has
/// expired waits. If the stored tokens cannot satisfy
/// the app, the configured handler runs once (by default a forced login)
/// and the lookup is retried.
#[derive(Debug)]
// Four independent once-per-operation facts (check dependents; retried,
// waited, superseded once), not a state in disguise.
#[allow(clippy::struct_excessive_bools)]
pub struct GetAuthorizer<'r> {
    app: &'r GlobusApp,
    resource_server: &'r str,
    /// An access token a service refused (401): not to be handed out again.
    rejected: Option<AccessToken>,
    check_dependents: bool,
    handler: TokenValidationErrorHandler,
    retried: bool,
    /// Whether this operation already waited for another's renewal.
    waited: bool,
    /// Whether a renewal of this operation was superseded by a newer
    /// stored record (it then starts over once, and takes that record).
    superseded: bool,
    /// Held from taking the renewal lock until it is released.
    renewing: Option<RenewingMark>,
    /// The stored token, when it is due for renewal but still valid (and
    /// whether its requirements have dependent scopes): handed out if
    /// someone else is renewing it.
    still_valid: Option<(Box<TokenData>, bool)>,
    /// The secrets of the requests sent: struck from the errors returned.
    sent: SentSecrets,
    /// A login budget shared with other operations of one service request
    /// ([`AuthorizationRetries`](crate::service::AuthorizationRetries)):
    /// set once a login ran; with it set, this operation logs in no more.
    login_budget: Option<&'r AtomicBool>,
    state: State<'r>,
}

#[derive(Debug)]
enum State<'r> {
    Start,
    Loading,
    /// Waiting for another operation of this app to finish renewing.
    Waiting,
    Locking,
    Reloading,
    Renewing {
        previous: Option<Box<TokenData>>,
        renewal: Renewal,
        required: Option<Vec<Scope>>,
    },
    /// Storing a renewed record (`attempts` so far), or, with `persisting`,
    /// a renewal an earlier call could not store.
    Storing {
        record: Box<TokenData>,
        replaced: Option<AccessToken>,
        attempts: u8,
        persisting: bool,
    },
    /// Storing the record without the refresh token Globus Auth rejected.
    Forgetting,
    Unlocking {
        then: AfterUnlock,
    },
    AuthToken {
        nested: Box<GetAuthorizer<'r>>,
        pending: Authorization,
        identity: String,
    },
    Consents {
        pending: Authorization,
    },
    LoggingIn(Box<Login>),
    Finished,
}

/// How many times a renewed record is stored before the renewal is kept in
/// memory and reported ([`AppError::RenewalNotSaved`]).
const STORE_ATTEMPTS: u8 = 3;

#[derive(Debug)]
enum AfterUnlock {
    Ready(Box<TokenData>),
    /// Start over from loading (an unsaved renewal was just stored).
    Restart,
    Invalid(TokenValidationError),
    Fail(AppError),
}

type Out = Step<Result<Authorization, AppError>>;

impl<'r> GetAuthorizer<'r> {
    pub(crate) fn new(
        app: &'r GlobusApp,
        resource_server: &'r str,
        check_dependents: bool,
    ) -> Self {
        let handler = app.config().token_validation_error_handler;
        Self {
            app,
            resource_server,
            rejected: None,
            check_dependents,
            handler,
            retried: false,
            waited: false,
            superseded: false,
            renewing: None,
            still_valid: None,
            sent: SentSecrets::default(),
            login_budget: None,
            state: State::Start,
        }
    }

    /// Shares `budget` with other operations of one service request: this
    /// operation logs in only if `budget` is unset, and sets it when it
    /// does.
    #[must_use]
    pub fn with_login_budget(mut self, budget: &'r AtomicBool) -> Self {
        self.login_budget = Some(budget);
        self
    }

    /// [`GlobusApp::get_authorizer_replacing`].
    pub(crate) fn replacing(
        app: &'r GlobusApp,
        resource_server: &'r str,
        rejected: AccessToken,
    ) -> Self {
        let mut op = Self::new(app, resource_server, true);
        op.rejected = Some(rejected);
        op
    }

    /// `evaluate`, with a stored token equal to the rejected one treated as
    /// due for renewal (or, when it cannot be renewed, as invalid).
    #[inline]
    fn evaluate<'t>(
        &self,
        tokens: &'t TokenSet,
        now: UnixTime,
    ) -> Result<(Evaluation<'t>, bool), AppError> {
        let evaluated = self.app.evaluate(self.resource_server, tokens, now);
        let Some(rejected) = &self.rejected else {
            return evaluated;
        };
        let (evaluation, dependents) = evaluated?;
        let evaluation = match evaluation {
            Evaluation::Ready(record) if record.access_token == *rejected => {
                if self.app.kind() == AppKind::Client {
                    Evaluation::Renew(Renewal::ClientCredentials { missing: false })
                } else if self.app.config().request_refresh_tokens && record.refresh_token.is_some()
                {
                    Evaluation::Renew(Renewal::Refresh)
                } else {
                    Evaluation::Invalid(TokenValidationError::AccessTokenRejected {
                        resource_server: self.resource_server.to_owned(),
                    })
                }
            }
            other => other,
        };
        Ok((evaluation, dependents))
    }

    /// The lookup of the `auth.globus.org` token for a consents call: no
    /// dependent check and no handler (the outer operation handles errors).
    pub(crate) fn for_consents(app: &'r GlobusApp) -> Self {
        let mut op = Self::new(app, well_known::auth::RESOURCE_SERVER, false);
        op.handler = TokenValidationErrorHandler::Raise;
        op
    }

    fn load(&mut self) -> Out {
        self.state = State::Loading;
        Step::Action(Action::LoadTokens)
    }

    /// The renewal lock is released: go on as decided under it.
    fn on_unlocked(&mut self, then: AfterUnlock, now: UnixTime) -> Out {
        self.renewing = None;
        match then {
            AfterUnlock::Ready(record) => {
                let dependents = self
                    .app
                    .required_scopes(self.resource_server)
                    .is_some_and(|r| has_dependencies(&r));
                self.ready(&record, dependents, now)
            }
            AfterUnlock::Restart => self.load(),
            AfterUnlock::Invalid(e) => self.invalid(e, now),
            AfterUnlock::Fail(e) => self.done(Err(e)),
        }
    }

    fn done(&mut self, result: Result<Authorization, AppError>) -> Out {
        self.renewing = None;
        self.state = State::Finished;
        Step::Done(result)
    }

    fn on_loaded(&mut self, tokens: &TokenSet, now: UnixTime) -> Out {
        if self
            .app
            .read()
            .state
            .unsaved_for(self.resource_server)
            .is_some()
        {
            // An earlier renewal is only in memory: store it first, under
            // the lock.
            self.renewing = Some(RenewingMark::new(self.app, self.resource_server));
            self.state = State::Locking;
            return Step::Action(Action::Lock(self.resource_server.to_owned()));
        }
        match self.evaluate(tokens, now) {
            Err(e) => self.done(Err(e)),
            Ok((Evaluation::Ready(record), dependents)) => self.ready(record, dependents, now),
            Ok((Evaluation::Renew(renewal), dependents)) => {
                self.still_valid = self
                    .valid_while_due(tokens, renewal, now)
                    .map(|record| (Box::new(record.clone()), dependents));
                self.lock(now)
            }
            Ok((Evaluation::Invalid(e), _)) => self.invalid(e, now),
        }
    }

    /// The stored record, if it is only due for renewal: present, not
    /// expired at `now`, with the app's scopes, and not a token a service
    /// refused.
    fn valid_while_due<'t>(
        &self,
        tokens: &'t TokenSet,
        renewal: Renewal,
        now: UnixTime,
    ) -> Option<&'t TokenData> {
        if matches!(renewal, Renewal::ClientCredentials { missing: true }) {
            return None;
        }
        let record = tokens.get(self.resource_server)?;
        let refused = self.rejected.as_ref() == Some(&record.access_token);
        (!refused && !record.is_expired(now)).then_some(record)
    }

    /// Takes the renewal lock; but first, if another operation of this app
    /// is renewing this token, waits for it (once) and looks again: tasks
    /// of one process that find the same expired token then take the new
    /// one without touching a cross-process lock. With a token that is
    /// still valid, nothing waits: another operation's renewal, or a lock
    /// someone else holds, leaves that token to hand out.
    fn lock(&mut self, now: UnixTime) -> Out {
        let renewing_here = self
            .app
            .read()
            .state
            .renewing
            .iter()
            .any(|rs| rs == self.resource_server);
        if renewing_here && let Some((record, dependents)) = self.still_valid.take() {
            return self.ready(&record, dependents, now);
        }
        if renewing_here && !self.waited {
            self.waited = true;
            self.state = State::Waiting;
            return Step::Action(Action::WaitForRenewal(self.resource_server.to_owned()));
        }
        self.renewing = Some(RenewingMark::new(self.app, self.resource_server));
        self.state = State::Locking;
        let resource_server = self.resource_server.to_owned();
        Step::Action(if self.still_valid.is_some() {
            Action::LockIfFree(resource_server)
        } else {
            Action::Lock(resource_server)
        })
    }

    /// [`Action::LockIfFree`] found the lock held: someone else is renewing
    /// a token that is still valid, which is handed out.
    fn on_lock_held(&mut self, now: UnixTime) -> Out {
        self.renewing = None;
        match self.still_valid.take() {
            Some((record, dependents)) => self.ready(&record, dependents, now),
            None => self.done(Err(unexpected("Locked", Some(&Input::LockHeld)))),
        }
    }

    /// Stores the unsaved renewal of an earlier call, unless the stored
    /// record changed since (someone wrote a newer one: it is dropped).
    fn persist_unsaved(&mut self, tokens: &TokenSet) -> Option<Out> {
        let mut shared = self.app.write();
        let unsaved = shared.state.unsaved_for(self.resource_server)?;
        let stored = tokens.get(self.resource_server).map(|r| &r.access_token);
        if stored != unsaved.replaced.as_ref() {
            shared.state.forget_unsaved(self.resource_server);
            return None;
        }
        let record = Box::new(unsaved.record.clone());
        let replaced = unsaved.replaced.clone();
        drop(shared);
        self.state = State::Storing {
            record: record.clone(),
            replaced,
            attempts: 1,
            persisting: true,
        };
        Some(Step::Action(Action::StoreTokens(vec![*record])))
    }

    fn on_reloaded(&mut self, tokens: &TokenSet, now: UnixTime) -> Out {
        if let Some(out) = self.persist_unsaved(tokens) {
            return out;
        }
        let renewal = match self.evaluate(tokens, now) {
            Err(e) => return self.unlock(AfterUnlock::Fail(e)),
            // Another caller renewed it while we waited for the lock.
            Ok((Evaluation::Ready(record), _)) => {
                return self.unlock(AfterUnlock::Ready(Box::new(record.clone())));
            }
            Ok((Evaluation::Invalid(e), _)) => return self.unlock(AfterUnlock::Invalid(e)),
            Ok((Evaluation::Renew(renewal), _)) => renewal,
        };
        let required = self.app.required_scopes(self.resource_server);
        let previous = tokens.get(self.resource_server).cloned().map(Box::new);
        let client = self.app.login_client();
        let request = match (renewal, previous.as_deref()) {
            (
                Renewal::Refresh,
                Some(TokenData {
                    refresh_token: Some(refresh_token),
                    ..
                }),
            ) => client.refresh(refresh_token),
            (Renewal::ClientCredentials { .. }, _) => {
                client.client_credentials(&serialize_scopes(required.iter().flatten()))
            }
            (Renewal::Refresh, _) => {
                return self.unlock(AfterUnlock::Invalid(
                    TokenValidationError::MissingRefreshToken {
                        resource_server: self.resource_server.to_owned(),
                    },
                ));
            }
        };
        match request {
            Ok(request) => {
                self.state = State::Renewing {
                    previous,
                    renewal,
                    required,
                };
                Step::Action(Action::Send(request))
            }
            Err(e) => self.unlock(AfterUnlock::Fail(e.into())),
        }
    }

    fn on_renewed(
        &mut self,
        response: &http::Response<Vec<u8>>,
        previous: Option<Box<TokenData>>,
        renewal: Renewal,
        required: Option<&[Scope]>,
        now: UnixTime,
    ) -> Out {
        let parsed = parse_token_response(response, now).and_then(TokenResponse::into_single);
        let token = match parsed {
            Ok(token) => token,
            Err(e) if renewal == Renewal::Refresh && e.is_invalid_grant() => {
                return self.forget_rejected_refresh_token(previous);
            }
            Err(e) => return self.unlock(AfterUnlock::Fail(e.into())),
        };
        if token.resource_server != self.resource_server {
            return self.unlock(AfterUnlock::Fail(
                ResponseError::InvalidField {
                    field: "resource_server".into(),
                }
                .into(),
            ));
        }
        let mut record = match (previous.as_deref(), renewal) {
            (Some(previous), Renewal::Refresh) => previous.refreshed_with(token),
            _ => token,
        };
        if record.identity_id.is_none() {
            // Renewals are stored under the known identity, as the Python
            // SDK stores refreshes (a client's renewal id_token, if any,
            // names the same client).
            record.identity_id = self.app.identity();
        }
        let missing = missing_root_scopes(&record, required.unwrap_or_default());
        if !missing.is_empty() {
            return self.unlock(AfterUnlock::Invalid(
                TokenValidationError::UnmetScopeRequirements {
                    resource_server: self.resource_server.to_owned(),
                    missing,
                },
            ));
        }
        self.state = State::Storing {
            record: Box::new(record.clone()),
            replaced: previous.map(|p| p.access_token),
            attempts: 1,
            persisting: false,
        };
        Step::Action(Action::StoreTokens(vec![record]))
    }

    /// A store under the lock failed: try again, then keep the renewal in
    /// memory and report it. Never continue as if it were stored: with
    /// rotation, the stored refresh token is spent.
    fn on_store_failed(
        &mut self,
        record: Box<TokenData>,
        replaced: Option<AccessToken>,
        attempts: u8,
        persisting: bool,
        failure: &super::IoFailure,
    ) -> Out {
        if failure.kind == super::IoFailureKind::Superseded && !self.superseded {
            // A newer record is stored (and was kept): this renewal's is
            // dropped, and the operation starts over to take that one.
            self.superseded = true;
            return self.unlock(AfterUnlock::Restart);
        }
        if !persisting && attempts < STORE_ATTEMPTS {
            self.state = State::Storing {
                record: record.clone(),
                replaced,
                attempts: attempts + 1,
                persisting,
            };
            return Step::Action(Action::StoreTokens(vec![*record]));
        }
        let mut shared = self.app.write();
        shared.state.forget_unsaved(self.resource_server);
        shared.state.unsaved.push(super::UnsavedRenewal {
            record: *record,
            replaced,
        });
        drop(shared);
        self.unlock(AfterUnlock::Fail(AppError::RenewalNotSaved {
            resource_server: self.resource_server.to_owned(),
            reason: failure.message.clone(),
        }))
    }

    /// Globus Auth rejected the stored refresh token: remember it in this
    /// process, and store the record without it (still under the lock), so
    /// that other processes go straight to "login required" instead of
    /// sending the same doomed grant.
    fn forget_rejected_refresh_token(&mut self, previous: Option<Box<TokenData>>) -> Out {
        let Some(mut record) = previous else {
            return self.unlock(AfterUnlock::Invalid(self.refresh_token_rejected()));
        };
        if let Some(refresh_token) = record.refresh_token.take() {
            self.app
                .write()
                .state
                .dead_refresh_tokens
                .push((self.resource_server.to_owned(), refresh_token));
        }
        self.state = State::Forgetting;
        Step::Action(Action::StoreTokens(vec![*record]))
    }

    fn refresh_token_rejected(&self) -> TokenValidationError {
        TokenValidationError::RefreshTokenRejected {
            resource_server: self.resource_server.to_owned(),
        }
    }

    fn unlock(&mut self, then: AfterUnlock) -> Out {
        self.state = State::Unlocking { then };
        Step::Action(Action::Unlock(self.resource_server.to_owned()))
    }

    fn ready(&mut self, record: &TokenData, dependents: bool, now: UnixTime) -> Out {
        let authorization = Authorization::new(record);
        // A `ClientApp`'s dependent scopes are not checked against consents
        // (as in the Python SDK): a client cannot consent interactively, so
        // the service's own answer (a GARE, with what it needs) says no
        // less, and Globus Auth grants a client's dependent scopes by
        // policy, not only by a recorded consent.
        if !self.check_dependents || !dependents || self.app.kind() == AppKind::Client {
            return self.done(Ok(authorization));
        }
        let required = self
            .app
            .required_scopes(self.resource_server)
            .unwrap_or_default();
        let cached = self.app.read().state.consents.clone();
        if cached.is_some_and(|forest| forest.meets_scope_requirements(&required)) {
            return self.done(Ok(authorization));
        }
        let Some(identity) = self.app.identity() else {
            return self.invalid(TokenValidationError::MissingIdentity, now);
        };
        let nested = Box::new(GetAuthorizer::for_consents(self.app));
        self.state = State::AuthToken {
            nested,
            pending: authorization,
            identity,
        };
        self.advance_auth_token(None, now)
    }

    fn advance_auth_token(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        let State::AuthToken { nested, .. } = &mut self.state else {
            return self.done(Err(unexpected("auth token lookup", input.as_ref())));
        };
        match nested.advance(input, now) {
            Step::Action(action) => Step::Action(action),
            Step::Done(Err(AppError::Validation(e))) => self.invalid(e, now),
            Step::Done(Err(e)) => self.done(Err(e)),
            Step::Done(Ok(auth_token)) => {
                let State::AuthToken {
                    pending, identity, ..
                } = std::mem::replace(&mut self.state, State::Finished)
                else {
                    return self.done(Err(unexpected("auth token lookup", None)));
                };
                match self
                    .app
                    .login_client()
                    .consents(&identity, false, auth_token.access_token())
                {
                    Ok(request) => {
                        self.state = State::Consents { pending };
                        Step::Action(Action::Send(request))
                    }
                    Err(e) => self.done(Err(e.into())),
                }
            }
        }
    }

    fn on_consents(
        &mut self,
        response: &http::Response<Vec<u8>>,
        pending: Authorization,
        now: UnixTime,
    ) -> Out {
        let forest = match parse_json(response)
            .map_err(AppError::from)
            .and_then(|body| {
                ConsentForest::from_json(&body).map_err(|_| {
                    AppError::Response(ResponseError::InvalidField {
                        field: "consents".into(),
                    })
                })
            }) {
            Ok(forest) => Arc::new(forest),
            Err(e) => return self.done(Err(e)),
        };
        self.app.write().state.consents = Some(forest.clone());
        let required = self
            .app
            .required_scopes(self.resource_server)
            .unwrap_or_default();
        if forest.meets_scope_requirements(&required) {
            self.done(Ok(pending))
        } else {
            self.invalid(
                TokenValidationError::UnmetDependentScopeRequirements {
                    resource_server: self.resource_server.to_owned(),
                },
                now,
            )
        }
    }

    fn invalid(&mut self, error: TokenValidationError, now: UnixTime) -> Out {
        let resolvable = !matches!(
            error,
            TokenValidationError::IdentityMismatch { .. } | TokenValidationError::MixedIdentities
        );
        let may_log_in =
            self.handler == TokenValidationErrorHandler::LoginAgain && !self.retried && resolvable;
        // The budget is spent only by a login that runs.
        if may_log_in
            && self
                .login_budget
                .is_none_or(|spent| !spent.swap(true, Ordering::AcqRel))
        {
            self.retried = true;
            self.state = State::LoggingIn(Box::new(Login::new(
                self.app.clone(),
                LoginOptions::new().force(true),
            )));
            return self.advance_login(None, now);
        }
        self.done(Err(error.into()))
    }

    fn advance_login(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        let State::LoggingIn(login) = &mut self.state else {
            return self.done(Err(unexpected("login", input.as_ref())));
        };
        match login.advance(input, now) {
            Step::Action(action) => Step::Action(action),
            Step::Done(Ok(_)) => {
                self.state = State::Loading;
                Step::Action(Action::LoadTokens)
            }
            Step::Done(Err(e)) => self.done(Err(e)),
        }
    }
}

impl Operation for GetAuthorizer<'_> {
    fn name(&self) -> &'static str {
        if self.rejected.is_some() {
            "get_authorizer_replacing"
        } else {
            "get_authorizer"
        }
    }

    fn resource_server(&self) -> Option<&str> {
        Some(self.resource_server)
    }

    type Output = Result<Authorization, AppError>;

    fn advance(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        let step = self.step(input, now);
        self.sent.watch(step)
    }
}

impl GetAuthorizer<'_> {
    /// The next step, before [`SentSecrets::watch`] sees it.
    fn step(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        if matches!(self.state, State::AuthToken { .. }) {
            return self.advance_auth_token(input, now);
        }
        if matches!(self.state, State::LoggingIn(_)) {
            return self.advance_login(input, now);
        }
        if let Some(Input::Failed(failure)) = input {
            return match std::mem::replace(&mut self.state, State::Finished) {
                State::Storing {
                    record,
                    replaced,
                    attempts,
                    persisting,
                } => self.on_store_failed(record, replaced, attempts, persisting, &failure),
                // Holding the lock: release it before reporting.
                State::Renewing { .. } | State::Reloading => {
                    self.unlock(AfterUnlock::Fail(failure.into()))
                }
                // The token is dead either way; this process remembers it.
                State::Forgetting => {
                    self.unlock(AfterUnlock::Invalid(self.refresh_token_rejected()))
                }
                _ => self.done(Err(failure.into())),
            };
        }
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, None) | (State::Waiting, Some(Input::Waited)) => self.load(),
            (State::Loading, Some(Input::Tokens(tokens))) => self.on_loaded(&tokens, now),
            (State::Locking, Some(Input::Locked)) => {
                self.still_valid = None;
                self.state = State::Reloading;
                Step::Action(Action::LoadTokens)
            }
            (State::Locking, Some(Input::LockHeld)) => self.on_lock_held(now),
            (State::Reloading, Some(Input::Tokens(tokens))) => self.on_reloaded(&tokens, now),
            (
                State::Renewing {
                    previous,
                    renewal,
                    required,
                },
                Some(Input::Response(response)),
            ) => self.on_renewed(&response, previous, renewal, required.as_deref(), now),
            (
                State::Storing {
                    record, persisting, ..
                },
                Some(Input::Stored),
            ) => {
                let mut shared = self.app.write();
                shared
                    .state
                    .dead_refresh_tokens
                    .retain(|(rs, _)| rs != self.resource_server);
                shared.state.forget_unsaved(self.resource_server);
                drop(shared);
                if persisting {
                    self.unlock(AfterUnlock::Restart)
                } else {
                    self.unlock(AfterUnlock::Ready(record))
                }
            }
            (State::Forgetting, Some(Input::Stored)) => {
                self.unlock(AfterUnlock::Invalid(self.refresh_token_rejected()))
            }
            (State::Unlocking { then }, Some(Input::Unlocked)) => self.on_unlocked(then, now),
            (State::Consents { pending }, Some(Input::Response(response))) => {
                self.on_consents(&response, pending, now)
            }
            (state, input) => {
                let expected = match state {
                    State::Start => "nothing",
                    State::Loading | State::Reloading => "Tokens",
                    State::Locking => "Locked",
                    State::Waiting => "Waited",
                    State::Renewing { .. } | State::Consents { .. } => "Response",
                    State::Storing { .. } | State::Forgetting => "Stored",
                    State::Unlocking { .. } => "Unlocked",
                    State::AuthToken { .. } | State::LoggingIn(_) | State::Finished => {
                        "no further input"
                    }
                };
                self.done(Err(unexpected(expected, input.as_ref())))
            }
        }
    }
}
