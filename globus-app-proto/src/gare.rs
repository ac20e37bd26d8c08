//! GAREs (Globus Auth Requirements Errors): a service's way of saying "log
//! in again with these requirements", in the canonical shape and the legacy
//! shapes services still send.
//!
//! ```
//! use globus_app_proto::gare::find_gare;
//! use serde_json::json;
//!
//! // A Transfer "ConsentRequired" error, nested in a Globus error document.
//! let body = json!({"errors": [{
//!     "code": "ConsentRequired",
//!     "required_scopes": ["urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/c/data_access]"],
//! }]});
//! let gare = find_gare(&body).unwrap();
//! assert_eq!(gare.code, "ConsentRequired");
//! assert_eq!(gare.authorization_parameters.required_scopes.as_ref().unwrap().len(), 1);
//! ```

use serde_json::{Map, Value};

use crate::auth_params::AuthorizationParameters;

/// A Globus Auth Requirements Error.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Gare {
    /// The error code, e.g. `AuthorizationRequired` or `ConsentRequired`.
    pub code: String,
    /// What the new login must satisfy.
    pub authorization_parameters: AuthorizationParameters,
    /// Other fields of the error document.
    pub extra: Map<String, Value>,
}

impl Gare {
    /// The canonical JSON form (the Python SDK's `GARE.to_dict`).
    pub fn to_json(&self, include_extra: bool) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("code".into(), self.code.clone().into());
        map.insert(
            "authorization_parameters".into(),
            Value::Object(self.authorization_parameters.to_json(include_extra)),
        );
        if include_extra {
            map.extend(self.extra.clone());
        }
        map
    }
}

/// Reads one error document (an object) as a GARE, trying the canonical
/// shape first and then each legacy shape, as the Python SDK's `to_gare`
/// does for a dict. Only the document itself is checked; use
/// [`find_gare`] to also look inside `errors[]`.
pub fn to_gare(document: &Value) -> Option<Gare> {
    let map = document.as_object()?;
    canonical(map)
        .or_else(|| legacy_authorization_parameters(map))
        .or_else(|| legacy_transfer_consent_required(map))
        .or_else(|| legacy_action_provider_consent_required(map))
        .or_else(|| legacy_dependent_consent_required(map))
}

/// The first GARE in an error body: the root document, then each entry of
/// its `errors` array (the Python SDK's redrive checks only the root).
pub fn find_gare(body: &Value) -> Option<Gare> {
    to_gare(body).or_else(|| body.get("errors")?.as_array()?.iter().find_map(to_gare))
}

/// Every GARE in an error body: each entry of `errors`, then the root
/// document (the Python SDK's `to_gares` for one API error).
pub fn find_gares(body: &Value) -> Vec<Gare> {
    let mut all: Vec<Gare> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().filter_map(to_gare).collect())
        .unwrap_or_default();
    all.extend(to_gare(body));
    all
}

/// The GARE in a service response, if it is a 403 whose JSON body carries
/// one (root or nested): the signal to log in with its parameters and retry
/// the request once.
pub fn gare_from_response(response: &http::Response<Vec<u8>>) -> Option<Gare> {
    if response.status() != http::StatusCode::FORBIDDEN {
        return None;
    }
    let body: Value = serde_json::from_slice(response.body()).ok()?;
    find_gare(&body)
}

fn extras(map: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn opt_str(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

fn str_list(value: &Value) -> Result<Vec<String>, ()> {
    value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or(())
}

fn opt_str_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => str_list(value).map(Some),
    }
}

fn opt_str_list_or_commasep(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<Vec<String>>, ()> {
    match map.get(key) {
        Some(Value::String(s)) => Ok(Some(s.split(',').map(str::to_owned).collect())),
        _ => opt_str_list(map, key),
    }
}

fn opt_bool(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(()),
    }
}

const PARAMETER_FIELDS: [&str; 7] = [
    "session_message",
    "session_required_identities",
    "session_required_policies",
    "session_required_single_domain",
    "session_required_mfa",
    "required_scopes",
    "prompt",
];

