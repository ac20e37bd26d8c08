//! Secret values that never print themselves.
//!
//! Access, refresh and id tokens, authorization codes, PKCE verifiers and
//! client secrets are wrapped in newtypes whose `Debug` prints `[redacted]`
//! and which have no `Display`: a secret formatted with `{}` does not
//! compile, so it can never end up as `Bearer [redacted]` in a header or in
//! a log line by accident. The value is reachable only through an explicit
//! [`secret()`](AccessToken::secret) call, which makes every place that
//! reveals it easy to find.
//!
//! ```compile_fail,E0277
//! let token = globus_app_proto::secret::AccessToken::new("t");
//! let header = format!("Bearer {}", token); // no `Display`: does not compile
//! ```

/// What every secret type prints instead of its value.
pub const REDACTED: &str = "[redacted]";

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// `Debug` prints `[redacted]` and there is no `Display`; use
        /// [`secret`](Self::secret) to read the value where it must go on
        /// the wire or to storage.
        ///
        /// Cheap to clone (the value is shared).
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(std::sync::Arc::from(value.into()))
            }

            /// The secret value itself. Do not log or display it.
            pub fn secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), REDACTED)
            }
        }
    };
}

secret_type!(
    /// An OAuth2 access token (sent as `Authorization: Bearer ...`).
    AccessToken
);
secret_type!(
    /// An OAuth2 refresh token.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect id_token (a signed JWT).
    IdToken
);
secret_type!(
    /// An OAuth2 authorization code returned by the authorize redirect.
    AuthorizationCode
);
secret_type!(
    /// A confidential client's secret.
    ClientSecret
);
secret_type!(
    /// A PKCE code verifier (RFC 7636).
    PkceVerifier
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_redacted() {
        let token = AccessToken::new("very-secret-token");
        assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
        assert_eq!(token.secret(), "very-secret-token");
    }
}
