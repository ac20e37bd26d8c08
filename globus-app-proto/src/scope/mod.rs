//! Globus scopes: the [`Scope`] type, the scope-string grammar, merging, and
//! the well-known scopes of Globus services.
//!
//! A scope string holds one or more scopes separated by spaces. A scope may be
//! marked optional with a leading `*` and may list dependent scopes in
//! brackets:
//!
//! ```
//! use globus_app_proto::scope::{Scope, parse_scopes};
//!
//! let scopes = parse_scopes(
//!     "openid urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/abc/data_access]",
//! )?;
//! assert_eq!(scopes.len(), 2);
//! assert_eq!(scopes[1].dependencies()[0].name(), "https://auth.globus.org/scopes/abc/data_access");
//! assert!(scopes[1].dependencies()[0].optional());
//!
//! // Display round-trips.
//! let one = Scope::parse("a[b *c[d]]")?;
//! assert_eq!(one.to_string(), "a[b *c[d]]");
//! assert_eq!(Scope::parse(&one.to_string())?, one);
//! # Ok::<(), globus_app_proto::scope::ScopeParseError>(())
//! ```
//!
//! The grammar, its error messages and its merging rules are those of the
//! Python SDK (see [`parse_scopes`]); unlike the Python SDK, results are
//! deterministic (they follow the input order), equality ignores the order of
//! dependencies, and arbitrarily deep or large input is handled without
//! recursion.

mod error;
mod graph;
mod parser;
pub mod well_known;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use error::ScopeParseError;
pub use parser::{merge_scopes, parse_scopes};

/// The characters with a meaning in scope strings; a scope name contains none
/// of them.
pub const SPECIAL_CHARACTERS: [char; 4] = ['[', ']', '*', ' '];

/// One scope: a name, an optional flag, and the scopes it depends on.
///
/// A `Scope` is immutable and cheap to clone (the data is shared). Two scopes
/// are equal when their names and flags are equal and their dependencies are
/// equal as multisets, whatever their order: `a[b c] == a[c b]`.
///
/// ```
/// use globus_app_proto::scope::Scope;
///
/// let s = Scope::new("transfer:all")?
///     .with_dependency(Scope::new("data_access")?.with_optional(true));
/// assert_eq!(s.to_string(), "transfer:all[*data_access]");
/// assert_eq!(Scope::parse("a[b c]")?, Scope::parse("a[c b]")?);
/// # Ok::<(), globus_app_proto::scope::ScopeParseError>(())
/// ```
#[derive(Clone)]
pub struct Scope(Arc<ScopeNode>);

struct ScopeNode {
    name: Box<str>,
    optional: bool,
    dependencies: Vec<Scope>,
    /// An order-insensitive digest of the whole subtree, computed once at
    /// construction from the children's digests. Equal scopes have equal
    /// fingerprints; it makes `Hash` O(1) and lets equality reject fast.
    fingerprint: u64,
}

impl Scope {
    /// A scope with no dependencies, not optional.
    ///
    /// The name must be non-empty and must not contain `[`, `]`, `*` or a
    /// space; use [`Scope::parse`] for scope strings.
    pub fn new(name: impl Into<String>) -> Result<Self, ScopeParseError> {
        let name = name.into();
        if name.is_empty() || name.contains(SPECIAL_CHARACTERS) {
            return Err(ScopeParseError::InvalidScopeName { name });
        }
        Ok(Self::from_parts(name.into_boxed_str(), false, Vec::new()))
    }

    /// Parses a string that holds exactly one scope (with its dependencies).
    ///
    /// ```
    /// use globus_app_proto::scope::{Scope, ScopeParseError};
    /// assert!(Scope::parse("foo[bar]").is_ok());
    /// assert_eq!(
    ///     Scope::parse("foo bar"),
    ///     Err(ScopeParseError::NotExactlyOneScope { found: 2 })
    /// );
    /// ```
    pub fn parse(scope_string: &str) -> Result<Self, ScopeParseError> {
        let mut scopes = parse_scopes(scope_string)?;
        if scopes.len() == 1 {
            Ok(scopes.remove(0))
        } else {
            Err(ScopeParseError::NotExactlyOneScope {
                found: scopes.len(),
            })
        }
    }

    pub(crate) fn from_parts(name: Box<str>, optional: bool, dependencies: Vec<Self>) -> Self {
        let fingerprint = fingerprint(&name, optional, &dependencies);
        Self(Arc::new(ScopeNode {
            name,
            optional,
            dependencies,
            fingerprint,
        }))
    }

