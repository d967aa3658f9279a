//! The canonical encoding that versions hash: a value's serde data model written as tagged, framed
//! bytes. It says what the JSON of the value says (field and variant names, map keys, list order,
//! `null` for an unset option) without formatting it: no escaping, no number printing. The JSON is
//! still what `--explain` shows; it is made only when asked.
//!
//! Every value starts with a tag byte and has a length that its bytes determine (strings carry their
//! length, lists and maps an end tag that no value starts with), so two different values never encode
//! to the same bytes, and a list of two values never reads as one value. Lengths are LEB128 varints:
//! most strings here are short, and the bytes are hashed.

use serde::ser::{self, Serialize};

/// Tags. Each starts one value, except `END`, which closes a list or a map.
mod tag {
    pub const NULL: u8 = b'n';
    pub const FALSE: u8 = b'f';
    pub const TRUE: u8 = b't';
    pub const INT: u8 = b'i';
    pub const UINT: u8 = b'u';
    pub const FLOAT: u8 = b'd';
    pub const STR: u8 = b's';
    pub const BYTES: u8 = b'y';
    pub const LIST: u8 = b'[';
    pub const MAP: u8 = b'{';
    pub const END: u8 = b'.';
    /// A one-key map of a variant's name to its content: what JSON writes for such variants.
    pub const VARIANT: u8 = b'v';
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Only the error type's `custom` (a Serialize impl that refuses its value) can fail, and no
    // manifest type does; an error would leave the bytes so far, still canonical for the value.
    let _ = value.serialize(&mut Encoder { out });
}

/// Refused by a value's own `Serialize` impl; kept only to satisfy serde's signature.
#[derive(Debug)]
pub struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl ser::Error for Refused {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        Refused(message.to_string())
    }
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn str(&mut self, text: &str) {
        self.out.push(tag::STR);
        self.length(text.len());
        self.out.extend_from_slice(text.as_bytes());
    }

    /// Opens a variant with content: JSON's one-key map of its name to the content that follows.
    fn variant(&mut self, name: &str) {
        self.out.push(tag::VARIANT);
        self.str(name);
    }

    /// A length as LEB128: seven bits a byte, low first, the high bit set on all but the last.
    fn length(&mut self, mut length: usize) {
        while length >= 0x80 {
            self.out.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        self.out.push(length as u8);
    }

    fn int(&mut self, value: i128) {
        if let Ok(small) = i64::try_from(value) {
            self.out.push(tag::INT);
            self.out.extend_from_slice(&small.to_le_bytes());
        } else {
            self.out.push(tag::UINT);
            self.out.extend_from_slice(&(value as u128).to_le_bytes());
        }
    }
}

/// Collects `collect_str` output on the stack when it is short (quantities, durations), to frame it
/// once its length is known.
struct Collected {
    short: [u8; 64],
    len: usize,
    long: String,
}

impl std::fmt::Write for Collected {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        if self.long.is_empty() && self.len + piece.len() <= self.short.len() {
            self.short[self.len..self.len + piece.len()].copy_from_slice(piece.as_bytes());
            self.len += piece.len();
        } else {
            if self.long.is_empty() {
                self.long.push_str(std::str::from_utf8(&self.short[..self.len]).unwrap_or_default());
            }
            self.long.push_str(piece);
        }
        Ok(())
    }
}

macro_rules! ints {
    ($($method:ident: $type:ty),*) => {
        $(fn $method(self, value: $type) -> Result<(), Refused> {
            self.int(i128::from(value));
            Ok(())
        })*
    };
}

