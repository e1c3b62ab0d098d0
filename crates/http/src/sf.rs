//! Strict structured-field parsing (RFC 9651) on top of the `sfv` crate.
//!
//! `sfv` implements the RFC, where a repeated dictionary key or parameter silently replaces the
//! earlier one. The profile wants each parameter exactly once (B.3), and a repeated label would
//! let two parties disagree on which signature counts, so this module runs `sfv`'s parser a
//! second time with a visitor that refuses any repeated key in any scope. Nothing here parses
//! field syntax by hand.

use std::fmt;

use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{BareItemFromInput, Dictionary, FieldType, KeyRef, Parser};

use crate::error::Malformed;
use crate::limits::{MAX_DICTIONARY_MEMBERS, MAX_SIGNATURE_FIELD_BYTES};

/// Parses `value` as a Dictionary, refusing repeated keys (at any level), more than
/// [`MAX_DICTIONARY_MEMBERS`] members and values longer than [`MAX_SIGNATURE_FIELD_BYTES`].
pub(crate) fn parse_dictionary(field: &'static str, value: &str) -> Result<Dictionary, Malformed> {
    if value.len() > MAX_SIGNATURE_FIELD_BYTES {
        return Err(Malformed::FieldTooLong {
            field,
            len: value.len(),
        });
    }
    let dict: Dictionary = Parser::new(value)
        .parse()
        .map_err(|_| Malformed::StructuredField(field))?;
    Parser::new(value)
        .parse_dictionary_with_visitor(DictCheck::default())
        .map_err(|_| Malformed::DuplicateKey(field))?;
    if dict.len() > MAX_DICTIONARY_MEMBERS {
        return Err(Malformed::StructuredField(field));
    }
    Ok(dict)
}

/// Serializes one dictionary member value (an Item or an Inner List) canonically.
pub(crate) fn serialize_entry(entry: &sfv::ListEntry) -> Option<String> {
    match entry {
        sfv::ListEntry::Item(item) => Some(item.serialize()),
        sfv::ListEntry::InnerList(_) => vec![entry.clone()].serialize(),
    }
}

#[derive(Debug)]
struct Duplicate;

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("duplicate key")
    }
}

impl std::error::Error for Duplicate {}

#[derive(Default)]
struct DictCheck<'de> {
    keys: Vec<&'de KeyRef>,
}

impl<'de> DictionaryVisitor<'de> for DictCheck<'de> {
    type Out = ();
    type Error = Duplicate;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        if self.keys.contains(&key) {
            return Err(Duplicate);
        }
        self.keys.push(key);
        Ok(EntryCheck)
    }

    fn finish(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

struct EntryCheck;

impl<'de> EntryVisitor<'de> for EntryCheck {
    type Error = Duplicate;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(ItemCheck)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        Ok(InnerCheck)
    }
}

struct ItemCheck;

impl<'de> ItemVisitor<'de> for ItemCheck {
    type Out = ();
    type Error = Duplicate;

    fn bare_item(
        self,
        _bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        Ok(ParamCheck::default())
    }
}

struct InnerCheck;

impl<'de> InnerListVisitor<'de> for InnerCheck {
    type Error = Duplicate;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(ItemCheck)
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        Ok(ParamCheck::default())
    }
}

#[derive(Default)]
struct ParamCheck<'de> {
    keys: Vec<&'de KeyRef>,
}

impl<'de> ParameterVisitor<'de> for ParamCheck<'de> {
    type Out = ();
    type Error = Duplicate;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        _value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        if self.keys.contains(&key) {
            return Err(Duplicate);
        }
        self.keys.push(key);
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_refused_at_every_level() {
        assert!(parse_dictionary("f", "a=1, b=(1 2);x=1, c").is_ok());
        for (value, code) in [
            ("a=1, a=2", Malformed::DuplicateKey("f")),
            ("a=(1);x=1;x=2", Malformed::DuplicateKey("f")),
            ("a=(1;x=1;x=2)", Malformed::DuplicateKey("f")),
            ("a=1;x;x", Malformed::DuplicateKey("f")),
            ("a=", Malformed::StructuredField("f")),
            ("A=1", Malformed::StructuredField("f")),
        ] {
            assert_eq!(parse_dictionary("f", value), Err(code), "{value}");
        }
    }

    #[test]
    fn member_bound() {
        let at: Vec<String> = (0..MAX_DICTIONARY_MEMBERS)
            .map(|i| format!("k{i}=1"))
            .collect();
        assert!(parse_dictionary("f", &at.join(", ")).is_ok());
        let past: Vec<String> = (0..=MAX_DICTIONARY_MEMBERS)
            .map(|i| format!("k{i}=1"))
            .collect();
        assert_eq!(
            parse_dictionary("f", &past.join(", ")),
            Err(Malformed::StructuredField("f"))
        );
    }

    #[test]
    fn byte_sequence_padding_behaviour() {
        // Canonical padding parses.
        let d = parse_dictionary("f", "a=:AAAA:, b=:AA==:").unwrap();
        assert_eq!(d.len(), 2);
        // Over-padding (RFC 9530's printed `…FabDg==:`) is refused by the parser.
        assert!(parse_dictionary("f", "a=:AA===:").is_err());
    }

    #[test]
    fn entry_serialization() {
        let d = parse_dictionary("f", "a=(1 2);p, b=?0").unwrap();
        assert_eq!(serialize_entry(&d["a"]).as_deref(), Some("(1 2);p"));
        assert_eq!(serialize_entry(&d["b"]).as_deref(), Some("?0"));
    }
}
