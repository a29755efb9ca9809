//! [`Node`]: a YAML value kept as a tree, every node with its location, to be
//! read into a typed configuration later by whoever owns its meaning.
//!
//! A step's kind keys (`call`, `switch`, `wait`, ...) belong to the engine's
//! step kinds, one file each; this crate knows only the modifiers every step
//! shares. So a step is read in two stages: the YAML loader keeps the kind's
//! keys as nodes, and the kind reads them into its own config type with
//! [`Node::read`]. Locations survive the second stage: [`Located`] fields of
//! the kind's type get the line and column of their node, and a serde error
//! (an unknown field, a wrong type) names the deepest node it arose at.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

use crate::located::{LOCATED_NEWTYPE, Located};

/// A YAML value with the location of every node in it.
pub type Node = Located<NodeValue>;

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    /// Entries in file order, each key with its own location.
    Map(Vec<(Located<String>, Node)>),
}

impl NodeValue {
    /// The YAML type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }
}

/// Why a node could not be read into a configuration type, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeError {
    pub message: String,
    /// Where the problem is: the deepest node the error arose at.
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NodeError {}

impl de::Error for NodeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        NodeError {
            message: message.to_string(),
            line: 0,
            column: 0,
        }
    }
}

impl NodeError {
    /// Gives an error its location unless a deeper node already did.
    fn at(mut self, line: u64, column: u64) -> Self {
        if self.line == 0 {
            self.line = line;
            self.column = column;
        }
        self
    }
}

impl Located<NodeValue> {
    /// Reads the node into `T`; the error names the deepest node at fault.
    pub fn read<T: de::DeserializeOwned>(&self) -> Result<T, NodeError> {
        T::deserialize(NodeDeserializer(self)).map_err(|mut e| {
            if let Some(better) = crate::project::suggest_key(&e.message) {
                e.message = better;
            }
            e
        })
    }

    /// A mapping node holding these entries, located at `self`.
    pub fn mapping(at: &Located<impl Sized>, entries: Vec<(Located<String>, Node)>) -> Node {
        Located {
            value: NodeValue::Map(entries),
            line: at.line,
            column: at.column,
        }
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValue, E> {
        serde_json::Number::from_f64(v)
            .map(NodeValue::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::String(v))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Located<String>>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

/// Reads a [`Node`] as serde input.
struct NodeDeserializer<'a>(&'a Node);

impl<'de> Deserializer<'de> for NodeDeserializer<'_> {
    type Error = NodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let node = self.0;
        let result = match &node.value {
            NodeValue::Null => visitor.visit_unit(),
            NodeValue::Bool(v) => visitor.visit_bool(*v),
            NodeValue::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(v), _, _) => visitor.visit_u64(v),
                (None, Some(v), _) => visitor.visit_i64(v),
                (None, None, Some(v)) => visitor.visit_f64(v),
                (None, None, None) => Err(de::Error::custom("unreadable number")),
            },
            NodeValue::String(s) => visitor.visit_str(s),
            NodeValue::Seq(items) => visitor.visit_seq(SeqReader(items.iter())),
            NodeValue::Map(entries) => visitor.visit_map(MapReader {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(node.line, node.column))
    }