impl<'b> ser::Serializer for &mut Encoder<'b> {
    type Ok = ();
    type Error = Refused;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, value: bool) -> Result<(), Refused> {
        self.out.push(if value { tag::TRUE } else { tag::FALSE });
        Ok(())
    }

    ints!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
          serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);

    fn serialize_i128(self, value: i128) -> Result<(), Refused> {
        self.int(value);
        Ok(())
    }

    fn serialize_u128(self, value: u128) -> Result<(), Refused> {
        match i128::try_from(value) {
            Ok(value) => self.int(value),
            Err(_) => {
                self.out.push(tag::UINT);
                self.out.extend_from_slice(&value.to_le_bytes());
            }
        }
        Ok(())
    }

    fn serialize_f32(self, value: f32) -> Result<(), Refused> {
        self.serialize_f64(f64::from(value))
    }

    fn serialize_f64(self, value: f64) -> Result<(), Refused> {
        self.out.push(tag::FLOAT);
        self.out.extend_from_slice(&value.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), Refused> {
        self.str(value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), Refused> {
        self.str(value);
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), Refused> {
        self.out.push(tag::BYTES);
        self.length(value.len());
        self.out.extend_from_slice(value);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Refused> {
        self.out.push(tag::NULL);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Refused> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Refused> {
        self.serialize_none()
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Refused> {
        self.serialize_none()
    }

    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Refused> {
        self.str(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Refused> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Refused> {
        self.variant(variant);
        value.serialize(self)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, Refused> {
        self.out.push(tag::LIST);
        Ok(self)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self, Refused> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Self, Refused> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Refused> {
        self.variant(variant);
        self.serialize_seq(None)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self, Refused> {
        self.out.push(tag::MAP);
        Ok(self)
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Self, Refused> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self, Refused> {
        self.variant(variant);
        self.serialize_map(None)
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<(), Refused> {
        let mut shown = Collected { short: [0; 64], len: 0, long: String::new() };
        // Writing into memory does not fail; a Display impl that fails leaves what it wrote.
        let _ = std::fmt::write(&mut shown, format_args!("{value}"));
        if shown.long.is_empty() {
            // Pieces are whole strs, so the bytes kept are UTF-8.
            self.str(std::str::from_utf8(&shown.short[..shown.len]).unwrap_or_default());
        } else {
            self.str(&shown.long);
        }
        Ok(())
    }
}

/// Lists and tuples: each item in order, then the end tag.
macro_rules! items {
    ($($kind:ident :: $add:ident),*) => {$(
        impl ser::$kind for &mut Encoder<'_> {
            type Ok = ();
            type Error = Refused;

            fn $add<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), Refused> {
                self.out.push(tag::END);
                Ok(())
            }
        }
    )*};
}

items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// Structs: each field's name and value, then the end tag; a struct reads as the map JSON makes of it.
macro_rules! fields {
    ($($kind:ident),*) => {$(
        impl ser::$kind for &mut Encoder<'_> {
            type Ok = ();
            type Error = Refused;

            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Refused> {
                self.str(key);
                value.serialize(&mut **self)
            }

            fn end(self) -> Result<(), Refused> {
                self.out.push(tag::END);
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for &mut Encoder<'_> {
    type Ok = ();
    type Error = Refused;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Refused> {
        key.serialize(&mut **self)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Refused> {
        value.serialize(&mut **self)
    }

    fn end(self) -> Result<(), Refused> {
        self.out.push(tag::END);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out);
        out
    }

    /// Written through `collect_str`, as quantities and durations are.
    struct Shown<'a>(&'a str);

    impl Serialize for Shown<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self.0)
        }
    }

    #[test]
    fn boundaries_between_values_are_kept() {
        assert_ne!(bytes(&("ab", "c")), bytes(&("a", "bc")));
        assert_ne!(bytes(&vec![vec![1], vec![]]), bytes(&vec![vec![], vec![1]]));
        assert_ne!(bytes(&[vec!["a", "b"]]), bytes(&[vec!["a"], vec!["b"]]));
        assert_ne!(bytes(&None::<&str>), bytes(&Some("")));
        assert_ne!(bytes(&Some("")), bytes(&Vec::<&str>::new()));
        assert_ne!(bytes(&1_i64), bytes(&1.0_f64));
        assert_ne!(bytes(&1_i64), bytes(&"1"));
        assert_ne!(bytes(&true), bytes(&1_u8));
        let one: BTreeMap<&str, &str> = [("a", "b")].into_iter().collect();
        let joined: BTreeMap<&str, &str> = [("ab", "")].into_iter().collect();
        assert_ne!(bytes(&one), bytes(&joined));
        assert_ne!(bytes(&one), bytes(&vec!["a", "b"]));
    }

    #[test]
    fn equal_values_encode_alike() {
        // Integer widths do not matter, as in JSON; a map's order is its keys'.
        assert_eq!(bytes(&7_u8), bytes(&7_i64));
        assert_eq!(bytes(&u64::MAX), bytes(&u128::from(u64::MAX)));
        assert_ne!(bytes(&u64::MAX), bytes(&-1_i64));
        let forwards: BTreeMap<&str, u32> = [("x", 1), ("y", 2)].into_iter().collect();
        let backwards: BTreeMap<&str, u32> = [("y", 2), ("x", 1)].into_iter().collect();
        assert_eq!(bytes(&forwards), bytes(&backwards));
        // A value shown through its Display is the string it shows.
        assert_eq!(bytes(&Shown("500m")), bytes(&"500m"));
        assert_eq!(bytes(&(Shown(""), Shown("a"))), bytes(&("", "a")));
        let long = "x".repeat(200);
        assert_eq!(bytes(&Shown(&long)), bytes(&long.as_str()));
        // Lengths past one LEB128 byte.
        assert_ne!(bytes(&"x".repeat(128)), bytes(&("x".repeat(127), "x")));
        assert_eq!(&bytes(&"x".repeat(300))[..3], &[b's', 0xac, 0x02]);
    }

    #[test]
    fn struct_fields_and_variants_enter_by_name() {
        #[derive(serde::Serialize)]
        struct A {
            first: u8,
            second: u8,
        }
        #[derive(serde::Serialize)]
        struct B {
            first: u8,
            other: u8,
        }
        #[derive(serde::Serialize)]
        enum Kind {
            App,
            Task,
        }
        assert_ne!(bytes(&A { first: 1, second: 2 }), bytes(&B { first: 1, other: 2 }));
        assert_ne!(bytes(&Kind::App), bytes(&Kind::Task));
        assert_eq!(bytes(&Kind::App), bytes(&"App"));
        #[derive(serde::Serialize)]
        enum Shape {
            One(u8),
            Two(u8, u8),
            Named { x: u8 },
        }
        #[derive(serde::Serialize)]
        struct Pair(u8, u8);
        let shapes = [bytes(&Shape::One(1)), bytes(&Shape::Two(1, 2)), bytes(&Shape::Named { x: 1 })];
        assert!(shapes[0] != shapes[1] && shapes[1] != shapes[2] && shapes[0] != shapes[2]);
        // Tuples, tuple structs and lists of the same items read alike, as in JSON.
        assert_eq!(bytes(&Pair(1, 2)), bytes(&(1, 2)));
        assert_eq!(bytes(&(1, 2)), bytes(&vec![1, 2]));
    }
}
