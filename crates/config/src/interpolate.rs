//! `${env:NAME}` and `${secret:NAME}` interpolation in configuration values.
//!
//! Interpolation happens on typed values (connector URLs, headers, auth
//! fields), not on the raw YAML text: a value containing quotes or newlines
//! cannot change the structure of the file, and the unresolved text is what
//! the management API may show. `$${` writes a literal `${`.

use std::collections::HashMap;

/// Where `${env:NAME}` and `${secret:NAME}` values come from.
pub trait Env: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;

    /// A secret from the store; `None` when it is not set (or, for an
    /// environment without a store, never).
    fn secret(&self, _name: &str) -> Option<String> {
        None
    }
}

/// Secrets (already opened) in front of another environment, which answers
/// `${env:...}`.
pub struct WithSecrets<E> {
    secrets: HashMap<String, String>,
    env: E,
}

impl<E: Env> WithSecrets<E> {
    pub fn new(secrets: HashMap<String, String>, env: E) -> Self {
        WithSecrets { secrets, env }
    }

    /// The secrets it resolves, by name.
    pub fn secrets(&self) -> &HashMap<String, String> {
        &self.secrets
    }
}

impl<E: Env> Env for WithSecrets<E> {
    fn var(&self, name: &str) -> Option<String> {
        self.env.var(name)
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.secrets
            .get(name)
            .cloned()
            .or_else(|| self.env.secret(name))
    }
}

impl<E> std::fmt::Debug for WithSecrets<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.secrets.keys().collect();
        names.sort();
        f.debug_struct("WithSecrets")
            .field("secrets", &names)
            .finish_non_exhaustive()
    }
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

    fn secret(&self, name: &str) -> Option<String> {
        self.fallback.as_ref().and_then(|f| f.secret(name))
    }
}

/// Replaces every `${env:NAME}` and `${secret:NAME}` in `text`. The error is a sentence naming the
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
            Some(("secret", name)) if is_variable_name(name) => match env.secret(name) {
                Some(value) => out.push_str(&value),
                None => {
                    return Err(format!(
                        "secret `{name}` is not set: set it with `patchbay secrets set {name}` or `PUT /api/v1/secrets/{name}`"
                    ));
                }
            },
            Some(("secret", name)) => {
                return Err(format!(
                    "`{name}` is not a valid secret name (ASCII letters, digits and `_`)"
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
    fn secrets_resolve_from_the_store_only() {
        let secrets = HashMap::from([("crm_token".to_string(), "t0k3n".to_string())]);
        let env = WithSecrets::new(secrets, env());
        assert_eq!(
            interpolate("Bearer ${secret:crm_token} ${env:KEY}", &env).unwrap(),
            "Bearer t0k3n s3cr3t"
        );
        // An environment variable of the same name is not a secret.
        let err = interpolate("${secret:KEY}", &env).unwrap_err();
        assert!(err.contains("secret `KEY` is not set"), "{err}");
        assert!(err.contains("patchbay secrets set KEY"), "{err}");
        let err = interpolate("${secret:a-b}", &env).unwrap_err();
        assert!(err.contains("not a valid secret name"), "{err}");
        // Through a map environment's fallback too (the demo's case).
        let layered = MapEnv::new([]).with_fallback(env);
        assert_eq!(
            interpolate("${secret:crm_token}", &layered).unwrap(),
            "t0k3n"
        );
    }

    #[test]
    fn fallback_is_consulted() {
        let inner = MapEnv::new([("B".to_string(), "2".to_string())]);
        let env = MapEnv::new([("A".to_string(), "1".to_string())]).with_fallback(inner);
        assert_eq!(interpolate("${env:A}${env:B}", &env).unwrap(), "12");
    }
}
