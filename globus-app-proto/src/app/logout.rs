//! The `logout` operation.

use std::collections::VecDeque;

use super::driver::{Action, Input, Operation, Step, TokenSet};
use super::errors::AppError;
use super::{GlobusApp, unexpected};
use crate::UnixTime;
use crate::redaction::SentSecrets;
use crate::response::parse_json;

/// What a logout did.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct LogoutReport {
    /// Resource servers whose tokens were revoked and removed.
    pub revoked: Vec<String>,
    /// Resource servers whose tokens could not all be revoked; their
    /// records are kept so a later logout can try again.
    pub failed: Vec<(String, AppError)>,
}

impl LogoutReport {
    /// Whether every revocation succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// How a logout should run; see [`GlobusApp::logout_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub struct LogoutOptions {
    all_stored_resource_servers: bool,
}

impl LogoutOptions {
    /// Revoke the tokens of the resource servers the app requires (the
    /// default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Also revoke and remove every other resource server's tokens stored
    /// in the app's namespace, such as those a dropped scope requirement
    /// left behind (the Python SDK's `sweep`).
    pub fn all_stored_resource_servers(mut self, all: bool) -> Self {
        self.all_stored_resource_servers = all;
        self
    }
}

/// The [`GlobusApp::logout`] operation.
///
/// For each resource server in the requirements (and every stored one with
/// [`LogoutOptions::all_stored_resource_servers`]), one at a time, under
/// its renewal lock ([`Action::Lock`]): reload the tokens, revoke the
/// refresh token, then the access token, and remove the record. Under the
/// lock, a refresh in flight (in this process or another) has either
/// stored its tokens, which are then revoked, or not started, and then
/// finds no token to refresh: after a logout, nothing it revoked comes
/// back. A failed revocation is recorded and the logout goes on; the
/// records whose tokens were all revoked are removed, and the app forgets
/// the identity (and its consents) once no stored token names it. With
/// nothing stored, it sends nothing.
#[derive(Debug)]
pub struct Logout {
    app: GlobusApp,
    sweep: bool,
    /// The resource servers still to visit.
    queue: VecDeque<String>,
    /// The revocations left for the current resource server.
    pending: VecDeque<String>,
    report: LogoutReport,
    tokens: TokenSet,
    /// The secrets of the revocations sent: struck from their errors.
    sent: SentSecrets,
    state: State,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Start,
    Loading,
    Locking { resource_server: String },
    Reloading { resource_server: String },
    Revoking { resource_server: String },
    Removing { resource_server: String },
    Unlocking,
    Finished,
}

type Out = Step<Result<LogoutReport, AppError>>;

impl Logout {
    pub(crate) fn new(app: GlobusApp, options: LogoutOptions) -> Self {
        Self {
            app,
            sweep: options.all_stored_resource_servers,
            queue: VecDeque::new(),
            pending: VecDeque::new(),
            report: LogoutReport::default(),
            tokens: TokenSet::default(),
            sent: SentSecrets::default(),
            state: State::Start,
        }
    }

    fn done(&mut self, result: Result<LogoutReport, AppError>) -> Out {
        self.state = State::Finished;
        Step::Done(result)
    }

    /// The resource servers to visit: the required ones (a renewal may be
    /// fetching a token for one that has none stored yet), then, with
    /// `sweep`, the other stored ones.
    fn on_loaded(&mut self, tokens: TokenSet) -> Out {
        let requirements = self.app.scope_requirements();
        self.queue = requirements.iter().map(|(rs, _)| rs.to_owned()).collect();
        if self.sweep {
            for record in tokens.records() {
                if !self.queue.contains(&record.resource_server) {
                    self.queue.push_back(record.resource_server.clone());
                }
            }
        }
        self.tokens = tokens;
        self.next_resource_server()
    }

    fn next_resource_server(&mut self) -> Out {
        match self.queue.pop_front() {
            Some(resource_server) => {
                self.state = State::Locking {
                    resource_server: resource_server.clone(),
                };
                Step::Action(Action::Lock(resource_server))
            }
            None => self.finish(),
        }
    }

    /// Under the lock: the record as it is now, and a renewal this process
    /// could not store (its refresh token is live too).
    fn on_reloaded(&mut self, resource_server: String, tokens: TokenSet) -> Out {
        let unsaved = self
            .app
            .read()
            .state
            .unsaved_for(&resource_server)
            .map(|u| u.record.clone());
        for record in tokens.get(&resource_server).into_iter().chain(&unsaved) {
            if let Some(refresh_token) = &record.refresh_token {
                self.pending.push_back(refresh_token.secret().to_owned());
            }
            self.pending
                .push_back(record.access_token.secret().to_owned());
        }
        if !self.pending.is_empty() {
            self.report.revoked.push(resource_server.clone());
        }
        self.tokens = tokens;
        self.next_revocation(resource_server)
    }

