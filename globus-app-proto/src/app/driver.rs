//! The contract between operations and the adapters that drive them.
//!
//! Every operation (`get_authorizer`, `login`, `login_required`, `logout`)
//! is an [`Operation`]: the adapter calls [`Operation::advance`] with the
//! result of the previous action (none the first time) and the current
//! time, performs the [`Action`] it returns, and repeats until
//! [`Step::Done`]. One loop drives every operation (the crate docs show a
//! complete, runnable one):
//!
//! ```text
//! let mut input = None;
//! loop {
//!     match op.advance(input.take(), clock.now()) {
//!         Step::Done(output) => return output,
//!         Step::Action(action) => input = Some(perform(action)),
//!     }
//! }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use url::Url;

use super::config::LoginFlowKind;
use super::errors::{AppError, IoFailure};
use crate::UnixTime;
use crate::auth_params::AuthorizationParameters;
use crate::authorize::{OAuthState, Pkce, RedirectError, parse_pasted_code, parse_redirect_query};
use crate::redaction::SentSecrets;
use crate::request::{AuthRequest, LoginClient};
use crate::secret::{AccessToken, AuthorizationCode};
use crate::token::TokenData;

/// What the operation needs the adapter to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Read the app namespace's token records; answer [`Input::Tokens`].
    LoadTokens,
    /// Store these records, replacing each resource server's record;
    /// answer [`Input::Stored`].
    StoreTokens(Vec<TokenData>),
    /// Remove the records of these resource servers; answer
    /// [`Input::Removed`].
    RemoveTokens(Vec<String>),
    /// Move the storage's unreadable content (a corrupt token file) out of
    /// the way, keeping it beside the original; answer
    /// [`Input::SetAside`]. Only a forced login asks, after a load failed
    /// with [`IoFailureKind::UnreadableStorage`](super::IoFailureKind::UnreadableStorage).
    SetAsideUnreadableTokens,
    /// Take the exclusive renewal lock of this resource server (in-process,
    /// and across processes for shared token files); answer
    /// [`Input::Locked`]. Callers that find an expired token all ask; the
    /// first refreshes, the others then find the fresh token when the
    /// operation reloads under the lock.
    Lock(String),
    /// Take the renewal lock of this resource server only if no one holds
    /// it, without waiting; answer [`Input::Locked`] if taken,
    /// [`Input::LockHeld`] if another thread, process or machine holds it.
    /// Asked instead of [`Action::Lock`] when the stored token is due for
    /// renewal but still valid: if someone else is renewing it, the
    /// operation hands out the valid token rather than wait.
    LockIfFree(String),
    /// Wait until no operation of this process holds this resource
    /// server's renewal lock, without taking it (and without touching any
    /// cross-process lock); answer [`Input::Waited`]. Asked when another
    /// operation of this app is renewing the token: the wait ends when it
    /// is stored, and the reload then finds it.
    WaitForRenewal(String),
    /// Release the lock taken by [`Action::Lock`]; answer [`Input::Unlocked`].
    /// An adapter must also release it if the operation is dropped.
    Unlock(String),
    /// Send the request; answer [`Input::Response`] with any status.
    Send(AuthRequest),
    /// Run the interactive part of a login; answer [`Input::Authorization`]
    /// (or [`Input::Failed`]).
    Authorize(AuthorizePlan),
    /// Draw 64 random bytes from a secure source; answer [`Input::Random`].
    Random,
}

/// The result of the last action.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
pub enum Input {
    /// The token records ([`Action::LoadTokens`]).
    Tokens(TokenSet),
    /// [`Action::StoreTokens`] done.
    Stored,
    /// [`Action::RemoveTokens`] done.
    Removed,
    /// [`Action::SetAsideUnreadableTokens`] done (or there was nothing the
    /// storage could set aside; the next load tells).
    SetAside,
    /// [`Action::Lock`] (or [`Action::LockIfFree`]) taken.
    Locked,
    /// [`Action::LockIfFree`]: someone else holds the lock.
    LockHeld,
    /// [`Action::Unlock`] done.
    Unlocked,
    /// [`Action::WaitForRenewal`] done.
    Waited,
    /// The response to [`Action::Send`].
    Response(http::Response<Vec<u8>>),
    /// What the interactive login brought back ([`Action::Authorize`]).
    Authorization(AuthorizationResponse),
    /// 64 random bytes ([`Action::Random`]).
    Random(Box<[u8; 64]>),
    /// The action could not be performed.
    Failed(IoFailure),
}

