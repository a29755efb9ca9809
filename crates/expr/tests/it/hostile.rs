//! Hostile input never panics or overflows the stack: it compiles, or fails with an error.
//!
//! The test harness runs each test on a thread with Rust's default 2 MiB stack, the same
//! as tokio's workers, so a deep recursion anywhere in jaq would abort the whole run.

use patchbay_expr::{CompileError, Expr, MAX_NESTING, Template, Vars};
use serde_json::json;

fn hostile_sources() -> Vec<String> {
    let mut sources: Vec<String> = [
        "",
        " ",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "\"",
        "\\",
        "\\(",
        "\"\\(",
        "\"\\(\"",
        "$",
        "@",
        "#",
        ".",
        "..",
        "...",
        "|",
        "||",
        ",",
        ";",
        ":",
        "?",
        "?//",
        "-",
        "--",
        "1e",
        "1e+",
        ".[",
        ".[:",
        "{(",
        "{a:",
        "{a:1,",
        "if",
        "if . then",
        "reduce",
        "reduce . as",
        "def",
        "def f",
        "def f:",
        "def f: .;",
        "try",
        "label",
        "label $x",
        "break",
        "break $x",
        "import",
        "include",
        "\"\\u",
        "\"\\uD800\"",
        "\"\\u{}\"",
        "@base64d \"",
        "..|..|..",
        "$__loc__",
        "$__prog_args",
        "input",
        "inputs",
        "env",
        "$ENV",
        "getpath",
        "\u{0}",
        "\u{feff}.",
        "💣",
        ".💣",
        "\"\u{7f}\"",
        "# only a comment",
        "1 # c \\\n 2",
        "{a:1}}",
        "[1]]",
        "(1))",
        ")(",
        "][",
        "}{",
        "{\"\\(\"}\")\": 1}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();

    // Deep nesting of every kind jaq recurses on.
    for n in [MAX_NESTING, MAX_NESTING + 1, 10_000] {
        sources.push("[".repeat(n));
        sources.push("(".repeat(n));
        sources.push("{".repeat(n));
        sources.push(format!("{}1{}", "[".repeat(n), "]".repeat(n)));
        sources.push(format!("{}1{}", "(".repeat(n), ")".repeat(n)));
        sources.push(format!("{}1{}", "{a:".repeat(n), "}".repeat(n)));
        sources.push(format!("{}1{}", "\"\\(".repeat(n), ")\"".repeat(n)));
        sources.push("\"\\(".repeat(n));
        sources.push(format!("{}1", "-".repeat(n)));
        sources.push(format!("{}1", "try ".repeat(n)));
        sources.push(format!("{}1{}", "if 1 then ".repeat(n), " end".repeat(n)));
        sources.push(format!("{}1", "def f: ".repeat(n)));
        sources.push(format!("{}1", "label $x | ".repeat(n)));
        sources.push(format!("{}.", "reduce . as $x (".repeat(n)));
        sources.push(format!("1{}", " | .".repeat(n)));
        sources.push(format!("1{}", " + 1".repeat(n)));
        sources.push(format!("1{}", ", 1".repeat(n)));
        sources.push(format!("1{}", " // 1".repeat(n)));
        sources.push(format!("{{{}a: 1}}", "a: 1, ".repeat(n)));
        sources.push(format!("\"{}\"", "\\(1)".repeat(n)));
        sources.push(format!(".{}a", "a.".repeat(n)));
        sources.push(format!(".{}", "[0]".repeat(n)));
        sources.push(format!(". as [{}$x{}] | 1", "[".repeat(n), "]".repeat(n)));
    }
    sources.push("1".repeat(100_000));
    sources.push(format!("\"{}\"", "x".repeat(100_000)));
    sources.push("def f: 1; ".repeat(2_000) + "f");

    // Pseudo-random bytes and pseudo-random jq-ish tokens, from a fixed seed so that any
    // failure reproduces.
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let alphabet: Vec<char> =
        "()[]{}\"\\$@.|,;:?-+*/%=<>!#abcdefif then else end 0123456789é💣\n\t "
            .chars()
            .collect();
    for len in (0..400).map(|i| i % 97) {
        let source: String = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        sources.push(source);
    }
    for len in (0..200).map(|i| i % 61) {
        let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        sources.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    let tokens = [
        ".a", "|", ",", "(", ")", "[", "]", "{", "}", "a:", "1", "\"s\"", "\"\\(", "map(",
        "select(", "if", "then", "else", "end", "as $x", "$x", "reduce", "def f:", ";", "//", "?",
        "..", "-", "+", "and", "not", "try", "catch", "$event", "$nope", "@base64",
    ];
    for len in (0..300).map(|i| i % 40) {
        let source: Vec<&str> = (0..len).map(|_| tokens[rng.below(tokens.len())]).collect();
        sources.push(source.join(" "));
    }
    sources
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn check_error(source: &str, err: &CompileError) {
    assert!(!err.message.is_empty(), "{source:?}: empty message");
    if let Some(offset) = err.offset {
        assert!(
            offset <= source.len(),
            "{source:?}: offset {offset} out of range"
        );
        assert!(
            source.is_char_boundary(offset),
            "{source:?}: offset {offset} splits a char"
        );
    }
}

#[test]
fn hostile_programs_compile_or_fail_cleanly() {
    let inputs = [json!(null), json!({"a": [1, {"b": "c"}]}), json!("text")];
    for source in hostile_sources() {
        match Expr::compile(&source) {
            Ok(expr) => {
                for input in &inputs {
                    // Any result is fine; a panic or a stack overflow is not.
                    let _ = expr.eval(input, &Vars::default());
                }
            }
            Err(err) => check_error(&source, &err),
        }
    }
}

#[test]
fn hostile_templates_parse_or_fail_cleanly() {
    for source in hostile_sources() {
        for template in [
            source.clone(),
            format!("/a/{{{source}}}/b"),
            format!("{{{source}"),
        ] {
            match Template::parse(&template) {
                Ok(template) => {
                    let _ = template.render_path(&json!({"a": 1}), &Vars::default());
                }
                Err(err) => check_error(&template, &err),
            }
        }
    }
}

#[test]
fn ten_thousand_brackets_are_refused_with_a_clear_error() {
    let err = Expr::compile(&"[".repeat(10_000)).unwrap_err();
    assert!(err.message.contains("nested too deeply"), "{err}");
    assert_eq!(err.offset, Some(MAX_NESTING));
}

#[test]
fn nesting_up_to_the_limit_compiles_and_runs() {
    let depth = MAX_NESTING - 1;
    let arrays = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let out = Expr::compile(&arrays)
        .unwrap()
        .eval(&json!(null), &Vars::default())
        .unwrap();
    assert_eq!(out.to_string(), arrays);

    let objects = format!("{}1{}", "{a:".repeat(depth), "}".repeat(depth));
    let expr = Expr::compile(&objects).unwrap();
    let path = format!(".{}", vec!["a"; depth].join("."));
    let out = expr.eval(&json!(null), &Vars::default()).unwrap();
    assert_eq!(
        out.pointer(&format!("/{}", vec!["a"; depth].join("/"))),
        Some(&json!(1)),
        "{path}"
    );

    let pipeline = format!("0{}", " | . + 1".repeat(MAX_NESTING / 2 - 1));
    let out = Expr::compile(&pipeline)
        .unwrap()
        .eval(&json!(null), &Vars::default())
        .unwrap();
    assert_eq!(out, json!(MAX_NESTING / 2 - 1));
}

#[test]
fn nesting_limit_does_not_count_brackets_in_strings_or_comments() {
    let brackets = "[".repeat(MAX_NESTING * 2);
    let in_string = format!("\"{brackets}\" | length");
    assert_eq!(
        Expr::compile(&in_string)
            .unwrap()
            .eval(&json!(null), &Vars::default())
            .unwrap(),
        json!(MAX_NESTING * 2)
    );
    let in_comment = format!("1 # {brackets}\n + 1");
    assert_eq!(
        Expr::compile(&in_comment)
            .unwrap()
            .eval(&json!(null), &Vars::default())
            .unwrap(),
        json!(2)
    );
}

#[test]
fn wide_flat_programs_are_not_mistaken_for_deep_ones() {
    // Fields' values, function arguments and definitions are siblings, not a chain.
    let fields: Vec<String> = (0..60)
        .map(|i| format!("f{i}: (.a + {i} | tostring)"))
        .collect();
    let object = format!("{{{}}}", fields.join(", "));
    let out = Expr::compile(&object)
        .unwrap()
        .eval(&json!({"a": 1}), &Vars::default())
        .unwrap();
    assert_eq!(out["f59"], json!("60"));

    let defs = (0..500)
        .map(|i| format!("def f{i}: {i};"))
        .collect::<String>()
        + " f499";
    assert_eq!(
        Expr::compile(&defs)
            .unwrap()
            .eval(&json!(null), &Vars::default())
            .unwrap(),
        json!(499)
    );

    // A wide object can be split into halves that are siblings.
    let half: Vec<String> = (0..100).map(|i| format!("k{i}: {i}")).collect();
    let whole = format!("{{{}}}", half.join(", ")) + " + " + &format!("{{{}}}", half.join(", "));
    assert!(Expr::compile(&whole).is_ok());
    let single = format!("{{{}, {}}}", half.join(", "), half.join(", "));
    assert!(Expr::compile(&single).is_err());
}

#[test]
fn hostile_runtime_programs_fail_cleanly() {
    let programs = [
        "error",
        "error(null)",
        "null | error",
        "[] | first",
        "{} | .[0]",
        "\"a\" | .[0]",
        "implode",
        "[-1] | implode",
        "[1114112] | implode",
        "@base64d",
        "\"%%%\" | @base64d",
        "\"not json\" | fromjson",
        "\"[1,\" | fromjson",
        "\"1e1000\" | fromjson",
        "\"x\" | test(\"(\")",
        "\"x\" | test(\"a\"; \"gq\")",
        "1 / 0",
        "1 % 0",
        "[range(5)] | .[1e300]",
        "[range(5)] | .[-1e300:]",
        "\"abc\" | .[1e20:]",
        "limit(-1; 1, 2)",
        "\"x\" * -1",
        "\"x\" * 0",
        "tostring | tonumber",
        "\"1.5.5\" | tonumber",
        "pow(2; 1e10)",
        "99999999999999999999999999999 | floor",
        "-99999999999999999999999999999 | tostring",
        "now | todate",
        "\"2024-13-45T99:99:99Z\" | fromdate",
        "1e300 | todate",
        "\"x\" | ltrimstr(1)",
        "splits(1)",
        "{} | has(0)",
        "[] | has(\"a\")",
        "getpath([\"a\", 0, \"b\"])",
        "setpath([0]; 1)",
        "delpaths([[0]])",
        "to_entries",
        "[.[]?]",
        "..",
        "path(..)",
        "paths",
        "tojson | fromjson",
        "ltrimstr(\"x\")",
        "@sh",
        "[1, [2]] | @uri",
        "{a: 1} | @html",
        "debug",
        "stderr",
        "label $out | break $out",
        "first(empty)",
        "[limit(3; repeat(1))]",
        "[.[] | select(. > 1)]",
        "def f: if . > 100 then . else (. + 1 | f) end; 0 | f",
        "reduce range(1000) as $i ({}; .[$i | tostring] = $i) | length",
        "[range(100000)] | length",
    ];
    let inputs = [
        json!(null),
        json!([3, 1, 2]),
        json!({"a": 1}),
        json!("text"),
        json!(1.5),
    ];
    for program in programs {
        let expr =
            Expr::compile(program).unwrap_or_else(|e| panic!("{program:?} should compile: {e}"));
        for input in &inputs {
            let _ = expr.eval_all(input, &Vars::default());
            let _ = expr.eval_bool(input, &Vars::default());
        }
    }
}

/// A webhook can send any string; parsing it with `fromjson` must fail
/// cleanly however deeply it nests, instead of overflowing the stack.
#[test]
fn fromjson_of_deeply_nested_text_fails_without_overflowing() {
    let expr = Expr::compile(".payload | fromjson").unwrap();
    for open in ["[", "{\"a\":"] {
        let payload = open.repeat(200_000);
        let error = expr
            .eval(&json!({ "payload": payload }), &Vars::default())
            .unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
    }
    // Ordinary documents still parse, and bad ones are errors.
    let parsed = expr
        .eval(
            &json!({ "payload": "{\"a\": [1, 2, {\"b\": null}]}" }),
            &Vars::default(),
        )
        .unwrap();
    assert_eq!(parsed, json!({ "a": [1, 2, { "b": null }] }));
    let bad = expr
        .eval(&json!({ "payload": "{\"a\": " }), &Vars::default())
        .unwrap_err();
    assert!(bad.to_string().contains("as JSON"), "{bad}");
    let not_text = expr
        .eval(&json!({ "payload": 1 }), &Vars::default())
        .unwrap_err();
    assert!(not_text.to_string().contains("not a string"), "{not_text}");
}
