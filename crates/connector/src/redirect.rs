//! Redirects: which ones a connector follows, and what each hop carries.
//!
//! By default none: a 301, 302, 303, 307 or 308 with a `Location` fails the
//! call with [`RedirectRefusal::Off`], naming only the target's origin. A
//! connector may allow them with `redirects: {max, allow_hosts}`: a hop may
//! stay on the connector's own origin (scheme, host, port) or go to a listed
//! host, never from `https://` down to `http://`, and at most `max` times.
//!
//! The connector follows hops itself; the HTTP client's own redirect support
//! is switched off (`Policy::none()`) and so is its `Referer` (a query-string
//! key would travel in it). reqwest's `redirect::Policy::custom` can decide
//! *whether* to follow a hop, but not *what the hop carries*: on a change of
//! host it drops `Authorization` and `Cookie` and nothing else, so an
//! `X-Api-Key`, headers set from `${secret:...}`, a request signature or a
//! query-string key would still go to the new host, and the policy cannot
//! re-sign a request for its new URL either. Following hops here lets each
//! one be built afresh: on the connector's origin with its credentials
//! (signed for the hop's own method, URL and body, the query key put back
//! if the `Location` dropped it), elsewhere with none of them. Every hop
//! also passes the address filter ([`crate::address_filter`]) before it is
//! sent, literal addresses here and names in the resolver.
//!
//! Methods change as browsers and RFC 9110 have it: 303 turns any method but
//! `HEAD` into a bodyless `GET`, 301 and 302 do so for `POST`, and 307 and 308
//! repeat the request as it was, body included.

use patchbay_config::RedirectConfig;
use reqwest::header::{HeaderValue, LOCATION};
use reqwest::{Method, StatusCode, Url};

use crate::error::RedirectRefusal;

/// The redirects one connector follows.
#[derive(Clone, Debug)]
pub(crate) struct RedirectPolicy {
    /// `None` when `redirects` is not configured: none are followed.
    allowed: Option<Allowed>,
}

#[derive(Clone, Debug)]
struct Allowed {
    max: u32,
    /// Host as the URL parser writes it (lower case, IPv6 in brackets) and
    /// the port, when the entry names one.
    hosts: Vec<(String, Option<u16>)>,
}

/// Where a followed redirect leads.
pub(crate) struct Hop {
    pub url: Url,
    pub method: Method,
    /// Whether the body (if any) is sent again.
    pub keeps_body: bool,
}

/// A refused redirect: the target's origin (for the message) and why.
pub(crate) struct Refused {
    pub origin: String,
    pub reason: RedirectRefusal,
}

/// Whether `status` is a redirect the connector may follow.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

impl RedirectPolicy {
    pub(crate) fn build(config: Option<&RedirectConfig>) -> Result<RedirectPolicy, String> {
        let allowed = match config {
            None => None,
            Some(config) => {
                let hosts = config
                    .allow_hosts
                    .iter()
                    .map(|entry| parse_host_entry(entry))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Allowed {
                    max: config.max,
                    hosts,
                })
            }
        };
        Ok(RedirectPolicy { allowed })
    }

    /// Decides on a redirect answer to a request for `current` (hop number
    /// `hops`, 0 for the first request) of a connector whose base URL is
    /// `base`.
    pub(crate) fn next(
        &self,
        base: &Url,
        current: &Url,
        method: &Method,
        status: StatusCode,
        location: Option<&HeaderValue>,
        hops: u32,
    ) -> Result<Hop, Refused> {
        let target = location
            .and_then(|value| value.to_str().ok())
            .and_then(|text| current.join(text).ok())
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some());
        let Some(target) = target else {
            return Err(Refused {
                origin: "an unusable `Location`".into(),
                reason: RedirectRefusal::BadLocation,
            });
        };
        let refuse = |reason| Refused {
            origin: target.origin().ascii_serialization(),
            reason,
        };
        let Some(allowed) = &self.allowed else {
            return Err(refuse(RedirectRefusal::Off));
        };
        if hops >= allowed.max {
            return Err(refuse(RedirectRefusal::TooMany { max: allowed.max }));
        }
        if base.scheme() == "https" && target.scheme() == "http" {
            return Err(refuse(RedirectRefusal::Downgrade));
        }
        let listed = || {
            let host = target.host_str().unwrap_or_default();
            let port = target.port_or_known_default();
            allowed
                .hosts
                .iter()
                .any(|(h, p)| h == host && p.is_none_or(|p| Some(p) == port))
        };
        if target.origin() != base.origin() && !listed() {
            return Err(refuse(RedirectRefusal::OtherOrigin));
        }
        let becomes_get = match status.as_u16() {
            303 => *method != Method::HEAD,
            301 | 302 => *method == Method::POST,
            _ => false,
        };
        Ok(Hop {
            url: target,
            method: if becomes_get {
                Method::GET
            } else {
                method.clone()
            },
            keeps_body: !becomes_get,
        })
    }
}

