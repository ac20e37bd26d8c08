//! Keeping what a request sent out of the errors built from its answer,
//! and text a server wrote short.
//!
//! Some OAuth servers echo the refresh token, code or client secret they
//! were sent in an error description (on `invalid_client`, say). Such text
//! would reach an error's `Display` and `Debug`, and from there any log
//! that prints the error. An operation records the secrets of each request
//! it sends ([`SentSecrets`]) and strikes them from the errors it returns;
//! every text a server wrote into an error is cut to
//! [`MAX_SERVER_TEXT_CHARS`].

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// The most characters of a server's text (an `error_description`, an
/// error's `title` or `detail`) an error keeps; longer text is cut, ending
/// with `…`.
pub const MAX_SERVER_TEXT_CHARS: usize = 300;

/// What stands in for a secret in an error.
pub const REDACTED: &str = "[redacted]";

const CUT_MARK: char = '…';

/// `text` as an error may show it: invisible and direction-changing
/// characters dropped ([`is_hidden`]), controls as spaces, and cut to
/// [`MAX_SERVER_TEXT_CHARS`] characters, ending with `…` when it was
/// longer.
pub fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_SERVER_TEXT_CHARS));
    let mut kept = 0;
    for c in text.chars() {
        if is_hidden(c) {
            continue;
        }
        if kept == MAX_SERVER_TEXT_CHARS {
            out.push(CUT_MARK);
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
        kept += 1;
    }
    out
}

/// Whether `c` is invisible or changes the direction of the text around
/// it: Unicode's format characters (general category Cf: soft hyphen,
/// zero-width space, joiners, word joiner, byte-order mark, the bidi marks
/// U+200E, U+200F and U+061C, the embeddings, overrides and isolates
/// U+202A–U+202E and U+2066–U+2069, tags...). Text from a server never
/// shows one, in an error or on the login's landing page.
pub fn is_hidden(c: char) -> bool {
    // Unicode 16's general category Cf.
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

/// The secret values (tokens, codes, verifiers, client secrets) that the
/// requests of one operation carried. Its `Debug` shows only how many.
#[derive(Clone, Default)]
pub struct SentSecrets {
    secrets: Vec<String>,
    /// The forms looked for, built at the first redaction (errors are
    /// rare; a redaction strikes every field of one with them) and dropped
    /// when a secret is added.
    needles: std::sync::OnceLock<Needles>,
}

impl fmt::Debug for SentSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SentSecrets([{} redacted])", self.secrets.len())
    }
}

impl SentSecrets {
    /// These secrets (a trace layer or a test that strikes what it knows).
    pub fn of(secrets: &[&str]) -> Self {
        let mut sent = Self::default();
        for secret in secrets {
            sent.add(secret);
        }
        sent
    }

    /// Remembers secrets a request carries (its
    /// [`secret_values`](crate::request::AuthRequest::secret_values)).
    pub fn record(&mut self, secrets: impl IntoIterator<Item = String>) {
        for secret in secrets {
            self.add(&secret);
        }
    }

    fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.secrets.iter().any(|known| known == secret) {
            self.secrets.push(secret.to_owned());
            self.needles = std::sync::OnceLock::new();
        }
    }

    /// Whether no secret was recorded.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Replaces every recorded secret in `text` with [`REDACTED`], in
    /// whatever form the server wrote it back: raw in any letter case,
    /// percent-encoded (any subset of its bytes, either case) or
    /// form-encoded, base64 or base64url (with or without padding, at any
    /// offset in a longer encoding), or hex. A piece of a secret at least
    /// [`SECRET_PIECE`] characters long goes too, so a secret split
    /// between two fields of one answer shows in neither. Text that
    /// [`bounded`] cut may end with the start of a secret: that tail goes
    /// too. The result is still at most [`MAX_SERVER_TEXT_CHARS`] (and the
    /// mark) long.
    pub fn redact(&self, text: &mut String) {
        if self.secrets.is_empty() || text.is_empty() {
            return;
        }
        let needles = self.needles.get_or_init(|| Needles::of(&self.secrets));
        let struck = needles.spans_in(text);
        let changed = !struck.is_empty();
        if changed {
            *text = strike(text, &struck);
        }
        self.redact_cut_tail(text);
        if changed && text.chars().count() > MAX_SERVER_TEXT_CHARS + 1 {
            let mut cut: String = text.chars().take(MAX_SERVER_TEXT_CHARS).collect();
            cut.push(CUT_MARK);
            *text = cut;
        }
    }

    /// A text [`bounded`] cut may end with the start of a secret.
    fn redact_cut_tail(&self, text: &mut String) {
        let Some(kept) = text.strip_suffix(CUT_MARK) else {
            return;
        };
        let tail = self
            .secrets
            .iter()
            .filter_map(|secret| {
                // The longest end of `kept` that begins `secret`.
                kept.char_indices()
                    .map(|(at, _)| &kept[at..])
                    .find(|end| secret.starts_with(end))
                    .map(str::len)
            })
            .max();
        if let Some(tail) = tail {
            let mut redacted = kept[..kept.len() - tail].to_owned();
            redacted.push_str(REDACTED);
            redacted.push(CUT_MARK);
            *text = redacted;
        }
    }

    /// [`redact`](Self::redact) on an optional text.
    pub fn redact_option(&self, text: &mut Option<String>) {
        if let Some(text) = text {
            self.redact(text);
        }
    }
}

