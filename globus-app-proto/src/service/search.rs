//! Globus Search's queries (the Python SDK's `SearchClient`).

use http::Method;
use serde_json::Value;

use super::ServiceRequest;
use super::paging::PagingStyle;

/// The paging of searches: has-next-page and offset, 100 a page, at most
/// 10 000 results.
pub const SEARCH_PAGING: PagingStyle = PagingStyle::HasNextPage {
    page_size: 100,
    max_total: 10_000,
};

/// The field of a search's pages that holds the results.
pub const ITEMS_KEY: &str = "gmeta";

/// `GET /v1/index/{id}/search?q=...` (`advanced`: the advanced query
/// syntax).
pub fn search(index_id: &str, q: &str, advanced: Option<bool>) -> ServiceRequest {
    ServiceRequest::route(Method::GET, "/v1/index/{}/search", &[index_id])
        .query("q", q)
        .query_opt("advanced", advanced)
}

/// `POST /v1/index/{id}/search` with a query document (`q`, `filters`,
/// `facets`, `sort`, ...). Searching has no side effect: it is idempotent.
pub fn post_search(index_id: &str, query: Value) -> ServiceRequest {
    ServiceRequest::route(Method::POST, "/v1/index/{}/search", &[index_id])
        .json(query)
        .with_idempotent(true)
}
