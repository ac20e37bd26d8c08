//! Paging, as the Python SDK's paginators do it, without I/O: a [`Pager`]
//! gives the request of the next page ([`Pager::next_request`]), reads
//! each page ([`Pager::page_received`]), and ends when the service says
//! so, at a total the style caps, or at the caller's item limit. A page
//! that would repeat an earlier one (the same marker twice, an offset that
//! does not move) ends paging with a typed error instead of a loop.

use std::collections::HashSet;

use serde_json::Value;

use super::{ServiceError, ServiceRequest};

/// How a paginated route pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PagingStyle {
    /// `limit` and `offset` sent, `has_next_page` answered (Transfer's
    /// endpoint search, Search). The offset moves by the page's size.
    HasNextPage {
        /// The `limit` of each page.
        page_size: u64,
        /// The most results the service serves this way.
        max_total: u64,
    },
    /// `limit` and `offset` sent, `total` answered (Transfer's task list).
    LimitOffsetTotal {
        /// The `limit` of each page.
        page_size: u64,
        /// The most results the service serves this way.
        max_total: u64,
    },
    /// A marker answered in `marker_key`, sent back as `marker`; ends when
    /// `has_next_page` is false, or (`nullable`) when the marker is null.
    Marker {
        /// The field of the page holding the next marker.
        marker_key: &'static str,
        /// The marker's absence ends paging (no `has_next_page`).
        nullable: bool,
    },
    /// `last_key` answered and sent back, with `has_next_page`.
    LastKey,
}

/// Where the paging parameters go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingParameters {
    /// In the query (GET routes).
    Query,
    /// In the JSON body (POST searches).
    Body,
}

/// The paging of one request.
#[derive(Debug, Clone)]
pub struct Pager {
    style: PagingStyle,
    parameters: PagingParameters,
    items_key: &'static str,
    request: ServiceRequest,
    max_items: Option<usize>,
    items_seen: usize,
    offset: u64,
    limit: u64,
    markers_seen: HashSet<String>,
    next: Option<ServiceRequest>,
}

impl Pager {
    /// Pages `request` in `style`; the items of each page are in
    /// `items_key`.
    pub fn new(request: ServiceRequest, style: PagingStyle, items_key: &'static str) -> Self {
        let parameters = if request.body.is_some() {
            PagingParameters::Body
        } else {
            PagingParameters::Query
        };
        let (offset, limit) = match style {
            PagingStyle::HasNextPage { page_size, .. }
            | PagingStyle::LimitOffsetTotal { page_size, .. } => (
                number_in(&request, parameters, "offset").unwrap_or(0),
                number_in(&request, parameters, "limit").unwrap_or(page_size),
            ),
            _ => (0, 0),
        };
        let mut pager = Self {
            style,
            parameters,
            items_key,
            request: request.clone(),
            max_items: None,
            items_seen: 0,
            offset,
            limit,
            markers_seen: HashSet::new(),
            next: Some(request),
        };
        pager.prepare_limit();
        pager
    }

    /// Stop after `max_items` items in all (the last page's are cut).
    #[must_use]
    pub fn with_max_items(mut self, max_items: usize) -> Self {
        self.max_items = Some(max_items);
        self.prepare_limit();
        self
    }

    /// The request of the next page, or `None` when paging is over.
    pub fn next_request(&self) -> Option<&ServiceRequest> {
        self.next.as_ref()
    }

