//! The authorization-code flow's first half: PKCE, `state`, the authorize
//! URL, and reading the code back (from the loopback redirect or pasted by
//! the user).
//!
//! Randomness is an input: the caller supplies the random bytes for the PKCE
//! verifier and the `state`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use crate::auth_error::OAuthErrorCode;
use crate::auth_params::AuthorizationParameters;
use crate::secret::{AuthorizationCode, PkceVerifier};

/// A PKCE pair (RFC 7636, method `S256`).
///
/// ```
/// use globus_app_proto::authorize::Pkce;
/// // RFC 7636 appendix B.
/// let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")?;
/// assert_eq!(pkce.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// # Ok::<(), globus_app_proto::authorize::PkceError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkce {
    verifier: PkceVerifier,
    challenge: String,
}

/// A caller-supplied PKCE verifier that RFC 7636 does not allow. Messages
/// are the Python SDK's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    /// Not 43 to 128 characters.
    #[error("verifier must be 43-128 characters long: {0}")]
    Length(usize),
    /// A character outside `[A-Za-z0-9~_.-]`.
    #[error("verifier contained invalid characters")]
    InvalidCharacters,
}

impl Pkce {
    /// A new pair from 32 random bytes: the verifier is their unpadded
    /// base64url form (43 characters), as the Python SDK makes it.
    pub fn from_random_bytes(random: &[u8; 32]) -> Self {
        let verifier = URL_SAFE_NO_PAD.encode(random);
        let challenge = challenge_for(&verifier);
        Self {
            verifier: PkceVerifier::new(verifier),
            challenge,
        }
    }

    /// A pair from a given verifier, checked against RFC 7636.
    pub fn from_verifier(verifier: &str) -> Result<Self, PkceError> {
        if !(43..=128).contains(&verifier.len()) {
            return Err(PkceError::Length(verifier.chars().count()));
        }
        if !verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'~' | b'_' | b'.' | b'-'))
        {
            return Err(PkceError::InvalidCharacters);
        }
        Ok(Self {
            verifier: PkceVerifier::new(verifier),
            challenge: challenge_for(verifier),
        })
    }

    /// The verifier, sent with the code exchange.
    pub fn verifier(&self) -> &PkceVerifier {
        &self.verifier
    }

    /// The challenge, `base64url(sha256(verifier))` unpadded, sent in the
    /// authorize URL.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

fn challenge_for(verifier: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The `state` of one authorization request: random, sent in the authorize
/// URL, and required back unchanged with the code (CSRF protection; the
/// Python SDK sends a fixed `_default` and never checks it).
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthState(String);

impl OAuthState {
    /// A state from 32 random bytes (43 base64url characters).
    pub fn from_random_bytes(random: &[u8; 32]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(random))
    }

    /// The value to put in the authorize URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `returned` is this state, compared in constant time.
    pub fn matches(&self, returned: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), returned.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuthState([redacted])")
    }
}

/// Python's `quote_plus` with no extra safe characters: the encoding of
/// `urllib.parse.urlencode`, used for the authorize URL and form bodies.
pub(crate) fn quote_plus(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
}

/// `key=value&...`, encoded as Python's `urlencode` does.
pub(crate) fn urlencode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus(key, &mut out);
        out.push('=');
        quote_plus(value, &mut out);
    }
    out
}

/// Everything that goes into an authorize URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthorizeRequest<'a> {
    /// The client id.
    pub client_id: &'a str,
    /// Where Globus Auth sends the browser back with the code.
    pub redirect_uri: &'a str,
    /// The scope string to request.
    pub scope: &'a str,
    /// The request's `state`.
    pub state: &'a OAuthState,
    /// The PKCE pair (native clients); `None` for confidential clients.
    pub pkce: Option<&'a Pkce>,
    /// Whether to ask for refresh tokens (`access_type=offline`).
    pub refresh_tokens: bool,
    /// The name for the consent grant (native clients), e.g.
    /// `"My App on my-laptop"`.
    pub prefill_named_grant: Option<&'a str>,
    /// Session requirements and prompt.
    pub params: &'a AuthorizationParameters,
    /// Further query parameters; a key that is already present replaces
    /// the earlier value in place, as in the Python SDK.
    pub extra_query: &'a [(String, String)],
}

impl<'a> AuthorizeRequest<'a> {
    /// The request of `client_id` for `scope`, sent back to `redirect_uri`
    /// with `state`, with `params`' session requirements: no PKCE, no
    /// refresh tokens, no grant name, no other parameter; set those on it.
    pub fn new(
        client_id: &'a str,
        redirect_uri: &'a str,
        scope: &'a str,
        state: &'a OAuthState,
        params: &'a AuthorizationParameters,
    ) -> Self {
        Self {
            client_id,
            redirect_uri,
            scope,
            state,
            pkce: None,
            refresh_tokens: false,
            prefill_named_grant: None,
            params,
            extra_query: &[],
        }
    }
}

