use proptest::prelude::*;

use super::*;

fn strings(scopes: &[Scope]) -> Vec<String> {
    scopes.iter().map(ToString::to_string).collect()
}

fn parse_strings(input: &str) -> Vec<String> {
    strings(&parse_scopes(input).unwrap())
}

#[test]
fn rejects_the_reference_bad_inputs_with_its_messages() {
    let cases = [
        ("foo*", "ended in optional marker"),
        ("foo *", "ended in optional marker"),
        (
            "foo*[bar]",
            "a scope string must always follow an optional marker",
        ),
        (
            "foo *[bar]",
            "a scope string must always follow an optional marker",
        ),
        ("foo [bar*]", "'[' cannot have a preceding space"),
        ("foo * ", "'*' must not be followed by a space"),
        ("* foo", "'*' must not be followed by a space"),
        ("foo[]", "found empty brackets"),
        ("[foo]", "found '[' without a preceding scope string"),
        ("foo[[bar]]", "found double left-bracket"),
        ("foo[", "ended in left bracket"),
        ("foo[bar", "unclosed brackets, missing ']'"),
        ("foo]", "found ']' with no matching '[' preceding it"),
        ("foo bar]", "found ']' with no matching '[' preceding it"),
        ("foo[bar]]", "found ']' with no matching '[' preceding it"),
        (
            "foo[bar] baz]",
            "found ']' with no matching '[' preceding it",
        ),
        ("foo [bar]", "'[' cannot have a preceding space"),
        ("foo[bar]baz", "']' may only be followed by a space or ']'"),
        ("a[b]*c", "']' may only be followed by a space or ']'"),
        ("a[b][c]", "']' may only be followed by a space or ']'"),
    ];
    for (input, message) in cases {
        let err = parse_scopes(input).expect_err(input);
        assert_eq!(err.to_string(), message, "input {input:?}");
    }
}

#[test]
fn rejects_cycles() {
    for (input, involved) in [
        ("foo[foo]", "foo"),
        ("foo[bar[foo]]", "foo"),
        ("foo[bar[*baz[*bar]]]", "bar"),
        ("foo[bar[baz[foo]]]", "foo"),
        ("a[b] b[a]", "a"),
        ("foo[*foo]", "foo"),
    ] {
        assert_eq!(
            parse_scopes(input),
            Err(ScopeParseError::Cycle {
                scope: involved.into()
            }),
            "input {input:?}"
        );
    }
    assert_eq!(
        parse_scopes("foo[foo]").unwrap_err().to_string(),
        "the scope dependencies form a cycle through \"foo\""
    );
}

#[test]
fn empty_and_blank_strings_parse_to_nothing() {
    assert_eq!(parse_scopes("").unwrap(), vec![]);
    assert_eq!(parse_scopes("   ").unwrap(), vec![]);
    assert_eq!(
        Scope::parse("  "),
        Err(ScopeParseError::NotExactlyOneScope { found: 0 })
    );
}

#[test]
fn whitespace_that_carries_no_meaning_is_ignored() {
    assert_eq!(parse_strings("foo "), ["foo"]);
    assert_eq!(parse_strings(" foo"), ["foo"]);
    assert_eq!(parse_strings("foo[ bar]"), ["foo[bar]"]);
    assert_eq!(parse_strings("foo[ bar   *baz  ]"), ["foo[bar *baz]"]);
    // Trailing whitespace of any kind is stripped at the very end only.
    assert_eq!(parse_strings("foo\t\n"), ["foo"]);
    assert_eq!(parse_strings("foo\u{1f}"), ["foo"]);
}

#[test]
fn only_space_separates_scopes() {
    assert_eq!(parse_strings("foo\tbar"), ["foo\tbar"]);
    assert_eq!(parse_strings("foo\nbar baz"), ["foo\nbar", "baz"]);
}

#[test]
fn star_inside_a_word_starts_an_optional_scope() {
    // As the Python SDK does.
    assert_eq!(parse_strings("foo*bar"), ["foo", "*bar"]);
}

#[test]
fn duplicates_collapse_and_top_level_optionality_is_kept() {
    assert_eq!(parse_strings("foo foo"), ["foo"]);
    assert_eq!(parse_strings("foo *foo"), ["foo", "*foo"]);
}

