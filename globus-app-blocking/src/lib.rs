//! The blocking adapter of globus-app: it will drive the state machines of
//! [`globus_app_proto`] with ureq and `std` I/O.
//!
//! **Status:** not implemented yet. Today this crate only re-exports the
//! protocol core so that the workspace layout is in place; the `UserApp`,
//! `ClientApp`, token storages and login flow managers arrive with the next
//! milestones (see the repository README).

pub use globus_app_proto as proto;
