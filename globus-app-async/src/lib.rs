//! The runtime-agnostic async adapter of globus-app: it will drive the state
//! machines of [`globus_app_proto`] with any HTTP client behind an async trait.
//!
//! **Status:** not implemented yet. Today this crate only re-exports the
//! protocol core so that the workspace layout is in place; the async
//! `UserApp` and `ClientApp` arrive with a later milestone (see the
//! repository README).

pub use globus_app_proto as proto;
