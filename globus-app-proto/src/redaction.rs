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

use std::fmt;

use crate::request::AuthRequest;

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
pub struct SentSecrets(Vec<String>);

impl fmt::Debug for SentSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SentSecrets([{} redacted])", self.0.len())
    }
}

impl SentSecrets {
    /// Remembers the secrets `request` carries.
    pub fn record(&mut self, request: &AuthRequest) {
        for secret in request.secret_values() {
            if !secret.is_empty() && !self.0.contains(&secret) {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
                if encoded != secret {
                    self.0.push(encoded);
                }
                self.0.push(secret);
            }
        }
    }

    /// Whether no secret was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replaces every recorded secret in `text` with [`REDACTED`]. Text that
    /// [`bounded`] cut may end with the start of a secret: that tail goes
    /// too. The result is still at most [`MAX_SERVER_TEXT_CHARS`] (and the
    /// mark) long.
    pub fn redact(&self, text: &mut String) {
        let mut changed = false;
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                *text = text.replace(secret.as_str(), REDACTED);
                changed = true;
            }
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
            .0
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

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> SentSecrets {
        SentSecrets(values.iter().map(|v| (*v).to_owned()).collect())
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