/// The shortest piece of a secret (or of its encoding) that is struck
/// wherever it stands; a shorter secret is struck whole.
pub const SECRET_PIECE: usize = 12;

/// The forms of the recorded secrets looked for in a text, cut into
/// pieces of [`SECRET_PIECE`] bytes (or whole, when shorter): `exact`
/// pieces match as they are (base64 and base64url), `folded` ones in any
/// ASCII letter case (the secret itself, its hex).
#[derive(Clone)]
struct Needles {
    exact: HashSet<Vec<u8>>,
    folded: HashSet<Vec<u8>>,
    /// The lengths of the pieces.
    lengths: BTreeSet<usize>,
}

impl Needles {
    fn of(secrets: &[String]) -> Self {
        let mut needles = Self {
            exact: HashSet::new(),
            folded: HashSet::new(),
            lengths: BTreeSet::new(),
        };
        for secret in secrets {
            let bytes = secret.as_bytes();
            needles.add(secret.to_lowercase().as_bytes(), true);
            let hex: Vec<u8> = bytes
                .iter()
                .flat_map(|b| {
                    let digits = b"0123456789abcdef";
                    [digits[usize::from(b >> 4)], digits[usize::from(b & 0xf)]]
                })
                .collect();
            needles.add(&hex, true);
            for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
                for offset in 0..3 {
                    needles.add(&base64_core(engine, bytes, offset), false);
                }
            }
        }
        needles
    }

    fn add(&mut self, needle: &[u8], folded: bool) {
        if needle.is_empty() {
            return;
        }
        let length = needle.len().min(SECRET_PIECE);
        self.lengths.insert(length);
        let set = if folded {
            &mut self.folded
        } else {
            &mut self.exact
        };
        for piece in needle.windows(length) {
            set.insert(piece.to_vec());
        }
    }

    /// The byte ranges of `text` that show a secret, in any of the views
    /// (raw, percent-decoded, form-decoded).
    fn spans_in(&self, text: &str) -> Vec<(usize, usize)> {
        let mut struck = Vec::new();
        for view in [
            View::raw(text),
            View::decoded(text, false),
            View::decoded(text, true),
        ] {
            let folded = view.folded();
            for (view, set) in [(&view, &self.exact), (&folded, &self.folded)] {
                for &length in &self.lengths {
                    for (start, piece) in view.bytes.windows(length).enumerate() {
                        if set.contains(piece) {
                            let end = start + length - 1;
                            struck.push((view.origin[start].0, view.origin[end].1));
                        }
                    }
                }
            }
        }
        struck
    }
}

