//! The keys a config table takes, read from its serde type, so docs/CONFIG.md can be checked
//! against the code (`config::docs_check`): a key cannot exist in one and not the other.
//!
//! serde's derive hands the list of a struct's field names (renamed, without skipped ones) to
//! `Deserializer::deserialize_struct`; a deserializer that only records that list and stops
//! reads it without any input.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The field names `T` deserializes from (empty when `T` is not a struct).
pub fn keys_of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    let mut fields = None;
    let _ = T::deserialize(FieldRecorder(&mut fields));
    fields.map(<[_]>::to_vec).unwrap_or_default()
}

struct FieldRecorder<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldRecorder<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
