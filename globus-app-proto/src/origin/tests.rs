use std::collections::BTreeSet;

use url::Url;

use super::*;
use crate::testing::TOKEN_POLICY_TABLE as TABLE;

#[test]
fn the_policy_table_gives_one_verdict_for_a_url_and_a_uri() {
    let none = BTreeSet::new();
    assert!(TABLE.len() >= 40);
    for (raw, allowed) in TABLE {
        let by_url = Url::parse(raw)
            .ok()
            .map(|url| TokenOrigin::of_url(&url, &none).is_ok());
        let by_uri = raw
            .parse::<http::Uri>()
            .ok()
            .map(|uri| check_uri(&uri, &none).is_ok());
        // A URL the http crate cannot hold never reaches an authorized
        // client; every other one gets the same verdict on both paths.
        assert_eq!(by_url, Some(*allowed), "{raw} as a Url");
        if let Some(by_uri) = by_uri {
            assert_eq!(by_uri, *allowed, "{raw} as an http::Uri");
        }
    }
}

#[test]
fn plain_http_is_an_opt_in_per_host_and_never_for_globus() {
    let config = crate::app::GlobusAppConfig::default()
        .with_plain_http_host("Stage.Example.ORG.")
        .with_plain_http_host("transfer.api.globus.org")
        .with_plain_http_host("x.GLOBUSONLINE.org");
    assert_eq!(
        config.plain_http_hosts,
        BTreeSet::from(["stage.example.org".to_owned()])
    );
    let allowed = &config.plain_http_hosts;
    let verdict = |raw: &str| TokenOrigin::of_url(&Url::parse(raw).unwrap(), allowed);
    assert!(verdict("http://stage.example.org/").is_ok());
    assert!(verdict("http://STAGE.example.org./").is_ok());
    assert!(verdict("http://stage%2eexample.org/").is_ok());
    assert!(matches!(
        verdict("http://other.example.org/"),
        Err(TokenOriginError::Cleartext { host }) if host == "other.example.org"
    ));
    assert!(matches!(
        verdict("http://transfer.api.globus.org./"),
        Err(TokenOriginError::CleartextToGlobus { host }) if host == "transfer.api.globus.org"
    ));
}

#[test]
fn destinations_match_by_normalised_origin() {
    let none = BTreeSet::new();
    let mut destinations = TokenDestinations::new(none);
    destinations.insert_service(
        &Url::parse("https://transfer.api.globus.org/").unwrap(),
        "transfer.api.globus.org",
    );
    destinations.insert_authority("GCS.Example.org", "gcs-rs");
    destinations.insert_authority("127.0.0.1:5000", "local-rs");
    let resolve = |raw: &str| destinations.resolve(&raw.parse().unwrap());
    assert_eq!(
        resolve("https://TRANSFER.api.globus.org./x"),
        Ok("transfer.api.globus.org")
    );
    // (`http::Uri` refuses a percent-encoded host: such a URL never
    // reaches an authorized client.)
    assert!(
        "https://transfer%2eapi.globus.org/x"
            .parse::<http::Uri>()
            .is_err()
    );
    assert!(matches!(
        resolve("http://transfer.api.globus.org:443/x"),
        Err(DestinationError::Refused(
            TokenOriginError::CleartextToGlobus { .. }
        ))
    ));
    // Another port is another origin.
    assert!(matches!(
        resolve("https://transfer.api.globus.org:8443/x"),
        Err(DestinationError::Unknown { .. })
    ));
    assert_eq!(resolve("https://gcs.example.org./x"), Ok("gcs-rs"));
    assert!(matches!(
        resolve("https://gcs.example.org:8443/x"),
        Err(DestinationError::Unknown { .. })
    ));
    assert!(matches!(
        resolve("http://gcs.example.org/x"),
        Err(DestinationError::Refused(
            TokenOriginError::Cleartext { .. }
        ))
    ));
    assert_eq!(resolve("http://127.0.0.1:5000/x"), Ok("local-rs"));
    assert_eq!(resolve("http://0x7f000001:5000/x"), Ok("local-rs"));
    // A look-alike is another host.
    assert!(matches!(
        resolve("https://transfer.api.xn--glbus-4qa.org/x"),
        Err(DestinationError::Unknown { .. })
    ));
}

#[test]
fn normalisation() {
    assert_eq!(normalize_host("A.B.").as_deref(), Some("a.b"));
    assert_eq!(normalize_host("a%2Eb").as_deref(), Some("a.b"));
    assert_eq!(normalize_host("0x7f.1").as_deref(), Some("127.0.0.1"));
    assert_eq!(normalize_host("[::1]").as_deref(), Some("[::1]"));
    assert_eq!(
        normalize_host("BÜCHER.de").as_deref(),
        Some("xn--bcher-kva.de")
    );
    assert_eq!(normalize_host("a b"), None);
    assert!(is_globus_production("transfer.api.globus.org"));
    assert!(is_globus_production("globusonline.org"));
    assert!(!is_globus_production("notglobus.org"));
    assert!(!is_globus_production("globus.org.example.com"));
}

#[test]
fn a_request_is_under_its_base_by_normalised_origin_and_path() {
    let under = |base: &str, url: &str| {
        TokenOrigin::is_under(&Url::parse(base).unwrap(), &Url::parse(url).unwrap())
    };
    assert!(under(
        "https://h.example.org/api/",
        "https://H.example.org./api/x"
    ));
    assert!(under("https://[::1]:8443/", "https://[0:0::1]:8443/x"));
    assert!(under("http://127.0.0.1:9000/", "http://0x7f000001:9000/x"));
    assert!(!under(
        "https://h.example.org/api/",
        "https://h.example.org/other"
    ));
    assert!(!under(
        "https://h.example.org/",
        "http://h.example.org:443/x"
    ));
    assert!(!under(
        "https://h.example.org/",
        "https://h.example.org:8443/x"
    ));
    assert!(!under(
        "https://h.example.org/",
        "https://user@h.example.org/x"
    ));
    assert!(!under(
        "https://h.example.org/",
        "https://h.example.org.evil.com/x"
    ));
}

#[test]
fn a_mapped_ipv6_authority_keeps_its_port() {
    let mut destinations = TokenDestinations::new(BTreeSet::new());
    destinations.insert_authority("[::1]:8080", "v6-rs");
    let resolve = |raw: &str| destinations.resolve(&raw.parse().unwrap());
    assert_eq!(resolve("http://[::1]:8080/x"), Ok("v6-rs"));
    assert!(matches!(
        resolve("http://[::1]:8081/x"),
        Err(DestinationError::Unknown { .. })
    ));
}
