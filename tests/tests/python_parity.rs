//! Parity with the Python reference (`GLOBUS_APP_PYTHON`): the authorize
//! URL, and scope parsing and merging against its own `ScopeParser`, on
//! generated scope strings whose names start or end with whitespace (the
//! case where only the last name of a string is stripped). The merge is
//! given both sides' lists in the same order: the reference's merge strips
//! whichever scope comes last.

use std::io::Write;
use std::process::{Command, Stdio};

use globus_app_proto::scope::{Scope, merge_scopes, parse_scopes};
use serde_json::{Value, json};

const SCRIPT: &str = r"
import json, sys
from globus_sdk.scopes import Scope, ScopeParser

def tree(scope):
    return [scope.scope_string, scope.optional, [tree(d) for d in scope.dependencies]]

def scope(tree):
    name, optional, dependencies = tree
    return Scope(name, optional=optional, dependencies=tuple(scope(d) for d in dependencies))

def attempt(action):
    try:
        return [tree(s) for s in action()]
    except Exception:
        return None

results = []
for a, b, rust_a, rust_b in json.load(sys.stdin):
    merged = None
    if rust_a is not None and rust_b is not None:
        # Rust's parsed lists, in Rust's order: the reference's own parse
        # orders by its set iteration, which varies between runs.
        merged = attempt(lambda: ScopeParser.merge_scopes(
            [scope(t) for t in rust_a], [scope(t) for t in rust_b]))
    results.append([attempt(lambda: ScopeParser.parse(a)), attempt(lambda: ScopeParser.parse(b)), merged])
json.dump(results, sys.stdout)
";

/// Deterministic scope strings: names with edge whitespace, optional
/// markers and one level of brackets.
fn generated_pairs(count: usize) -> Vec<(String, String)> {
    const NAMES: [&str; 6] = ["a", "dash-ed\t", "\tb", "c\u{1f}", "a\u{a0}", "\t"];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap() % bound
    };
    let mut scope_string = move || {
        let mut out = String::new();
        for _ in 0..=next(3) {
            if next(4) == 0 {
                out.push('*');
            }
            out.push_str(NAMES[next(NAMES.len())]);
            if next(3) == 0 {
                out.push('[');
                out.push_str(NAMES[next(NAMES.len())]);
                out.push(']');
            }
            out.push(' ');
        }
        if next(2) == 0 {
            out.pop();
        }
        out
    };
    (0..count)
        .map(|_| (scope_string(), scope_string()))
        .collect()
}

/// Rust's parse of `input` as the script's trees, or `null`.
fn tree_of(input: &str) -> Value {
    fn tree(scope: &Scope) -> Value {
        json!([
            scope.name(),
            scope.optional(),
            scope.dependencies().iter().map(tree).collect::<Vec<_>>()
        ])
    }
    parse_scopes(input).map_or(Value::Null, |scopes| scopes.iter().map(tree).collect())
}

fn from_tree(tree: &Value) -> Scope {
    let name = tree[0].as_str().unwrap();
    Scope::new(name)
        .unwrap()
        .with_optional(tree[1].as_bool().unwrap())
        .with_dependencies(tree[2].as_array().unwrap().iter().map(from_tree))
}

/// Equal as multisets (the Python SDK's output order is its own).
fn same_scopes(rust: &[Scope], python: &Value) -> bool {
    let mut python: Vec<Scope> = python.as_array().unwrap().iter().map(from_tree).collect();
    rust.len() == python.len()
        && rust.iter().all(|scope| {
            python
                .iter()
                .position(|p| p == scope)
                .map(|i| python.swap_remove(i))
                .is_some()
        })
}

