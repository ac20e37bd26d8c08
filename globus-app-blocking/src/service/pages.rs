//! [`Pages`]: a paginated route as an iterator of pages, or of items.

use globus_app_proto::service::paging::{Pager, PagingStyle};
use globus_app_proto::service::{ServiceRequest, ServiceResponse};
use serde_json::Value;

use super::ServiceClient;
use crate::Error;

/// The pages of a paginated request, fetched as they are iterated (as the
/// Python SDK's paginators). An error ends the iteration after it is
/// returned; a service that pages in a loop (the same marker twice) is a
/// typed error, not an endless iteration.
///
/// ```no_run
/// # fn example(transfer: &globus_app_blocking::service::TransferClient) -> Result<(), globus_app_blocking::Error> {
/// use globus_app_blocking::service::EndpointSearch;
/// for endpoint in transfer.endpoint_search_pages(&EndpointSearch::fulltext("Tutorial")).max_items(250).items() {
///     println!("{}", endpoint?["display_name"]);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "pages are fetched as they are iterated"]
pub struct Pages<'c> {
    client: &'c ServiceClient,
    pager: Pager,
    failed: bool,
}

impl<'c> Pages<'c> {
    pub(super) fn new(
        client: &'c ServiceClient,
        request: ServiceRequest,
        style: PagingStyle,
        items_key: &'static str,
    ) -> Self {
        Self {
            client,
            pager: Pager::new(request, style, items_key),
            failed: false,
        }
    }

    /// Stop after `max_items` items in all.
    pub fn max_items(mut self, max_items: usize) -> Self {
        self.pager = self.pager.with_max_items(max_items);
        self
    }

    /// The items of every page, one by one.
    pub fn items(self) -> impl Iterator<Item = Result<Value, Error>> + 'c {
        self.flat_map(|page| -> Box<dyn Iterator<Item = Result<Value, Error>>> {
            match page {
                Ok(page) => Box::new(page.items.into_iter().map(Ok)),
                Err(error) => Box::new(std::iter::once(Err(error))),
            }
        })
    }

    /// Every item, collected (at most the route's or `max_items`' total).
    pub fn collect_items(self) -> Result<Vec<Value>, Error> {
        self.items().collect()
    }
}

/// One page: the service's answer, and the items it holds (cut to the
/// item limit).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page {
    /// The answer, whole.
    pub response: ServiceResponse,
    /// Its items.
    pub items: Vec<Value>,
}

impl Iterator for Pages<'_> {
    type Item = Result<Page, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let request = self.pager.next_request()?.clone();
        let result = self.client.request(&request).and_then(|response| {
            let items = self.pager.page_received(&response.data)?;
            Ok(Page { response, items })
        });
        self.failed = result.is_err();
        Some(result)
    }
}