fn canonical_parameters(map: &Map<String, Value>) -> Result<AuthorizationParameters, ()> {
    Ok(AuthorizationParameters {
        session_message: opt_str(map, "session_message")?,
        session_required_identities: opt_str_list(map, "session_required_identities")?,
        session_required_policies: opt_str_list(map, "session_required_policies")?,
        session_required_single_domain: opt_str_list(map, "session_required_single_domain")?,
        session_required_mfa: opt_bool(map, "session_required_mfa")?,
        required_scopes: opt_str_list(map, "required_scopes")?,
        prompt: opt_str(map, "prompt")?,
        extra: extras(map, &PARAMETER_FIELDS),
    })
}

/// `{"code": str, "authorization_parameters": {...}}`.
fn canonical(map: &Map<String, Value>) -> Option<Gare> {
    let code = map.get("code")?.as_str()?;
    let parameters =
        canonical_parameters(map.get("authorization_parameters")?.as_object()?).ok()?;
    Some(Gare {
        code: code.to_owned(),
        authorization_parameters: parameters,
        extra: extras(map, &["code", "authorization_parameters"]),
    })
}

/// `{"authorization_parameters": {...}, "code"?}` with comma-separated
/// policies and domains allowed and `prompt` only `login`.
fn legacy_authorization_parameters(map: &Map<String, Value>) -> Option<Gare> {
    let code = match map.get("code") {
        None | Some(Value::Null) => "AuthorizationRequired",
        Some(Value::String(s)) if s.is_empty() => "AuthorizationRequired",
        Some(Value::String(s)) => s,
        Some(_) => return None,
    };
    let params = map.get("authorization_parameters")?.as_object()?;
    let prompt = opt_str(params, "prompt").ok()?;
    if prompt.as_deref().is_some_and(|p| p != "login") {
        return None;
    }
    // The legacy shape has no `required_scopes`: like the Python SDK, it
    // lands among the extra fields.
    let parameters = AuthorizationParameters {
        session_message: opt_str(params, "session_message").ok()?,
        session_required_identities: opt_str_list(params, "session_required_identities").ok()?,
        session_required_policies: opt_str_list_or_commasep(params, "session_required_policies")
            .ok()?,
        session_required_single_domain: opt_str_list_or_commasep(
            params,
            "session_required_single_domain",
        )
        .ok()?,
        session_required_mfa: opt_bool(params, "session_required_mfa").ok()?,
        required_scopes: None,
        prompt,
        extra: extras(
            params,
            &[
                "session_message",
                "session_required_identities",
                "session_required_policies",
                "session_required_single_domain",
                "session_required_mfa",
                "prompt",
            ],
        ),
    };
    Some(Gare {
        code: code.to_owned(),
        authorization_parameters: parameters,
        extra: extras(map, &["authorization_parameters", "code"]),
    })
}

/// Transfer's `{"code": "ConsentRequired", "required_scopes": [...]}`.
fn legacy_transfer_consent_required(map: &Map<String, Value>) -> Option<Gare> {
    if map.get("code")?.as_str()? != "ConsentRequired" {
        return None;
    }
    let required_scopes = str_list(map.get("required_scopes")?).ok()?;
    let extra = extras(map, &["code", "required_scopes"]);
    Some(Gare {
        code: "ConsentRequired".into(),
        authorization_parameters: AuthorizationParameters {
            required_scopes: Some(required_scopes),
            session_message: extra
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Default::default()
        },
        extra,
    })
}

/// Action providers' `{"code": "ConsentRequired", "required_scope": "..."}`.
fn legacy_action_provider_consent_required(map: &Map<String, Value>) -> Option<Gare> {
    if map.get("code")?.as_str()? != "ConsentRequired" {
        return None;
    }
    let required_scope = map.get("required_scope")?.as_str()?;
    let extra = extras(map, &["code", "required_scope"]);
    Some(Gare {
        code: "ConsentRequired".into(),
        authorization_parameters: AuthorizationParameters {
            required_scopes: Some(vec![required_scope.to_owned()]),
            session_message: extra
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            extra: extra
                .get("authorization_parameters")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            ..Default::default()
        },
        extra: extras(&extra, &["authorization_parameters"]),
    })
}