#[test]
fn required_beats_optional_inside_brackets() {
    for (input, expected) in [
        ("foo[bar *bar]", "foo[bar]"),
        ("foo[*bar bar]", "foo[bar]"),
        ("foo[bar[baz]] foo[*bar]", "foo[bar[baz]]"),
        ("foo[*bar[baz]] foo[bar]", "foo[bar[baz]]"),
    ] {
        assert_eq!(parse_strings(input), [expected], "input {input:?}");
    }
}

#[test]
fn a_name_has_one_set_of_dependencies_across_the_string() {
    assert_eq!(parse_strings("a[b] c[b[d]]"), ["a[b[d]]", "c[b[d]]"]);
    assert_eq!(parse_strings("a[b[c]] a[b]"), ["a[b[c]]"]);
    assert_eq!(parse_strings("*a[b] a[c]"), ["*a[b c]", "a[b c]"]);
}

#[test]
fn output_order_follows_the_input() {
    assert_eq!(parse_strings("a[b c] a[d]"), ["a[b c d]"]);
    assert_eq!(parse_strings("z y x"), ["z", "y", "x"]);
}

#[test]
fn display_round_trips_nested_and_optional_scopes() {
    for input in [
        "top[foo bar]",
        "top[*subscope]",
        "top[mid[bottom]]",
        "*a[b[*c d] e]",
    ] {
        let scope = Scope::parse(input).unwrap();
        assert_eq!(scope.to_string(), input);
        assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope);
    }
}

#[test]
fn equality_ignores_dependency_order_but_not_content() {
    let parse = |s| Scope::parse(s).unwrap();
    assert_eq!(parse("a[b c]"), parse("a[c b]"));
    assert_eq!(parse("a[b[x y] c]"), parse("a[c b[y x]]"));
    assert_ne!(parse("a[b c]"), parse("a[b d]"));
    assert_ne!(parse("a[b]"), parse("a[*b]"));
    assert_ne!(parse("a"), parse("*a"));
    assert_ne!(parse("a[b[c]]"), parse("a[b[d]]"));

    let set: std::collections::HashSet<Scope> =
        [parse("a[b c]"), parse("a[c b]")].into_iter().collect();
    assert_eq!(set.len(), 1);
}

#[test]
fn scope_new_rejects_special_characters_and_evolvers_copy() {
    for bad in ["", "a b", "a[", "a]", "*a"] {
        assert!(matches!(
            Scope::new(bad),
            Err(ScopeParseError::InvalidScopeName { .. })
        ));
    }
    // Tabs are allowed in names, as in the Python SDK.
    assert!(Scope::new("a\tb").is_ok());
    let base = Scope::new("a").unwrap();
    let with = base.with_dependency(Scope::new("b").unwrap().with_optional(true));
    assert_eq!(base.to_string(), "a");
    assert_eq!(with.to_string(), "a[*b]");
    assert_eq!(
        with.with_dependencies([Scope::new("c").unwrap()])
            .to_string(),
        "a[*b c]"
    );
}

#[test]
fn merge_matches_the_reference_table() {
    let p = |s| parse_scopes(s).unwrap();
    assert_eq!(merge_scopes(&p("foo bar"), &p("foo baz")).unwrap().len(), 3);
    assert_eq!(
        strings(&merge_scopes(&p("foo[bar]"), &p("foo[baz]")).unwrap()),
        ["foo[bar baz]"]
    );
    assert_eq!(
        strings(&merge_scopes(&p("foo[bar]"), &p("foo[*bar]")).unwrap()),
        ["foo[bar]"]
    );
    assert_eq!(
        strings(&merge_scopes(&p("foo[bar]"), &p("*foo[baz]")).unwrap()),
        ["foo[bar baz]", "*foo[bar baz]"]
    );
    assert_eq!(
        strings(&merge_scopes(&p("*foo"), &p("foo")).unwrap()),
        ["*foo", "foo"]
    );
    assert!(matches!(
        merge_scopes(&p("a[b]"), &p("b[a]")),
        Err(ScopeParseError::Cycle { .. })
    ));
}

