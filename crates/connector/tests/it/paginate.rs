//! Pagination over real sockets: every style delivers every item once and in
//! order, the page cap truncates with a warning, pages are fetched lazily,
//! retries apply per page, and `Link` targets off the connector are refused.
//! Also the `Link` header parser on its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use patchbay_config::{Located, PaginateConfig};
use patchbay_connector::{
    CallClass, CallRequest, FetchError, Link, Pagination, RetryPolicy, next_link, parse_link_header,
};
use patchbay_expr::Vars;
use patchbay_testkit::{MockUpstream, RecordedRequest, Reply};
use serde_json::{Value, json};

use crate::support::{build, request};

const PAGES: u64 = 10;

fn pagination(yaml: &str) -> Pagination {
    let config: PaginateConfig =
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad YAML {yaml:?}: {e}"));
    Pagination::for_call(&Located::unlocated(config))
        .unwrap_or_else(|e| panic!("pagination does not compile: {e:?}"))
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        min: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

/// Items `from..to` as `{"n": i}` objects.
fn items(from: u64, to: u64) -> Vec<Value> {
    (from..to).map(|n| json!({ "n": n })).collect()
}

fn numbers(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .map(|item| item["n"].as_u64().unwrap())
        .collect()
}

fn param(request: &RecordedRequest, name: &str) -> Option<u64> {
    request.query_param(name).map(|v| v.parse().unwrap())
}

/// Serves `PAGES` pages of 3 items, page `k` (from 0) at cursor `c<k>`.
fn serve_cursor_pages(mock: &MockUpstream, pages: u64) {
    mock.route_fn("GET", "/items", move |req| {
        let page = req
            .query_param("cursor")
            .map(|c| c.trim_start_matches('c').parse::<u64>().unwrap())
            .unwrap_or(0);
        let next = (page + 1 < pages).then(|| format!("c{}", page + 1));
        Reply::json(
            200,
            json!({ "data": items(page * 3, page * 3 + 3), "next_cursor": next }),
        )
    });
}

#[tokio::test]
async fn cursor_pages_deliver_every_item_once_in_order() {
    let mock = MockUpstream::start().await;
    serve_cursor_pages(&mock, PAGES);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination("cursor: {param: cursor, from: .body.next_cursor}\nitems: .body.data\n");
    let mut first = request("GET", "/items");
    first.query.push(("tag".into(), "a".into()));
    let collected = connector
        .paginate(first, fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert_eq!(
        numbers(&collected.items),
        (0..PAGES * 3).collect::<Vec<_>>()
    );
    assert_eq!((collected.pages, collected.attempts), (10, 10));
    assert!(!collected.truncated);
    assert_eq!(collected.warning, None);
    let requests = mock.requests();
    assert_eq!(requests.len(), 10);
    assert_eq!(requests[0].query_param("cursor"), None);
    assert_eq!(requests[4].query_param("cursor"), Some("c4"));
    // The step's own query parameters are kept on every page.
    assert!(requests.iter().all(|r| r.query_param("tag") == Some("a")));
    assert_eq!(
        collected.into_value()["pages"],
        json!(10),
        "the step output carries the page count"
    );
}

#[tokio::test]
async fn numbered_pages_stop_on_a_short_page_or_an_empty_one() {
    let mock = MockUpstream::start().await;
    // 48 items: pages of 5, the tenth holds 3.
    mock.route_fn("GET", "/items", |req| {
        let page = param(req, "page").unwrap();
        let size = param(req, "per_page").unwrap_or(5);
        let from = ((page - 1) * size).min(48);
        Reply::json(200, json!(items(from, (from + size).min(48))))
    });
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let sized = pagination("page: {param: page, start: 1, size_param: per_page, size: 5}\n");
    let collected = connector
        .paginate(request("GET", "/items"), fast(), &sized, Vars::default())
        .collect()
        .await
        .unwrap();
    assert_eq!(numbers(&collected.items), (0..48).collect::<Vec<_>>());
    assert_eq!(collected.pages, 10, "the short tenth page is the last");
    let pages: Vec<_> = mock.requests().iter().map(|r| param(r, "page")).collect();
    assert_eq!(pages, (1..=10).map(Some).collect::<Vec<_>>());

    // Without a size only an empty page ends: one more request.
    let unsized_spec = pagination("page: {}\n");
    let collected = connector
        .paginate(
            request("GET", "/items"),
            fast(),
            &unsized_spec,
            Vars::default(),
        )
        .collect()
        .await
        .unwrap();
    assert_eq!(numbers(&collected.items), (0..48).collect::<Vec<_>>());
    assert_eq!(collected.pages, 11);
}

#[tokio::test]
async fn offsets_advance_by_the_items_received() {
    let mock = MockUpstream::start().await;
    mock.route_fn("GET", "/items", |req| {
        let offset = param(req, "offset").unwrap();
        let limit = param(req, "limit").unwrap();
        let to = (offset + limit).min(38);
        Reply::json(200, json!({ "results": items(offset.min(38), to) }))
    });
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination("offset: {limit: 4}\nitems: .body.results\n");
    let collected = connector
        .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert_eq!(numbers(&collected.items), (0..38).collect::<Vec<_>>());
    assert_eq!(collected.pages, 10);
    let offsets: Vec<_> = mock.requests().iter().map(|r| param(r, "offset")).collect();
    assert_eq!(offsets, (0..10).map(|p| Some(p * 4)).collect::<Vec<_>>());
}

#[tokio::test]
async fn link_headers_are_followed_relative_and_absolute() {
    let mock = MockUpstream::start().await;
    let origin = mock.url();
    mock.route_fn("GET", "/api/v1/items", move |req| {
        let page = param(req, "p").unwrap_or(1);
        let mut reply = Reply::json(200, json!(items((page - 1) * 2, page * 2)));
        if page < PAGES {
            // Alternate the forms a server may use; a `,` inside `<...>` and
            // a `rel` list must not confuse the parser.
            let link = if page.is_multiple_of(2) {
                format!(
                    "<{origin}/api/v1/items?p={}&f=a,b>; rel=\"prev next\"; title=\"x, y\", \
                     <{origin}/api/v1/items?p=1>; rel=first",
                    page + 1
                )
            } else {
                format!("</api/v1/items?p={}&f=a%2Cb>;rel=next", page + 1)
            };
            reply = reply.with_header("Link", &link);
        }
        reply
    });
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}/api/v1\n",
        mock.url()
    ));
    let spec = pagination("link: {}\n");
    let collected = connector
        .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert_eq!(
        numbers(&collected.items),
        (0..PAGES * 2).collect::<Vec<_>>()
    );
    assert_eq!(collected.pages, 10);
    let requests = mock.requests();
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.query_param("f") == Some("a,b"))
    );
}