/// Auth's `{"error": "dependent_consent_required", "errors": [{"unapproved_scopes": [...]}]}`;
/// only the first entry counts.
fn legacy_dependent_consent_required(map: &Map<String, Value>) -> Option<Gare> {
    if map.get("error")?.as_str()? != "dependent_consent_required" {
        return None;
    }
    let first = map.get("errors")?.as_array()?.first()?.as_object()?;
    let scopes = match first.get("unapproved_scopes") {
        None => Vec::new(),
        Some(value) => str_list(value).ok()?,
    };
    Some(Gare {
        code: "ConsentRequired".into(),
        authorization_parameters: AuthorizationParameters {
            required_scopes: Some(scopes),
            ..Default::default()
        },
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn every_fixture_case_matches_the_python_sdk() {
        let fixture: Value =
            serde_json::from_str(include_str!("../fixtures/gare_examples.json")).unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert!(cases.len() >= 9);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let gare = to_gare(&case["input"]);
            let plain = gare.as_ref().map(|g| Value::Object(g.to_json(false)));
            let full = gare.as_ref().map(|g| Value::Object(g.to_json(true)));
            assert_eq!(
                plain.unwrap_or(Value::Null),
                case["to_gare_result"],
                "{name}"
            );
            assert_eq!(
                full.unwrap_or(Value::Null),
                case["to_gare_result_with_extra"],
                "{name}"
            );
        }
    }

    #[test]
    fn nested_gares_are_found_unlike_the_reference() {
        let body = json!({"errors": [
            {"code": "Other"},
            {"code": "ConsentRequired", "authorization_parameters": {"required_scopes": ["s"]}}
        ]});
        assert_eq!(to_gare(&body), None);
        let gare = find_gare(&body).unwrap();
        assert_eq!(
            gare.authorization_parameters.required_scopes,
            Some(vec!["s".to_owned()])
        );
        assert_eq!(find_gares(&body).len(), 1);
        assert_eq!(find_gare(&json!({"errors": "nope"})), None);
        assert_eq!(find_gare(&json!([1, 2])), None);
    }

    #[test]
    fn gares_come_only_from_403_json_bodies() {
        let body = serde_json::to_vec(&json!({"code": "AuthorizationRequired", "authorization_parameters": {"session_required_mfa": true}})).unwrap();
        let response = |status: u16, body: Vec<u8>| {
            http::Response::builder().status(status).body(body).unwrap()
        };
        let gare = gare_from_response(&response(403, body.clone())).unwrap();
        assert_eq!(
            gare.authorization_parameters.session_required_mfa,
            Some(true)
        );
        assert_eq!(gare_from_response(&response(401, body)), None);
        assert_eq!(gare_from_response(&response(403, b"<html>".to_vec())), None);
    }

    #[test]
    fn invalid_field_types_fall_through_to_other_shapes_or_none() {
        // `prompt` other than `login` is fine canonically but not in the legacy shape.
        let canonical = json!({"code": "X", "authorization_parameters": {"prompt": "consent"}});
        assert_eq!(
            to_gare(&canonical)
                .unwrap()
                .authorization_parameters
                .prompt
                .as_deref(),
            Some("consent")
        );
        let legacy = json!({"authorization_parameters": {"prompt": "consent", "session_required_policies": "a,b"}});
        assert_eq!(to_gare(&legacy), None);
        assert_eq!(
            to_gare(
                &json!({"code": "X", "authorization_parameters": {"session_required_mfa": "yes"}})
            ),
            None
        );
        let empty = to_gare(&json!({"code": "X", "authorization_parameters": {}})).unwrap();
        assert!(empty.authorization_parameters.is_empty());
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_json_never_panics(text in "\\PC{0,80}") {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = find_gares(&value);
            }
        }
    }
}