#[test]
fn merge_strips_the_last_name_as_the_reference_reparse_does() {
    let p = |s| parse_scopes(s).unwrap();
    // Parsed alone, the name keeps its tab (it is followed by a space).
    assert_eq!(p("dash-ed\t ")[0].name(), "dash-ed\t");
    // Written out as the last scope, the tab is the string's end.
    let merged = merge_scopes(&p("dash-ed\t "), &[]).unwrap();
    assert_eq!(strings(&merged), ["dash-ed"]);
    let merged = merge_scopes(&p("dash-ed\t "), &p("dash-ed")).unwrap();
    assert_eq!(strings(&merged), ["dash-ed\t", "dash-ed"]);
    let merged = merge_scopes(&p("dash-ed"), &p("dash-ed\t ")).unwrap();
    assert_eq!(strings(&merged), ["dash-ed"]);
    // A last name of whitespace alone vanishes, or ends in `*`.
    let blank = Scope::new("\t").unwrap();
    let merged = merge_scopes(&p("a"), std::slice::from_ref(&blank)).unwrap();
    assert_eq!(strings(&merged), ["a"]);
    assert_eq!(
        merge_scopes(&p("a"), &[blank.with_optional(true)]),
        Err(ScopeParseError::EndedInOptionalMarker)
    );
}

#[test]
fn merge_of_hand_built_scopes_follows_document_order() {
    let s = |n| Scope::new(n).unwrap();
    let a = s("a").with_dependencies([
        s("x").with_dependency(s("p")),
        s("y").with_dependency(s("x").with_dependency(s("q"))),
    ]);
    let merged = merge_scopes(std::slice::from_ref(&a), &[]).unwrap();
    let reparsed = parse_scopes(&a.to_string()).unwrap();
    assert_eq!(strings(&merged), strings(&reparsed));
    assert_eq!(strings(&merged), ["a[x[p q] y[x[p q]]]"]);
}

#[test]
fn well_known_strings_match_the_reference() {
    use well_known::*;
    assert_eq!(
        auth::VIEW_CONSENTS,
        urn_scope(auth::RESOURCE_SERVER, "view_consents")
    );
    assert_eq!(groups::ALL, urn_scope(groups::RESOURCE_SERVER, "all"));
    assert_eq!(search::SEARCH, urn_scope(search::RESOURCE_SERVER, "search"));
    assert_eq!(flows::RUN, url_scope(flows::CLIENT_ID, "run"));
    assert_eq!(timers::TIMER, url_scope(timers::RESOURCE_SERVER, "timer"));
    assert_eq!(compute::ALL, url_scope(compute::CLIENT_ID, "all"));
    assert_eq!(
        gcs_endpoint::manage_collections("ep"),
        "urn:globus:auth:scope:ep:manage_collections"
    );
    assert_eq!(
        gcs_collection::https("c"),
        "https://auth.globus.org/scopes/c/https"
    );
}

#[test]
fn a_100_000_level_chain_parses_displays_compares_and_drops() {
    let depth = 100_000;
    let mut input = String::new();
    for i in 0..depth {
        input.push('s');
        input.push_str(&i.to_string());
        input.push('[');
    }
    input.push_str("leaf");
    input.push_str(&"]".repeat(depth));
    let scope = Scope::parse(&input).unwrap();
    assert_eq!(scope.to_string(), input);
    let again = Scope::parse(&input).unwrap();
    assert_eq!(scope, again);
    drop(scope);
    drop(again);

    // The same depth with a cycle at the bottom is a typed error.
    let cyclic = input.replace("leaf", "s0");
    assert!(matches!(
        parse_scopes(&cyclic),
        Err(ScopeParseError::Cycle { .. })
    ));
    // And unclosed depth is a typed error too.
    assert_eq!(
        parse_scopes(&input[..input.len() - 1]),
        Err(ScopeParseError::UnclosedBrackets)
    );
}

#[test]
fn a_one_mebibyte_string_of_brackets_is_an_error_not_a_crash() {
    let input = "a[".repeat(512 * 1024);
    assert_eq!(
        parse_scopes(&input),
        Err(ScopeParseError::EndedInLeftBracket)
    );
    let wide = format!("a[{}]", "b ".repeat(512 * 1024));
    assert_eq!(parse_strings(&wide), ["a[b]"]);
}

#[test]
fn many_distinct_siblings_stay_distinct_and_ordered() {
    let names: Vec<String> = (0..500).map(|i| format!("d{i}")).collect();
    let input = format!("a[{}] a[{}]", names.join(" "), names.join(" "));
    let scope = Scope::parse(&input).unwrap();
    let deps: Vec<&str> = scope.dependencies().iter().map(Scope::name).collect();
    assert_eq!(deps, names);
}

