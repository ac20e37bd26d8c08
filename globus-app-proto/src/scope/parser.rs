//! The scope-string grammar (tokenizer and parser) and scope merging.

use std::collections::HashSet;

use super::Scope;
use super::error::ScopeParseError;
use super::graph::{FxBuild, GraphBuilder, NodeId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Name(&'a str),
    Star,
    Open,
    Close,
}

/// Python's `str.isspace`: Unicode `White_Space` plus the information
/// separators U+001C to U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn tokenize(input: &str) -> Result<Vec<Token<'_>>, ScopeParseError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut start = 0;
    for (idx, &current) in bytes.iter().enumerate() {
        let token = match current {
            b'[' => Some(Token::Open),
            b']' => Some(Token::Close),
            b'*' => Some(Token::Star),
            b' ' => None,
            _ => continue,
        };
        match (current, bytes.get(idx + 1)) {
            (b'*', Some(b' ')) => return Err(ScopeParseError::SpaceAfterOptionalMarker),
            (b']', Some(next)) if !matches!(next, b' ' | b']') => {
                return Err(ScopeParseError::InvalidAfterRightBracket);
            }
            (b' ', Some(b'[')) => return Err(ScopeParseError::SpaceBeforeLeftBracket),
            _ => {}
        }
        if start != idx {
            tokens.push(Token::Name(&input[start..idx]));
        }
        start = idx + 1;
        tokens.extend(token);
    }
    // Only the text after the last special character is stripped, and of
    // any whitespace, as the Python SDK does.
    let remainder = input[start..].trim_matches(is_python_space);
    if !remainder.is_empty() {
        tokens.push(Token::Name(remainder));
    }
    Ok(tokens)
}

/// Parses a scope string into its scopes.
///
/// Grammar (as in the Python SDK): scopes are separated by spaces (U+0020
/// only); `*` marks a scope optional; `name[dep dep]` lists dependencies,
/// nested to any depth. The empty string and all-space strings give no
/// scopes. `foo*bar` is two scopes, `foo` and `*bar`, as in the Python SDK.
///
/// Semantics, also as in the Python SDK: duplicates collapse; a scope name
/// has one set of dependencies across the whole string (the union of every
/// place it appears); a dependency listed both optional and required is
/// required; `foo` and `*foo` at the top level are two scopes. Unlike the
/// Python SDK, the output follows the input order.
///
/// ```
/// use globus_app_proto::scope::{parse_scopes, ScopeParseError};
///
/// let scopes = parse_scopes("a[b] a[*c] a[*b]")?;
/// assert_eq!(scopes.len(), 1);
/// assert_eq!(scopes[0].to_string(), "a[b *c]");
///
/// assert_eq!(parse_scopes("foo[]"), Err(ScopeParseError::EmptyBrackets));
/// assert!(matches!(parse_scopes("a[b[a]]"), Err(ScopeParseError::Cycle { .. })));
/// # Ok::<(), ScopeParseError>(())
/// ```
pub fn parse_scopes(scope_string: &str) -> Result<Vec<Scope>, ScopeParseError> {
    if !scope_string.contains(['[', ']', '*']) {
        return Ok(parse_flat(scope_string));
    }
    parse_general(scope_string)
}

/// The full tokenizer and graph path (also used to check the flat path).
pub(super) fn parse_general(scope_string: &str) -> Result<Vec<Scope>, ScopeParseError> {
    let tokens = tokenize(scope_string)?;
    let mut graph = GraphBuilder::default();
    let mut parents: Vec<NodeId> = Vec::new();
    let mut current: Option<NodeId> = None;
    let mut optional = false;
    for (i, &token) in tokens.iter().enumerate() {
        let next = tokens.get(i + 1).copied();
        match (token, next) {
            (Token::Star, None) => return Err(ScopeParseError::EndedInOptionalMarker),
            (Token::Star, Some(Token::Star | Token::Open | Token::Close)) => {
                return Err(ScopeParseError::OptionalMarkerWithoutScope);
            }
            (Token::Open, None) => return Err(ScopeParseError::EndedInLeftBracket),
            (Token::Open, Some(Token::Close)) => return Err(ScopeParseError::EmptyBrackets),
            (Token::Open, Some(Token::Open)) => return Err(ScopeParseError::DoubleLeftBracket),
            _ => {}
        }
        match token {
            Token::Star => optional = true,
            Token::Open => {
                let parent = current.ok_or(ScopeParseError::LeftBracketWithoutScope)?;
                parents.push(parent);
            }
            Token::Close => {
                parents
                    .pop()
                    .ok_or(ScopeParseError::UnmatchedRightBracket)?;
            }
            Token::Name(name) => {
                let node = graph.node(name);
                match parents.last() {
                    Some(&parent) => graph.add_edge(parent, node, optional),
                    None => graph.add_root(node, optional),
                }
                current = Some(node);
                optional = false;
            }
        }
    }
    if !parents.is_empty() {
        return Err(ScopeParseError::UnclosedBrackets);
    }
    graph.build()
}