    /// The scope string without its optional marker and dependencies.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether the scope is optional (`*` in a scope string).
    pub fn optional(&self) -> bool {
        self.0.optional
    }

    /// The dependent scopes, in the order they were given.
    pub fn dependencies(&self) -> &[Scope] {
        &self.0.dependencies
    }

    /// A copy of this scope with `dependency` added after the existing ones.
    #[must_use]
    pub fn with_dependency(&self, dependency: Scope) -> Self {
        self.with_dependencies([dependency])
    }

    /// A copy of this scope with `dependencies` added after the existing ones.
    #[must_use]
    pub fn with_dependencies(&self, dependencies: impl IntoIterator<Item = Scope>) -> Self {
        let mut all = self.0.dependencies.clone();
        all.extend(dependencies);
        Self::from_parts(self.0.name.clone(), self.0.optional, all)
    }

    /// A copy of this scope with the optional flag set to `optional`.
    #[must_use]
    pub fn with_optional(&self, optional: bool) -> Self {
        Self::from_parts(self.0.name.clone(), optional, self.0.dependencies.clone())
    }

    fn same_node(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Joins scopes into a space-separated scope string, as sent in the `scope`
/// form field and query parameter.
///
/// ```
/// use globus_app_proto::scope::{parse_scopes, serialize_scopes};
/// let scopes = parse_scopes("openid email")?;
/// assert_eq!(serialize_scopes(&scopes), "openid email");
/// # Ok::<(), globus_app_proto::scope::ScopeParseError>(())
/// ```
pub fn serialize_scopes<'a>(scopes: impl IntoIterator<Item = &'a Scope>) -> String {
    let mut out = String::new();
    for (i, scope) in scopes.into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_scope(&mut out, scope);
    }
    out
}

/// Writes one scope without recursion (scopes may be nested arbitrarily deep).
fn write_scope(out: &mut String, scope: &Scope) {
    enum Step<'a> {
        Open(&'a Scope),
        Text(&'static str),
    }
    let mut stack = vec![Step::Open(scope)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Text(text) => out.push_str(text),
            Step::Open(scope) => {
                if scope.optional() {
                    out.push('*');
                }
                out.push_str(scope.name());
                let deps = scope.dependencies();
                if !deps.is_empty() {
                    out.push('[');
                    stack.push(Step::Text("]"));
                    for (i, dep) in deps.iter().enumerate().rev() {
                        stack.push(Step::Open(dep));
                        if i > 0 {
                            stack.push(Step::Text(" "));
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_scope(&mut out, self);
        f.write_str(&out)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.to_string())
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        // Iterative, so that deep scopes cannot overflow the stack. Children
        // are paired after sorting both sides by (fingerprint, name, flag):
        // equal multisets sort identically.
        let mut pending: Vec<(&Scope, &Scope)> = vec![(self, other)];
        while let Some((a, b)) = pending.pop() {
            if a.same_node(b) {
                continue;
            }
            if a.0.fingerprint != b.0.fingerprint
                || a.optional() != b.optional()
                || a.name() != b.name()
                || a.dependencies().len() != b.dependencies().len()
            {
                return false;
            }
            let key = |s: &&Scope| (s.0.fingerprint, s.name().to_owned(), s.optional());
            let mut left: Vec<&Scope> = a.dependencies().iter().collect();
            let mut right: Vec<&Scope> = b.dependencies().iter().collect();
            if left.len() > 1 {
                left.sort_by_cached_key(key);
                right.sort_by_cached_key(key);
            }
            pending.extend(left.into_iter().zip(right));
        }
        true
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.fingerprint);
    }
}

impl Drop for ScopeNode {
    fn drop(&mut self) {
        // Unlink children iteratively: dropping a 100,000-deep chain
        // recursively would overflow the stack.
        let mut stack = std::mem::take(&mut self.dependencies);
        while let Some(scope) = stack.pop() {
            if let Some(mut node) = Arc::into_inner(scope.0) {
                stack.append(&mut node.dependencies);
            }
        }
    }
}

/// FNV-1a, fixed seed: the digest must not depend on a per-process seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A 64-bit finaliser (from splitmix64) so that summing digests mixes well.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fingerprint(name: &str, optional: bool, dependencies: &[Scope]) -> u64 {
    // A wrapping sum is order-insensitive and counts repeats (a multiset).
    let children = dependencies
        .iter()
        .fold(0u64, |acc, d| acc.wrapping_add(mix(d.0.fingerprint)));
    mix(fnv1a(name.as_bytes()) ^ u64::from(optional) ^ mix(children.wrapping_add(0x9e37_79b9)))
}

#[cfg(test)]
mod tests;
