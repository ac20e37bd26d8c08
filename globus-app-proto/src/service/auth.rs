//! Globus Auth's service requests (the Python SDK's `AuthClient`).

use super::ServiceRequest;

/// `GET /v2/oauth2/userinfo`.
pub fn userinfo() -> ServiceRequest {
    ServiceRequest::get("/v2/oauth2/userinfo")
}

/// Whom `get_identities` looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityLookup<'a> {
    /// By identity ids.
    Ids(&'a [&'a str]),
    /// By usernames (`provision`: create identities that do not exist).
    Usernames {
        /// The usernames.
        usernames: &'a [&'a str],
        /// Create identities that do not exist yet.
        provision: bool,
    },
}

/// `GET /v2/api/identities`, by ids or usernames (comma-joined).
pub fn get_identities(lookup: IdentityLookup<'_>) -> ServiceRequest {
    match lookup {
        IdentityLookup::Ids(ids) => {
            ServiceRequest::get("/v2/api/identities").query("ids", ids.join(","))
        }
        IdentityLookup::Usernames {
            usernames,
            provision,
        } => ServiceRequest::get("/v2/api/identities")
            .query("usernames", usernames.join(","))
            .query("provision", provision),
    }
}
