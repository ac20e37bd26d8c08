//! [`AuthClient`], [`GroupsClient`] and [`SearchClient`]: thin typed
//! clients on [`ServiceClient`].

use globus_app_proto::service::{auth, groups, search};
use serde_json::Value;

use super::{Pages, ServiceClient, ServiceResponse};
use crate::{AppCommon, Error};

/// Globus Auth's API for the logged-in identity (the Python SDK's
/// `AuthClient`): requires `openid profile email`.
#[derive(Debug, Clone)]
pub struct AuthClient(ServiceClient);

impl AuthClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, super::AUTH).map(Self)
    }

    /// On a base client built with options
    /// ([`ServiceClient::builder`] with [`AUTH`](super::AUTH)).
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// The base client (other routes, the transport).
    pub fn service(&self) -> &ServiceClient {
        &self.0
    }

    /// `GET /v2/oauth2/userinfo`: `sub`, `preferred_username`, `email`...
    pub fn userinfo(&self) -> Result<ServiceResponse, Error> {
        self.0.request(&auth::userinfo())
    }

    /// `GET /v2/api/identities` by ids or usernames; the identities are in
    /// `identities`.
    pub fn get_identities(
        &self,
        lookup: auth::IdentityLookup<'_>,
    ) -> Result<ServiceResponse, Error> {
        let response = self.0.request(&auth::get_identities(lookup))?;
        response.field("identities")?;
        Ok(response)
    }
}

/// Globus Groups (the Python SDK's `GroupsClient`): requires
/// `view_my_groups_and_memberships`.
#[derive(Debug, Clone)]
pub struct GroupsClient(ServiceClient);

impl GroupsClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, super::GROUPS).map(Self)
    }

    /// On a base client built with options
    /// ([`ServiceClient::builder`] with [`GROUPS`](super::GROUPS)).
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// The base client.
    pub fn service(&self) -> &ServiceClient {
        &self.0
    }

    /// `GET /v2/groups/my_groups`: the groups the identity is in (all, or
    /// only those whose membership has one of `statuses`).
    pub fn get_my_groups(&self, statuses: &[&str]) -> Result<Vec<Value>, Error> {
        let response = self.0.request(&groups::get_my_groups(statuses))?;
        match response.data {
            Value::Array(groups) => Ok(groups),
            _ => Err(super::ServiceError::missing_field(response.status, "groups").into()),
        }
    }
}

/// Globus Search (the Python SDK's `SearchClient`): requires `search`.
#[derive(Debug, Clone)]
pub struct SearchClient(ServiceClient);

impl SearchClient {
    /// Bound to `app`.
    pub fn new(app: &AppCommon) -> Result<Self, Error> {
        ServiceClient::new(app, super::SEARCH).map(Self)
    }

    /// On a base client built with options
    /// ([`ServiceClient::builder`] with [`SEARCH`](super::SEARCH)).
    pub fn from_service(client: ServiceClient) -> Self {
        Self(client)
    }

    /// The base client.
    pub fn service(&self) -> &ServiceClient {
        &self.0
    }

    /// `GET /v1/index/{id}/search?q=...`: one page (`gmeta`, `total`,
    /// `has_next_page`).
    pub fn search(&self, index_id: &str, q: &str) -> Result<ServiceResponse, Error> {
        self.0.request(&search::search(index_id, q, None))
    }

    /// Every page of a simple query.
    pub fn search_pages(&self, index_id: &str, q: &str) -> Pages<'_> {
        self.0.paginate(
            search::search(index_id, q, None),
            search::SEARCH_PAGING,
            search::ITEMS_KEY,
        )
    }

    /// `POST /v1/index/{id}/search` with a query document.
    pub fn post_search(&self, index_id: &str, query: Value) -> Result<ServiceResponse, Error> {
        self.0.request(&search::post_search(index_id, query))
    }

    /// Every page of a query document.
    pub fn post_search_pages(&self, index_id: &str, query: Value) -> Pages<'_> {
        self.0.paginate(
            search::post_search(index_id, query),
            search::SEARCH_PAGING,
            search::ITEMS_KEY,
        )
    }
}
