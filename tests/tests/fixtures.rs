//! Every recorded Globus Auth response parsed through the public API.

use globus_app_proto::UnixTime;
use globus_app_proto::auth_error::{ErrorAdvice, OAuthErrorCode};
use globus_app_proto::consent::ConsentForest;
use globus_app_proto::id_token::{Jwks, OidcConfiguration};
use globus_app_proto::response::{
    ResponseError, parse_dependent_token_response, parse_json, parse_token_response,
};
use globus_app_tests::fixture_response;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

#[test]
fn code_exchange_responses_split_by_resource_server() {
    let (response, _) = fixture_response("token_authorization_code_default.json");
    let parsed = parse_token_response(&response, NOW).unwrap();
    let transfer = parsed.token_for("transfer.api.globus.org").unwrap();
    assert_eq!(transfer.access_token.secret(), "transfer_access_token");
    assert_eq!(transfer.expires_at, NOW.saturating_add_secs(172_800));
    assert!(parsed.id_token().is_none());

    let (response, _) = fixture_response("token_authorization_code_openid.json");
    let parsed = parse_token_response(&response, NOW).unwrap();
    assert!(parsed.id_token().is_some());

    let (response, _) = fixture_response("token_authorization_code_with_real_id_token.json");
    let parsed = parse_token_response(&response, NOW).unwrap();
    let servers: Vec<&str> = parsed
        .tokens()
        .iter()
        .map(|t| t.resource_server.as_str())
        .collect();
    assert_eq!(servers, ["auth.globus.org", "transfer.api.globus.org"]);
}

#[test]
fn client_credentials_response_has_one_token() {
    let (response, body) = fixture_response("token_client_credentials_default.json");
    let token = parse_token_response(&response, NOW)
        .unwrap()
        .into_single()
        .unwrap();
    assert_eq!(token.resource_server, body["resource_server"]);
    assert_eq!(token.access_token.secret(), body["access_token"]);
    assert_eq!(token.refresh_token, None);
}

#[test]
fn dependent_token_responses_are_arrays() {
    for (name, refresh) in [
        ("token_dependent_tokens_groups.json", false),
        ("token_dependent_tokens_groups_with_refresh.json", true),
    ] {
        let (response, _) = fixture_response(name);
        let parsed = parse_dependent_token_response(&response, NOW).unwrap();
        let groups = parsed.token_for("groups.api.globus.org").unwrap();
        assert_eq!(groups.refresh_token.is_some(), refresh, "{name}");
        assert_eq!(groups.identity_id, None);
        // The object parser refuses the array shape with a typed error.
        assert!(matches!(
            parse_token_response(&response, NOW),
            Err(ResponseError::InvalidField { .. })
        ));
    }
}

#[test]
fn invalid_grant_means_log_in_again() {
    let (response, _) = fixture_response("token_invalid_grant_401.json");
    let err = parse_token_response(&response, NOW).unwrap_err();
    assert!(err.is_invalid_grant());
    let ResponseError::Api(api) = err else {
        panic!("expected an API error");
    };
    assert_eq!(api.status, 401);
    assert_eq!(api.code, None);
    assert_eq!(api.advice(), ErrorAdvice::LogInAgain);
}

#[test]
fn userinfo_errors_carry_globus_codes_and_request_ids() {
    for (name, status) in [
        ("userinfo_unauthorized_401.json", 401),
        ("userinfo_forbidden_403.json", 403),
    ] {
        let (response, body) = fixture_response(name);
        let Err(ResponseError::Api(api)) = parse_json(&response) else {
            panic!("{name}: expected an API error");
        };
        assert_eq!(api.status, status);
        // Both recorded bodies say `"error": "unauthorized"`.
        assert_eq!(api.error, Some(OAuthErrorCode::Unauthorized));
        assert_eq!(api.code.as_deref(), body["errors"][0]["code"].as_str());
        assert_eq!(api.request_id.as_deref(), body["errors"][0]["id"].as_str());
    }
}

#[test]
fn revoke_introspect_consents_and_oidc_documents_parse() {
    let (revoke, _) = fixture_response("token_revoke.json");
    assert_eq!(parse_json(&revoke).unwrap()["active"], false);

    let (introspect, _) = fixture_response("token_introspect.json");
    assert!(
        parse_json(&introspect).unwrap()["active"]
            .as_bool()
            .unwrap()
    );

    let (consents, _) = fixture_response("get_consents.json");
    let forest = ConsentForest::from_json(&parse_json(&consents).unwrap()).unwrap();
    assert_eq!(forest.consents().len(), 2);
    assert_eq!(forest.roots().count(), 1);

    let (configuration, _) = fixture_response("oidc_openid_configuration.json");
    let configuration = OidcConfiguration::from_json(&parse_json(&configuration).unwrap()).unwrap();
    assert_eq!(configuration.jwks_uri, "https://auth.globus.org/jwk.json");
    assert_eq!(
        configuration.id_token_signing_alg_values_supported,
        ["RS512"]
    );

    let (jwks, _) = fixture_response("oidc_jwks.json");
    assert_eq!(
        Jwks::from_json(&parse_json(&jwks).unwrap())
            .unwrap()
            .keys()
            .len(),
        1
    );
}
