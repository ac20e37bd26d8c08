//! Consents: the grants a user has given, as a forest, and whether they
//! satisfy dependent-scope requirements (the Python SDK's `ConsentForest`).
//!
//! ```
//! use globus_app_proto::consent::ConsentForest;
//! use globus_app_proto::scope::parse_scopes;
//! use serde_json::json;
//!
//! let consent = |id: u64, path: Vec<u64>, name: &str| json!({
//!     "id": id, "client": "c", "scope": "s", "scope_name": name,
//!     "effective_identity": "i", "dependency_path": path,
//!     "created": "2024-01-01T00:00:00+00:00", "updated": "2024-01-01T00:00:00+00:00",
//!     "last_used": null, "status": "approved", "allows_refresh": true,
//!     "auto_approved": false, "atomically_revocable": false,
//! });
//! let forest = ConsentForest::from_json(&json!({"consents": [
//!     consent(1, vec![1], "transfer"),
//!     consent(2, vec![1, 2], "data_access"),
//! ]}))?;
//! assert!(forest.meets_scope_requirements(&parse_scopes("transfer[data_access]").unwrap()));
//! assert!(!forest.meets_scope_requirements(&parse_scopes("transfer[other]").unwrap()));
//! # Ok::<(), globus_app_proto::consent::ConsentError>(())
//! ```

use std::collections::HashMap;

use serde_json::Value;

use crate::scope::Scope;

/// The status of a consent that counts as granted.
pub const APPROVED: &str = "approved";

/// One consent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Consent {
    /// Its id.
    pub id: u64,
    /// The client the consent was given to.
    pub client: String,
    /// The scope's id.
    pub scope: String,
    /// The scope string.
    pub scope_name: String,
    /// The identity that gave it.
    pub effective_identity: String,
    /// The ids from the root consent down to this one (ends with `id`).
    pub dependency_path: Vec<u64>,
    /// When it was created (ISO 8601).
    pub created: Option<String>,
    /// When it was last updated (ISO 8601).
    pub updated: Option<String>,
    /// When it was last used (ISO 8601).
    pub last_used: Option<String>,
    /// `approved`, or another state that does not grant anything.
    pub status: String,
    /// Whether refresh tokens may be issued.
    pub allows_refresh: bool,
    /// Whether it was approved automatically.
    pub auto_approved: bool,
    /// Whether it can be revoked on its own.
    pub atomically_revocable: bool,
}

/// A consents response that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsentError {
    /// A consent lacks a key (the Python SDK's `ConsentParseError`).
    #[error("a consent lacks the required key {0:?}")]
    MissingKey(&'static str),
    /// A consent has a key of the wrong type.
    #[error("a consent has an invalid value for {0:?}")]
    InvalidKey(&'static str),
    /// The response is not `{"consents": [...]}`.
    #[error("the consents response is not an object with a 'consents' array")]
    NotAConsentList,
    /// A consent's parent is not in the response (the Python SDK's
    /// `ConsentTreeConstructionError`).
    #[error("the consent forest names a missing parent consent {0}")]
    MissingParent(u64),
    /// A dependency path is empty, does not end with the consent's id, or
    /// does not continue its parent's path (a consent that names itself,
    /// or a descendant, as its parent: a cycle).
    #[error("consent {0} has an invalid dependency_path")]
    InvalidDependencyPath(u64),
    /// Two consents have one id.
    #[error("the consent id {0} appears twice")]
    DuplicateId(u64),
}

impl Consent {
    /// Reads one consent; all 13 keys are required, as in the Python SDK,
    /// but the timestamps may be null.
    pub fn from_json(value: &Value) -> Result<Self, ConsentError> {
        const KEYS: [&str; 13] = [
            "id",
            "client",
            "scope",
            "scope_name",
            "effective_identity",
            "dependency_path",
            "created",
            "updated",
            "last_used",
            "status",
            "allows_refresh",
            "auto_approved",
            "atomically_revocable",
        ];
        let map = value.as_object().ok_or(ConsentError::NotAConsentList)?;
        if let Some(missing) = KEYS.iter().find(|k| !map.contains_key(**k)) {
            return Err(ConsentError::MissingKey(missing));
        }
        let text = |key: &'static str| {
            map[key]
                .as_str()
                .map(str::to_owned)
                .ok_or(ConsentError::InvalidKey(key))
        };
        let time = |key: &'static str| match &map[key] {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(ConsentError::InvalidKey(key)),
        };
        let flag = |key: &'static str| map[key].as_bool().ok_or(ConsentError::InvalidKey(key));
        let id = map["id"].as_u64().ok_or(ConsentError::InvalidKey("id"))?;
        let dependency_path = map["dependency_path"]
            .as_array()
            .and_then(|path| path.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .ok_or(ConsentError::InvalidKey("dependency_path"))?;
        if dependency_path.last() != Some(&id) {
            return Err(ConsentError::InvalidDependencyPath(id));
        }
        Ok(Self {
            id,
            client: text("client")?,
            scope: text("scope")?,
            scope_name: text("scope_name")?,
            effective_identity: text("effective_identity")?,
            dependency_path,
            created: time("created")?,
            updated: time("updated")?,
            last_used: time("last_used")?,
            status: text("status")?,
            allows_refresh: flag("allows_refresh")?,
            auto_approved: flag("auto_approved")?,
            atomically_revocable: flag("atomically_revocable")?,
        })
    }
}

