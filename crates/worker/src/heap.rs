//! An estimate of the heap bytes a value owns, read from its serde form:
//! what the model cache weighs a decoded model by
//! ([`crate::state::LoadedModel::heap_bytes`]), without a size method on
//! every engine type.
//!
//! A value has an inline size (what it takes in its parent: a struct's
//! fields, a vector's 24-byte header) and heap bytes (what it owns
//! elsewhere). A vector or string owns one allocation: its elements' inline
//! sizes (or its bytes) plus their own heap bytes, plus the allocator's
//! bookkeeping. Numbers take their width, an option or an enum's variant a
//! tag word more than its content. Unknown to serde, hence not counted:
//! spare capacity of vectors and boxes (a box serializes as its content).

use serde::ser::{self, Serialize};
use std::fmt;

/// What the allocator takes per allocation beyond its bytes, on average
/// (glibc's malloc: an 8-byte header, sizes rounded up to 16).
pub(crate) const ALLOCATION: usize = 16;

/// Inline size of a vector or string (pointer, capacity, length).
const HEADER: usize = 24;

/// The heap bytes `value` owns (its inline size excluded: that is counted
/// where it lives).
pub(crate) fn heap_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    value.serialize(Meter).map_or(0, |s| s.heap)
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Size {
    inline: usize,
    heap: usize,
}

impl Size {
    fn inline(inline: usize) -> Self {
        Self { inline, heap: 0 }
    }

    /// An allocation holding `bytes` (a vector's elements, a string's
    /// text); none when empty.
    fn owned(bytes: usize, heap: usize) -> Self {
        Self {
            inline: HEADER,
            heap: match bytes {
                0 => heap,
                _ => bytes + heap + ALLOCATION,
            },
        }
    }

    fn add(&mut self, other: Size) {
        self.inline += other.inline;
        self.heap += other.heap;
    }

    /// An option's or a variant's tag word around `self`.
    fn tagged(self) -> Self {
        Self {
            inline: self.inline + 8,
            heap: self.heap,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Never;

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not measurable")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Never
    }
}

struct Meter;

/// The elements of a sequence or map, or the fields of a struct, summed.
#[derive(Default)]
pub(crate) struct Parts {
    sum: Size,
    /// A sequence or map: its elements live in an allocation of their own.
    owned: bool,
    /// An enum's variant: a tag word more.
    tagged: bool,
}

impl Parts {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.sum.add(value.serialize(Meter)?);
        Ok(())
    }

    fn end(self) -> Result<Size, Never> {
        let size = if self.owned {
            Size::owned(self.sum.inline, self.sum.heap)
        } else {
            self.sum
        };
        Ok(if self.tagged { size.tagged() } else { size })
    }
}

macro_rules! width {
    ($($method:ident: $t:ty),*) => {
        $(fn $method(self, _: $t) -> Result<Size, Never> {
            Ok(Size::inline(std::mem::size_of::<$t>()))
        })*
    };
}

impl ser::Serializer for Meter {
    type Ok = Size;
    type Error = Never;
    type SerializeSeq = Parts;
    type SerializeTuple = Parts;
    type SerializeTupleStruct = Parts;
    type SerializeTupleVariant = Parts;
    type SerializeMap = Parts;
    type SerializeStruct = Parts;
    type SerializeStructVariant = Parts;

    width!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char);

    fn serialize_str(self, v: &str) -> Result<Size, Never> {
        Ok(Size::owned(v.len(), 0))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Size, Never> {
        Ok(Size::owned(v.len(), 0))
    }

    fn serialize_none(self) -> Result<Size, Never> {
        Ok(Size::inline(8))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Size, Never> {
        Ok(value.serialize(Meter)?.tagged())
    }

    fn serialize_unit(self) -> Result<Size, Never> {
        Ok(Size::default())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<Size, Never> {
        Ok(Size::default())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<Size, Never> {
        Ok(Size::inline(8))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Size, Never> {
        value.serialize(Meter)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        value: &T,
    ) -> Result<Size, Never> {
        Ok(value.serialize(Meter)?.tagged())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Parts, Never> {
        Ok(Parts {
            owned: true,
            ..Parts::default()
        })
    }

    fn serialize_tuple(self, _: usize) -> Result<Parts, Never> {
        Ok(Parts::default())
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Parts, Never> {
        Ok(Parts::default())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Parts, Never> {
        Ok(Parts {
            tagged: true,
            ..Parts::default()
        })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Parts, Never> {
        self.serialize_seq(None)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Parts, Never> {
        Ok(Parts::default())
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Parts, Never> {
        self.serialize_tuple_variant(name, index, variant, len)
    }
}

/// The compound serializers: each part is measured as it comes, whatever
/// the trait calls it (element, field, key or value).
macro_rules! parts {
    ($($trait:ident :: $method:ident $(($name:ty))?),* $(,)?) => {$(
        impl ser::$trait for Parts {
            type Ok = Size;
            type Error = Never;
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $(_: $name,)?
                value: &T,
            ) -> Result<(), Never> {
                self.push(value)
            }
            fn end(self) -> Result<Size, Never> {
                Parts::end(self)
            }
        }
    )*};
}

parts!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl ser::SerializeMap for Parts {
    type Ok = Size;
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Never> {
        self.push(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.push(value)
    }
    fn end(self) -> Result<Size, Never> {
        Parts::end(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Inner {
        values: Vec<f64>,
        name: String,
    }

    #[test]
    fn counts_vectors_strings_and_what_they_hold() {
        assert_eq!(heap_bytes(&1.0f64), 0);
        assert_eq!(heap_bytes(&vec![0.0f64; 100]), 800 + ALLOCATION);
        assert_eq!(heap_bytes("abc"), 3 + ALLOCATION);
        // A vector of structs: their inline parts in its allocation, their
        // own allocations besides.
        assert_eq!(heap_bytes(&Vec::<Inner>::new()), 0);
        let two = vec![
            Inner {
                values: vec![1.0; 10],
                name: "ab".into(),
            },
            Inner {
                values: vec![],
                name: String::new(),
            },
        ];
        let each_inline = 2 * HEADER;
        // Empty ones allocate nothing.
        let owned = (80 + ALLOCATION) + (2 + ALLOCATION);
        assert_eq!(heap_bytes(&two), 2 * each_inline + ALLOCATION + owned);
    }
}
