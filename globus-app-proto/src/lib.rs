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
//! | the app: `UserApp`/`ClientApp` behaviour as state machines | [`app`] |
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
//! | a fake Globus Auth and a simulated-time harness (feature `testing`) | `testing` |
//!
//! Time is always an argument ([`UnixTime`]); random bytes are always an
//! argument (`[u8; 32]` for PKCE and `state`).
//!
//! # Who this crate is for
//!
//! Applications use `globus-app-blocking` or `globus-app-async`, which
//! re-export what they need from here (`GlobusAppConfig`, `Authorization`,
//! `LoginOptions`, the scope and secret types). This crate is for:
//!
//! - **adapter authors**, who drive the app with their own I/O: [`app`]
//!   (`GlobusApp` and its operations, and [`app::driver`], the contract
//!   between operations and adapters);
//! - **advanced users** who need one rule on its own: [`scope`],
//!   [`token`], [`storage`] (the token-file codecs), [`request`] and
//!   [`response`] (every Globus Auth request and response), [`authorize`],
//!   [`id_token`], [`consent`], [`gare`], [`environment`].
//!
//! # Driving an app: a complete login and refresh
//!
//! [`app::GlobusApp`] holds the `GlobusApp` behaviour; its operations are
//! state machines that ask for actions. This is a whole adapter: one loop
//! that performs each action and feeds back its result. Here the "network"
//! is the fake Globus Auth of the [`testing`] module (feature `testing`)
//! and the "token file" is a `Vec`; the real adapters send HTTP, use files,
//! open a browser and draw secure random bytes in the same places.
//!
//! ```
//! # #[cfg(feature = "testing")] {
//! use globus_app_proto::UnixTime;
//! use globus_app_proto::app::{Action, AuthorizationResponse, GlobusApp, GlobusAppConfig, Input, Operation, Step, TokenSet};
//! use globus_app_proto::testing::{FakeGlobusAuth, SIM_CLIENT_ID, SIM_START};
//! use globus_app_proto::token::TokenData;
//!
//! fn drive<O: Operation>(mut op: O, auth: &mut FakeGlobusAuth, file: &mut Vec<TokenData>, now: UnixTime) -> O::Output {
//!     let mut input = None;
//!     loop {
//!         let action = match op.advance(input.take(), now) {
//!             Step::Done(output) => return output,
//!             Step::Action(action) => action,
//!         };
//!         input = Some(match action {
//!             Action::LoadTokens => Input::Tokens(TokenSet::new(file.clone())),
//!             Action::StoreTokens(records) => {
//!                 file.retain(|t| !records.iter().any(|r| r.resource_server == t.resource_server));
//!                 file.extend(records);
//!                 Input::Stored
//!             }
//!             Action::RemoveTokens(servers) => {
//!                 file.retain(|t| !servers.contains(&t.resource_server));
//!                 Input::Removed
//!             }
//!             Action::Lock(_) => Input::Locked,
//!             Action::Unlock(_) => Input::Unlocked,
//!             Action::Send(request) => Input::Response(auth.handle(request.as_http(), now)),
//!             Action::Random => Input::Random(Box::new([7; 64])), // use a CSPRNG
//!             Action::Authorize(plan) => {
//!                 // The browser: the user approves and is redirected back.
//!                 let redirect_uri = plan.redirect_uri().unwrap_or("http://127.0.0.1:50000").to_owned();
//!                 let query = auth.authorize(&plan.url(&redirect_uri));
//!                 Input::Authorization(AuthorizationResponse::Redirect { query, redirect_uri })
//!             }
//!             other => unimplemented!("{other:?}"),
//!         });
//!     }
//! }
//!
//! let app = GlobusApp::user("Example")
//!     .client_id(SIM_CLIENT_ID)
//!     .scope_requirements("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all")
//!     .config(GlobusAppConfig::default().with_request_refresh_tokens(true))
//!     .build()?;
//! let (mut auth, mut file, mut now) = (FakeGlobusAuth::new(), Vec::new(), SIM_START);
//!
//! // Log in: authorize, exchange the code, verify the id_token, store.
//! drive(app.login(), &mut auth, &mut file, now)?;
//! let first = drive(app.get_authorizer("transfer.api.globus.org"), &mut auth, &mut file, now)?;
//!
//! // Two days later the access token has expired: it is refreshed.
//! now = now.saturating_add_secs(2 * 24 * 3600);
//! let second = drive(app.get_authorizer("transfer.api.globus.org"), &mut auth, &mut file, now)?;
//! assert_ne!(first.access_token(), second.access_token());
//! assert!(second.expires_at() > now);
//! assert!(file.iter().all(|t| t.refresh_token.is_some()));
//!
//! // Log out: every token is revoked and removed.
//! let report = drive(app.logout(), &mut auth, &mut file, now)?;
//! assert!(report.is_complete() && file.is_empty());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The primitives: a code exchange by hand
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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod app;
pub mod auth_error;
pub mod auth_params;
pub mod authorize;
pub mod consent;
pub mod environment;
#[cfg(feature = "testing")]
pub mod fuzzing;
pub mod gare;
pub mod id_token;
pub mod origin;
pub mod redaction;
pub mod request;
pub mod response;
pub mod route;
pub mod scope;
pub mod secret;
pub mod service;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
pub mod token;

pub use time::UnixTime;

#[cfg(test)]
mod redaction_tests;