/// Consents arranged as trees: a root is a consent given directly to the
/// app; its children are the consents given for it to use downstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsentForest {
    nodes: Vec<Consent>,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
}

impl ConsentForest {
    /// Builds the forest from the consents API response body.
    pub fn from_json(body: &Value) -> Result<Self, ConsentError> {
        let items = body
            .get("consents")
            .and_then(Value::as_array)
            .ok_or(ConsentError::NotAConsentList)?;
        let consents = items
            .iter()
            .map(Consent::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(consents)
    }

    /// Builds the forest from consents, in the given order. Each consent's
    /// parent is the one whose path is its own less its last id, so a path
    /// is strictly longer than its parent's: no consent can be its own
    /// ancestor, and the forest has no cycle.
    pub fn new(consents: Vec<Consent>) -> Result<Self, ConsentError> {
        let mut index: HashMap<u64, usize> = HashMap::with_capacity(consents.len());
        for (i, consent) in consents.iter().enumerate() {
            if index.insert(consent.id, i).is_some() {
                return Err(ConsentError::DuplicateId(consent.id));
            }
        }
        let mut children = vec![Vec::new(); consents.len()];
        let mut roots = Vec::new();
        for (i, consent) in consents.iter().enumerate() {
            match consent.dependency_path.len() {
                0 => return Err(ConsentError::InvalidDependencyPath(consent.id)),
                1 => roots.push(i),
                n => {
                    let parent = consent.dependency_path[n - 2];
                    let &p = index
                        .get(&parent)
                        .ok_or(ConsentError::MissingParent(parent))?;
                    if consents[p].dependency_path[..] != consent.dependency_path[..n - 1] {
                        return Err(ConsentError::InvalidDependencyPath(consent.id));
                    }
                    children[p].push(i);
                }
            }
        }
        Ok(Self {
            nodes: consents,
            children,
            roots,
        })
    }

    /// The consents, in response order.
    pub fn consents(&self) -> &[Consent] {
        &self.nodes
    }

    /// The root consents.
    pub fn roots(&self) -> impl Iterator<Item = &Consent> {
        self.roots.iter().map(|&i| &self.nodes[i])
    }

    /// Whether every scope is met by some tree: a consent meets a scope
    /// when its `scope_name` is the scope's name and each of the scope's
    /// dependencies is met by one of its children.
    ///
    /// As in the Python SDK, optional markers are ignored and trees do not
    /// combine (`A[B]` and `B[C]` in separate trees do not meet `A[B[C]]`).
    /// Unlike it, a consent whose `status` is not `approved` meets nothing.
    pub fn meets_scope_requirements(&self, scopes: &[Scope]) -> bool {
        scopes
            .iter()
            .all(|scope| self.roots.iter().any(|&root| self.node_meets(root, scope)))
    }

    fn usable(&self, node: usize, scope: &Scope) -> bool {
        let consent = &self.nodes[node];
        consent.status == APPROVED && consent.scope_name == scope.name()
    }

    /// Iterative depth-first match (scopes and consent trees may be deep).
    fn node_meets(&self, node: usize, scope: &Scope) -> bool {
        struct Frame<'s> {
            node: usize,
            scope: &'s Scope,
            dependency: usize,
            child: usize,
        }
        if !self.usable(node, scope) {
            return false;
        }
        let mut stack = vec![Frame {
            node,
            scope,
            dependency: 0,
            child: 0,
        }];
        let mut child_result: Option<bool> = None;
        while let Some(top) = stack.last_mut() {
            match child_result.take() {
                Some(true) => {
                    top.dependency += 1;
                    top.child = 0;
                }
                Some(false) => top.child += 1,
                None => {}
            }
            let Some(dependency) = top.scope.dependencies().get(top.dependency) else {
                stack.pop();
                child_result = Some(true);
                continue;
            };
            let children = &self.children[top.node];
            while top.child < children.len() && !self.usable(children[top.child], dependency) {
                top.child += 1;
            }
            if let Some(&child) = children.get(top.child) {
                stack.push(Frame {
                    node: child,
                    scope: dependency,
                    dependency: 0,
                    child: 0,
                });
            } else {
                stack.pop();
                child_result = Some(false);
            }
        }
        child_result == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scope::parse_scopes;

    fn consent(id: u64, path: &[u64], name: &str) -> Consent {
        Consent {
            id,
            client: "c".into(),
            scope: "s".into(),
            scope_name: name.into(),
            effective_identity: "i".into(),
            dependency_path: path.to_vec(),
            created: None,
            updated: None,
            last_used: None,
            status: APPROVED.into(),
            allows_refresh: true,
            auto_approved: false,
            atomically_revocable: false,
        }
    }

    fn meets(forest: &ConsentForest, scopes: &str) -> bool {
        forest.meets_scope_requirements(&parse_scopes(scopes).unwrap())
    }

    #[test]
    fn self_parents_cycles_and_duplicate_ids_are_refused() {
        let root = consent(1, &[1], "a");
        // A consent naming itself as its parent.
        assert_eq!(
            ConsentForest::new(vec![root.clone(), consent(2, &[2, 2], "b")]),
            Err(ConsentError::InvalidDependencyPath(2))
        );
        // Two consents each the other's parent.
        assert_eq!(
            ConsentForest::new(vec![consent(2, &[3, 2], "b"), consent(3, &[2, 3], "c")]),
            Err(ConsentError::InvalidDependencyPath(2))
        );
        // A path that skips its parent's.
        assert_eq!(
            ConsentForest::new(vec![
                root.clone(),
                consent(2, &[1, 2], "b"),
                consent(3, &[9, 2, 3], "c")
            ]),
            Err(ConsentError::InvalidDependencyPath(3))
        );
        assert_eq!(
            ConsentForest::new(vec![root.clone(), root]),
            Err(ConsentError::DuplicateId(1))
        );
    }

    #[test]
    fn the_fixture_parses_to_one_tree_of_depth_two() {
        let fixture: Value =
            serde_json::from_str(include_str!("../fixtures/get_consents.json")).unwrap();
        let forest = ConsentForest::from_json(&fixture["body"]).unwrap();
        assert_eq!(forest.consents().len(), 2);
        assert_eq!(forest.roots().count(), 1);
        assert!(meets(
            &forest,
            "urn:globus:auth:scope:transfer.api.globus.org:all[https://auth.globus.org/scopes/542a86fc-1766-450d-841f-065488a2ec01/data_access]"
        ));
    }

    #[test]
    fn chains_and_siblings_follow_the_reference() {
        let chain = ConsentForest::new(vec![
            consent(1, &[1], "A"),
            consent(2, &[1, 2], "B"),
            consent(3, &[1, 2, 3], "C"),
        ])
        .unwrap();
        assert!(meets(&chain, "A"));
        assert!(meets(&chain, "A[B[C]]"));
        assert!(!meets(&chain, "B"));
        assert!(!meets(&chain, "A[C]"));

        let siblings = ConsentForest::new(vec![
            consent(1, &[1], "A"),
            consent(2, &[1, 2], "B"),
            consent(3, &[1, 3], "C"),
        ])
        .unwrap();
        assert!(meets(&siblings, "A[B C]"));
        assert!(!meets(&siblings, "A[B[C]]"));
        // Optional markers are ignored.
        assert!(meets(&siblings, "A[*B]"));
        assert!(!meets(&siblings, "A[*D]"));
    }

    #[test]
    fn disjoint_trees_do_not_combine_and_unapproved_consents_do_not_count() {
        let disjoint = ConsentForest::new(vec![
            consent(1, &[1], "A"),
            consent(2, &[1, 2], "B"),
            consent(3, &[3], "B"),
            consent(4, &[3, 4], "C"),
        ])
        .unwrap();
        assert!(!meets(&disjoint, "A[B[C]]"));
        // (`A[B] B[C]` would parse as `A[B[C]] B[C]`: one dependency set per name.)
        assert!(meets(&disjoint, "A[B]"));
        assert!(meets(&disjoint, "B[C]"));

        let mut revoked = consent(2, &[1, 2], "B");
        revoked.status = "revoked".into();
        let forest = ConsentForest::new(vec![consent(1, &[1], "A"), revoked]).unwrap();
        assert!(!meets(&forest, "A[B]"));
    }

    #[test]
    fn construction_errors_are_typed() {
        assert_eq!(
            ConsentForest::new(vec![consent(1, &[1], "A"), consent(3, &[1, 2, 3], "C")]),
            Err(ConsentError::MissingParent(2))
        );
        assert_eq!(
            ConsentForest::new(vec![consent(1, &[1], "A"), consent(3, &[1, 2, 3], "C")])
                .unwrap_err()
                .to_string(),
            "the consent forest names a missing parent consent 2"
        );
        let mut value = json!({"id": 1});
        assert_eq!(
            Consent::from_json(&value),
            Err(ConsentError::MissingKey("client"))
        );
        value = json!({"id": 1, "client": "c", "scope": "s", "scope_name": "n", "effective_identity": "e",
            "dependency_path": [2], "created": null, "updated": null, "last_used": null,
            "status": "approved", "allows_refresh": true, "auto_approved": false, "atomically_revocable": false});
        assert_eq!(
            Consent::from_json(&value),
            Err(ConsentError::InvalidDependencyPath(1))
        );
        assert_eq!(
            ConsentForest::from_json(&json!({"consents": 1})),
            Err(ConsentError::NotAConsentList)
        );
    }

    #[test]
    // A 3,000-level chain (a consent's dependency path grows with its depth,
    // so the input is quadratic): this checks matching along long chains,
    // not stack use; the matcher is iterative by construction.
    fn long_consent_chains_and_deep_scopes_are_matched() {
        let depth = 3_000u64;
        let consents = (1..=depth)
            .map(|i| consent(i, &(1..=i).collect::<Vec<_>>(), &format!("s{i}")))
            .collect::<Vec<_>>();
        let forest = ConsentForest::new(consents).unwrap();
        let mut scope = String::new();
        for i in 1..=depth {
            scope.push('s');
            scope.push_str(&i.to_string());
            if i < depth {
                scope.push('[');
            }
        }
        scope.push_str(&"]".repeat(usize::try_from(depth).unwrap() - 1));
        assert!(meets(&forest, &scope));
        assert!(!meets(
            &forest,
            &scope.replace(&format!("s{depth}]"), "missing]")
        ));
    }
}