/// `host` or `host:port`, as `redirects.allow_hosts` holds them.
fn parse_host_entry(entry: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("redirects.allow_hosts: `{entry}` is not a host name or `host:port`");
    if entry.contains(['/', '\\', '@', '?', '#', ' ']) {
        return Err(bad());
    }
    let url = Url::parse(&format!("http://{entry}")).map_err(|_| bad())?;
    let host = url.host_str().ok_or_else(bad)?.to_string();
    // Anything after the host is a port the entry names.
    let port = (entry.len() > host.len()).then(|| url.port_or_known_default().unwrap_or(80));
    Ok((host, port))
}

/// The `Location` header of a response.
pub(crate) fn location(response: &reqwest::Response) -> Option<&HeaderValue> {
    response.headers().get(LOCATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn policy(max: u32, hosts: &[&str]) -> RedirectPolicy {
        RedirectPolicy::build(Some(&RedirectConfig {
            max,
            allow_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }))
        .unwrap()
    }

    fn decide(
        policy: &RedirectPolicy,
        location: &str,
        status: u16,
        method: Method,
    ) -> Result<Hop, Refused> {
        let base = url("https://api.example.com/v1");
        policy.next(
            &base,
            &url("https://api.example.com/v1/items?page=2"),
            &method,
            StatusCode::from_u16(status).unwrap(),
            Some(&HeaderValue::from_str(location).unwrap()),
            0,
        )
    }

    #[test]
    fn off_by_default_naming_only_the_origin() {
        let off = RedirectPolicy::build(None).unwrap();
        let refused = decide(&off, "https://evil.test:8443/x?key=1", 302, Method::GET)
            .err()
            .unwrap();
        assert_eq!(refused.origin, "https://evil.test:8443");
        assert!(matches!(refused.reason, RedirectRefusal::Off));
    }

    #[test]
    fn same_origin_unless_hosts_are_listed() {
        let strict = policy(5, &[]);
        assert!(decide(&strict, "/v2/items", 301, Method::GET).is_ok());
        assert!(decide(&strict, "https://API.example.com:443/x", 308, Method::GET).is_ok());
        for other in [
            "https://api2.example.com/x",
            "https://api.example.com:8443/x",
            "http://api.example.com/x",
        ] {
            assert!(decide(&strict, other, 302, Method::GET).is_err(), "{other}");
        }
        let listed = policy(5, &["api2.example.com", "files.example.com:8443"]);
        assert!(decide(&listed, "https://api2.example.com/x", 302, Method::GET).is_ok());
        assert!(decide(&listed, "https://api2.example.com:9/x", 302, Method::GET).is_ok());
        assert!(
            decide(
                &listed,
                "https://files.example.com:8443/x",
                302,
                Method::GET
            )
            .is_ok()
        );
        assert!(decide(&listed, "https://files.example.com/x", 302, Method::GET).is_err());
        let downgrade = decide(&listed, "http://api2.example.com/x", 302, Method::GET);
        assert!(matches!(
            downgrade.err().unwrap().reason,
            RedirectRefusal::Downgrade
        ));
    }

    #[test]
    fn methods_change_as_rfc_9110_has_it() {
        let strict = policy(5, &[]);
        let hop = |status, method| decide(&strict, "/next", status, method).ok().unwrap();
        let post_303 = hop(303, Method::POST);
        assert_eq!((post_303.method, post_303.keeps_body), (Method::GET, false));
        let head_303 = hop(303, Method::HEAD);
        assert_eq!(head_303.method, Method::HEAD);
        let post_302 = hop(302, Method::POST);
        assert_eq!((post_302.method, post_302.keeps_body), (Method::GET, false));
        let put_302 = hop(302, Method::PUT);
        assert_eq!((put_302.method, put_302.keeps_body), (Method::PUT, true));
        let post_307 = hop(307, Method::POST);
        assert_eq!((post_307.method, post_307.keeps_body), (Method::POST, true));
    }

    #[test]
    fn hops_are_counted_and_locations_checked() {
        let two = policy(2, &[]);
        let base = url("https://api.example.com");
        let location = HeaderValue::from_static("/again");
        let at = |hops| {
            two.next(
                &base,
                &base,
                &Method::GET,
                StatusCode::FOUND,
                Some(&location),
                hops,
            )
        };
        assert!(at(1).is_ok());
        assert!(matches!(
            at(2).err().unwrap().reason,
            RedirectRefusal::TooMany { max: 2 }
        ));
        for bad in ["ftp://api.example.com/x", "javascript:alert(1)"] {
            let refused = decide(&two, bad, 302, Method::GET).err().unwrap();
            assert!(
                matches!(refused.reason, RedirectRefusal::BadLocation),
                "{bad}"
            );
        }
    }
}
