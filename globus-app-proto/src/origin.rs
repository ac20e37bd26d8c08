//! Where a token may go: the one policy that every request carrying a
//! token passes, whether an authorized client of the user's, a service
//! client or a GCS endpoint's client sends it.
//!
//! - The scheme is `https`. Plain `http` is allowed only to a loopback
//!   address (`127.0.0.0/8`, `::1`, `localhost`) or to a host the user
//!   named in [`GlobusAppConfig::plain_http_hosts`](crate::app::GlobusAppConfig::plain_http_hosts),
//!   and never to a Globus production domain (`globus.org`,
//!   `globusonline.org` and their subdomains), whatever the configuration
//!   says.
//! - Hosts are compared after normalisation ([`normalize_host`]): ASCII
//!   case, a trailing dot, percent-encoding, IDNA (to punycode), and the
//!   numeric forms of IPv4 addresses. A look-alike host is another host.
//! - A URL with credentials in its authority (`https://user@host/`) is
//!   refused.
//!
//! A refusal is a [`TokenOriginError`], decided before any byte is sent.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// The registrable domains of Globus production services: never reached
/// over plain http.
pub const PRODUCTION_DOMAINS: [&str; 2] = ["globus.org", "globusonline.org"];

/// Why a token may not go to a URL. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenOriginError {
    /// A Globus production host over plain http.
    #[error(
        "refusing to send a token over plain http to {host}: Globus production hosts are reached over https only"
    )]
    CleartextToGlobus {
        /// The host, normalised.
        host: String,
    },
    /// Plain http to a host that is neither a loopback address nor one the
    /// configuration allows.
    #[error(
        "refusing to send a token over plain http to {host}: use https, or allow the host with GlobusAppConfig::with_plain_http_host"
    )]
    Cleartext {
        /// The host, normalised.
        host: String,
    },
    /// A scheme other than `https` and `http`, or a URL with no host.
    #[error("refusing to send a token to a {scheme}: URL without an http(s) host")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
    },
    /// Credentials in the URL's authority (`user@host`).
    #[error("refusing to send a token to a URL with credentials in its authority (host {host})")]
    CredentialsInUrl {
        /// The host, normalised.
        host: String,
    },
    /// A host that does not parse as a host.
    #[error("refusing to send a token: {host:?} is not a valid host")]
    InvalidHost {
        /// The host as given (cut to 100 characters).
        host: String,
    },
}

/// The scheme, normalised host and port a token is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenOrigin {
    https: bool,
    host: String,
    port: u16,
}

impl TokenOrigin {
    /// The origin of `url`, if the policy lets a token go there
    /// (`plain_http_hosts` are the hosts the user allowed over http).
    pub fn of_url(
        url: &Url,
        plain_http_hosts: &BTreeSet<String>,
    ) -> Result<Self, TokenOriginError> {
        let origin = Self::parts_of(url)?;
        origin.check_scheme(plain_http_hosts)?;
        Ok(origin)
    }

    /// The scheme, host and port of `url`, with no verdict on the scheme.
    fn parts_of(url: &Url) -> Result<Self, TokenOriginError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            scheme => {
                return Err(TokenOriginError::UnsupportedScheme {
                    scheme: scheme.to_owned(),
                });
            }
        };
        let host = url
            .host()
            .ok_or_else(|| TokenOriginError::UnsupportedScheme {
                scheme: url.scheme().to_owned(),
            })?;
        let host = canonical_host(&host);
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TokenOriginError::CredentialsInUrl { host });
        }
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        Ok(Self { https, host, port })
    }

    /// Whether `url` is under `base` as a service client's requests must
    /// be: at the same origin (hosts compared normalised) and under its
    /// path. Neither is judged by the policy here: `base` was, when the
    /// client was bound.
    ///
    /// Allocates nothing: the `url` crate has already normalised both
    /// hosts (case, percent-encoding, IDNA, IPv4 forms), so only a trailing
    /// dot is left to ignore.
    pub fn is_under(base: &Url, url: &Url) -> bool {
        fn without_trailing_dot(host: Host<&str>) -> Host<&str> {
            match host {
                Host::Domain(domain) => Host::Domain(domain.strip_suffix('.').unwrap_or(domain)),
                other => other,
            }
        }
        matches!(url.scheme(), "https" | "http")
            && base.scheme() == url.scheme()
            && url.username().is_empty()
            && url.password().is_none()
            && base.port_or_known_default() == url.port_or_known_default()
            && base.host().map(without_trailing_dot) == url.host().map(without_trailing_dot)
            && url.path().starts_with(base.path())
    }

    /// Whether the policy lets a token go to this origin: see the
    /// [module docs](self).
    pub fn check_scheme(
        &self,
        plain_http_hosts: &BTreeSet<String>,
    ) -> Result<(), TokenOriginError> {
        if self.https {
            return Ok(());
        }
        if is_globus_production(&self.host) {
            return Err(TokenOriginError::CleartextToGlobus {
                host: self.host.clone(),
            });
        }
        if is_loopback(&self.host) || plain_http_hosts.contains(&self.host) {
            return Ok(());
        }
        Err(TokenOriginError::Cleartext {
            host: self.host.clone(),
        })
    }

    /// Whether `uri` is at this origin. Allocates nothing for a host in
    /// canonical form (any ASCII case, with or without a trailing dot);
    /// other forms (percent-encoded, numeric IPv4 variants) are parsed.
    pub fn contains_uri(&self, uri: &http::Uri) -> bool {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return false,
        };
        let Some(authority) = uri.authority() else {
            return false;
        };
        if https != self.https || authority.as_str().contains('@') {
            return false;
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        port == self.port && raw_host_equals(authority.host(), &self.host)
    }

    /// The normalised host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (the scheme's default when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.https
    }
}