impl Input {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Tokens(_) => "Tokens",
            Self::Stored => "Stored",
            Self::Removed => "Removed",
            Self::SetAside => "SetAside",
            Self::Locked => "Locked",
            Self::LockHeld => "LockHeld",
            Self::Unlocked => "Unlocked",
            Self::Waited => "Waited",
            Self::Response(_) => "Response",
            Self::Authorization(_) => "Authorization",
            Self::Random(_) => "Random",
            Self::Failed(_) => "Failed",
        }
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Inputs carry tokens, codes and random bytes: name them only.
        write!(f, "Input::{}", self.name())
    }
}

/// What the interactive part of a login brought back.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthorizationResponse {
    /// The query string of the redirect the loopback listener accepted
    /// (see [`AuthorizePlan::check_redirect`]), without `?`.
    Redirect {
        /// The query string.
        query: String,
        /// The redirect URI the authorize URL named.
        redirect_uri: String,
    },
    /// What the user pasted (command-line flow).
    PastedCode {
        /// The text as typed.
        text: String,
        /// The redirect URI the authorize URL named.
        redirect_uri: String,
    },
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Both carry the authorization code.
        match self {
            Self::Redirect { redirect_uri, .. } => {
                write!(f, "Redirect {{ redirect_uri: {redirect_uri:?}, .. }}")
            }
            Self::PastedCode { redirect_uri, .. } => {
                write!(f, "PastedCode {{ redirect_uri: {redirect_uri:?}, .. }}")
            }
        }
    }
}

/// The next step of an operation.
#[derive(Debug)]
pub enum Step<T> {
    /// Perform this action and feed its result back.
    Action(Action),
    /// The operation finished.
    Done(T),
}

/// A multi-step app operation; see the [module docs](self).
pub trait Operation {
    /// What the operation produces.
    type Output;

    /// Feeds the result of the last action (`None` at the start) and the
    /// current time; returns the next action or the result. After `Done`
    /// the operation must not be advanced again.
    fn advance(&mut self, input: Option<Input>, now: UnixTime) -> Step<Self::Output>;

    /// The operation's name (`get_authorizer`, `login`...), for the
    /// adapters' tracing spans.
    fn name(&self) -> &'static str {
        "operation"
    }

    /// The resource server the operation is about, if one.
    fn resource_server(&self) -> Option<&str> {
        None
    }
}

/// An immutable snapshot of the namespace's token records. Cheap to clone:
/// storages keep one and hand out clones until their data changes.
#[derive(Clone, Debug, Default)]
pub struct TokenSet(Arc<TokenSetInner>);

#[derive(Debug, Default)]
struct TokenSetInner {
    records: Vec<TokenData>,
    /// Resource server to position, for sets too large to scan.
    index: Option<std::collections::HashMap<String, usize>>,
    /// The one identity of the records, computed once.
    identity: IdentityIndex,
    /// Per record: 1 + the requirements generation under which its root
    /// scopes were last found sufficient (0: not yet). The records never
    /// change, so the verdict holds until the requirements do.
    root_scopes_ok: Vec<AtomicU64>,
}

/// Which record names the set's identity.
#[derive(Debug, Default, Clone, Copy)]
enum IdentityIndex {
    #[default]
    None,
    At(usize),
    Mixed,
}

impl PartialEq for TokenSet {
    fn eq(&self, other: &Self) -> bool {
        self.0.records == other.0.records
    }
}

impl TokenSet {
    /// Above this many records lookups use a hash index.
    const SCAN_LIMIT: usize = 8;