/// The common case, a list of names without brackets or stars: the same
/// tokens as [`tokenize`] would give (only the last one stripped), without
/// building a graph.
fn parse_flat(scope_string: &str) -> Vec<Scope> {
    const SCAN_LIMIT: usize = 16;
    let mut names: Vec<&str> = scope_string.split(' ').collect();
    if let Some(last) = names.last_mut() {
        *last = last.trim_matches(is_python_space);
    }
    let mut accepted: Vec<&str> = Vec::new();
    let mut seen: Option<HashSet<&str, FxBuild>> = None;
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        let new = if let Some(seen) = &mut seen {
            seen.insert(name)
        } else {
            let new = !accepted.contains(&name);
            if new && accepted.len() == SCAN_LIMIT {
                seen = Some(accepted.iter().copied().chain([name]).collect());
            }
            new
        };
        if new {
            accepted.push(name);
        }
    }
    accepted
        .into_iter()
        .map(|name| Scope::from_parts(name.into(), false, Vec::new()))
        .collect()
}

/// Merges two lists of scopes with the semantics of [`parse_scopes`] applied
/// to both lists together (the Python SDK's `ScopeParser.merge_scopes`):
/// duplicates collapse, the dependencies of scopes with the same name are
/// unioned, and required beats optional inside brackets. The order follows
/// `a` then `b`.
///
/// The result is exactly that of [`parse_scopes`] on `a` and `b` written out
/// as one string, as in the Python SDK, including its one quirk: the last
/// scope of that string, when it has no dependencies, loses the whitespace
/// around its name (`"dash-ed\t"` becomes `"dash-ed"`), and a last scope
/// whose name is only whitespace disappears.
///
/// It fails if the union has a cycle (`a[b]` merged with `b[a]`), or if that
/// string would end in an optional marker (an optional last scope whose name
/// is only whitespace).
///
/// ```
/// use globus_app_proto::scope::{merge_scopes, parse_scopes};
/// let merged = merge_scopes(&parse_scopes("foo[bar]")?, &parse_scopes("foo[baz] foo[*bar]")?)?;
/// assert_eq!(merged.len(), 1);
/// assert_eq!(merged[0].to_string(), "foo[bar baz]");
/// # Ok::<(), globus_app_proto::scope::ScopeParseError>(())
/// ```
pub fn merge_scopes(a: &[Scope], b: &[Scope]) -> Result<Vec<Scope>, ScopeParseError> {
    let mut graph = GraphBuilder::default();
    // Shared subtrees (scopes are DAGs) are expanded once.
    let mut expanded: HashSet<*const (), FxBuild> = HashSet::default();
    let mut pending: Vec<(NodeId, &Scope)> = Vec::new();
    let roots = a.len() + b.len();
    for (index, root) in a.iter().chain(b).enumerate() {
        let mut name = root.name();
        if index + 1 == roots && root.dependencies().is_empty() {
            // Written out, this name is the string's remainder, which the
            // tokenizer strips.
            name = name.trim_matches(is_python_space);
            if name.is_empty() {
                if root.optional() {
                    return Err(ScopeParseError::EndedInOptionalMarker);
                }
                continue;
            }
        }
        let node = graph.node(name);
        graph.add_root(node, root.optional());
        pending.push((node, root));
        while let Some((node, scope)) = pending.pop() {
            if scope.dependencies().is_empty() {
                continue;
            }
            if !expanded.insert(std::sync::Arc::as_ptr(&scope.0).cast()) {
                continue;
            }
            // Edges in order, then visit children first-to-last (document
            // order), exactly as if the scopes had been written out and
            // parsed again.
            let first_child = pending.len();
            for dep in scope.dependencies() {
                let child = graph.node(dep.name());
                graph.add_edge(node, child, dep.optional());
                pending.push((child, dep));
            }
            pending[first_child..].reverse();
        }
    }
    graph.build()
}