/// Whether the policy lets a token go to `uri` (an `http::Uri`, as an
/// authorized client is given it): the same verdict as
/// [`TokenOrigin::of_url`] on the same URL. An `https` URL without
/// credentials is judged without allocating.
pub fn check_uri(
    uri: &http::Uri,
    plain_http_hosts: &BTreeSet<String>,
) -> Result<(), TokenOriginError> {
    let scheme = uri.scheme_str().unwrap_or_default();
    let Some(authority) = uri.authority() else {
        return Err(TokenOriginError::UnsupportedScheme {
            scheme: scheme.to_owned(),
        });
    };
    if scheme.eq_ignore_ascii_case("https")
        && !authority.as_str().contains('@')
        && is_plain_domain(authority.host())
    {
        return Ok(());
    }
    let parsed = Url::parse(&uri.to_string()).map_err(|_| TokenOriginError::InvalidHost {
        host: cut(authority.host()),
    })?;
    TokenOrigin::of_url(&parsed, plain_http_hosts).map(drop)
}

/// Which resource server's token goes with a request, by the request's
/// origin: the Globus services of the app's environment, and the hosts
/// the user mapped ([`insert_authority`](Self::insert_authority)). The
/// authorized clients of both adapters resolve every request here.
#[derive(Debug, Clone, Default)]
pub struct TokenDestinations {
    services: Vec<(TokenOrigin, String)>,
    authorities: Vec<(String, Option<u16>, String)>,
    plain_http_hosts: BTreeSet<String>,
}

/// Why a request gets no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// The policy refuses the URL.
    #[error(transparent)]
    Refused(TokenOriginError),
    /// No resource server is known for the host.
    #[error("no resource server is known for host {host}")]
    Unknown {
        /// The request's host (and port).
        host: String,
    },
}

impl TokenDestinations {
    /// No destination yet; plain http allowed to `plain_http_hosts` (and
    /// loopback addresses).
    pub fn new(plain_http_hosts: BTreeSet<String>) -> Self {
        Self {
            plain_http_hosts,
            ..Self::default()
        }
    }

    /// Requests to `base`'s origin are for `resource_server`. A base the
    /// policy refuses is left out (no request will ever match it).
    pub fn insert_service(&mut self, base: &Url, resource_server: impl Into<String>) {
        if let Ok(origin) = TokenOrigin::of_url(base, &self.plain_http_hosts) {
            self.services.push((origin, resource_server.into()));
        }
    }

    /// Requests to `authority` (`host` or `host:port`, such as a GCS
    /// collection's; any scheme the policy allows, and without a port the
    /// scheme's default port) are for `resource_server`. Mapped authorities are looked at before the
    /// services, the last mapping of an authority first.
    pub fn insert_authority(&mut self, authority: &str, resource_server: impl Into<String>) {
        let parsed = authority.parse::<http::uri::Authority>().ok();
        let host = parsed
            .as_ref()
            .map_or(authority, http::uri::Authority::host);
        let host =
            normalize_host(host).map_or_else(|| authority.to_ascii_lowercase(), Cow::into_owned);
        let port = parsed.as_ref().and_then(http::uri::Authority::port_u16);
        self.authorities
            .insert(0, (host, port, resource_server.into()));
    }