#[tokio::test]
async fn links_off_the_connector_are_refused() {
    let mock = MockUpstream::start().await;
    let port = mock.addr().port();
    for (link, refusal) in [
        (
            "<http://evil.example/api/items?p=2>; rel=next",
            "another origin",
        ),
        (
            &*format!("<http://127.0.0.1:{}/api/items?p=2>; rel=next", port + 1),
            "another origin",
        ),
        (
            "<https://127.0.0.1/api/items?p=2>; rel=next",
            "another origin",
        ),
        (
            "</other/items?p=2>; rel=next",
            "outside the connector's base path",
        ),
        ("<../admin>; rel=next", "outside the connector's base path"),
    ] {
        mock.route(
            "GET",
            "/api/items",
            Reply::json(200, json!([1])).with_header("Link", link),
        );
        let before = mock.request_count();
        let connector = build(&format!(
            "dangerous_allow_private: true\nurl: {}/api\n",
            mock.url()
        ));
        let spec = pagination("link: {}\n");
        let error = connector
            .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
            .collect()
            .await
            .unwrap_err();
        assert_eq!(error.page, 1);
        assert!(
            matches!(error.error, FetchError::Unusable { .. }),
            "{error}"
        );
        assert_eq!(error.error.class(), CallClass::InvalidResponse);
        let text = error.to_string();
        assert!(text.contains(refusal), "{link}: {text}");
        assert!(
            !text.contains("evil.example/api"),
            "the target is not quoted: {text}"
        );
        assert_eq!(mock.request_count(), before + 1, "{link} was not followed");
    }
}

#[tokio::test]
async fn the_page_cap_truncates_with_a_warning() {
    let mock = MockUpstream::start().await;
    serve_cursor_pages(&mock, u64::MAX);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination("cursor: {from: .body.next_cursor}\nitems: .body.data\nmax_pages: 4\n");
    let collected = connector
        .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert!(collected.truncated);
    assert_eq!(collected.pages, 4);
    assert_eq!(numbers(&collected.items), (0..12).collect::<Vec<_>>());
    let warning = collected.warning.clone().unwrap();
    assert!(warning.contains("4 pages"), "{warning}");
    assert_eq!(mock.request_count(), 4, "no page past the cap is requested");
    let value = collected.into_value();
    assert_eq!(value["truncated"], json!(true));
    assert_eq!(value["warning"], json!(warning));

    // A cap equal to the number of pages is no truncation.
    let mock = MockUpstream::start().await;
    serve_cursor_pages(&mock, 4);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let collected = connector
        .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert!(!collected.truncated);
    assert_eq!(collected.warning, None);
}

