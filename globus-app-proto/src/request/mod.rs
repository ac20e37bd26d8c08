//! Building every Globus Auth request as an `http::Request<Vec<u8>>`.
//!
//! [`LoginClient`] knows the client id, whether the client is confidential,
//! and the Auth base URL; each method returns an [`AuthRequest`] for an
//! adapter to send. Form bodies, their field order and their encoding are
//! the Python SDK's.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use url::Url;

use crate::auth_params::AuthorizationParameters;
use crate::authorize::{AuthorizeRequest, OAuthState, Pkce, auth_endpoint, urlencode};
use crate::secret::{AccessToken, AuthorizationCode, ClientSecret, PkceVerifier, RefreshToken};

/// This library's name and version, for the `User-Agent` header.
pub const USER_AGENT_PREFIX: &str = concat!("globus-app-rs-", env!("CARGO_PKG_VERSION"));

/// A request to Globus Auth, ready to send.
///
/// Its `Debug` shows the method and URL but neither the body (which holds
/// codes, verifiers and tokens) nor the `Authorization` header.
pub struct AuthRequest(Box<http::Request<Vec<u8>>>, Retry);

/// Whether an adapter may send a request again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Allowed,
    /// The authorization-code exchange: the code is single-use.
    Never,
}

impl AuthRequest {
    /// Whether the request may be sent again after a 429, a 5xx or a
    /// connection error. False only for the authorization-code exchange,
    /// whose code is single-use (the Python SDK retries it).
    pub fn is_retryable(&self) -> bool {
        self.1 == Retry::Allowed
    }

    /// The request, to send.
    pub fn into_http(self) -> http::Request<Vec<u8>> {
        *self.0
    }

    /// The request, to inspect.
    pub fn as_http(&self) -> &http::Request<Vec<u8>> {
        &self.0
    }

    /// The form fields of the body, decoded, in order (for tests and
    /// diagnostics; they contain secrets).
    pub fn form_fields(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.0.body())
            .into_owned()
            .collect()
    }

    /// The secret values this request carries: tokens, codes, verifiers and
    /// client secrets in its form, and the credentials of its
    /// `Authorization` header (Basic or Bearer).
    pub fn secret_values(&self) -> Vec<String> {
        const SECRET_FIELDS: [&str; 5] = [
            "refresh_token",
            "code",
            "code_verifier",
            "client_secret",
            "token",
        ];
        let mut values: Vec<String> = self
            .form_fields()
            .into_iter()
            .filter(|(name, _)| SECRET_FIELDS.contains(&name.as_str()))
            .map(|(_, value)| value)
            .collect();
        let header = self
            .0
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) {
            values.push(token.to_owned());
        }
        if let Some(decoded) = header
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| STANDARD.decode(b).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            && let Some((_, secret)) = decoded.split_once(':')
        {
            // The client id is not a secret; the client secret is.
            values.push(secret.to_owned());
        }
        values
    }
}

impl fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRequest")
            .field("method", self.0.method())
            .field("uri", self.0.uri())
            .field(
                "body",
                &format_args!("[{} bytes redacted]", self.0.body().len()),
            )
            .finish_non_exhaustive()
    }
}

/// A request that this client cannot make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The grant needs a client secret (client credentials, dependent tokens).
    #[error("this request needs a confidential client (a client secret)")]
    ConfidentialClientRequired,
    /// A native client's code exchange needs the PKCE verifier.
    #[error("a native client's code exchange needs the PKCE verifier")]
    MissingPkceVerifier,
    /// No scopes to request.
    #[error("no scopes to request")]
    EmptyScopes,
    /// A URL (the JWKS URI, say) is not an absolute http(s) URL.
    #[error("not an absolute http or https URL: {0:?}")]
    InvalidUrl(String),
    /// An identity id that cannot be one path segment (empty, `.`, `..`).
    #[error("an identity id must be one path segment")]
    InvalidIdentityId,
    /// A header value has characters HTTP does not allow.
    #[error("the value for header {0} has characters HTTP headers cannot carry")]
    InvalidHeader(&'static str),
}