    /// Reads a page: returns its items (fewer if the item limit is
    /// reached) and prepares the next request, if any.
    pub fn page_received(&mut self, page: &Value) -> Result<Vec<Value>, ServiceError> {
        let status = http::StatusCode::OK;
        let items = match page.get(self.items_key) {
            Some(Value::Array(items)) => items.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(ServiceError::missing_field(status, self.items_key)),
        };
        let mut items = items;
        if let Some(max) = self.max_items {
            items.truncate(max.saturating_sub(self.items_seen));
        }
        self.items_seen += items.len();
        let page_len = page
            .get(self.items_key)
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as u64;
        let more = match self.style {
            PagingStyle::HasNextPage { max_total, .. } => {
                let has_next = bool_field(page, "has_next_page")?;
                self.advance_offset(page, page_len, has_next, max_total)?
            }
            PagingStyle::LimitOffsetTotal { max_total, .. } => {
                let total = page
                    .get("total")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| ServiceError::missing_field(status, "total"))?;
                let has_next = self.offset.saturating_add(page_len) < total;
                self.advance_offset(page, page_len, has_next, max_total)?
            }
            PagingStyle::Marker {
                marker_key,
                nullable,
            } => {
                let marker = page.get(marker_key).and_then(Value::as_str);
                let has_next = if nullable {
                    marker.is_some()
                } else {
                    page.get("has_next_page")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                };
                self.follow_marker(has_next, marker, "marker")?
            }
            PagingStyle::LastKey => {
                let has_next = bool_field(page, "has_next_page")?;
                let marker = page.get("last_key").and_then(Value::as_str);
                self.follow_marker(has_next, marker, "last_key")?
            }
        };
        let limit_reached = self.max_items.is_some_and(|max| self.items_seen >= max);
        if !more || limit_reached {
            self.next = None;
        }
        Ok(items)
    }

    fn advance_offset(
        &mut self,
        page: &Value,
        page_len: u64,
        has_next: bool,
        max_total: u64,
    ) -> Result<bool, ServiceError> {
        let _ = page;
        if !has_next {
            return Ok(false);
        }
        if page_len == 0 {
            return Err(paging_loop("a page said more follow but held no items"));
        }
        self.offset = self.offset.saturating_add(page_len);
        if self.offset >= max_total {
            return Ok(false);
        }
        let mut next = self.request.clone();
        set_number(&mut next, self.parameters, "offset", self.offset);
        self.next = Some(next);
        self.prepare_limit();
        Ok(true)
    }

    fn follow_marker(
        &mut self,
        has_next: bool,
        marker: Option<&str>,
        parameter: &str,
    ) -> Result<bool, ServiceError> {
        if !has_next {
            return Ok(false);
        }
        let marker =
            marker.ok_or_else(|| ServiceError::missing_field(http::StatusCode::OK, parameter))?;
        if !self.markers_seen.insert(marker.to_owned()) {
            return Err(paging_loop("the service gave the same marker twice"));
        }
        let mut next = self.request.clone();
        next.set_query(parameter, marker);
        self.next = Some(next);
        Ok(true)
    }

    /// The `limit` of the next page: the page size, cut to the style's
    /// total and the caller's item limit.
    fn prepare_limit(&mut self) {
        let (PagingStyle::HasNextPage {
            page_size,
            max_total,
        }
        | PagingStyle::LimitOffsetTotal {
            page_size,
            max_total,
        }) = self.style
        else {
            return;
        };
        let mut limit = self.limit.min(page_size.max(1));
        if self.offset.saturating_add(limit) > max_total {
            limit = max_total.saturating_sub(self.offset);
        }
        if limit == 0 {
            // The offset is at or past what the service pages to (a
            // caller's huge offset): nothing left to ask for, and a
            // `limit` of 0 is never sent.
            self.next = None;
            return;
        }
        if let Some(max) = self.max_items {
            let left = (max.saturating_sub(self.items_seen)) as u64;
            limit = limit.min(left.max(1));
        }
        self.limit = limit;
        // The offset is sent from the second page on (as the Python SDK
        // does), the limit on every page.
        if let Some(next) = &mut self.next {
            set_number(next, self.parameters, "limit", limit);
        }
    }
}

fn paging_loop(reason: &str) -> ServiceError {
    let mut error = ServiceError::missing_field(http::StatusCode::OK, "next page");
    error.message = format!("paging stopped: {reason}");
    error
}

fn bool_field(page: &Value, key: &str) -> Result<bool, ServiceError> {
    page.get(key)
        .and_then(Value::as_bool)
        .ok_or_else(|| ServiceError::missing_field(http::StatusCode::OK, key))
}

fn number_in(request: &ServiceRequest, parameters: PagingParameters, key: &str) -> Option<u64> {
    match parameters {
        PagingParameters::Query => request.query_value(key)?.parse().ok(),
        PagingParameters::Body => request.body.as_ref()?.get(key)?.as_u64(),
    }
}

fn set_number(request: &mut ServiceRequest, parameters: PagingParameters, key: &str, value: u64) {
    match parameters {
        PagingParameters::Query => request.set_query(key, value),
        PagingParameters::Body => {
            if let Some(Value::Object(body)) = &mut request.body {
                body.insert(key.to_owned(), Value::from(value));
            }
        }
    }
}
