use super::*;

fn base() -> Url {
    Url::parse("https://auth.globus.org/").unwrap()
}

fn native() -> LoginClient {
    LoginClient::native("cid", base())
}

fn confidential() -> LoginClient {
    LoginClient::confidential("cid", ClientSecret::new("s3cr:t"), base())
}

fn body(request: &AuthRequest) -> &str {
    std::str::from_utf8(request.as_http().body()).unwrap()
}

fn header<'a>(request: &'a AuthRequest, name: &str) -> Option<&'a str> {
    request
        .as_http()
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap())
}

#[test]
fn native_code_exchange_sends_the_pkce_form_without_authentication() {
    let code = AuthorizationCode::new("the code");
    let verifier = PkceVerifier::new("v".repeat(43));
    let request = native()
        .exchange_code(
            &code,
            Some(&verifier),
            "https://auth.globus.org/v2/web/auth-code",
        )
        .unwrap();
    assert_eq!(request.as_http().method(), http::Method::POST);
    assert_eq!(
        request.as_http().uri(),
        "https://auth.globus.org/v2/oauth2/token"
    );
    assert_eq!(
        body(&request),
        format!(
            "client_id=cid&grant_type=authorization_code&code=the+code&code_verifier={}&redirect_uri=https%3A%2F%2Fauth.globus.org%2Fv2%2Fweb%2Fauth-code",
            "v".repeat(43)
        )
    );
    assert_eq!(header(&request, "authorization"), None);
    assert_eq!(
        header(&request, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(&request, "accept"), Some("application/json"));
    assert_eq!(
        native().exchange_code(&code, None, "r").unwrap_err(),
        RequestError::MissingPkceVerifier
    );
}

#[test]
fn confidential_requests_use_basic_authentication() {
    let request = confidential()
        .exchange_code(&AuthorizationCode::new("c"), None, "https://example.com/cb")
        .unwrap();
    assert_eq!(
        body(&request),
        "grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fexample.com%2Fcb"
    );
    // base64("cid:s3cr:t"), the id and secret not form-encoded first.
    assert_eq!(
        header(&request, "authorization"),
        Some("Basic Y2lkOnMzY3I6dA==")
    );
    assert!(request.as_http().headers()["authorization"].is_sensitive());

    let refresh = confidential().refresh(&RefreshToken::new("rt")).unwrap();
    assert_eq!(body(&refresh), "refresh_token=rt&grant_type=refresh_token");

    let cc = confidential()
        .client_credentials("openid urn:x:all[*y]")
        .unwrap();
    assert_eq!(
        body(&cc),
        "grant_type=client_credentials&scope=openid+urn%3Ax%3Aall%5B%2Ay%5D"
    );
    assert_eq!(
        native().client_credentials("openid").unwrap_err(),
        RequestError::ConfidentialClientRequired
    );
    assert_eq!(
        confidential().client_credentials("  ").unwrap_err(),
        RequestError::EmptyScopes
    );
}

#[test]
fn basic_credentials_are_utf8_base64() {
    let client = LoginClient::confidential("cïd", ClientSecret::new("sé"), base());
    let request = client.refresh(&RefreshToken::new("r")).unwrap();
    assert_eq!(
        header(&request, "authorization"),
        Some("Basic Y8OvZDpzw6k=")
    );
}

#[test]
fn dependent_token_forms_follow_the_reference() {
    let token = AccessToken::new("tok");
    let plain = confidential()
        .dependent_tokens(&token, false, None)
        .unwrap();
    assert_eq!(
        body(&plain),
        "grant_type=urn%3Aglobus%3Aauth%3Agrant_type%3Adependent_token&token=tok"
    );
    let full = confidential()
        .dependent_tokens(&token, true, Some("a b"))
        .unwrap();
    assert_eq!(
        body(&full),
        "grant_type=urn%3Aglobus%3Aauth%3Agrant_type%3Adependent_token&token=tok&access_type=offline&scope=a+b"
    );
    assert!(native().dependent_tokens(&token, false, None).is_err());
}

#[test]
fn revoke_sends_client_id_only_for_native_clients() {
    let n = native().revoke("tok").unwrap();
    assert_eq!(
        n.as_http().uri(),
        "https://auth.globus.org/v2/oauth2/token/revoke"
    );
    assert_eq!(
        n.form_fields(),
        [
            ("token".into(), "tok".into()),
            ("client_id".into(), "cid".into())
        ]
    );
    let c = confidential().revoke("tok").unwrap();
    assert_eq!(c.form_fields(), [("token".to_owned(), "tok".to_owned())]);
    assert!(header(&c, "authorization").unwrap().starts_with("Basic "));
}

#[test]
fn native_refresh_sends_client_id_last() {
    let request = native().refresh(&RefreshToken::new("rt")).unwrap();
    assert_eq!(
        body(&request),
        "refresh_token=rt&grant_type=refresh_token&client_id=cid"
    );
}

#[test]
fn consents_openid_and_jwks_are_gets() {
    let consents = native()
        .consents("id-1", false, &AccessToken::new("AT"))
        .unwrap();
    assert_eq!(consents.as_http().method(), http::Method::GET);
    assert_eq!(
        consents.as_http().uri(),
        "https://auth.globus.org/v2/api/identities/id-1/consents?all=False"
    );
    assert_eq!(header(&consents, "authorization"), Some("Bearer AT"));
    assert!(consents.as_http().headers()["authorization"].is_sensitive());
    let all = native()
        .consents("a/b", true, &AccessToken::new("AT"))
        .unwrap();
    assert_eq!(
        all.as_http().uri(),
        "https://auth.globus.org/v2/api/identities/a%2Fb/consents?all=True"
    );
    // An id from outside stays one segment of the route, or is refused.
    let escaping = native()
        .consents("..\\x\t", true, &AccessToken::new("AT"))
        .unwrap();
    assert_eq!(
        escaping.as_http().uri(),
        "https://auth.globus.org/v2/api/identities/..%5Cx%09/consents?all=True"
    );
    for dots in ["", ".", ".."] {
        assert!(matches!(
            native().consents(dots, true, &AccessToken::new("AT")),
            Err(RequestError::InvalidIdentityId)
        ));
    }

    let oidc = native().openid_configuration().unwrap();
    assert_eq!(
        oidc.as_http().uri(),
        "https://auth.globus.org/.well-known/openid-configuration"
    );

    // No credentials go to the JWKS URI, even for a confidential client.
    let jwks = confidential()
        .jwks("https://auth.globus.org/jwk.json")
        .unwrap();
    assert_eq!(header(&jwks, "authorization"), None);
    assert!(matches!(
        confidential().jwks("file:///etc/passwd"),
        Err(RequestError::InvalidUrl(_))
    ));
    assert!(native().jwks("not a url").is_err());
}

#[test]
fn user_agent_names_the_library_and_app() {
    let request = native()
        .with_app_name("My App\n")
        .openid_configuration()
        .unwrap();
    assert_eq!(
        header(&request, "user-agent").unwrap(),
        format!("{USER_AGENT_PREFIX}/My App?")
    );
    assert!(
        header(&request, "x-globus-client-info")
            .unwrap()
            .starts_with("product=globus-app-rs,version=")
    );
}

#[test]
fn the_native_default_redirect_joins_any_base() {
    assert_eq!(
        native().default_native_redirect_uri(),
        "https://auth.globus.org/v2/web/auth-code"
    );
    let local = LoginClient::native("c", Url::parse("http://127.0.0.1:8000/").unwrap());
    assert_eq!(
        local.default_native_redirect_uri(),
        "http://127.0.0.1:8000/v2/web/auth-code"
    );
}

#[test]
fn authorize_url_for_clients_picks_pkce_and_prefill_by_client_type() {
    let state = OAuthState::from_random_bytes(&[1; 32]);
    let pkce = Pkce::from_random_bytes(&[2; 32]);
    let params = AuthorizationParameters::default();
    let n = native().authorize_url(
        "r",
        "openid",
        &state,
        &pkce,
        false,
        Some("App on host"),
        &params,
    );
    assert!(n.as_str().contains("code_challenge_method=S256"));
    assert!(n.as_str().contains("prefill_named_grant=App+on+host"));
    let c = confidential().authorize_url(
        "r",
        "openid",
        &state,
        &pkce,
        false,
        Some("App on host"),
        &params,
    );
    assert!(!c.as_str().contains("code_challenge"));
    assert!(!c.as_str().contains("prefill_named_grant"));
}

#[test]
fn debug_never_shows_bodies_or_credentials() {
    let request = confidential()
        .exchange_code(&AuthorizationCode::new("SECRET_CODE"), None, "r")
        .unwrap();
    let debug = format!("{request:?}");
    assert!(!debug.contains("SECRET_CODE"), "{debug}");
    assert!(!debug.contains("Basic"), "{debug}");
    assert!(!format!("{:?}", confidential()).contains("s3cr:t"));
}
