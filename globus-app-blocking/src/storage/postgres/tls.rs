//! TLS to PostgreSQL on rustls, with libpq's `sslmode` and `sslrootcert`
//! (the postgres client knows only `disable`, `prefer` and `require`, and
//! no root certificates): both are taken out of the connection string (or
//! `PGSSLMODE` and `PGSSLROOTCERT`) before it is parsed.
//!
//! | sslmode | TLS | the certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (the default, as in libpq) | if the server offers it | not checked, unless `sslrootcert` is given: then as `verify-ca` |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | chains to a root: `sslrootcert`, else the platform's |
//! | `verify-full` | always | as `verify-ca`, and names the host |

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StorageError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, StorageError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // `allow` tries plaintext first; refused, as the safer choice
            // cannot be made for the user.
            other => {
                return Err(invalid(format!(
                    "sslmode {other:?} (expected disable, prefer, require, verify-ca or verify-full)"
                )));
            }
        })
    }

    /// What the postgres client negotiates.
    pub(super) fn negotiation(self) -> postgres::config::SslMode {
        match self {
            Self::Disable => postgres::config::SslMode::Disable,
            Self::Prefer => postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => postgres::config::SslMode::Require,
        }
    }
}

/// The TLS settings of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    pub(super) mode: SslMode,
    pub(super) root_certificate: Option<PathBuf>,
}

fn invalid(reason: String) -> StorageError {
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Invalid(String);
    StorageError::InvalidConnectionString {
        source: Box::new(Invalid(reason)),
    }
}

/// Takes `sslmode` and `sslrootcert` out of `connection` (a libpq
/// key=value string or a `postgres(ql)://` URL), falling back to
/// `PGSSLMODE` and `PGSSLROOTCERT` through `lookup`. Returns the string
/// without them.
pub(super) fn take_tls_settings(
    connection: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(String, TlsSettings), StorageError> {
    let mut mode = None;
    let mut root = None;
    let mut keep = |key: &str, value: &str| match key {
        "sslmode" => {
            mode = Some(value.to_owned());
            false
        }
        "sslrootcert" => {
            root = Some(value.to_owned());
            false
        }
        _ => true,
    };
    let rest = if connection.starts_with("postgres://") || connection.starts_with("postgresql://") {
        filter_url_query(connection, &mut keep)
    } else {
        filter_key_values(connection, &mut keep)?
    };
    let var = |name: &str| lookup(name).filter(|value| !value.is_empty());
    let mode = match mode.or_else(|| var("PGSSLMODE")) {
        Some(mode) => SslMode::parse(&mode)?,
        None => SslMode::Prefer,
    };
    let root_certificate = root.or_else(|| var("PGSSLROOTCERT"));
    // libpq's `sslrootcert=system`: the platform's roots.
    let root_certificate = root_certificate
        .filter(|path| path != "system")
        .map(PathBuf::from);
    Ok((
        rest,
        TlsSettings {
            mode,
            root_certificate,
        },
    ))
}

fn filter_url_query(url: &str, keep: &mut impl FnMut(&str, &str) -> bool) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            keep(&percent_decoded(key), &percent_decoded(value))
        })
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// `%XX` decoded (invalid escapes kept as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's key=value syntax: `key = value` pairs separated by spaces,
/// values optionally single-quoted with `\'` and `\\` escapes.
fn filter_key_values(
    connection: &str,
    keep: &mut impl FnMut(&str, &str) -> bool,
) -> Result<String, StorageError> {
    let mut out = Vec::new();
    let mut chars = connection.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(invalid(format!("expected `=` after {key:?}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(invalid(format!("unterminated quote in {key:?}"))),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if keep(&key, &value) {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            out.push(format!("{key}='{quoted}'"));
        }
    }
    Ok(out.join(" "))
}

/// The rustls connector for `settings`.
pub(super) fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, StorageError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?;
    let verify_chain = match settings.mode {
        SslMode::Disable => false,
        SslMode::Prefer | SslMode::Require => settings.root_certificate.is_some(),
        SslMode::VerifyCa | SslMode::VerifyFull => true,
    };
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match (settings.mode, verify_chain) {
        (SslMode::VerifyFull, _) => WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(settings.root_certificate.as_deref())?),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| invalid(format!("TLS roots: {e}")))?,
        (_, true) => Arc::new(Verifier {
            roots: Some(Arc::new(roots(settings.root_certificate.as_deref())?)),
            algorithms,
        }),
        (_, false) => Arc::new(Verifier {
            roots: None,
            algorithms,
        }),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The roots of `sslrootcert`, or the platform's.