#[tokio::test]
async fn pages_are_fetched_only_when_asked_for() {
    let mock = MockUpstream::start().await;
    serve_cursor_pages(&mock, PAGES);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination("cursor: {from: .body.next_cursor}\nitems: .body.data\n");
    let stream = connector
        .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
        .into_stream();
    let mut stream = std::pin::pin!(stream);
    assert_eq!(
        mock.request_count(),
        0,
        "nothing is sent before the first poll"
    );
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.index, 1);
    assert_eq!(numbers(&first.items), vec![0, 1, 2]);
    assert_eq!(
        mock.request_count(),
        1,
        "page 1 arrives before page 2 is requested"
    );
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!((second.index, mock.request_count()), (2, 2));
    assert_eq!(second.request.query, vec![("cursor".into(), "c1".into())]);
    let rest: Vec<_> = stream.collect().await;
    assert_eq!(rest.len(), 8);
    assert!(rest.iter().all(Result::is_ok));
}

#[tokio::test]
async fn retries_apply_to_each_page() {
    let mock = MockUpstream::start().await;
    let failed_once = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&failed_once);
    mock.route_fn("GET", "/items", move |req| {
        let page = param(req, "page").unwrap();
        if page == 3 && !flag.swap(true, Ordering::SeqCst) {
            return Reply::status(503);
        }
        let to = if page < 5 { page * 2 } else { page * 2 - 1 };
        Reply::json(200, json!(items((page - 1) * 2, to)))
    });
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination("page: {size: 2}\n");
    let mut pages = connector.paginate(request("GET", "/items"), fast(), &spec, Vars::default());
    let mut attempts = Vec::new();
    let mut all = Vec::new();
    while let Some(page) = pages.next_page().await {
        let page = page.unwrap();
        attempts.push(page.attempts);
        all.extend(page.items);
    }
    assert_eq!(attempts, vec![1, 1, 2, 1, 1]);
    assert_eq!(numbers(&all), (0..9).collect::<Vec<_>>());
    assert_eq!(pages.attempts(), 6);

    // A page that keeps failing ends pagination with its number.
    mock.route("GET", "/items", Reply::status(500));
    let error = connector
        .paginate(request("GET", "/items"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap_err();
    assert_eq!((error.page, error.error.attempts()), (1, 3));
    assert!(
        error.to_string().ends_with("(after 3 attempts) (page 1)"),
        "{error}"
    );
}

#[tokio::test]
async fn later_pages_get_their_own_idempotency_keys() {
    let mock = MockUpstream::start().await;
    mock.route_fn("POST", "/search", |req| {
        let cursor = req.query_param("cursor").unwrap_or("0").to_string();
        let next = (cursor != "2").then(|| (cursor.parse::<u32>().unwrap() + 1).to_string());
        Reply::json(200, json!({ "hits": [cursor], "next": next }))
    });
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination("cursor: {from: .body.next}\nitems: .body.hits\n");
    let first = CallRequest {
        body: Some(json!({ "q": "x" })),
        idempotency_key: Some("run-1:search".into()),
        ..request("POST", "/search")
    };
    let collected = connector
        .paginate(first, fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap();
    assert_eq!(collected.items, vec![json!("0"), json!("1"), json!("2")]);
    let keys: Vec<_> = mock
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["run-1:search", "run-1:search:page-2", "run-1:search:page-3"]
    );
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.json == Some(json!({ "q": "x" })))
    );
}

#[tokio::test]
async fn unusable_pages_are_errors() {
    let mock = MockUpstream::start().await;
    mock.route("GET", "/object", Reply::json(200, json!({ "data": [] })));
    mock.route(
        "GET",
        "/stuck",
        Reply::json(200, json!({ "data": [1], "next": "same" })),
    );
    mock.route(
        "GET",
        "/odd-cursor",
        Reply::json(200, json!({ "data": [1], "next": { "c": 1 } })),
    );
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));

    let spec = pagination("page: {}\n");
    let error = connector
        .paginate(request("GET", "/object"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`.body.data`"), "{error}");

    let spec = pagination("cursor: {from: .body.next}\nitems: .body.data\n");
    let error = connector
        .paginate(request("GET", "/stuck"), fast(), &spec, Vars::default())
        .collect()
        .await
        .unwrap_err();
    assert_eq!(error.page, 2);
    assert!(error.to_string().contains("same cursor"), "{error}");
    assert_eq!(mock.requests_to("GET", "/stuck").len(), 2);

    let error = connector
        .paginate(
            request("GET", "/odd-cursor"),
            fast(),
            &spec,
            Vars::default(),
        )
        .collect()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("an object"), "{error}");
}

