//! Globus Groups' requests (the Python SDK's `GroupsClient`).

use super::ServiceRequest;

/// `GET /v2/groups/my_groups`, optionally only groups with memberships in
/// `statuses` (`active`, `invited`, ...; comma-joined).
pub fn get_my_groups(statuses: &[&str]) -> ServiceRequest {
    ServiceRequest::get("/v2/groups/my_groups").query_opt(
        "statuses",
        (!statuses.is_empty()).then(|| statuses.join(",")),
    )
}
