//! Compile errors: what an operator reads in `patchbay check` output.

use patchbay_expr::{CompileError, Expr};

fn compile_error(source: &str) -> CompileError {
    match Expr::compile(source) {
        Ok(_) => panic!("{source:?} compiled"),
        Err(e) => e,
    }
}

#[test]
fn undefined_variable_names_the_variable_and_where_it_is() {
    let err = compile_error(".a + $nope");
    assert!(err.message.contains("undefined variable `$nope`"), "{err}");
    assert!(
        err.message.contains("$event, $steps, $state, $headers"),
        "{err}"
    );
    assert_eq!(err.offset, Some(5));
    // Display is the message itself, ready to follow `file:line:col: `.
    assert_eq!(err.to_string(), err.message);
}

#[test]
fn a_misspelt_run_variable_is_caught() {
    let err = compile_error("$step.a.body");
    assert!(err.message.contains("`$step`"), "{err}");
    assert_eq!(err.offset, Some(0));
}

#[test]
fn undefined_function_names_the_function_and_arity() {
    let err = compile_error(".items | mapp(.id)");
    assert!(err.message.contains("undefined function `mapp/1`"), "{err}");
    assert_eq!(err.offset, Some(9));

    let err = compile_error("nosuchthing");
    assert_eq!(err.message, "undefined function `nosuchthing`");
    assert_eq!(err.offset, Some(0));

    // `map` exists, but not with two arguments.
    let err = compile_error("map(.a; .b)");
    assert!(err.message.contains("`map/2`"), "{err}");
    assert!(err.message.contains("takes 2 arguments"), "{err}");
}

#[test]
fn a_fold_with_missing_arguments_shows_the_syntax() {
    let err = compile_error("reduce .[] as $x (0)");
    assert_eq!(
        err.message,
        "`reduce` given 1 argument: write `reduce SOURCE as $x (INIT; UPDATE)`"
    );
    assert_eq!(err.offset, Some(0));
}

#[test]
fn several_problems_report_the_first_and_count_the_rest() {
    let err = compile_error("$a + $b + $c");
    assert!(err.message.starts_with("undefined variable `$a`"), "{err}");
    assert!(err.message.ends_with("(and 2 more problems)"), "{err}");
    assert_eq!(err.offset, Some(0));
}

#[test]
fn locally_bound_variables_and_functions_compile() {
    assert!(Expr::compile(". as $x | $x").is_ok());
    assert!(Expr::compile("def twice(f): f | f; 1 | twice(. + 1)").is_ok());
    assert!(Expr::compile("reduce .[] as $i (0; . + $i)").is_ok());
}

#[test]
fn a_missing_term_points_after_the_operator() {
    let err = compile_error(".a |");
    assert_eq!(err.message, "expected a term after `|`");
    assert_eq!(err.offset, Some(4));

    let err = compile_error(".a | ");
    assert_eq!(err.message, "expected a term after `|`");
    assert_eq!(err.offset, Some(5));
}

#[test]
fn syntax_errors_quote_what_was_found_and_give_its_offset() {
    let err = compile_error("if .a then 1");
    assert_eq!(err.message, "expected `else` or `end` after `1`");
    assert_eq!(err.offset, Some(12));

    let err = compile_error("{a: 1 b: 2}");
    assert_eq!(err.message, "expected `,` or `}`, found `b`");
    assert_eq!(err.offset, Some(6));

    let err = compile_error(".a )");
    assert!(err.message.contains("`)`"), "{err}");
    assert_eq!(err.offset, Some(3));

    let err = compile_error("1 2");
    assert_eq!(err.message, "unexpected `2`");
    assert_eq!(err.offset, Some(2));

    let err = compile_error("");
    assert_eq!(err.message, "expected a term, but the expression is empty");
    assert_eq!(err.offset, Some(0));
}

#[test]
fn unclosed_delimiters_point_at_the_opening_one() {
    let err = compile_error(".a | map(.b");
    assert_eq!(err.message, "unclosed `(`: expected a matching `)`");
    assert_eq!(err.offset, Some(8));

    let err = compile_error("{id, name: .n");
    assert_eq!(err.message, "unclosed `{`: expected a matching `}`");
    assert_eq!(err.offset, Some(0));

    let err = compile_error(r#".a + "abc"#);
    assert_eq!(err.message, "unterminated string: expected a closing `\"`");
    assert_eq!(err.offset, Some(5));
}

#[test]
fn lexical_errors_have_offsets() {
    let err = compile_error(".a & .b");
    assert_eq!(err.message, "unexpected character `&`");
    assert_eq!(err.offset, Some(3));

    let err = compile_error(r#""bad \q escape""#);
    assert_eq!(err.message, "invalid escape sequence `\\q` in a string");
    assert_eq!(err.offset, Some(5));

    let err = compile_error("$ x");
    assert_eq!(err.message, "expected a name after `$`");
    assert_eq!(err.offset, Some(1));

    let err = compile_error("1e");
    assert!(err.message.starts_with("expected a digit"), "{err}");
    assert_eq!(err.offset, Some(2));

    let err = compile_error(r#""\u12""#);
    assert!(err.message.contains("4 hexadecimal digits"), "{err}");
}

#[test]
fn offsets_are_byte_offsets_into_the_source() {
    // Multi-byte characters before the problem count by their UTF-8 length.
    let source = r#""héllo" + $nope"#;
    let err = compile_error(source);
    assert_eq!(err.offset, Some(source.find("$nope").unwrap()));
    assert_eq!(err.offset, Some(11));
}

#[test]
fn long_snippets_are_shortened() {
    let source = format!("1 {}", "a".repeat(200));
    let err = compile_error(&source);
    assert!(err.message.len() < 80, "{err}");
    assert!(err.message.contains('…'), "{err}");
}
