//! End-to-end tests of globus-app.
//!
//! **Status:** the Globus-Auth-compatible local server and the end-to-end
//! suites of both adapters arrive with the adapters (see the repository
//! README). Today this package holds cross-crate tests of the protocol core
//! against the shared fixtures (`tests/fixtures.rs`).
