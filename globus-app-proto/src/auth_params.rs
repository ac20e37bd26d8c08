//! Authorization parameters: what a login must satisfy beyond the app's
//! scopes (the Python SDK's `GlobusAuthorizationParameters`), as carried by
//! GAREs and passed to `login`.

use serde_json::{Map, Value};

/// Requirements for a login: session requirements, extra scopes and a
/// prompt. Every field is optional; an absent field adds nothing to the
/// authorize URL.
///
/// ```
/// use globus_app_proto::auth_params::AuthorizationParameters;
/// let mut params = AuthorizationParameters::default();
/// assert!(params.is_empty());
/// params.session_required_mfa = Some(true);
/// params.required_scopes = Some(vec!["urn:globus:auth:scope:transfer.api.globus.org:all".into()]);
/// assert!(!params.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct AuthorizationParameters {
    /// A message shown to the user on the login page.
    pub session_message: Option<String>,
    /// Identities that must be in the session.
    pub session_required_identities: Option<Vec<String>>,
    /// Policies the session must satisfy.
    pub session_required_policies: Option<Vec<String>>,
    /// Domains of which one identity must be in the session.
    pub session_required_single_domain: Option<Vec<String>>,
    /// Whether the session must have used MFA.
    pub session_required_mfa: Option<bool>,
    /// Scopes the login must grant (scope strings).
    pub required_scopes: Option<Vec<String>>,
    /// `prompt`, e.g. `login` to force re-authentication.
    pub prompt: Option<String>,
    /// Fields this version does not know, kept from the source document.
    pub extra: Map<String, Value>,
}

impl AuthorizationParameters {
    /// Whether no field is set (unknown `extra` fields do not count).
    pub fn is_empty(&self) -> bool {
        self.session_message.is_none()
            && self.session_required_identities.is_none()
            && self.session_required_policies.is_none()
            && self.session_required_single_domain.is_none()
            && self.session_required_mfa.is_none()
            && self.required_scopes.is_none()
            && self.prompt.is_none()
    }

    /// The parameters as a JSON object, in the Python SDK's field order,
    /// absent fields omitted, then the `extra` fields if `include_extra`
    /// (the Python SDK's `to_dict(include_extra=...)`).
    pub fn to_json(&self, include_extra: bool) -> Map<String, Value> {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        };
        put(
            "session_message",
            self.session_message.clone().map(Value::from),
        );
        put(
            "session_required_identities",
            self.session_required_identities.clone().map(Value::from),
        );
        put(
            "session_required_policies",
            self.session_required_policies.clone().map(Value::from),
        );
        put(
            "session_required_single_domain",
            self.session_required_single_domain.clone().map(Value::from),
        );
        put(
            "session_required_mfa",
            self.session_required_mfa.map(Value::from),
        );
        put(
            "required_scopes",
            self.required_scopes.clone().map(Value::from),
        );
        put("prompt", self.prompt.clone().map(Value::from));
        if include_extra {
            map.extend(self.extra.clone());
        }
        map
    }

    /// The authorize-URL query parameters these add: session requirements
    /// comma-joined, MFA as `True`/`False`, the message and the prompt.
    /// `required_scopes` goes into `scope` instead, merged with the app's
    /// scopes by the caller. [`AuthorizeRequest::url`] puts them in the
    /// Python SDK's order and drops empty lists.
    ///
    /// [`AuthorizeRequest::url`]: crate::authorize::AuthorizeRequest::url
    pub fn authorize_query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        let lists = [
            (
                "session_required_identities",
                &self.session_required_identities,
            ),
            (
                "session_required_single_domain",
                &self.session_required_single_domain,
            ),
            ("session_required_policies", &self.session_required_policies),
        ];
        for (key, list) in lists {
            if let Some(list) = list {
                query.push((key, list.join(",")));
            }
        }
        if let Some(mfa) = self.session_required_mfa {
            query.push((
                "session_required_mfa",
                if mfa { "True" } else { "False" }.into(),
            ));
        }
        if let Some(message) = &self.session_message {
            query.push(("session_message", message.clone()));
        }
        if let Some(prompt) = &self.prompt {
            query.push(("prompt", prompt.clone()));
        }
        query
    }
}
