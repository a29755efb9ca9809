//! Path templates: parsing holes, rendering and encoding values, and refusing values that
//! would change the path's shape.

use patchbay_expr::{EvalError, Template, Vars};
use serde_json::{Value, json};

fn render(template: &str, input: Value) -> Result<String, EvalError> {
    Template::parse(template)
        .unwrap_or_else(|e| panic!("{template:?} does not parse: {e}"))
        .render_path(&input, &Vars::default())
}

#[test]
fn holes_are_replaced_by_their_first_output() {
    let steps = json!({"x": {"body": {"id": 99}}});
    let vars = Vars {
        steps: &steps,
        ..Vars::default()
    };
    let template = Template::parse("/customers/{.id}/orders/{$steps.x.body.id}").unwrap();
    assert_eq!(
        template.render_path(&json!({"id": "c-1"}), &vars).unwrap(),
        "/customers/c-1/orders/99"
    );
    assert_eq!(
        render("/a/{.[]}", json!(["first", "second"])).unwrap(),
        "/a/first"
    );
}

#[test]
fn literal_templates() {
    let template = Template::parse("/v1/charges").unwrap();
    assert!(template.is_literal());
    assert_eq!(template.source(), "/v1/charges");
    assert_eq!(template.holes().count(), 0);
    assert_eq!(
        template
            .render_path(&json!(null), &Vars::default())
            .unwrap(),
        "/v1/charges"
    );

    let template = Template::parse("/v1/{.id}").unwrap();
    assert!(!template.is_literal());
    assert_eq!(
        template.holes().map(|h| h.source()).collect::<Vec<_>>(),
        [".id"]
    );

    let template = Template::parse("").unwrap();
    assert!(template.is_literal());
    assert_eq!(
        template
            .render_path(&json!(null), &Vars::default())
            .unwrap(),
        ""
    );
}

#[test]
fn scalars_render_as_json_text() {
    assert_eq!(render("/n/{.}", json!(42)).unwrap(), "/n/42");
    assert_eq!(render("/n/{.}", json!(-7)).unwrap(), "/n/-7");
    assert_eq!(render("/n/{.}", json!(1.5)).unwrap(), "/n/1.5");
    assert_eq!(render("/n/{.}", json!(true)).unwrap(), "/n/true");
    assert_eq!(
        render("/n/{.}", json!(u64::MAX)).unwrap(),
        "/n/18446744073709551615"
    );
    assert_eq!(render("/s/{.}", json!("plain")).unwrap(), "/s/plain");
}

#[test]
fn values_are_encoded_as_one_path_segment() {
    assert_eq!(
        render("/files/{.}", json!("a/b c")).unwrap(),
        "/files/a%2Fb%20c"
    );
    assert_eq!(
        render("/q/{.}", json!("x?y=1#z")).unwrap(),
        "/q/x%3Fy%3D1%23z"
    );
    assert_eq!(render("/p/{.}", json!("%2F")).unwrap(), "/p/%252F");
    assert_eq!(render("/u/{.}", json!("é")).unwrap(), "/u/%C3%A9");
    assert_eq!(render("/k/{.}", json!("A-z_0.9~")).unwrap(), "/k/A-z_0.9~");
    // Literal parts are kept verbatim, including characters a value would have encoded.
    assert_eq!(render("/a b/{.}?x=1", json!("v")).unwrap(), "/a b/v?x=1");
}

#[test]
fn several_holes_in_one_segment() {
    assert_eq!(
        render("/r/{.a}-{.b}.json", json!({"a": "x", "b": 2})).unwrap(),
        "/r/x-2.json"
    );
}

#[test]
fn null_arrays_and_objects_are_not_scalars() {
    for (input, found) in [
        (json!({}), "null"),
        (json!({"id": [1]}), "array"),
        (json!({"id": {}}), "object"),
    ] {
        assert_eq!(
            render("/c/{.id}", input),
            Err(EvalError::NotScalar {
                hole: ".id".to_owned(),
                found
            })
        );
    }
    let err = render("/c/{ .id }", json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`{ .id }` produced null, expected a string, number or boolean"
    );
}