impl AuthorizeRequest<'_> {
    /// The URL, `{auth_base}v2/oauth2/authorize?...`, with the parameters in
    /// the Python SDK's order and encoding.
    ///
    /// ```
    /// use globus_app_proto::authorize::{AuthorizeRequest, OAuthState, Pkce};
    /// use globus_app_proto::auth_params::AuthorizationParameters;
    /// let base = url::Url::parse("https://auth.globus.org/").unwrap();
    /// let state = OAuthState::from_random_bytes(&[7; 32]);
    /// let pkce = Pkce::from_random_bytes(&[9; 32]);
    /// let params = AuthorizationParameters::default();
    /// let mut request = AuthorizeRequest::new(
    ///     "cid",
    ///     "https://auth.globus.org/v2/web/auth-code",
    ///     "openid",
    ///     &state,
    ///     &params,
    /// );
    /// request.pkce = Some(&pkce);
    /// request.refresh_tokens = true;
    /// let url = request.url(&base);
    /// assert!(url.as_str().starts_with(
    ///     "https://auth.globus.org/v2/oauth2/authorize?client_id=cid&redirect_uri=https%3A%2F%2Fauth.globus.org%2Fv2%2Fweb%2Fauth-code&scope=openid&state="
    /// ));
    /// assert!(url.as_str().contains("&response_type=code&access_type=offline&code_challenge="));
    /// ```
    pub fn url(&self, auth_base: &Url) -> Url {
        let access_type = if self.refresh_tokens {
            "offline"
        } else {
            "online"
        };
        let mut pairs: Vec<(String, String)> = vec![
            ("client_id".into(), self.client_id.into()),
            ("redirect_uri".into(), self.redirect_uri.into()),
            ("scope".into(), self.scope.into()),
            ("state".into(), self.state.as_str().into()),
            ("response_type".into(), "code".into()),
            ("access_type".into(), access_type.into()),
        ];
        if let Some(pkce) = self.pkce {
            pairs.push(("code_challenge".into(), pkce.challenge().into()));
            pairs.push(("code_challenge_method".into(), "S256".into()));
        }
        if let Some(prefill) = self.prefill_named_grant {
            pairs.push(("prefill_named_grant".into(), prefill.into()));
        }
        let extra = self
            .params
            .authorize_query()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(self.extra_query.iter().cloned());
        for (key, value) in extra {
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => pairs.push((key, value)),
            }
        }
        // The comma-joined session requirements go last, and only when
        // not empty, as in the Python SDK (since 4.10). It appends them in
        // its set's iteration order, which varies between processes; this
        // is the order of its keyword arguments.
        for key in COMMA_JOINED_KEYS {
            if let Some(index) = pairs.iter().position(|(k, _)| k == key) {
                let pair = pairs.remove(index);
                if !pair.1.is_empty() {
                    pairs.push(pair);
                }
            }
        }
        let query = urlencode(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut url = auth_endpoint(auth_base, "v2/oauth2/authorize");
        url.set_query(Some(&query));
        url
    }
}

/// The authorize-URL parameters that hold comma-joined lists.
const COMMA_JOINED_KEYS: [&str; 3] = [
    "session_required_identities",
    "session_required_single_domain",
    "session_required_policies",
];

/// `{auth_base}{path}`; `auth_base` ends with a slash (see
/// [`Environment::service_url`](crate::environment::Environment::service_url)).
pub(crate) fn auth_endpoint(auth_base: &Url, path: &str) -> Url {
    let mut url = auth_base.clone();
    let joined = format!("{}{path}", url.path());
    url.set_path(&joined);
    url.set_query(None);
    url
}

/// Why the code could not be taken from a redirect or from pasted input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// The redirect's `state` is not the one sent: not our request (a
    /// loopback listener should answer 400 and keep waiting).
    #[error("the redirect's state does not match this login request")]
    StateMismatch,
    /// A code came without a `state`.
    #[error("the redirect carries a code but no state")]
    MissingState,
    /// Neither a code nor an error came back.
    #[error("the redirect carries neither a code nor an error")]
    MissingCode,
    /// A parameter appears more than once.
    #[error("the redirect repeats the parameter '{0}'")]
    DuplicateParameter(String),
    /// Globus Auth redirected with `error=` (the user declined, say).
    #[error("login failed: {error}{}", .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Denied {
        /// The OAuth error code.
        error: OAuthErrorCode,
        /// The `error_description`, if any.
        description: Option<String>,
    },
    /// The pasted code is empty or has characters a code never has.
    #[error("that does not look like an authorization code")]
    InvalidCode,
}

