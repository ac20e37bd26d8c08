//! The app's scope requirements: resource server to required scopes.

use crate::scope::{Scope, ScopeParseError, merge_scopes, parse_scopes, well_known};

/// Scope requirements by resource server, in the order they were added.
///
/// `auth.globus.org: openid` is always present (it is how the app learns
/// who logged in). Adding scopes merges them with the existing ones, so
/// repeats collapse (the Python SDK keeps duplicates).
///
/// ```
/// use globus_app_proto::app::ScopeRequirements;
/// let mut requirements = ScopeRequirements::new();
/// requirements.add_str("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all[a]")?;
/// requirements.add_str("transfer.api.globus.org", "urn:globus:auth:scope:transfer.api.globus.org:all[b]")?;
/// requirements.add_str("auth.globus.org", "openid email")?;
/// assert_eq!(
///     requirements.get("transfer.api.globus.org").unwrap()[0].to_string(),
///     "urn:globus:auth:scope:transfer.api.globus.org:all[a b]"
/// );
/// assert_eq!(requirements.get("auth.globus.org").unwrap().len(), 2); // openid once
/// # Ok::<(), globus_app_proto::scope::ScopeParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirements {
    entries: Vec<(String, Vec<Scope>)>,
}

impl Default for ScopeRequirements {
    fn default() -> Self {
        Self::new()
    }
}

impl ScopeRequirements {
    /// Requirements holding only `auth.globus.org: openid`.
    pub fn new() -> Self {
        let openid = Scope::from_parts(well_known::auth::OPENID.into(), false, Vec::new());
        Self {
            entries: vec![(well_known::auth::RESOURCE_SERVER.to_owned(), vec![openid])],
        }
    }

    /// Adds scopes for a resource server, merged with what it already has.
    /// A scope (or a dependency, at any depth) with a character outside
    /// the scope grammar is [`ScopeParseError::InvalidCharacter`], and
    /// nothing is added.
    pub fn add(&mut self, resource_server: &str, scopes: &[Scope]) -> Result<(), ScopeParseError> {
        scopes.iter().try_for_each(check_scope_characters)?;
        match self
            .entries
            .iter_mut()
            .find(|(rs, _)| rs == resource_server)
        {
            Some((_, existing)) => *existing = merge_scopes(existing, scopes)?,
            None => self
                .entries
                .push((resource_server.to_owned(), merge_scopes(scopes, &[])?)),
        }
        Ok(())
    }

    /// Adds scopes from a scope string.
    pub fn add_str(&mut self, resource_server: &str, scopes: &str) -> Result<(), ScopeParseError> {
        self.add(resource_server, &parse_scopes(scopes)?)
    }

    /// The scopes required for `resource_server`, if any.
    pub fn get(&self, resource_server: &str) -> Option<&[Scope]> {
        self.entries
            .iter()
            .find(|(rs, _)| rs == resource_server)
            .map(|(_, scopes)| scopes.as_slice())
    }

    /// The resource servers, in order.
    pub fn resource_servers(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(rs, _)| rs.as_str())
    }

    /// Every (resource server, scopes) pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Scope])> {
        self.entries
            .iter()
            .map(|(rs, s)| (rs.as_str(), s.as_slice()))
    }

    /// Every required scope, merged across resource servers (what a login
    /// asks for).
    pub fn all_scopes(&self) -> Result<Vec<Scope>, ScopeParseError> {
        let all: Vec<Scope> = self
            .entries
            .iter()
            .flat_map(|(_, s)| s.iter().cloned())
            .collect();
        merge_scopes(&all, &[])
    }
}

/// Whether `scope` and its dependencies hold only characters of RFC 6749's
/// scope-token (`%x21 / %x23-5B / %x5D-7E`). The parser is as lenient as
/// the Python SDK's; what an app requires is checked here, where it is
/// added, so that a quote or a control never reaches a request.
fn check_scope_characters(scope: &Scope) -> Result<(), ScopeParseError> {
    let name = scope.name();
    if let Some(character) = name
        .chars()
        .find(|c| !matches!(*c, '\u{21}' | '\u{23}'..='\u{5b}' | '\u{5d}'..='\u{7e}'))
    {
        return Err(ScopeParseError::InvalidCharacter {
            scope: name.chars().take(100).collect(),
            character,
        });
    }
    scope
        .dependencies()
        .iter()
        .try_for_each(check_scope_characters)
}