/// The characters of `secret`'s base64 (in `engine`'s alphabet) when it
/// stands `offset` bytes into a longer encoded value: those its bytes alone
/// decide, whatever comes before and after.
fn base64_core(engine: &base64::engine::GeneralPurpose, secret: &[u8], offset: usize) -> Vec<u8> {
    let mut padded = vec![0; offset];
    padded.extend_from_slice(secret);
    let encoded = engine.encode(&padded).into_bytes();
    let first = (8 * offset).div_ceil(6);
    let last = (8 * padded.len()) / 6;
    encoded
        .get(first..last)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// A text as a server's encoding may hide a secret in it, each byte with
/// the range of the text it came from.
struct View {
    bytes: Vec<u8>,
    origin: Vec<(usize, usize)>,
}

impl View {
    fn raw(text: &str) -> Self {
        Self {
            bytes: text.as_bytes().to_vec(),
            origin: (0..text.len()).map(|i| (i, i + 1)).collect(),
        }
    }

    /// `%XX` decoded (either case), and with `form` `+` as a space.
    fn decoded(text: &str, form: bool) -> Self {
        let raw = text.as_bytes();
        let mut view = Self {
            bytes: Vec::with_capacity(raw.len()),
            origin: Vec::with_capacity(raw.len()),
        };
        let hex = |b: u8| char::from(b).to_digit(16);
        let mut i = 0;
        while i < raw.len() {
            let escape = (raw[i] == b'%')
                .then(|| Some((hex(*raw.get(i + 1)?)?, hex(*raw.get(i + 2)?)?)))
                .flatten();
            if let Some((high, low)) = escape {
                // Two hex digits: a byte.
                view.bytes
                    .push(u8::try_from(high * 16 + low).unwrap_or_default());
                view.origin.push((i, i + 3));
                i += 3;
            } else {
                view.bytes
                    .push(if form && raw[i] == b'+' { b' ' } else { raw[i] });
                view.origin.push((i, i + 1));
                i += 1;
            }
        }
        view
    }
}

impl View {
    /// This view in lower case (Unicode's, where its bytes are UTF-8),
    /// each byte still with the range of the text it came from.
    fn folded(&self) -> Self {
        let mut folded = Self {
            bytes: Vec::with_capacity(self.bytes.len()),
            origin: Vec::with_capacity(self.origin.len()),
        };
        let mut at = 0;
        for chunk in self.bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                let origin = (self.origin[at].0, self.origin[at + c.len_utf8() - 1].1);
                let mut buffer = [0; 4];
                for lower in c.to_lowercase() {
                    for byte in lower.encode_utf8(&mut buffer).bytes() {
                        folded.bytes.push(byte);
                        folded.origin.push(origin);
                    }
                }
                at += c.len_utf8();
            }
            for byte in chunk.invalid() {
                folded.bytes.push(*byte);
                folded.origin.push(self.origin[at]);
                at += 1;
            }
        }
        folded
    }
}

/// `text` with each range of `struck` (merged where they touch, widened to
/// whole characters) replaced by [`REDACTED`].
fn strike(text: &str, struck: &[(usize, usize)]) -> String {
    let mut ranges = struck.to_vec();
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut i = 0;
    while i < ranges.len() {
        let (mut start, mut end) = ranges[i];
        i += 1;
        while i < ranges.len() && ranges[i].0 <= end {
            end = end.max(ranges[i].1);
            i += 1;
        }
        start = start.max(at);
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> SentSecrets {
        SentSecrets::of(values)
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        let long = "é".repeat(MAX_SERVER_TEXT_CHARS + 5);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_SERVER_TEXT_CHARS + 1);
        assert!(cut.ends_with(CUT_MARK));
        assert_eq!(bounded("short"), "short");
    }

    #[test]
    fn a_secret_recorded_after_a_redaction_is_struck_too() {
        let mut sent = secrets(&["first-secret-4f9a2c7e"]);
        let mut text = "echo first-secret-4f9a2c7e".to_owned();
        sent.redact(&mut text);
        assert_eq!(text, "echo [redacted]");
        sent.record(["second-secret-81b3d6a0".to_owned()]);
        let mut text = "echo second-secret-81b3d6a0 and first-secret-4f9a2c7e".to_owned();
        sent.redact(&mut text);
        assert_eq!(text, "echo [redacted] and [redacted]");
    }

    #[test]
    fn secrets_are_replaced_wherever_they_stand() {
        let mut text = "bad token RT-123 for client S3CRET (RT-123)".to_owned();
        secrets(&["RT-123", "S3CRET"]).redact(&mut text);
        assert_eq!(
            text,
            "bad token [redacted] for client [redacted] ([redacted])"
        );
    }

    #[test]
    fn redacting_short_secrets_keeps_the_bound() {
        let mut text = bounded(&"ab ".repeat(MAX_SERVER_TEXT_CHARS));
        secrets(&["ab"]).redact(&mut text);
        assert_eq!(text.chars().count(), MAX_SERVER_TEXT_CHARS + 1);
        assert!(!text.contains("ab") && text.ends_with(CUT_MARK));
    }

    #[test]
    fn a_secret_cut_in_half_by_bounding_goes_too() {
        let secret = "refresh-token-abcdef";
        let text = format!("{}{secret}", "x".repeat(MAX_SERVER_TEXT_CHARS - 7));
        let mut cut = bounded(&text);
        assert!(cut.contains("refresh") && !cut.contains(secret));
        secrets(&[secret]).redact(&mut cut);
        assert!(!cut.contains("refresh"), "{cut}");
        assert!(cut.ends_with("[redacted]…"), "{cut}");
    }
}
