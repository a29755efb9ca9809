//! The route table: default replies, scripted sequences and method dispatch.
//!
//! Each route is a method plus a [`PathPattern`]. A request takes the next
//! scripted reply of its route if one is queued, else the route's default. A
//! path that matches some route but none for the request's method is a 405,
//! which is what a real API framework answers; a path that matches nothing is a
//! 404, or goes to the fallback when one is set (its route shows as `*`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::pattern::PathPattern;
use super::reply::Reply;
use super::request::RecordedRequest;

/// A reply computed from the request, for upstreams with behaviour.
pub(crate) type ReplyFn = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

/// What a route answers once its script is used up.
#[derive(Clone)]
pub(crate) enum DefaultReply {
    Fixed(Reply),
    Computed(ReplyFn),
}

struct Route {
    /// Upper-case method, or `*` for any method.
    method: String,
    pattern: PathPattern,
    default: Option<DefaultReply>,
    script: VecDeque<Reply>,
}

impl Route {
    fn accepts(&self, method: &str) -> bool {
        self.method == "*" || self.method == method
    }
}

/// Outcome of looking a request up.
pub(crate) enum Dispatch {
    /// A route matched.
    Matched {
        route: String,
        params: BTreeMap<String, String>,
        reply: Option<DefaultReply>,
    },
    /// The path is known but not for this method; carries the allowed methods.
    MethodNotAllowed(Vec<String>),
    /// Nothing matches the path.
    NotFound,
}

#[derive(Default)]
pub(crate) struct Routes {
    routes: Vec<Route>,
    /// Answers a request no route's path matches, instead of a 404.
    fallback: Option<ReplyFn>,
}

/// Normalises a method name given by a test.
pub(crate) fn normalize_method(method: &str) -> String {
    method.trim().to_ascii_uppercase()
}

impl Routes {
    fn entry(&mut self, method: &str, pattern: &str) -> &mut Route {
        let method = normalize_method(method);
        let pattern = PathPattern::parse(pattern);
        let index = match self
            .routes
            .iter()
            .position(|r| r.method == method && r.pattern == pattern)
        {
            Some(index) => index,
            None => {
                self.routes.push(Route {
                    method,
                    pattern,
                    default: None,
                    script: VecDeque::new(),
                });
                self.routes.len() - 1
            }
        };
        &mut self.routes[index]
    }

    pub(crate) fn set_default(&mut self, method: &str, pattern: &str, reply: DefaultReply) {
        self.entry(method, pattern).default = Some(reply);
    }

    pub(crate) fn push_script(
        &mut self,
        method: &str,
        pattern: &str,
        replies: impl IntoIterator<Item = Reply>,
    ) {
        self.entry(method, pattern).script.extend(replies);
    }

    pub(crate) fn set_fallback(&mut self, reply: ReplyFn) {
        self.fallback = Some(reply);
    }

    /// Finds the route for a request and takes its reply: the next scripted
    /// one if any, else the default (`None` when the route has neither).
    pub(crate) fn dispatch(&mut self, method: &str, path: &str) -> Dispatch {
        let mut best: Option<(usize, BTreeMap<String, String>)> = None;
        let mut allowed: Vec<String> = Vec::new();
        for (index, route) in self.routes.iter().enumerate() {
            let Some(params) = route.pattern.matches(path) else {
                continue;
            };
            if !route.accepts(method) {
                if !allowed.contains(&route.method) {
                    allowed.push(route.method.clone());
                }
                continue;
            }
            let better = best.as_ref().is_none_or(|(current, _)| {
                route.pattern.specificity() > self.routes[*current].pattern.specificity()
            });
            if better {
                best = Some((index, params));
            }
        }
        match best {
            Some((index, params)) => {
                let route = &mut self.routes[index];
                let reply = match route.script.pop_front() {
                    Some(scripted) => Some(DefaultReply::Fixed(scripted)),
                    None => route.default.clone(),
                };
                Dispatch::Matched {
                    route: route.pattern.as_str().to_owned(),
                    params,
                    reply,
                }
            }
            None if allowed.is_empty() => match &self.fallback {
                Some(fallback) => Dispatch::Matched {
                    route: "*".to_owned(),
                    params: BTreeMap::new(),
                    reply: Some(DefaultReply::Computed(Arc::clone(fallback))),
                },
                None => Dispatch::NotFound,
            },
            None => {
                allowed.sort();
                Dispatch::MethodNotAllowed(allowed)
            }
        }
    }
}
