//! [`Located`]: a configuration value together with where it was written.
//!
//! serde-saphyr's `Spanned` carries the location; this wrapper adds what a
//! configuration type needs on top: a JSON Schema identical to the inner
//! value's (so editors see plain strings, not wrapper objects) and `Deref`.

use std::ops::Deref;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A value with the 1-based line and column of the YAML node it came from.
/// Line 0 means the value did not come from a file (a default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: u64,
    pub column: u64,
}

impl<T> Located<T> {
    /// A value that was not read from a file.
    pub fn unlocated(value: T) -> Self {
        Located {
            value,
            line: 0,
            column: 0,
        }
    }
}

impl<T: Default> Default for Located<T> {
    /// The default value, not read from a file.
    fn default() -> Self {
        Located::unlocated(T::default())
    }
}

impl<T> Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        Ok(Located {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        })
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