#[test]
fn parse_and_merge_match_the_python_sdk_on_edge_whitespace() {
    let Some(python) = globus_app_tests::python_reference() else {
        return;
    };
    let pairs = generated_pairs(1500);
    let mut child = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let cases: Vec<Value> = pairs
        .iter()
        .map(|(a, b)| json!([a, b, tree_of(a), tree_of(b)]))
        .collect();
    let input = serde_json::to_vec(&cases).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results.len(), pairs.len());
    let mut merges_compared = 0;
    for ((a, b), result) in pairs.iter().zip(&results) {
        let (parsed_a, parsed_b) = (parse_scopes(a), parse_scopes(b));
        for (rust, python, input) in [(&parsed_a, &result[0], a), (&parsed_b, &result[1], b)] {
            match rust {
                Ok(scopes) => assert!(same_scopes(scopes, python), "parse of {input:?}"),
                Err(_) => assert!(python.is_null(), "only Rust rejects {input:?}"),
            }
        }
        let (Ok(parsed_a), Ok(parsed_b)) = (parsed_a, parsed_b) else {
            continue;
        };
        match merge_scopes(&parsed_a, &parsed_b) {
            Ok(merged) => assert!(
                same_scopes(&merged, &result[2]),
                "merge of {a:?} and {b:?}: {merged:?} against {}",
                result[2]
            ),
            Err(_) => assert!(result[2].is_null(), "only Rust rejects {a:?} + {b:?}"),
        }
        merges_compared += 1;
    }
    assert!(merges_compared > 1000, "{merges_compared} merges compared");
}

const AUTHORIZE_SCRIPT: &str = r#"
import sys, globus_sdk
client = globus_sdk.NativeAppAuthClient("11111111-1111-1111-1111-111111111111")
client.oauth2_start_flow(requested_scopes="openid urn:x:all[*urn:y]", verifier="a" * 43,
    refresh_tokens=True, prefill_named_grant="App on host", state="st")
print(client.oauth2_get_authorize_url(session_required_identities=["a", "b"],
    session_required_single_domain=[], session_required_policies=["p1"],
    session_required_mfa=False, session_message="hi", prompt="login", query_params={"z": "é"}))
"#;

#[test]
fn the_authorize_url_has_the_python_sdks_parameters_in_its_order() {
    use globus_app_proto::auth_params::AuthorizationParameters;
    use globus_app_proto::authorize::{AuthorizeRequest, OAuthState, Pkce};
    let Some(python) = globus_app_tests::python_reference() else {
        return;
    };
    let output = Command::new(python)
        .arg("-c")
        .arg(AUTHORIZE_SCRIPT)
        .output()
        .unwrap();
    assert!(output.status.success());
    let python_url = url::Url::parse(String::from_utf8(output.stdout).unwrap().trim()).unwrap();

    let pkce = Pkce::from_verifier(&"a".repeat(43)).unwrap();
    let state = OAuthState::from_random_bytes(&[0; 32]);
    let mut params = AuthorizationParameters::default();
    params.session_required_identities = Some(vec!["a".into(), "b".into()]);
    params.session_required_single_domain = Some(vec![]);
    params.session_required_policies = Some(vec!["p1".into()]);
    params.session_required_mfa = Some(false);
    params.session_message = Some("hi".into());
    params.prompt = Some("login".into());
    let extra = [
        ("state".to_owned(), "st".to_owned()),
        ("z".to_owned(), "é".to_owned()),
    ];
    let mut request = AuthorizeRequest::new(
        "11111111-1111-1111-1111-111111111111",
        "https://auth.globus.org/v2/web/auth-code",
        "openid urn:x:all[*urn:y]",
        &state,
        &params,
    );
    request.pkce = Some(&pkce);
    request.refresh_tokens = true;
    request.prefill_named_grant = Some("App on host");
    request.extra_query = &extra;
    let rust_url = request.url(&url::Url::parse("https://auth.globus.org/").unwrap());

    // The reference appends the comma-joined lists in its set's iteration
    // order, which varies between processes: those compare as a set, the
    // rest byte for byte and in order.
    let split = |url: &url::Url| {
        let query = url.query().unwrap().to_owned();
        let (mut ordered, mut lists): (Vec<String>, Vec<String>) =
            query.split('&').map(str::to_owned).partition(|pair| {
                !pair.starts_with("session_required_") || pair.starts_with("session_required_mfa")
            });
        lists.sort();
        ordered.push(lists.join("&"));
        (url.path().to_owned(), ordered)
    };
    assert_eq!(
        split(&rust_url),
        split(&python_url),
        "\n{rust_url}\n{python_url}"
    );
    assert!(
        rust_url
            .as_str()
            .ends_with("&session_required_identities=a%2Cb&session_required_policies=p1"),
        "{rust_url}"
    );
}
