//! Resource servers and scope strings of the Globus services, as the Python
//! SDK's scope collections define them.
//!
//! ```
//! use globus_app_proto::scope::well_known::{transfer, gcs_collection, urn_scope};
//!
//! assert_eq!(transfer::ALL, "urn:globus:auth:scope:transfer.api.globus.org:all");
//! assert_eq!(urn_scope(transfer::RESOURCE_SERVER, "all"), transfer::ALL);
//! assert_eq!(
//!     gcs_collection::data_access("c1"),
//!     "https://auth.globus.org/scopes/c1/data_access"
//! );
//! ```

/// `urn:globus:auth:scope:{resource_server}:{name}`.
pub fn urn_scope(resource_server: &str, name: &str) -> String {
    format!("urn:globus:auth:scope:{resource_server}:{name}")
}

/// `https://auth.globus.org/scopes/{resource_server}/{name}`.
pub fn url_scope(resource_server: &str, name: &str) -> String {
    format!("https://auth.globus.org/scopes/{resource_server}/{name}")
}

/// Globus Auth (`auth.globus.org`).
pub mod auth {
    /// The resource server.
    pub const RESOURCE_SERVER: &str = "auth.globus.org";
    /// `openid`: always required by a `GlobusApp`; gives the id_token.
    pub const OPENID: &str = "openid";
    /// `email`.
    pub const EMAIL: &str = "email";
    /// `profile`.
    pub const PROFILE: &str = "profile";
    /// Manage Globus Auth projects.
    pub const MANAGE_PROJECTS: &str = "urn:globus:auth:scope:auth.globus.org:manage_projects";
    /// View authentications.
    pub const VIEW_AUTHENTICATIONS: &str =
        "urn:globus:auth:scope:auth.globus.org:view_authentications";
    /// View clients.
    pub const VIEW_CLIENTS: &str = "urn:globus:auth:scope:auth.globus.org:view_clients";
    /// View clients and scopes.
    pub const VIEW_CLIENTS_AND_SCOPES: &str =
        "urn:globus:auth:scope:auth.globus.org:view_clients_and_scopes";
    /// View consents.
    pub const VIEW_CONSENTS: &str = "urn:globus:auth:scope:auth.globus.org:view_consents";
    /// View identities.
    pub const VIEW_IDENTITIES: &str = "urn:globus:auth:scope:auth.globus.org:view_identities";
    /// View the identity set.
    pub const VIEW_IDENTITY_SET: &str = "urn:globus:auth:scope:auth.globus.org:view_identity_set";
}

/// Globus Transfer.
pub mod transfer {
    /// The resource server.
    pub const RESOURCE_SERVER: &str = "transfer.api.globus.org";
    /// Full access to Transfer.
    pub const ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
    /// Globus Connect Personal installation.
    pub const GCP_INSTALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:gcp_install";
}

/// Globus Groups.
pub mod groups {
    /// The resource server.
    pub const RESOURCE_SERVER: &str = "groups.api.globus.org";
    /// Full access to Groups.
    pub const ALL: &str = "urn:globus:auth:scope:groups.api.globus.org:all";
    /// Read the caller's groups and memberships.
    pub const VIEW_MY_GROUPS_AND_MEMBERSHIPS: &str =
        "urn:globus:auth:scope:groups.api.globus.org:view_my_groups_and_memberships";
}

/// The legacy Nexus API.
pub mod nexus {
    /// The resource server.
    pub const RESOURCE_SERVER: &str = "nexus.api.globus.org";
    /// Groups through Nexus.
    pub const GROUPS: &str = "urn:globus:auth:scope:nexus.api.globus.org:groups";
}

/// Globus Search.
pub mod search {
    /// The resource server.
    pub const RESOURCE_SERVER: &str = "search.api.globus.org";
    /// Full access to Search.
    pub const ALL: &str = "urn:globus:auth:scope:search.api.globus.org:all";
    /// Used by Globus Connect Server.
    pub const GLOBUS_CONNECT_SERVER: &str =
        "urn:globus:auth:scope:search.api.globus.org:globus_connect_server";
    /// Ingest documents.
    pub const INGEST: &str = "urn:globus:auth:scope:search.api.globus.org:ingest";
    /// Query indices.
    pub const SEARCH: &str = "urn:globus:auth:scope:search.api.globus.org:search";
}

/// Globus Flows (the service; see [`specific_flow`] for one flow).
pub mod flows {
    /// The resource server (a domain name, unlike the scopes' client id).
    pub const RESOURCE_SERVER: &str = "flows.globus.org";
    /// The client id that the Flows scopes are built on.
    pub const CLIENT_ID: &str = "eec9b274-0c81-4334-bdc2-54e90e689b9a";
    /// Full access to Flows.
    pub const ALL: &str = "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/all";
    /// Manage flows.
    pub const MANAGE_FLOWS: &str =
        "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/manage_flows";
    /// View flows.
    pub const VIEW_FLOWS: &str =
        "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/view_flows";
    /// Run flows.
    pub const RUN: &str = "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/run";
    /// Read run status.
    pub const RUN_STATUS: &str =
        "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/run_status";
    /// Manage runs.
    pub const RUN_MANAGE: &str =
        "https://auth.globus.org/scopes/eec9b274-0c81-4334-bdc2-54e90e689b9a/run_manage";
}

/// One flow: its resource server is the flow id.
pub mod specific_flow {
    /// The user scope needed to start a run of flow `flow_id`:
    /// `https://auth.globus.org/scopes/{id}/flow_{id with '_' for '-'}_user`.
    ///
    /// ```
    /// use globus_app_proto::scope::well_known::specific_flow;
    /// assert_eq!(
    ///     specific_flow::user("ab-cd"),
    ///     "https://auth.globus.org/scopes/ab-cd/flow_ab_cd_user"
    /// );
    /// ```
    pub fn user(flow_id: &str) -> String {
        super::url_scope(flow_id, &format!("flow_{}_user", flow_id.replace('-', "_")))
    }
}

/// Globus Timers.
pub mod timers {
    /// The resource server (the Timers client id).
    pub const RESOURCE_SERVER: &str = "524230d7-ea86-4a52-8312-86065a9e0417";
    /// Create and manage timers.
    pub const TIMER: &str =
        "https://auth.globus.org/scopes/524230d7-ea86-4a52-8312-86065a9e0417/timer";
}

/// Globus Compute.
pub mod compute {
    /// The resource server (a service name, unlike the scopes' client id).
    pub const RESOURCE_SERVER: &str = "funcx_service";
    /// The client id that the Compute scopes are built on.
    pub const CLIENT_ID: &str = "facd7ccc-c5f4-42aa-916b-a0e270e2c2a9";
    /// Full access to Compute.
    pub const ALL: &str = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all";
}

/// A Globus Connect Server endpoint; its resource server is the endpoint id.
pub mod gcs_endpoint {
    /// `urn:globus:auth:scope:{endpoint_id}:manage_collections`.
    pub fn manage_collections(endpoint_id: &str) -> String {
        super::urn_scope(endpoint_id, "manage_collections")
    }
}

/// A Globus Connect Server collection; its resource server is the collection id.
pub mod gcs_collection {
    /// `https://auth.globus.org/scopes/{collection_id}/data_access`.
    pub fn data_access(collection_id: &str) -> String {
        super::url_scope(collection_id, "data_access")
    }

    /// `https://auth.globus.org/scopes/{collection_id}/https`.
    pub fn https(collection_id: &str) -> String {
        super::url_scope(collection_id, "https")
    }
}