/// A Globus Auth client: the identity the app presents to Globus Auth.
///
/// Native clients (no secret) use PKCE and send `client_id` in forms;
/// confidential clients authenticate with HTTP Basic.
///
/// ```
/// use globus_app_proto::request::LoginClient;
/// use globus_app_proto::secret::RefreshToken;
///
/// let base = url::Url::parse("https://auth.globus.org/").unwrap();
/// let client = LoginClient::native("my-client-id", base);
/// let request = client.refresh(&RefreshToken::new("RT"))?.into_http();
/// assert_eq!(request.uri(), "https://auth.globus.org/v2/oauth2/token");
/// assert_eq!(request.body(), b"refresh_token=RT&grant_type=refresh_token&client_id=my-client-id");
/// assert!(request.headers().get("authorization").is_none());
/// # Ok::<(), globus_app_proto::request::RequestError>(())
/// ```
#[derive(Clone, Debug)]
pub struct LoginClient {
    client_id: String,
    client_secret: Option<ClientSecret>,
    auth_base: Url,
    user_agent: String,
}

impl LoginClient {
    /// A native (public) client.
    pub fn native(client_id: impl Into<String>, auth_base: Url) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            auth_base,
            user_agent: USER_AGENT_PREFIX.into(),
        }
    }

    /// A confidential client.
    pub fn confidential(
        client_id: impl Into<String>,
        secret: ClientSecret,
        auth_base: Url,
    ) -> Self {
        Self {
            client_secret: Some(secret),
            ..Self::native(client_id, auth_base)
        }
    }

    /// Names the app in the `User-Agent` header
    /// (`globus-app-rs-<version>/<app name>`), as the Python SDK does.
    /// Characters a header cannot carry (controls, non-ASCII) become `?`.
    #[must_use]
    pub fn with_app_name(mut self, app_name: &str) -> Self {
        let printable: String = app_name
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect();
        self.user_agent = format!("{USER_AGENT_PREFIX}/{printable}");
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether the client has a secret.
    pub fn is_confidential(&self) -> bool {
        self.client_secret.is_some()
    }

    /// The Auth base URL (ends with a slash).
    pub fn auth_base(&self) -> &Url {
        &self.auth_base
    }

    /// The page that shows the code for the user to copy:
    /// `{auth_base}v2/web/auth-code`, the native clients' default redirect.
    pub fn default_native_redirect_uri(&self) -> String {
        auth_endpoint(&self.auth_base, "v2/web/auth-code").into()
    }

    /// The authorize URL for this client: native clients send the PKCE
    /// challenge and the prefill name, confidential clients send neither.
    #[allow(clippy::too_many_arguments)]
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        scope: &str,
        state: &OAuthState,
        pkce: &Pkce,
        refresh_tokens: bool,
        prefill_named_grant: Option<&str>,
        params: &AuthorizationParameters,
    ) -> Url {
        let native = !self.is_confidential();
        AuthorizeRequest {
            client_id: &self.client_id,
            redirect_uri,
            scope,
            state,
            pkce: native.then_some(pkce),
            refresh_tokens,
            prefill_named_grant: prefill_named_grant.filter(|_| native),
            params,
            extra_query: &[],
        }
        .url(&self.auth_base)
    }

    /// Exchanges an authorization code for tokens. Native: `client_id,
    /// grant_type, code, code_verifier, redirect_uri`; confidential:
    /// `grant_type, code, redirect_uri` with Basic authentication.
    pub fn exchange_code(
        &self,
        code: &AuthorizationCode,
        verifier: Option<&PkceVerifier>,
        redirect_uri: &str,
    ) -> Result<AuthRequest, RequestError> {
        let form = if self.is_confidential() {
            urlencode([
                ("grant_type", "authorization_code"),
                ("code", code.secret()),
                ("redirect_uri", redirect_uri),
            ])
        } else {
            let verifier = verifier.ok_or(RequestError::MissingPkceVerifier)?;
            urlencode([
                ("client_id", self.client_id.as_str()),
                ("grant_type", "authorization_code"),
                ("code", code.secret()),
                ("code_verifier", verifier.secret()),
                ("redirect_uri", redirect_uri),
            ])
        };
        let mut request = self.token_post("v2/oauth2/token", form)?;
        request.1 = Retry::Never;
        Ok(request)
    }

    /// Refreshes an access token. No `scope` is sent.
    pub fn refresh(&self, refresh_token: &RefreshToken) -> Result<AuthRequest, RequestError> {
        let mut fields = vec![
            ("refresh_token", refresh_token.secret()),
            ("grant_type", "refresh_token"),
        ];
        if !self.is_confidential() {
            fields.push(("client_id", &self.client_id));
        }
        self.token_post("v2/oauth2/token", urlencode(fields))
    }

    /// Client-credentials tokens for `scope` (space-separated scopes).
    pub fn client_credentials(&self, scope: &str) -> Result<AuthRequest, RequestError> {
        if !self.is_confidential() {
            return Err(RequestError::ConfidentialClientRequired);
        }
        if scope.trim().is_empty() {
            return Err(RequestError::EmptyScopes);
        }
        self.token_post(
            "v2/oauth2/token",
            urlencode([("grant_type", "client_credentials"), ("scope", scope)]),
        )
    }

    /// Dependent tokens for `token` (a service acting for its caller); the
    /// response is an array (see
    /// [`parse_dependent_token_response`](crate::response::parse_dependent_token_response)).
    pub fn dependent_tokens(
        &self,
        token: &AccessToken,
        refresh_tokens: bool,
        scope: Option<&str>,
    ) -> Result<AuthRequest, RequestError> {
        if !self.is_confidential() {
            return Err(RequestError::ConfidentialClientRequired);
        }
        let mut fields = vec![
            ("grant_type", "urn:globus:auth:grant_type:dependent_token"),
            ("token", token.secret()),
        ];
        if refresh_tokens {
            fields.push(("access_type", "offline"));
        }
        if let Some(scope) = scope {
            fields.push(("scope", scope));
        }
        self.token_post("v2/oauth2/token", urlencode(fields))
    }

    /// Revokes an access or refresh token (RFC 7009). Native clients send
    /// `client_id`; confidential ones authenticate with Basic.
    pub fn revoke(&self, token: &str) -> Result<AuthRequest, RequestError> {
        let mut fields = vec![("token", token)];
        if !self.is_confidential() {
            fields.push(("client_id", &self.client_id));
        }
        self.token_post("v2/oauth2/token/revoke", urlencode(fields))
    }

    /// The consents of `identity_id`
    /// (`GET v2/api/identities/{id}/consents?all=False`), authorized with the
    /// app's `auth.globus.org` token.
    pub fn consents(
        &self,
        identity_id: &str,
        all: bool,
        auth_token: &AccessToken,
    ) -> Result<AuthRequest, RequestError> {
        // The id is one path segment, whatever it holds (it comes from an
        // id_token, i.e. from outside).
        if matches!(identity_id, "" | "." | "..") {
            return Err(RequestError::InvalidIdentityId);
        }
        let segment = crate::route::path_segment(identity_id);
        let mut url = auth_endpoint(
            &self.auth_base,
            &format!("v2/api/identities/{segment}/consents"),
        );
        url.set_query(Some(if all { "all=True" } else { "all=False" }));
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", auth_token.secret()))
            .map_err(|_| RequestError::InvalidHeader("Authorization"))?;
        bearer.set_sensitive(true);
        let mut request = self.get(&url)?;
        request.0.headers_mut().insert(AUTHORIZATION, bearer);
        Ok(request)
    }

    /// `GET .well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Result<AuthRequest, RequestError> {
        self.get(&auth_endpoint(
            &self.auth_base,
            ".well-known/openid-configuration",
        ))
    }

    /// `GET` the JWKS at `jwks_uri` (from the OpenID configuration). Unlike
    /// the Python SDK, no client credentials are sent to it.
    pub fn jwks(&self, jwks_uri: &str) -> Result<AuthRequest, RequestError> {
        let url = Url::parse(jwks_uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| RequestError::InvalidUrl(jwks_uri.to_owned()))?;
        self.get(&url)
    }

    fn builder(&self, method: http::Method, url: &Url) -> http::request::Builder {
        http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, &self.user_agent)
            .header(
                "X-Globus-Client-Info",
                concat!("product=globus-app-rs,version=", env!("CARGO_PKG_VERSION")),
            )
    }

    fn get(&self, url: &Url) -> Result<AuthRequest, RequestError> {
        self.builder(http::Method::GET, url)
            .body(Vec::new())
            .map(|request| AuthRequest(Box::new(request), Retry::Allowed))
            .map_err(|_| RequestError::InvalidHeader("User-Agent"))
    }

    fn token_post(&self, path: &str, form: String) -> Result<AuthRequest, RequestError> {
        let url = auth_endpoint(&self.auth_base, path);
        let mut builder = self
            .builder(http::Method::POST, &url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(secret) = &self.client_secret {
            // Not form-encoded first (RFC 6749 §2.3.1 says it should be):
            // Globus Auth expects the raw id and secret, as the Python SDK sends.
            let credentials = STANDARD.encode(format!("{}:{}", self.client_id, secret.secret()));
            let mut value = HeaderValue::try_from(format!("Basic {credentials}"))
                .map_err(|_| RequestError::InvalidHeader("Authorization"))?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        builder
            .body(form.into_bytes())
            .map(|request| AuthRequest(Box::new(request), Retry::Allowed))
            .map_err(|_| RequestError::InvalidHeader("User-Agent"))
    }
}

#[cfg(test)]
mod tests;
