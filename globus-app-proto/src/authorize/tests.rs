use proptest::prelude::*;
use url::Url;

use super::*;

fn base() -> Url {
    Url::parse("https://auth.globus.org/").unwrap()
}

/// A state with a chosen value, for comparing against reference URLs.
fn fixed_state(value: &str) -> OAuthState {
    OAuthState(value.to_owned())
}

#[test]
fn native_url_matches_the_python_sdk_byte_for_byte() {
    let pkce = Pkce::from_verifier(&"a".repeat(43)).unwrap();
    let state = fixed_state("st");
    let params = AuthorizationParameters {
        session_required_identities: Some(vec!["a".into(), "b".into()]),
        session_required_single_domain: Some(vec!["x.edu".into()]),
        session_required_policies: Some(vec!["p1".into()]),
        session_required_mfa: Some(true),
        session_message: Some("hi there".into()),
        prompt: Some("login".into()),
        ..Default::default()
    };
    let extra = [
        ("state".to_owned(), "override".to_owned()),
        ("z".to_owned(), "é*".to_owned()),
    ];
    let url = AuthorizeRequest {
        client_id: "11111111-1111-1111-1111-111111111111",
        redirect_uri: "https://auth.globus.org/v2/web/auth-code",
        scope: "openid urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/abc/data_access]",
        state: &state,
        pkce: Some(&pkce),
        refresh_tokens: true,
        prefill_named_grant: Some("My App on host"),
        params: &params,
        extra_query: &extra,
    }
    .url(&base());
    // Printed by globus-sdk 4.10.0 for the same inputs (PYTHONHASHSEED=0:
    // it appends the three comma-joined keys in its set's order).
    assert_eq!(
        url.as_str(),
        "https://auth.globus.org/v2/oauth2/authorize?client_id=11111111-1111-1111-1111-111111111111&redirect_uri=https%3A%2F%2Fauth.globus.org%2Fv2%2Fweb%2Fauth-code&scope=openid+urn%3Aglobus%3Aauth%3Ascope%3Atransfer.api.globus.org%3Aall%5B%2Ahttps%3A%2F%2Fauth.globus.org%2Fscopes%2Fabc%2Fdata_access%5D&state=override&response_type=code&access_type=offline&code_challenge=ZtNPunH49FD35FWYhT5Tv8I7vRKQJ8uxMaL0_9eHjNA&code_challenge_method=S256&prefill_named_grant=My+App+on+host&session_required_mfa=True&session_message=hi+there&prompt=login&z=%C3%A9%2A&session_required_identities=a%2Cb&session_required_single_domain=x.edu&session_required_policies=p1"
    );
}

#[test]
fn confidential_url_has_no_pkce_renders_false_and_drops_empty_lists() {
    let state = fixed_state("_default");
    let params = AuthorizationParameters {
        session_required_mfa: Some(false),
        session_required_identities: Some(vec![]),
        ..Default::default()
    };
    let url = AuthorizeRequest {
        client_id: "22222222-2222-2222-2222-222222222222",
        redirect_uri: "https://example.com/cb",
        scope: "openid",
        state: &state,
        pkce: None,
        refresh_tokens: false,
        prefill_named_grant: None,
        params: &params,
        extra_query: &[],
    }
    .url(&base());
    assert_eq!(
        url.as_str(),
        "https://auth.globus.org/v2/oauth2/authorize?client_id=22222222-2222-2222-2222-222222222222&redirect_uri=https%3A%2F%2Fexample.com%2Fcb&scope=openid&state=_default&response_type=code&access_type=online&session_required_mfa=False"
    );
}

#[test]
fn authorize_url_keeps_a_base_path() {
    let state = fixed_state("s");
    let url = AuthorizeRequest {
        client_id: "c",
        redirect_uri: "r",
        scope: "openid",
        state: &state,
        pkce: None,
        refresh_tokens: false,
        prefill_named_grant: None,
        params: &AuthorizationParameters::default(),
        extra_query: &[],
    }
    .url(&Url::parse("http://127.0.0.1:9/prefix/").unwrap());
    assert!(
        url.as_str()
            .starts_with("http://127.0.0.1:9/prefix/v2/oauth2/authorize?client_id=c&")
    );
}

