//! Where the Python SDK's apps keep their token files, so that a Rust app
//! and a Python app with the same client id and app name share one file.

/// The two token file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFileFormat {
    /// `tokens.json`.
    Json,
    /// `tokens.db` (SQLite).
    Sqlite,
}

impl TokenFileFormat {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Sqlite => "db",
        }
    }
}

/// An app name that cannot name a token directory. Messages are the Python
/// SDK's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppNameError {
    /// The slug is empty.
    #[error("the app name gives an empty directory name; choose another")]
    Empty,
    /// The slug is a name Windows reserves.
    #[error("the app name gives a reserved file name ({0:?}); choose another")]
    Reserved(String),
}

/// Characters the Python SDK's `str.isprintable()` rejects among assigned
/// code points (Unicode 14, Python 3.11): controls, format characters,
/// separators other than the ASCII space, surrogates and private use.
/// Unassigned code points are kept (their treatment differs between Python
/// versions).
#[allow(clippy::unreadable_literal)]
#[rustfmt::skip]
const NON_PRINTABLE: [(u32, u32); 28] = [
    (0x0, 0x1f),
    (0x7f, 0xa0),
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xd800, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x13438),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

fn is_printable(c: char) -> bool {
    let c = u32::from(c);
    !NON_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn is_reserved(slug: &str) -> bool {
    matches!(slug, "con" | "prn" | "aux" | "nul")
        || (slug.len() == 4
            && (slug.starts_with("com") || slug.starts_with("lpt"))
            && slug.as_bytes()[3].is_ascii_digit())
}

/// The directory name the Python SDK derives from an app name:
/// `<>:"/\|?*` become `+`, `.` and space become `-`, non-printable
/// characters are dropped, and the result is lowercased; an empty or
/// Windows-reserved result is an error.
///
/// ```
/// use globus_app_proto::storage::slugify_app_name;
/// assert_eq!(slugify_app_name("Globus CLI v3.30.0").unwrap(), "globus-cli-v3-30-0");
/// assert_eq!(slugify_app_name("a/b").unwrap(), "a+b");
/// assert!(slugify_app_name("NUL").is_err());
/// ```
pub fn slugify_app_name(app_name: &str) -> Result<String, AppNameError> {
    let slug: String = app_name
        .chars()
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' => '+',
            '.' | ' ' => '-',
            other => other,
        })
        .filter(|c| is_printable(*c))
        .collect::<String>()
        .to_lowercase();
    if is_reserved(&slug) {
        return Err(AppNameError::Reserved(slug));
    }
    if slug.is_empty() {
        return Err(AppNameError::Empty);
    }
    Ok(slug)
}

/// The token file's path below the platform's base directory, as path
/// components: `[client_id, slug(app_name), "[env-]tokens.<ext>"]`.
///
/// The base is `~/.globus/app` on POSIX and `%LOCALAPPDATA%\globus\app`
/// (falling back to `%APPDATA%`, then `~\AppData\Local`) on Windows; the
/// adapters resolve it.
///
/// ```
/// use globus_app_proto::storage::{default_token_file_relative_path, TokenFileFormat};
/// assert_eq!(
///     default_token_file_relative_path("cid", "My App", "sandbox", TokenFileFormat::Json).unwrap(),
///     ["cid", "my-app", "sandbox-tokens.json"]
/// );
/// ```
pub fn default_token_file_relative_path(
    client_id: &str,
    app_name: &str,
    environment: &str,
    format: TokenFileFormat,
) -> Result<[String; 3], AppNameError> {
    let prefix = if environment == "production" {
        String::new()
    } else {
        format!("{environment}-")
    };
    Ok([
        client_id.to_owned(),
        slugify_app_name(app_name)?,
        format!("{prefix}tokens.{}", format.extension()),
    ])
}