fn arb_name() -> impl Strategy<Value = String> + Clone {
    // Names without special characters and without edge whitespace (which
    // the last-token strip would remove), including non-ASCII text.
    "[a-zA-Z0-9:/._\u{e9}\u{4e2d}-][a-zA-Z0-9:/._\t\u{e9}\u{4e2d}-]{0,10}[a-zA-Z0-9]"
}

/// Names that may start or end with whitespace (a tab, U+001F, a
/// no-break space) or be only whitespace.
fn arb_edgy_name() -> impl Strategy<Value = String> + Clone {
    "[ab\t\u{1f}\u{a0}]{1,4}"
}

fn arb_scope() -> impl Strategy<Value = Scope> {
    arb_scope_named(arb_name())
}

fn arb_scope_named(
    name: impl Strategy<Value = String> + Clone + 'static,
) -> impl Strategy<Value = Scope> {
    let leaf =
        (name.clone(), any::<bool>()).prop_map(|(n, o)| Scope::new(n).unwrap().with_optional(o));
    leaf.prop_recursive(4, 24, 4, move |inner| {
        (
            name.clone(),
            any::<bool>(),
            prop::collection::vec(inner, 1..4),
        )
            .prop_map(|(n, o, deps)| {
                Scope::new(n)
                    .unwrap()
                    .with_optional(o)
                    .with_dependencies(deps)
            })
    })
}

proptest! {
    #[test]
    fn the_flat_fast_path_equals_the_general_parser(input in "[ab \t\u{1f}]{0,40}") {
        prop_assert_eq!(parse_scopes(&input).unwrap(), parser::parse_general(&input).unwrap());
        let many = format!("{input} {}", (0..40).map(|i| format!("n{}", i % 23)).collect::<Vec<_>>().join(" "));
        prop_assert_eq!(parse_scopes(&many).unwrap(), parser::parse_general(&many).unwrap());
    }

    #[test]
    fn parse_never_panics(input in "\\PC{0,64}") {
        let _ = parse_scopes(&input);
    }

    #[test]
    fn parse_never_panics_on_grammar_soup(input in "[ab\\[\\]* \t]{0,40}") {
        let _ = parse_scopes(&input);
    }

    #[test]
    fn parse_of_display_is_identity_for_parsed_scopes(scopes in prop::collection::vec(arb_scope(), 0..5)) {
        // Normalise through the parser once (hand-built scopes may repeat a
        // name with different dependencies), then display must round-trip.
        if let Ok(parsed) = parse_scopes(&serialize_scopes(&scopes)) {
            let again = parse_scopes(&serialize_scopes(&parsed)).unwrap();
            prop_assert_eq!(&again, &parsed);
            prop_assert_eq!(serialize_scopes(&again), serialize_scopes(&parsed));
        }
    }

    #[test]
    fn merge_equals_parsing_both_lists_written_out(
        a in prop::collection::vec(arb_scope_named(arb_edgy_name()), 0..4),
        b in prop::collection::vec(arb_scope_named(arb_edgy_name()), 0..4),
    ) {
        let written = serialize_scopes(a.iter().chain(&b));
        prop_assert_eq!(merge_scopes(&a, &b), parse_scopes(&written));
    }

    #[test]
    fn merge_is_idempotent_and_order_insensitive_as_a_set(
        a in prop::collection::vec(arb_scope(), 0..4),
        b in prop::collection::vec(arb_scope(), 0..4),
    ) {
        let (Ok(ab), Ok(ba)) = (merge_scopes(&a, &b), merge_scopes(&b, &a)) else {
            // A cycle is reported for both orders.
            prop_assert!(merge_scopes(&a, &b).is_err() && merge_scopes(&b, &a).is_err());
            return Ok(());
        };
        let set = |v: &[Scope]| v.iter().cloned().collect::<std::collections::HashSet<_>>();
        prop_assert_eq!(set(&ab), set(&ba));
        let twice = merge_scopes(&ab, &ab).unwrap();
        prop_assert_eq!(&twice, &ab);
        let with_empty = merge_scopes(&ab, &[]).unwrap();
        prop_assert_eq!(&with_empty, &ab);
    }
}