fn roots(path: Option<&Path>) -> Result<RootCertStore, StorageError> {
    let mut store = RootCertStore::empty();
    if let Some(path) = path {
        let text = std::fs::read(path)
            .map_err(|e| StorageError::io("read the root certificate", path, e))?;
        for certificate in CertificateDer::pem_slice_iter(&text) {
            let certificate =
                certificate.map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
            store
                .add(certificate)
                .map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
        }
    } else {
        store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    if store.is_empty() {
        return Err(invalid(
            "no root certificate to verify the server with (sslrootcert, or the platform's)"
                .to_owned(),
        ));
    }
    Ok(store)
}

/// The server's certificate checked as `verify-ca` asks (with `roots`: the
/// chain must end at one of them; the name is not checked), or, without
/// roots, not checked at all, as libpq's `prefer` and `require` without a
/// root certificate (the connection is encrypted, the server not
/// authenticated). The handshake's signatures are checked either way.
#[derive(Debug)]
struct Verifier {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let certificate = rustls::server::ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &certificate,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether `error` (a failed connection) is a certificate that did not
/// verify.
/// Whether a connection failed because the server refused TLS (it answered
/// "N" to the TLS request) where `sslmode` demands it: the client's error
/// then has tokio-postgres's cause "server does not support TLS" (it has no
/// public kind to match).
pub(super) fn is_tls_not_offered(error: &postgres::Error) -> bool {
    std::error::Error::source(error)
        .is_some_and(|cause| cause.to_string() == "server does not support TLS")
}

pub(super) fn is_certificate_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(rustls::Error::InvalidCertificate(_)) = error.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && inner
                .downcast_ref::<rustls::Error>()
                .is_some_and(|e| matches!(e, rustls::Error::InvalidCertificate(_)))
        {
            return true;
        }
        current = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(connection: &str) -> (String, TlsSettings) {
        take_tls_settings(connection, |_| None).unwrap()
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_key_value_strings() {
        let (rest, settings) =
            take("host=db user='a b' sslmode=verify-full sslrootcert = '/etc/ca.pem' dbname=x");
        assert_eq!(rest, "host='db' user='a b' dbname='x'");
        assert_eq!(settings.mode, SslMode::VerifyFull);
        assert_eq!(
            settings.root_certificate,
            Some(PathBuf::from("/etc/ca.pem"))
        );
        let parsed: postgres::Config = rest.parse().unwrap();
        assert_eq!(parsed.get_user(), Some("a b"));
        let (rest, _) = take(r"password='it\'s' host=h");
        let parsed: postgres::Config = rest.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"it's"[..]));
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_urls() {
        let (rest, settings) = take(
            "postgresql://u@h1:5432,h2:5433/db?sslmode=require&application_name=x&sslrootcert=%2Fca.pem",
        );
        assert_eq!(rest, "postgresql://u@h1:5432,h2:5433/db?application_name=x");
        assert_eq!(settings.mode, SslMode::Require);
        assert_eq!(settings.root_certificate, Some(PathBuf::from("/ca.pem")));
        let (rest, settings) = take("postgres://h/db?sslmode=disable");
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(settings.mode, SslMode::Disable);
    }

    #[test]
    fn the_environment_fills_in_and_prefer_is_the_default() {
        let (_, settings) = take("host=h");
        assert_eq!(settings.mode, SslMode::Prefer);
        assert_eq!(settings.root_certificate, None);
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/ca.pem".to_owned()),
            _ => None,
        };
        let (_, settings) = take_tls_settings("host=h", env).unwrap();
        assert_eq!(settings.mode, SslMode::VerifyCa);
        assert_eq!(settings.root_certificate, Some(PathBuf::from("/ca.pem")));
        // The string wins over the environment.
        let (_, settings) = take_tls_settings("host=h sslmode=disable", env).unwrap();
        assert_eq!(settings.mode, SslMode::Disable);
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for bad in [
            "host=h sslmode=allow",
            "host=h sslmode=bogus",
            "host",
            "a='open",
        ] {
            assert!(
                matches!(
                    take_tls_settings(bad, |_| None),
                    Err(StorageError::InvalidConnectionString { .. })
                ),
                "{bad}"
            );
        }
    }
}
