//! `${env:NAME}` interpolation in configuration values.
//!
//! Interpolation happens on typed values (connector URLs, headers, auth
//! fields), not on the raw YAML text: a value containing quotes or newlines
//! cannot change the structure of the file, and the unresolved text is what
//! the management API may show. `$${` writes a literal `${`.

use std::collections::HashMap;

/// Where `${env:NAME}` values come from.
pub trait Env: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Fixed variables, consulted before an optional fallback. The demo uses it to
/// hand the addresses of its mock upstreams to the example project without
/// touching the process environment.
#[derive(Default)]
pub struct MapEnv {
    vars: HashMap<String, String>,
    fallback: Option<Box<dyn Env>>,
}

impl MapEnv {
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        MapEnv {
            vars: vars.into_iter().collect(),
            fallback: None,
        }
    }

    /// Looks names up in `fallback` when they are not in the map.
    pub fn with_fallback(mut self, fallback: impl Env + 'static) -> Self {
        self.fallback = Some(Box::new(fallback));
        self
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .cloned()
            .or_else(|| self.fallback.as_ref().and_then(|f| f.var(name)))
    }
}

/// Replaces every `${env:NAME}` in `text`. The error is a sentence naming the
/// first placeholder that cannot be resolved.
pub fn interpolate(text: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{text}`"));
        };
        let reference = &after[..end];
        match reference.split_once(':') {
            Some(("env", name)) if is_variable_name(name) => match env.var(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable `{name}` is not set")),
            },
            Some(("env", name)) => {
                return Err(format!("`{name}` is not a valid environment variable name"));
            }
            Some(("secret", name)) => {
                return Err(format!(
                    "`${{secret:{name}}}` needs the secret store, which this version does not have yet; use `${{env:...}}`"
                ));
            }
            _ => {
                return Err(format!(
                    "unknown reference `${{{reference}}}`: write `${{env:NAME}}` (or `$${{` for a literal `${{`)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> MapEnv {
        MapEnv::new([("KEY".to_string(), "s3cr3t".to_string())])
    }

    #[test]
    fn replaces_env_references() {
        assert_eq!(
            interpolate("Bearer ${env:KEY}!", &env()).unwrap(),
            "Bearer s3cr3t!"
        );
        assert_eq!(interpolate("no refs", &env()).unwrap(), "no refs");
    }

    #[test]
    fn missing_variable_is_named() {
        let err = interpolate("x ${env:NOPE}", &env()).unwrap_err();
        assert!(err.contains("`NOPE`"), "{err}");
    }

    #[test]
    fn escapes_and_malformed_references() {
        assert_eq!(interpolate("$${env:KEY}", &env()).unwrap(), "${env:KEY}");
        assert!(
            interpolate("${env:KEY", &env())
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(
            interpolate("${vault:KEY}", &env())
                .unwrap_err()
                .contains("unknown reference")
        );
        assert!(
            interpolate("${env:A-B}", &env())
                .unwrap_err()
                .contains("not a valid")
        );
    }

    #[test]
    fn fallback_is_consulted() {
        let inner = MapEnv::new([("B".to_string(), "2".to_string())]);
        let env = MapEnv::new([("A".to_string(), "1".to_string())]).with_fallback(inner);
        assert_eq!(interpolate("${env:A}${env:B}", &env).unwrap(), "12");
    }
}