    /// A snapshot of these records.
    pub fn new(records: Vec<TokenData>) -> Self {
        let index = (records.len() > Self::SCAN_LIMIT).then(|| {
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (r.resource_server.clone(), i))
                .collect()
        });
        let mut identity = IdentityIndex::None;
        for (i, record) in records.iter().enumerate() {
            let Some(id) = record.identity_id.as_deref() else {
                continue;
            };
            match identity {
                IdentityIndex::At(first) if records[first].identity_id.as_deref() != Some(id) => {
                    identity = IdentityIndex::Mixed;
                    break;
                }
                IdentityIndex::None => identity = IdentityIndex::At(i),
                _ => {}
            }
        }
        let root_scopes_ok = records.iter().map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(TokenSetInner {
            records,
            index,
            identity,
            root_scopes_ok,
        }))
    }

    /// The record for `resource_server`.
    pub fn get(&self, resource_server: &str) -> Option<&TokenData> {
        self.position(resource_server).map(|i| &self.0.records[i])
    }

    pub(crate) fn position(&self, resource_server: &str) -> Option<usize> {
        match &self.0.index {
            Some(index) => index.get(resource_server).copied(),
            None => self
                .0
                .records
                .iter()
                .position(|t| t.resource_server == resource_server),
        }
    }

    /// Whether record `i`'s root scopes were found sufficient under
    /// requirements `generation`.
    pub(crate) fn root_scopes_known_ok(&self, i: usize, generation: u64) -> bool {
        self.0.root_scopes_ok[i].load(Ordering::Relaxed) == generation.wrapping_add(1)
    }

    pub(crate) fn remember_root_scopes_ok(&self, i: usize, generation: u64) {
        self.0.root_scopes_ok[i].store(generation.wrapping_add(1), Ordering::Relaxed);
    }

    /// Every record.
    pub fn records(&self) -> &[TokenData] {
        &self.0.records
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.0.records.is_empty()
    }

    /// The one identity the records belong to, `Ok(None)` if none has one,
    /// or an error if they name several.
    pub fn identity(&self) -> Result<Option<&str>, super::TokenValidationError> {
        match self.0.identity {
            IdentityIndex::At(i) => Ok(self.0.records[i].identity_id.as_deref()),
            IdentityIndex::None => Ok(None),
            IdentityIndex::Mixed => Err(super::TokenValidationError::MixedIdentities),
        }
    }
}

/// A valid access token for one resource server, ready for an
/// `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    access_token: AccessToken,
    expires_at: UnixTime,
    /// `Bearer <token>`, made once (`None`: the token cannot be a header);
    /// behind a pointer, so that an authorization stays four words.
    header: Option<Arc<http::HeaderValue>>,
}

/// `Bearer <token>`, marked sensitive, if the token can be a header value.
fn bearer_header(token: &AccessToken) -> Option<Arc<http::HeaderValue>> {
    let mut value = http::HeaderValue::try_from(format!("Bearer {}", token.secret())).ok()?;
    value.set_sensitive(true);
    Some(Arc::new(value))
}

impl Authorization {
    pub(crate) fn new(record: &TokenData) -> Self {
        Self {
            access_token: record.access_token.clone(),
            expires_at: record.expires_at,
            header: bearer_header(&record.access_token),
        }
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// When the access token expires.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// When the token becomes due for renewal: [`RENEW_AHEAD_SECS`](super::RENEW_AHEAD_SECS)
    /// before it expires. From then on it is never handed out again.
    pub fn due_at(&self) -> UnixTime {
        self.expires_at
            .saturating_add_secs(-super::RENEW_AHEAD_SECS)
    }

    /// Whether the token is due for renewal at `now` (see
    /// [`due_at`](Self::due_at)).
    pub fn is_due(&self, now: UnixTime) -> bool {
        now >= self.due_at()
    }

    /// A copy that shares no memory with this one: clones of it touch no
    /// reference count that other threads touch (a per-thread cache's).
    #[must_use]
    pub fn unshared(&self) -> Self {
        let access_token = AccessToken::new(self.access_token.secret());
        let header = bearer_header(&access_token);
        // A header value's bytes become shared at their first clone (an
        // allocation): make that happen now, not on a warm call.
        drop(header.as_deref().cloned());
        Self {
            access_token,
            expires_at: self.expires_at,
            header,
        }
    }

    /// `Bearer <token>` for the `Authorization` header, marked sensitive
    /// (http's `Debug` hides it), made once with the authorization: this
    /// is a copy, which allocates nothing. Fails only for a token with
    /// characters a header cannot carry (a corrupt token file). The bare
    /// token is `self.access_token().secret()`.
    pub fn header_value(&self) -> Result<http::HeaderValue, InvalidAccessToken> {
        self.header.as_deref().cloned().ok_or(InvalidAccessToken)
    }
}

/// A stored access token has characters an HTTP header cannot carry (the
/// token file was edited or corrupted); log in again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stored access token cannot be sent in an HTTP header; log in again")]
#[non_exhaustive]
pub struct InvalidAccessToken;

/// A request to stop an interactive login, shared between whoever may ask
/// (another thread, a dropped future) and the login flow that waits.
///
/// Once cancelled, it stays cancelled; a [`child`](Self::child) is
/// cancelled with its parent, or on its own. The core only carries it (in
/// [`LoginOptions`](super::LoginOptions) and the [`AuthorizePlan`]); the
/// login flow managers look at it while they wait and give up soon after.
///
/// ```
/// use globus_app_proto::app::Cancellation;
/// let login = Cancellation::new();
/// let attempt = login.child();
/// login.cancel();
/// assert!(attempt.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct Cancellation {
    cancelled: Arc<std::sync::atomic::AtomicBool>,
    parent: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Cancellation {
    /// A request not made yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the request: every clone and child sees it.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether this, or its parent, was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
            || self
                .parent
                .as_ref()
                .is_some_and(|parent| parent.load(Ordering::Acquire))
    }