#[test]
fn values_that_would_change_the_path_are_refused() {
    for value in ["", ".", ".."] {
        assert_eq!(
            render("/customers/{.id}/orders", json!({"id": value})),
            Err(EvalError::UnsafeSegment {
                hole: ".id".to_owned(),
                value: value.to_owned()
            }),
            "{value:?}"
        );
        assert!(
            render("/customers/{.id}", json!({"id": value})).is_err(),
            "{value:?} at the end"
        );
        assert!(
            render("{.id}/x", json!({"id": value})).is_err(),
            "{value:?} at the start"
        );
    }
    // Dots or emptiness inside a longer segment change nothing.
    assert_eq!(render("/f/{.}.json", json!("..")).unwrap(), "/f/...json");
    assert_eq!(render("/f/v{.}", json!("")).unwrap(), "/f/v");
    assert_eq!(
        render("/f/{.a}{.b}", json!({"a": ".", "b": "."})),
        Err(EvalError::UnsafeSegment {
            hole: ".a".to_owned(),
            value: ".".to_owned()
        })
    );
    // Literal dot segments are the author's choice.
    assert_eq!(render("/a/../{.}", json!("b")).unwrap(), "/a/../b");
}

#[test]
fn braces_nest_inside_holes() {
    assert_eq!(render("/x/{ {a: 1}.a }", json!(null)).unwrap(), "/x/1");
    assert_eq!(
        render("/x/{ {a: {b: .}}.a.b }/y", json!("v")).unwrap(),
        "/x/v/y"
    );
}

#[test]
fn strings_inside_holes_may_contain_braces_and_quotes() {
    assert_eq!(render(r#"/x/{"}" + .}"#, json!("a")).unwrap(), "/x/%7Da");
    assert_eq!(render(r#"/x/{"{" + .}"#, json!("a")).unwrap(), "/x/%7Ba");
    assert_eq!(render(r#"/x/{"\"}"}"#, json!(null)).unwrap(), "/x/%22%7D");
    // An interpolation inside a string inside a hole, holding another string with a brace.
    assert_eq!(
        render(r#"/x/{"id-\(.id + "}")"}"#, json!({"id": "7"})).unwrap(),
        "/x/id-7%7D"
    );
}

#[test]
fn unbalanced_braces_are_errors_with_offsets() {
    let err = Template::parse("/customers/{.id").unwrap_err();
    assert_eq!(err.message, "unclosed `{`: expected a matching `}`");
    assert_eq!(err.offset, Some(11));

    let err = Template::parse("/customers/.id}").unwrap_err();
    assert!(err.message.starts_with("unmatched `}`"), "{err}");
    assert_eq!(err.offset, Some(14));

    let err = Template::parse("/a/{ {b: 1}").unwrap_err();
    assert_eq!(err.offset, Some(3));

    let err = Template::parse(r#"/a/{"}"#).unwrap_err();
    assert_eq!(err.message, "unterminated string: expected a closing `\"`");
    assert_eq!(err.offset, Some(4));

    let err = Template::parse("/a/{ (.b }").unwrap_err();
    assert_eq!(err.message, "unclosed `(`: expected a matching `)`");
    assert_eq!(err.offset, Some(5));

    let err = Template::parse("/a/{ .b) }").unwrap_err();
    assert_eq!(err.offset, Some(7));
}

#[test]
fn empty_holes_are_errors() {
    for template in ["/a/{}", "/a/{  }"] {
        let err = Template::parse(template).unwrap_err();
        assert!(err.message.starts_with("empty `{}`"), "{err}");
        assert_eq!(err.offset, Some(3));
    }
}

#[test]
fn errors_inside_a_hole_are_offset_into_the_template() {
    let err = Template::parse("/customers/{$nope}/x").unwrap_err();
    assert!(err.message.contains("`$nope`"), "{err}");
    assert_eq!(err.offset, Some(12));

    let err = Template::parse("/c/{.a |}").unwrap_err();
    assert_eq!(err.message, "expected a term after `|`");
    assert_eq!(err.offset, Some(8));
}

#[test]
fn runtime_errors_in_holes_surface() {
    assert!(matches!(
        render("/c/{.a + 1}", json!({"a": "x"})),
        Err(EvalError::Runtime(_))
    ));
    assert_eq!(render("/c/{empty}", json!(null)), Err(EvalError::NoOutput));
}

#[test]
fn templates_keep_their_source_and_clone_cheaply() {
    let template = Template::parse("/a/{.b}").unwrap();
    let clone = template.clone();
    assert_eq!(clone.source(), "/a/{.b}");
    assert_eq!(format!("{template:?}"), "Template(\"/a/{.b}\")");
}
