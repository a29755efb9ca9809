//! The `link` style: the next page is the `rel="next"` target of the
//! response's `Link` header ([`super::link_header`]); no such link ends
//! pagination.
//!
//! A link is upstream-controlled text, and the connector's credential goes
//! with every request, so the target must stay under the connector's base
//! URL: same scheme, host and port, and within the base path. A target
//! elsewhere is an unusable page, not a request. The position compared
//! between pages (to notice an upstream handing out the same page) is the
//! resolved path and query.

use serde_json::Value;

use super::Next;
use super::link_header::next_link;
use crate::call::{CallRequest, Response};
use crate::connector::Connector;

/// The request for the page after `response`, if its `Link` header names one.
pub(super) fn next(
    connector: &Connector,
    request: &CallRequest,
    response: &Response,
) -> Result<Option<Next>, String> {
    Ok(match response.headers.get("link").and_then(Value::as_str) {
        Some(header) => match next_link(header) {
            Some(target) => Some(follow(connector, request, &target)?),
            None => None,
        },
        None => None,
    })
}

/// The request for a `Link` target, which must stay under the
/// connector's base URL.
fn follow(connector: &Connector, request: &CallRequest, target: &str) -> Result<Next, String> {
    let base = reqwest::Url::parse(connector.base_url())
        .map_err(|_| "the connector's URL cannot resolve links".to_string())?;
    let mut current = reqwest::Url::parse(&format!("{}{}", connector.base_url(), request.path))
        .map_err(|_| "the current page's URL cannot resolve links".to_string())?;
    if !request.query.is_empty() {
        current.query_pairs_mut().extend_pairs(&request.query);
    }
    let (path, query) = resolve_link(&base, &current, target, connector.credential_query_param())?;
    let mut next = request.clone();
    next.path = path;
    next.query = query;
    let position = format!("{}?{:?}", next.path, next.query);
    Ok((position, next))
}

/// Resolves a `Link` target against the page it came from and turns it into
/// a path under the connector's base URL and decoded query pairs. Refuses a
/// target on another scheme, host or port, or outside the base path: the
/// connector's credential would go with it. The `api_key` query parameter is
/// dropped (the connector adds its own), so an upstream echoing it back
/// neither duplicates it nor puts it in the journal.
fn resolve_link(
    base: &reqwest::Url,
    current: &reqwest::Url,
    target: &str,
    credential_param: Option<&str>,
) -> Result<(String, Vec<(String, String)>), String> {
    // Errors never quote the target: it may carry a query-string credential.
    let next = current
        .join(target)
        .map_err(|e| format!("the `Link` header's next target is not a valid URL ({e})"))?;
    let same_origin = next.scheme() == base.scheme()
        && next.host_str() == base.host_str()
        && next.port_or_known_default() == base.port_or_known_default();
    if !same_origin {
        return Err(format!(
            "the `Link` header's next target is on another origin ({}://{}); \
             only links under the connector's URL are followed",
            next.scheme(),
            next.host_str().unwrap_or("no host")
        ));
    }
    let prefix = base.path().trim_end_matches('/');
    let rest = match next.path().strip_prefix(prefix) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => {
            return Err(format!(
                "the `Link` header's next target is outside the connector's base path `{}`",
                if prefix.is_empty() { "/" } else { prefix }
            ));
        }
    };
    let query = next
        .query_pairs()
        .filter(|(key, _)| Some(key.as_ref()) != credential_param)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    Ok((rest.to_string(), query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[test]
    fn resolution_keeps_the_path_under_the_base() {
        let base = url("https://api.example.com/v2");
        let current = url("https://api.example.com/v2/items?page=1");
        assert_eq!(
            resolve_link(&base, &current, "?page=2", None).unwrap(),
            ("/items".to_string(), vec![("page".into(), "2".into())])
        );
        assert_eq!(resolve_link(&base, &current, "/v2", None).unwrap().0, "/");
        assert!(resolve_link(&base, &current, "/v20/items", None).is_err());
        assert!(resolve_link(&base, &current, "/../v1/items", None).is_err());
        let (_, query) = resolve_link(
            &base,
            &current,
            "https://api.example.com:443/v2/items?key=s3cret&page=3",
            Some("key"),
        )
        .unwrap();
        assert_eq!(query, vec![("page".into(), "3".into())]);
    }
}