    fn fail(&mut self, resource_server: &str, mut error: AppError) {
        error.redact(&self.sent);
        self.report.revoked.retain(|rs| rs != resource_server);
        if !self
            .report
            .failed
            .iter()
            .any(|(rs, _)| rs == resource_server)
        {
            self.report.failed.push((resource_server.to_owned(), error));
        }
    }

    fn next_revocation(&mut self, resource_server: String) -> Out {
        while let Some(token) = self.pending.pop_front() {
            match self.app.login_client().revoke(&token) {
                Ok(request) => {
                    self.state = State::Revoking { resource_server };
                    return Step::Action(Action::Send(request));
                }
                Err(e) => self.fail(&resource_server, e.into()),
            }
        }
        if !self.report.revoked.contains(&resource_server) {
            return self.unlock(resource_server);
        }
        self.state = State::Removing {
            resource_server: resource_server.clone(),
        };
        Step::Action(Action::RemoveTokens(vec![resource_server]))
    }

    fn unlock(&mut self, resource_server: String) -> Out {
        self.state = State::Unlocking;
        Step::Action(Action::Unlock(resource_server))
    }

    fn finish(&mut self) -> Out {
        let removed = &self.report.revoked;
        let remaining: Vec<_> = self
            .tokens
            .records()
            .iter()
            .filter(|r| !removed.contains(&r.resource_server))
            .cloned()
            .collect();
        let still_identified = TokenSet::new(remaining).identity().ok().flatten().is_some();
        let mut shared = self.app.write();
        let state = &mut shared.state;
        state.forget_tokens_of(removed);
        if !still_identified {
            state.identity = None;
        }
        drop(shared);
        let report = std::mem::take(&mut self.report);
        self.done(Ok(report))
    }
}

impl Operation for Logout {
    fn name(&self) -> &'static str {
        "logout"
    }

    type Output = Result<LogoutReport, AppError>;

    fn advance(&mut self, input: Option<Input>, now: UnixTime) -> Out {
        let step = self.step(input, now);
        self.sent.watch(step)
    }
}

impl Logout {
    /// The next step, before [`SentSecrets::watch`] sees it.
    fn step(&mut self, input: Option<Input>, _now: UnixTime) -> Out {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, None) => {
                self.state = State::Loading;
                Step::Action(Action::LoadTokens)
            }
            (State::Loading, Some(Input::Tokens(tokens))) => self.on_loaded(tokens),
            (State::Loading, Some(Input::Failed(failure))) => self.done(Err(failure.into())),
            (State::Locking { resource_server }, Some(Input::Locked)) => {
                self.state = State::Reloading { resource_server };
                Step::Action(Action::LoadTokens)
            }
            (State::Locking { resource_server }, Some(Input::Failed(failure))) => {
                self.fail(&resource_server, failure.into());
                self.next_resource_server()
            }
            (State::Reloading { resource_server }, Some(Input::Tokens(tokens))) => {
                self.on_reloaded(resource_server, tokens)
            }
            (State::Revoking { resource_server }, Some(Input::Response(response))) => {
                if let Err(e) = parse_json(&response) {
                    self.fail(&resource_server, e.into());
                }
                self.next_revocation(resource_server)
            }
            (State::Revoking { resource_server }, Some(Input::Failed(failure))) => {
                self.fail(&resource_server, failure.into());
                self.next_revocation(resource_server)
            }
            (
                State::Reloading { resource_server } | State::Removing { resource_server },
                Some(Input::Failed(failure)),
            ) => {
                self.fail(&resource_server, failure.into());
                self.unlock(resource_server)
            }
            (State::Removing { resource_server }, Some(Input::Removed)) => {
                self.unlock(resource_server)
            }
            (State::Unlocking, Some(Input::Unlocked)) => self.next_resource_server(),
            (state, input) => {
                let expected = match state {
                    State::Start => "nothing",
                    State::Loading | State::Reloading { .. } => "Tokens",
                    State::Locking { .. } => "Locked",
                    State::Revoking { .. } => "Response",
                    State::Removing { .. } => "Removed",
                    State::Unlocking => "Unlocked",
                    State::Finished => "no further input",
                };
                self.done(Err(unexpected(expected, input.as_ref())))
            }
        }
    }
}