#[tokio::test]
async fn run_variables_reach_pagination_expressions() {
    let mock = MockUpstream::start().await;
    serve_cursor_pages(&mock, 3);
    let connector = build(&format!(
        "dangerous_allow_private: true\nurl: {}\n",
        mock.url()
    ));
    let spec = pagination(
        "cursor: {from: .body.next_cursor}\nitems: '[.body.data[] | .n + $state.add]'\n",
    );
    let state = json!({ "add": 100 });
    let vars = Vars {
        state: &state,
        ..Vars::default()
    };
    let collected = connector
        .paginate(request("GET", "/items"), fast(), &spec, vars)
        .collect()
        .await
        .unwrap();
    assert_eq!(
        collected.items,
        (100..109).map(|n| json!(n)).collect::<Vec<_>>()
    );
}

#[test]
fn bad_configurations_are_located() {
    let config: PaginateConfig =
        serde_saphyr::from_str("cursor: {from: '.body.next | |'}\nitems: .body.data\n").unwrap();
    let errors = Pagination::for_call(&Located::unlocated(config)).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("paginate.cursor.from"),
        "{errors:?}"
    );
    assert_eq!(errors[0].line, 1);

    let config: PaginateConfig = serde_saphyr::from_str("link: {}\n").unwrap();
    assert!(Pagination::for_graphql(&Located::unlocated(config)).is_err());
}

fn link(target: &str, params: &[(&str, &str)]) -> Link {
    Link {
        target: target.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn link_parser_reads_rfc_8288_lists() {
    assert_eq!(
        parse_link_header(
            r#"<https://a.example/x?p=2>; rel="next", <https://a.example/x?p=9>; rel="last""#
        ),
        vec![
            link("https://a.example/x?p=2", &[("rel", "next")]),
            link("https://a.example/x?p=9", &[("rel", "last")]),
        ]
    );
    // Commas and semicolons inside the target, odd whitespace, quoted
    // values with escapes and separators, parameters without values.
    assert_eq!(
        parse_link_header(
            " \t< /x?a=1,2;b > ;REL = \"prev  next\" ;title=\"a, \\\"b\\\"; c\";crossorigin ,,"
        ),
        vec![link(
            "/x?a=1,2;b",
            &[
                ("rel", "prev  next"),
                ("title", "a, \"b\"; c"),
                ("crossorigin", "")
            ]
        )]
    );
    assert_eq!(
        next_link("</1>; rel=\"prev\", </2>; rel=\"PREV Next\"").as_deref(),
        Some("/2")
    );
    // Only the first `rel` counts.
    assert_eq!(next_link("</1>; rel=prev; rel=next"), None);
    assert_eq!(next_link("</1>; title=next"), None);
    // Unreadable elements are skipped, not fatal.
    assert_eq!(
        next_link("garbage; rel=next, </ok>; rel=next").as_deref(),
        Some("/ok")
    );
    assert_eq!(next_link("</a>; x=\"unterminated, </b>; rel=next"), None);
    assert_eq!(next_link("<no-end; rel=next"), None);
    assert_eq!(parse_link_header(""), vec![]);
    assert_eq!(parse_link_header(" , ,"), vec![]);
    assert_eq!(
        next_link("<é/ü?q=ö>; rel=\"néxt next\"").as_deref(),
        Some("é/ü?q=ö")
    );
}

#[test]
fn link_parser_never_panics() {
    const ALPHABET: &[&str] = &[
        "<", ">", ";", ",", "=", "\"", "\\", " ", "\t", "rel", "next", "a", "/", "?", "é", "\u{0}",
        "\"\"", "<>",
    ];
    let mut rng = fastrand::Rng::with_seed(8288);
    for _ in 0..20_000 {
        let len = rng.usize(0..40);
        let text: String = (0..len)
            .map(|_| ALPHABET[rng.usize(0..ALPHABET.len())])
            .collect();
        for link in parse_link_header(&text) {
            assert!(!link.target.contains('>'), "{text:?}");
            assert!(link.params.iter().all(|(k, _)| !k.is_empty()), "{text:?}");
        }
        let _ = next_link(&text);
    }
}
