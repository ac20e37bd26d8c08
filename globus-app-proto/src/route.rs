//! Paths of requests: ids as path segments, and what a path may hold so
//! that the URL parser reads it as written. Below every module that builds
//! a request (`request`, `service`).

/// `id` as exactly one path segment: every byte outside the unreserved
/// set (`A-Z a-z 0-9 - . _ ~`) percent-encoded, as the Python SDK encodes
/// ids, so `/`, `\\`, `?`, `#`, `%`, spaces, controls and non-ASCII stay
/// data. (An id of `.` or `..` cannot be a segment at all: requests built
/// with [`ServiceRequest::route`](crate::service::ServiceRequest::route)
/// refuse it.)
pub fn path_segment(id: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xF)]));
        }
    }
    out
}

/// Whether `byte` may stand in a URL path as written (RFC 3986 `pchar`,
/// `/`, and `%` of an escape).
pub(crate) fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'.' | b'_' | b'~' // unreserved
                | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' // sub-delims
                | b':' | b'@' | b'/' | b'%'
        )
}

/// Whether every `%` in `path` starts an escape of two hex digits.
pub(crate) fn percent_escapes_are_whole(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().all(|(i, byte)| {
        *byte != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// Whether a segment is `.` or `..` in any spelling the URL standard
/// reads as one (`%2e`, `.%2E`...).
pub(crate) fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | ".." | "%2e" | "%2e." | ".%2e" | "%2e%2e"
    )
}