/// Reads the query of the redirect to the loopback listener
/// (`?code=...&state=...` or `?error=...&error_description=...&state=...`).
///
/// The `state` must match for a code to be accepted. An error redirect with
/// a mismatched `state` is reported as [`RedirectError::StateMismatch`], so
/// a forged request cannot abort a login; one without any `state` is
/// reported as the error it carries.
///
/// ```
/// use globus_app_proto::authorize::{parse_redirect_query, OAuthState, RedirectError};
/// let state = OAuthState::from_random_bytes(&[1; 32]);
/// let query = format!("code=abc123&state={}", state.as_str());
/// assert_eq!(parse_redirect_query(&query, &state)?.secret(), "abc123");
/// assert_eq!(parse_redirect_query("code=abc&state=other", &state), Err(RedirectError::StateMismatch));
/// # Ok::<(), RedirectError>(())
/// ```
pub fn parse_redirect_query(
    query: &str,
    expected_state: &OAuthState,
) -> Result<AuthorizationCode, RedirectError> {
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*key {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(RedirectError::DuplicateParameter(
                crate::redaction::bounded(&key),
            ));
        }
        *slot = Some(value.into_owned());
    }
    // Without our `state`, nothing in the redirect is trusted, an `error`
    // included: a forged error must not end the login.
    match &state {
        Some(state) if !expected_state.matches(state) => return Err(RedirectError::StateMismatch),
        Some(_) => {}
        None => return Err(RedirectError::MissingState),
    }
    if let Some(error) = error {
        return Err(RedirectError::Denied {
            error: OAuthErrorCode::from_code(&crate::redaction::bounded(&error)),
            description: description.as_deref().map(crate::redaction::bounded),
        });
    }
    validate_code(&code.ok_or(RedirectError::MissingCode)?)
}

/// The largest request head (request line and headers) the loopback login
/// listener reads; a longer one is refused.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Where a request head received by the loopback listener ends: the index
/// of its blank line (`\r\n\r\n` or a bare `\n\n`), if it has one yet.
///
/// ```
/// use globus_app_proto::authorize::{request_head_end, request_query};
/// let head = b"GET /?code=abc&state=xyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/// let end = request_head_end(head).unwrap();
/// assert_eq!(request_query(&head[..end]), "code=abc&state=xyz");
/// assert_eq!(request_head_end(b"GET / HTTP/1.1\r\nHost"), None);
/// ```
pub fn request_head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buffer.windows(2).position(|w| w == b"\n\n");
    crlf.into_iter().chain(lf).min()
}

/// The query of the target in a request head's first line
/// (`GET /?code=..&state=.. HTTP/1.1`); empty when there is none or the line
/// is not UTF-8.
pub fn request_query(head: &[u8]) -> &str {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default();
    let target = line.split_whitespace().nth(1).unwrap_or("");
    target.split_once('?').map_or("", |(_, q)| q)
}

/// Reads a code the user pasted (command-line flow): surrounding whitespace
/// is dropped, and a pasted http(s) address yields its `code` parameter; an
/// empty code, or one with whitespace or control characters inside, is
/// rejected before any request is made.
///
/// ```
/// use globus_app_proto::authorize::parse_pasted_code;
/// assert_eq!(parse_pasted_code("  abc-123\n")?.secret(), "abc-123");
/// // The whole address of the page that showed the code works too.
/// let pasted = " https://auth.globus.org/v2/web/auth-code?code=abc-123&state=s \n";
/// assert_eq!(parse_pasted_code(pasted)?.secret(), "abc-123");
/// assert!(parse_pasted_code("\n").is_err());
/// # Ok::<(), globus_app_proto::authorize::RedirectError>(())
/// ```
pub fn parse_pasted_code(input: &str) -> Result<AuthorizationCode, RedirectError> {
    let text = input.trim();
    if let Ok(url) = url::Url::parse(text)
        && matches!(url.scheme(), "http" | "https")
    {
        let mut codes = url.query_pairs().filter(|(name, _)| name == "code");
        let code = codes.next().ok_or(RedirectError::MissingCode)?.1;
        if codes.next().is_some() {
            return Err(RedirectError::DuplicateParameter("code".to_owned()));
        }
        return validate_code(&code);
    }
    validate_code(text)
}

fn validate_code(code: &str) -> Result<AuthorizationCode, RedirectError> {
    if code.is_empty()
        || code.len() > 4096
        || code.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RedirectError::InvalidCode);
    }
    Ok(AuthorizationCode::new(code))
}

#[cfg(test)]
mod tests;