    /// The resource server whose token goes with a request to `uri`, after
    /// the policy's verdict on it.
    pub fn resolve(&self, uri: &http::Uri) -> Result<&str, DestinationError> {
        check_uri(uri, &self.plain_http_hosts).map_err(DestinationError::Refused)?;
        let unknown = || DestinationError::Unknown {
            host: uri
                .authority()
                .map_or_else(String::new, |a| cut(a.as_str())),
        };
        let authority = uri.authority().ok_or_else(unknown)?;
        let https = uri.scheme_str() == Some("https");
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let mapped = self.authorities.iter().find(|(host, mapped_port, _)| {
            mapped_port.unwrap_or(if https { 443 } else { 80 }) == port
                && raw_host_equals(authority.host(), host)
        });
        if let Some((_, _, resource_server)) = mapped {
            return Ok(resource_server);
        }
        self.services
            .iter()
            .find(|(origin, _)| origin.contains_uri(uri))
            .map(|(_, resource_server)| resource_server.as_str())
            .ok_or_else(unknown)
    }
}

/// A host in the form hosts are compared in: a domain in ASCII lower case
/// with no trailing dot (the `url` crate has already decoded percent-
/// encoding and applied IDNA), an IP address in its canonical text.
fn canonical_host(host: &Host<&str>) -> String {
    match host {
        Host::Domain(domain) => domain.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => canonical_ipv6(*ip),
    }
}

fn canonical_ipv6(ip: Ipv6Addr) -> String {
    format!("[{ip}]")
}

/// Whether a raw host (as an `http::Uri` holds it) names `canonical`.
fn raw_host_equals(raw: &str, canonical: &str) -> bool {
    if is_plain_domain(raw) {
        let domain = raw.strip_suffix('.').unwrap_or(raw);
        return domain.eq_ignore_ascii_case(canonical);
    }
    normalize_host(raw).is_some_and(|host| host == canonical)
}

/// Whether `raw` is a domain the host parser would only lower-case (and
/// keep its trailing dot): letters, digits and hyphens in labels, no
/// punycode label to check, and a last label that is not a number (which
/// would make it an IPv4 address).
fn is_plain_domain(raw: &str) -> bool {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty()
        || !trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return false;
    }
    let mut labels = trimmed.split('.');
    let last = trimmed.rsplit('.').next().unwrap_or_default();
    let numeric_last = last.bytes().next().is_some_and(|b| b.is_ascii_digit());
    !numeric_last
        && labels.all(|label| {
            !label.is_empty()
                && !label
                    .get(..4)
                    .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
        })
}

/// `raw` (a URL's host as written) in the form hosts are compared in, or
/// `None` when it is not a host: percent-decoded, IDNA-mapped to punycode,
/// lower case, no trailing dot; IPv4 addresses in dotted decimal (whatever
/// numeric form they were written in), IPv6 in brackets.
pub fn normalize_host(raw: &str) -> Option<Cow<'_, str>> {
    if is_plain_domain(raw) {
        let domain = raw.strip_suffix('.').unwrap_or(raw);
        return Some(if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(domain.to_ascii_lowercase())
        } else {
            Cow::Borrowed(domain)
        });
    }
    let host = Host::parse(raw).ok()?;
    let host = match &host {
        Host::Domain(domain) => Host::Domain(domain.as_str()),
        Host::Ipv4(ip) => Host::Ipv4(*ip),
        Host::Ipv6(ip) => Host::Ipv6(*ip),
    };
    Some(Cow::Owned(canonical_host(&host)))
}

/// Whether a normalised host is a Globus production host
/// ([`PRODUCTION_DOMAINS`] or under one).
pub fn is_globus_production(host: &str) -> bool {
    PRODUCTION_DOMAINS.iter().any(|domain| {
        host == *domain
            || host
                .strip_suffix(domain)
                .is_some_and(|prefix| prefix.ends_with('.'))
    })
}

/// Whether a normalised host is a loopback address: `localhost`,
/// `127.0.0.0/8`, `[::1]`, or an IPv4-mapped loopback address.
pub fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return ip.is_loopback();
    }
    host.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .is_some_and(|ip| match ip.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4).is_loopback(),
            None => ip.is_loopback(),
        })
}

/// A host the user allows tokens to reach over plain http, normalised as
/// the policy compares it; `None` when it is not a host, or is a Globus
/// production host (those are never allowed).
pub fn plain_http_host(raw: &str) -> Option<String> {
    let host = normalize_host(raw)?.into_owned();
    (!is_globus_production(&host)).then_some(host)
}

fn cut(text: &str) -> String {
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests;
