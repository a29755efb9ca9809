//! [`Located`]: a configuration value together with where it was written.
//!
//! serde-saphyr's `Spanned` carries the location; this wrapper adds what a
//! configuration type needs on top: a JSON Schema identical to the inner
//! value's (so editors see plain strings, not wrapper objects) and `Deref`.

use std::ops::Deref;

use schemars::JsonSchema;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
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

/// The newtype name `Located<T>` deserializes through. serde-saphyr does not
/// know it and hands over its own deserializer, from which `Spanned` takes
/// the location; [`crate::node`]'s reader knows it and answers with a map of
/// `line`, `column` and `value` taken from its tree.
pub(crate) const LOCATED_NEWTYPE: &str = "patchbay::Located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(LOCATED_NEWTYPE, LocatedVisitor(PhantomData))
    }
}

struct LocatedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
    type Value = Located<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a located value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Located<T>, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Located {
            value: spanned.value,
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located<T>, A::Error> {
        let (mut line, mut column, mut value) = (0, 0, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "line" => line = map.next_value()?,
                "column" => column = map.next_value()?,
                "value" => value = Some(map.next_value()?),
                other => {
                    return Err(de::Error::unknown_field(
                        other,
                        &["line", "column", "value"],
                    ));
                }
            }
        }
        let value = value.ok_or_else(|| de::Error::missing_field("value"))?;
        Ok(Located {
            value,
            line,
            column,
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
