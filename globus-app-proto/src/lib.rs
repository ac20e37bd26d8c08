//! The sans-IO core of globus-app: every Globus Auth rule, with no clock, no
//! randomness and no I/O.
//!
//! This crate decides and formats; the adapters (`globus-app-blocking`,
//! `globus-app-async`) send requests, read and write files, read the clock
//! and draw random bytes, and hand the results back. Because nothing here
//! waits or reads the environment, every rule is deterministic and tested
//! without sockets or sleeps.
//!
//! | concept | module |
//! |---|---|
//! | scopes: grammar, merging, well-known scopes | [`scope`] |
//! | token records and the `expires_in` rule | [`token`] |
//! | token files (JSON v1/v2, SQLite records, default paths) | [`storage`] |
//! | Globus environments and base URLs | [`environment`] |
//! | PKCE, `state`, the authorize URL, the redirect | [`authorize`] |
//! | login requirements (session parameters) | [`auth_params`] |
//! | every Globus Auth request | [`request`] |
//! | parsing responses; Globus Auth errors | [`response`], [`auth_error`] |
//! | consents and dependent-scope checks | [`consent`] |
//! | OpenID configuration, JWKS, id_token verification | [`id_token`] |
//! | GAREs (re-login requirements from services) | [`gare`] |
//! | secrets that never print | [`secret`] |
//!
//! Time is always an argument ([`UnixTime`]); random bytes are always an
//! argument (`[u8; 32]` for PKCE and `state`).
//!
//! # A code exchange, driven by hand
//!
//! ```
//! use globus_app_proto::UnixTime;
//! use globus_app_proto::auth_params::AuthorizationParameters;
//! use globus_app_proto::authorize::{OAuthState, Pkce, parse_redirect_query};
//! use globus_app_proto::environment::Environment;
//! use globus_app_proto::request::LoginClient;
//! use globus_app_proto::response::parse_token_response;
//!
//! let auth = Environment::Production.service_url("auth", None)?;
//! let client = LoginClient::native("my-client-id", auth);
//! // The adapter supplies randomness...
//! let (pkce, state) = (Pkce::from_random_bytes(&[1; 32]), OAuthState::from_random_bytes(&[2; 32]));
//! let redirect_uri = "http://127.0.0.1:50000";
//! let url = client.authorize_url(
//!     redirect_uri, "openid", &state, &pkce, true, None, &AuthorizationParameters::default(),
//! );
//! assert!(url.as_str().starts_with("https://auth.globus.org/v2/oauth2/authorize?"));
//!
//! // ...opens `url` in a browser, and receives the redirect query:
//! let query = format!("code=abc&state={}", state.as_str());
//! let code = parse_redirect_query(&query, &state)?;
//! let request = client.exchange_code(&code, Some(pkce.verifier()), redirect_uri)?;
//! assert_eq!(request.as_http().uri(), "https://auth.globus.org/v2/oauth2/token");
//!
//! // ...sends `request`, and hands back the response with the time it arrived:
//! let response = http::Response::builder().status(200).body(br#"{
//!     "access_token": "A", "scope": "openid", "expires_in": 172800, "token_type": "Bearer",
//!     "resource_server": "auth.globus.org", "refresh_token": "R", "other_tokens": []
//! }"#.to_vec())?;
//! let tokens = parse_token_response(&response, UnixTime::from_secs(1_700_000_000))?;
//! assert_eq!(tokens.tokens()[0].expires_at, UnixTime::from_secs(1_700_172_800));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod app;
pub mod auth_error;
pub mod auth_params;
pub mod authorize;
pub mod consent;
pub mod environment;
pub mod gare;
pub mod id_token;
pub mod request;
pub mod response;
pub mod scope;
pub mod secret;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
pub mod token;

pub use time::UnixTime;

#[cfg(test)]
mod redaction_tests;
