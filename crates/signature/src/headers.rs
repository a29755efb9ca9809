//! [`Headers`]: how the verifier reads request headers, whatever HTTP
//! library holds them.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Read access to a request's headers.
pub trait Headers {
    /// The value of the header `name` (given in lowercase), if present. When
    /// a header is repeated, the first value.
    fn header(&self, name: &str) -> Option<&[u8]>;
}

/// Pairs of name and value; names are compared without regard to case.
impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().header(name)
    }
}

/// Keys are expected in lowercase.
impl<V: AsRef<[u8]>> Headers for BTreeMap<String, V> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(AsRef::as_ref)
    }
}

/// Keys are expected in lowercase.
impl<V: AsRef<[u8]>, S: BuildHasher> Headers for HashMap<String, V, S> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.get(name).map(AsRef::as_ref)
    }
}