    /// A cancellation that this one cancels too, and that can be cancelled
    /// alone (an adapter's, for one run of a flow).
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            cancelled: Arc::default(),
            parent: Some(Arc::clone(&self.cancelled)),
        }
    }
}

impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl PartialEq for Cancellation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cancelled, &other.cancelled)
    }
}

/// Everything the interactive part of a login needs: the adapter's login
/// flow manager builds the authorize URL for its redirect URI, shows or
/// opens it, and returns what comes back.
pub struct AuthorizePlan(Box<PlanInner>);

pub(crate) struct PlanInner {
    pub(crate) client: LoginClient,
    pub(crate) flow: LoginFlowKind,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) scope: String,
    pub(crate) state: OAuthState,
    pub(crate) pkce: Pkce,
    pub(crate) refresh_tokens: bool,
    pub(crate) prefill_named_grant: Option<String>,
    pub(crate) params: AuthorizationParameters,
    pub(crate) cancellation: Cancellation,
}

impl AuthorizePlan {
    pub(crate) fn new(inner: PlanInner) -> Self {
        Self(Box::new(inner))
    }

    /// The configured login flow.
    pub fn flow(&self) -> LoginFlowKind {
        self.0.flow
    }

    /// The redirect URI to use, or `None` for the local-server flow, whose
    /// listener picks `http://127.0.0.1:<port>`.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.0.redirect_uri.as_deref()
    }

    /// The scopes the login asks for.
    pub fn scope(&self) -> &str {
        &self.0.scope
    }

    /// The redirect URI for a code the user pastes: the configured one, or
    /// Globus Auth's page that shows the code (what a local-server login
    /// falls back to when no browser can be opened).
    pub fn pasted_code_redirect_uri(&self) -> String {
        self.0
            .redirect_uri
            .clone()
            .unwrap_or_else(|| self.0.client.default_native_redirect_uri())
    }

    /// Whether to stop waiting: the login was cancelled (see
    /// [`LoginOptions::cancellation`](super::LoginOptions::cancellation)).
    pub fn cancellation(&self) -> &Cancellation {
        &self.0.cancellation
    }

    /// Replaces the cancellation the flow looks at (an async adapter puts a
    /// child of it here, cancelled when its future is dropped).
    pub fn set_cancellation(&mut self, cancellation: Cancellation) {
        self.0.cancellation = cancellation;
    }

    /// The authorize URL for `redirect_uri`.
    pub fn url(&self, redirect_uri: &str) -> Url {
        self.0.client.authorize_url(
            redirect_uri,
            &self.0.scope,
            &self.0.state,
            &self.0.pkce,
            self.0.refresh_tokens,
            self.0.prefill_named_grant.as_deref(),
            &self.0.params,
        )
    }

    /// Checks a redirect query as a loopback listener receives it: a
    /// [`RedirectError::StateMismatch`] means "not ours, keep waiting"
    /// (answer 400); anything else ends the wait.
    pub fn check_redirect(&self, query: &str) -> Result<AuthorizationCode, RedirectError> {
        parse_redirect_query(query, &self.0.state)
    }

    /// Checks a pasted code before the exchange.
    pub fn check_pasted_code(&self, text: &str) -> Result<AuthorizationCode, RedirectError> {
        parse_pasted_code(text)
    }
}

impl fmt::Debug for AuthorizePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizePlan")
            .field("flow", &self.0.flow)
            .field("redirect_uri", &self.0.redirect_uri)
            .field("scope", &self.0.scope)
            .finish_non_exhaustive()
    }
}

impl SentSecrets {
    /// What every operation passes its steps through: remembers the
    /// secrets of a request the step sends, and strikes them from the error
    /// the step ends with (a server may echo what it was sent).
    pub(crate) fn watch<T>(
        &mut self,
        mut step: Step<Result<T, AppError>>,
    ) -> Step<Result<T, AppError>> {
        match &mut step {
            Step::Action(Action::Send(request)) => self.record(request.secret_values()),
            Step::Done(Err(error)) => error.redact(self),
            _ => {}
        }
        step
    }
}
