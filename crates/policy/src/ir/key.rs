//! Set element keys held inline.
//!
//! Contract: a [`Key`] is one inclusive `(from, to)` range per key field,
//! each bound the field's big-endian bytes, exactly `Field::len` (≤ 16)
//! long; non-interval sets have `from == to`. It behaves as the slice of
//! those pairs, and each [`KeyBytes`] as its byte slice: equality, order
//! and hash are the slices' (so a set's element order is the order of the
//! bytes, as the kernel's). Why inline: a 10k-rule ACL's maps hold tens of
//! thousands of elements, each key once in the elements and once in the
//! counter owners; as vectors of vectors they were three allocations each.
//! A one-field key (every ACL map's) allocates nothing.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Equality, order, hash and `Debug` of a type as those of the slice it
/// dereferences to.
macro_rules! as_slice {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                **self == **other
            }
        }

        impl Eq for $t {}

        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $t {
            fn cmp(&self, other: &Self) -> Ordering {
                (**self).cmp(&**other)
            }
        }

        impl Hash for $t {
            fn hash<H: Hasher>(&self, state: &mut H) {
                (**self).hash(state);
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (**self).fmt(f)
            }
        }
    };
}

/// One bound of a key field: up to 16 big-endian bytes, inline.
#[derive(Clone, Copy)]
pub struct KeyBytes {
    len: u8,
    bytes: [u8; 16],
}

impl KeyBytes {
    /// The bytes of `b`. Panics beyond 16 bytes (no field is longer).
    pub fn new(b: &[u8]) -> Self {
        assert!(b.len() <= 16, "a key field has at most 16 bytes");
        let mut bytes = [0u8; 16];
        bytes[..b.len()].copy_from_slice(b);
        Self {
            len: b.len() as u8,
            bytes,
        }
    }

    /// `value` as `len` big-endian bytes (`len` ≤ 16).
    pub fn be(value: u128, len: usize) -> Self {
        Self::new(&value.to_be_bytes()[16 - len..])
    }
}

impl Deref for KeyBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl From<Vec<u8>> for KeyBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::new(&v)
    }
}

impl From<&[u8]> for KeyBytes {
    fn from(v: &[u8]) -> Self {
        Self::new(v)
    }
}

impl<const N: usize> From<[u8; N]> for KeyBytes {
    fn from(v: [u8; N]) -> Self {
        Self::new(&v)
    }
}

/// Equality and order of the byte slices, computed on the zero-padded
/// arrays: equal slices are equal arrays of equal lengths, and slices
/// order as the arrays read as big-endian numbers, then by length (a
/// slice that is a prefix of another pads to an array no greater). Two
/// comparisons of words, where a slice comparison calls `memcmp` (every
/// element of a map is compared when the map is built).
impl PartialEq for KeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}

impl Eq for KeyBytes {}

impl PartialOrd for KeyBytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyBytes {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from_be_bytes(self.bytes), self.len)
            .cmp(&(u128::from_be_bytes(other.bytes), other.len))
    }
}

impl Hash for KeyBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// One key field's inclusive range.
pub type KeyPart = (KeyBytes, KeyBytes);

/// An element key (see the module doc): one field inline, concatenations
/// of several fields in a vector.
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    One([KeyPart; 1]),
    Many(Vec<KeyPart>),
}

impl Key {
    /// A one-field key.
    pub fn one(from: impl Into<KeyBytes>, to: impl Into<KeyBytes>) -> Self {
        Key(Repr::One([(from.into(), to.into())]))
    }

    /// A one-field key of a single value.
    pub fn point(value: impl Into<KeyBytes>) -> Self {
        let v = value.into();
        Key(Repr::One([(v, v)]))
    }
}

impl Deref for Key {
    type Target = [KeyPart];
    fn deref(&self) -> &[KeyPart] {
        match &self.0 {
            Repr::One(p) => p,
            Repr::Many(v) => v,
        }
    }
}

impl FromIterator<KeyPart> for Key {
    fn from_iter<I: IntoIterator<Item = KeyPart>>(iter: I) -> Self {
        let mut it = iter.into_iter();
        let Some(first) = it.next() else {
            return Key(Repr::Many(Vec::new()));
        };
        match it.next() {
            None => Key(Repr::One([first])),
            Some(second) => {
                let mut v = vec![first, second];
                v.extend(it);
                Key(Repr::Many(v))
            }
        }
    }
}

impl<B: Into<KeyBytes>> From<Vec<(B, B)>> for Key {
    fn from(v: Vec<(B, B)>) -> Self {
        v.into_iter().map(|(a, b)| (a.into(), b.into())).collect()
    }
}

as_slice!(Key);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_equality_are_the_bytes() {
        let a = Key::one(vec![10, 0, 0, 1], vec![10, 0, 0, 9]);
        let b = Key::one(vec![10, 0, 0, 2], vec![10, 0, 0, 3]);
        assert!(a < b);
        assert_eq!(
            a,
            Key::from(vec![(vec![10u8, 0, 0, 1], vec![10u8, 0, 0, 9])])
        );
        let two: Key = Key::from(vec![(vec![6u8], vec![6u8]), (vec![0, 80], vec![0, 80])]);
        assert_eq!(two.len(), 2);
        assert_eq!(&*two[1].0, &[0, 80]);
        // By bytes, as a vector of byte vectors compared: 6 < 10.
        assert!(two < a);
    }

    #[test]
    fn bound_order_and_equality_are_the_slices() {
        let slices: [&[u8]; 9] = [
            &[],
            &[0],
            &[0, 0],
            &[0, 1],
            &[1],
            &[1, 0],
            &[1, 0, 0],
            &[255; 16],
            &[255, 0],
        ];
        for a in slices {
            for b in slices {
                let (x, y) = (KeyBytes::new(a), KeyBytes::new(b));
                assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(x == y, a == b, "{a:?} vs {b:?}");
            }
        }
    }
}