    /// A scalar read as text: a jq program such as `filter: true` or
    /// `transform: 1` is written without quotes, and typed YAML reading
    /// accepts it as a string too.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        let node = self.0;
        let result = match &node.value {
            NodeValue::Bool(v) => visitor.visit_string(v.to_string()),
            NodeValue::Number(n) => visitor.visit_string(n.to_string()),
            // `{a: 1}` and `[.a, .b]` are jq programs and YAML collections:
            // unquoted, YAML reads them as the latter.
            NodeValue::Map(_) | NodeValue::Seq(_) => Err(de::Error::custom(format!(
                "expected text, found {}; a jq expression such as `{{a: 1}}` or `[.a]` \
                 must be quoted, as in `'{{a: 1}}'`",
                node.value.type_name()
            ))),
            _ => return self.deserialize_any(visitor),
        };
        result.map_err(|e: NodeError| e.at(node.line, node.column))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, NodeError> {
        match self.0.value {
            NodeValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        if name == LOCATED_NEWTYPE {
            // `Located<T>` asks for its location: hand it this node's.
            return visitor.visit_map(LocationReader {
                node: self.0,
                field: 0,
            });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        let node = self.0;
        let result = match &node.value {
            NodeValue::String(variant) => visitor.visit_enum(variant.as_str().into_deserializer()),
            NodeValue::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(EnumReader { key, value })
            }
            other => Err(de::Error::custom(format!(
                "expected a name or a mapping with one key, found {}",
                other.type_name()
            ))),
        };
        result.map_err(|e| e.at(node.line, node.column))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct SeqReader<'a>(std::slice::Iter<'a, Node>);

impl<'de> de::SeqAccess<'de> for SeqReader<'_> {
    type Error = NodeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, NodeError> {
        self.0
            .next()
            .map(|node| seed.deserialize(NodeDeserializer(node)))
            .transpose()
    }
}

struct MapReader<'a> {
    entries: std::slice::Iter<'a, (Located<String>, Node)>,
    value: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for MapReader<'_> {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        // Read as a node of its own, so that a key can be read `Located`.
        let key = Located {
            value: NodeValue::String(key.value.clone()),
            line: key.line,
            column: key.column,
        };
        seed.deserialize(NodeDeserializer(&key))
            .map(Some)
            // An unknown field is reported at its key.
            .map_err(|e| e.at(key.line, key.column))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <NodeError as de::Error>::custom("a value without its key"))?;
        seed.deserialize(NodeDeserializer(value))
    }
}

struct EnumReader<'a> {
    key: &'a Located<String>,
    value: &'a Node,
}

impl<'a, 'de> de::EnumAccess<'de> for EnumReader<'a> {
    type Error = NodeError;
    type Variant = NodeDeserializer<'a>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), NodeError> {
        let key = self.key;
        let variant = seed
            .deserialize(key.value.as_str().into_deserializer())
            .map_err(|e: NodeError| e.at(key.line, key.column))?;
        Ok((variant, NodeDeserializer(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDeserializer<'_> {
    type Error = NodeError;
    fn unit_variant(self) -> Result<(), NodeError> {
        de::IgnoredAny::deserialize(self).map(|_| ())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, NodeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, NodeError> {
        self.deserialize_any(visitor)
    }
}

/// The map `Located<T>` reads its value and location from.
struct LocationReader<'a> {
    node: &'a Node,
    field: u8,
}

impl<'de> de::MapAccess<'de> for LocationReader<'_> {
    type Error = NodeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, NodeError> {
        let key = match self.field {
            0 => "line",
            1 => "column",
            2 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, NodeError> {
        self.field += 1;
        match self.field {
            1 => seed.deserialize(self.node.line.into_deserializer()),
            2 => seed.deserialize(self.node.column.into_deserializer()),
            _ => seed.deserialize(NodeDeserializer(self.node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        name: Located<String>,
        #[serde(default)]
        count: Option<Located<u32>>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Plain,
        Every(u32),
    }

    fn tree(yaml: &str) -> Node {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn located_fields_keep_their_lines_through_the_tree() {
        let node = tree("a: 1\nthing:\n  name: x\n  count: 3\n  mode: {every: 2}\n");
        let NodeValue::Map(entries) = &node.value else {
            panic!("a map")
        };
        assert_eq!(entries[1].0.value, "thing");
        let inner: Inner = entries[1].1.read().unwrap();
        assert_eq!((inner.name.value.as_str(), inner.name.line), ("x", 3));
        assert_eq!(inner.count.map(|c| (c.value, c.line)), Some((3, 4)));
        assert_eq!(inner.mode, Some(Mode::Every(2)));
        let plain: Inner = tree("name: z\nmode: plain\n").read().unwrap();
        assert_eq!(plain.mode, Some(Mode::Plain));
        // Unquoted scalars are text where text is expected (`filter: true`).
        let scalar: Inner = tree("name: true\n").read().unwrap();
        assert_eq!(scalar.name.value, "true");
        let scalar: Inner = tree("name: 12\n").read().unwrap();
        assert_eq!(scalar.name.value, "12");
    }

    #[test]
    fn errors_name_the_deepest_node() {
        let node = tree("name: x\ncount: many\n");
        let error = node.read::<Inner>().unwrap_err();
        assert_eq!((error.line, error.column), (2, 8), "{error:?}");
        let node = tree("name: x\n\ncuont: 2\n");
        let error = node.read::<Inner>().unwrap_err();
        assert_eq!(error.line, 3, "{error:?}");
        assert!(
            error
                .message
                .contains("unknown key `cuont` — did you mean `count`?"),
            "{error}"
        );
    }
}