#[test]
fn pkce_matches_rfc_7636_appendix_b() {
    let random: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    let pkce = Pkce::from_random_bytes(&random);
    assert_eq!(
        pkce.verifier().secret(),
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(
        pkce.challenge(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn invalid_verifiers_are_rejected_with_the_reference_messages() {
    assert_eq!(
        Pkce::from_verifier("short").unwrap_err().to_string(),
        "verifier must be 43-128 characters long: 5"
    );
    assert_eq!(
        Pkce::from_verifier(&"a".repeat(129)),
        Err(PkceError::Length(129))
    );
    assert_eq!(
        Pkce::from_verifier(&format!("{}!", "a".repeat(43)))
            .unwrap_err()
            .to_string(),
        "verifier contained invalid characters"
    );
    assert!(Pkce::from_verifier(&"a~_.-".repeat(10)).is_ok());
}

#[test]
fn state_is_random_per_input_and_compared_exactly() {
    let a = OAuthState::from_random_bytes(&[1; 32]);
    let b = OAuthState::from_random_bytes(&[2; 32]);
    assert_ne!(a, b);
    assert_eq!(a.as_str().len(), 43);
    assert!(a.matches(a.as_str()));
    assert!(!a.matches(b.as_str()));
    assert!(!a.matches(&a.as_str()[1..]));
    assert!(!format!("{a:?}").contains(a.as_str()));
}

#[test]
fn redirects_are_checked_for_state_errors_and_duplicates() {
    let state = OAuthState::from_random_bytes(&[3; 32]);
    let s = state.as_str();
    assert_eq!(
        parse_redirect_query(&format!("state={s}&code=c%2B1"), &state)
            .unwrap()
            .secret(),
        "c+1"
    );
    assert_eq!(
        parse_redirect_query("code=c", &state),
        Err(RedirectError::MissingState)
    );
    assert_eq!(
        parse_redirect_query(&format!("state={s}"), &state),
        Err(RedirectError::MissingCode)
    );
    assert_eq!(
        parse_redirect_query(&format!("code=a&code=b&state={s}"), &state),
        Err(RedirectError::DuplicateParameter("code".into()))
    );
    assert_eq!(
        parse_redirect_query("error=access_denied&state=forged", &state),
        Err(RedirectError::StateMismatch)
    );
    let denied = parse_redirect_query(
        &format!("error=access_denied&error_description=User+declined&state={s}"),
        &state,
    )
    .unwrap_err();
    assert_eq!(
        denied,
        RedirectError::Denied {
            error: OAuthErrorCode::AccessDenied,
            description: Some("User declined".into())
        }
    );
    assert_eq!(
        denied.to_string(),
        "login failed: access_denied (User declined)"
    );
    // An error without our state proves nothing (see
    // a_redirect_without_our_state_is_untrusted_even_with_an_error).
    assert_eq!(
        parse_redirect_query("error=bad_login", &state),
        Err(RedirectError::MissingState)
    );
    assert_eq!(
        parse_redirect_query(&format!("code=a%20b&state={s}"), &state),
        Err(RedirectError::InvalidCode)
    );
}

#[test]
fn pasted_codes_are_trimmed_and_validated() {
    assert_eq!(parse_pasted_code("\tcode\r\n").unwrap().secret(), "code");
    assert_eq!(parse_pasted_code(""), Err(RedirectError::InvalidCode));
    assert_eq!(
        parse_pasted_code("two words"),
        Err(RedirectError::InvalidCode)
    );
    assert_eq!(
        parse_pasted_code("a\u{7}b"),
        Err(RedirectError::InvalidCode)
    );
}

proptest! {
    #[test]
    fn quote_plus_round_trips_through_form_decoding(value in "\\PC{0,40}") {
        let encoded = urlencode([("k", value.as_str())]);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"%+_.-~=".contains(&b)));
        let decoded: Vec<(String, String)> = url::form_urlencoded::parse(encoded.as_bytes()).into_owned().collect();
        prop_assert_eq!(decoded, vec![("k".to_owned(), value)]);
    }

    #[test]
    fn redirect_parsing_never_panics(query in "\\PC{0,80}") {
        let state = OAuthState::from_random_bytes(&[0; 32]);
        let _ = parse_redirect_query(&query, &state);
    }
}

#[test]
fn a_redirect_without_our_state_is_untrusted_even_with_an_error() {
    let state = OAuthState::from_random_bytes(&[9; 32]);
    // A forged error, without state or with another one: not a verdict.
    assert_eq!(
        parse_redirect_query("error=access_denied", &state),
        Err(RedirectError::MissingState)
    );
    assert_eq!(
        parse_redirect_query("error=access_denied&state=forged", &state),
        Err(RedirectError::StateMismatch)
    );
    assert_eq!(
        parse_redirect_query("code=abc", &state),
        Err(RedirectError::MissingState)
    );
    // With our state, the error stands.
    let denied = format!("error=access_denied&state={}", state.as_str());
    assert!(matches!(
        parse_redirect_query(&denied, &state),
        Err(RedirectError::Denied { .. })
    ));
}

#[test]
fn a_pasted_address_or_padded_code_yields_the_code() {
    for pasted in [
        "abc-123",
        "  abc-123 \t\n",
        "https://auth.globus.org/v2/web/auth-code?code=abc-123",
        "\thttps://auth.globus.org/v2/web/auth-code?state=s&code=abc-123\r\n",
        "http://127.0.0.1:8000/?code=abc-123&state=s",
    ] {
        assert_eq!(
            parse_pasted_code(pasted).unwrap().secret(),
            "abc-123",
            "{pasted:?}"
        );
    }
    assert_eq!(
        parse_pasted_code("https://auth.globus.org/v2/web/auth-code?state=s"),
        Err(RedirectError::MissingCode)
    );
    assert_eq!(
        parse_pasted_code("https://example.org/?code=a&code=b"),
        Err(RedirectError::DuplicateParameter("code".into()))
    );
    assert_eq!(parse_pasted_code("ab cd"), Err(RedirectError::InvalidCode));
}
