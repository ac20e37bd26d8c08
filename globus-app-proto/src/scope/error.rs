//! [`ScopeParseError`]: why a scope string or name was rejected (below
//! both the parser and the dependency graph, which report it).

/// Why a scope string (or a scope name) was rejected.
///
/// The messages are those of the Python SDK's `ScopeParseError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeParseError {
    /// `*` directly followed by a space, as in `* foo`.
    #[error("'*' must not be followed by a space")]
    SpaceAfterOptionalMarker,
    /// `]` followed by something other than a space or `]`, as in `a[b]c`.
    #[error("']' may only be followed by a space or ']'")]
    InvalidAfterRightBracket,
    /// A space before `[`, as in `foo [bar]`.
    #[error("'[' cannot have a preceding space")]
    SpaceBeforeLeftBracket,
    /// The string ends with `*`.
    #[error("ended in optional marker")]
    EndedInOptionalMarker,
    /// `*` followed by a bracket or another `*`.
    #[error("a scope string must always follow an optional marker")]
    OptionalMarkerWithoutScope,
    /// The string ends with `[`.
    #[error("ended in left bracket")]
    EndedInLeftBracket,
    /// `[]`.
    #[error("found empty brackets")]
    EmptyBrackets,
    /// `[[`.
    #[error("found double left-bracket")]
    DoubleLeftBracket,
    /// `[` at the start of the string.
    #[error("found '[' without a preceding scope string")]
    LeftBracketWithoutScope,
    /// `]` with no open bracket.
    #[error("found ']' with no matching '[' preceding it")]
    UnmatchedRightBracket,
    /// A `[` is never closed.
    #[error("unclosed brackets, missing ']'")]
    UnclosedBrackets,
    /// A scope depends on itself, directly or through other scopes.
    #[error("the scope dependencies form a cycle through {scope:?}")]
    Cycle {
        /// The scope where the cycle was detected.
        scope: String,
    },
    /// [`Scope::parse`](super::Scope::parse) was given zero or several scopes.
    #[error("`Scope::parse()` did not get exactly one scope; found {found}")]
    NotExactlyOneScope {
        /// How many scopes the string held.
        found: usize,
    },
    /// [`Scope::new`](super::Scope::new) was given an empty name or one with `[`, `]`, `*` or a
    /// space.
    #[error(
        "scope names may not be empty or contain the special characters '[]* ' (got {name:?}); use Scope::parse for scope strings"
    )]
    InvalidScopeName {
        /// The rejected name.
        name: String,
    },
    /// A scope required of an app has a character outside the scope
    /// grammar (RFC 6749's scope-token: printable ASCII other than `"` and
    /// `\\`; a quote, a backslash, a control, DEL or non-ASCII is refused).
    #[error("scope {scope:?} has the character {character:?}, which scopes may not hold")]
    InvalidCharacter {
        /// The scope (cut to 100 characters).
        scope: String,
        /// The first character refused.
        character: char,
    },
}
