//! Strict structured-field parsing (RFC 9651) on top of the `sfv` crate.
//!
//! `sfv` implements the RFC, where a repeated dictionary key or parameter silently replaces the
//! earlier one. The profile wants each parameter exactly once (B.3), and a repeated label would
//! let two parties disagree on which signature counts, so this module runs `sfv`'s parser with
//! a visitor that builds the value and notes any repeated key in any scope (refused). Nothing
//! here parses field syntax by hand.

use std::convert::Infallible;

use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{
    BareItemFromInput, Dictionary, FieldType, InnerList, Item, KeyRef, ListEntry, Parameters,
    Parser,
};

use crate::error::Malformed;
use crate::limits::{MAX_DICTIONARY_MEMBERS, MAX_SIGNATURE_FIELD_BYTES};

/// The members of a Dictionary in order, keys borrowed from the parsed value.
pub(crate) type Entries<'de> = Vec<(&'de KeyRef, ListEntry)>;

/// Parses `value` as a Dictionary, refusing repeated keys (at any level), more than
/// [`MAX_DICTIONARY_MEMBERS`] members and values longer than [`MAX_SIGNATURE_FIELD_BYTES`].
pub(crate) fn parse_dictionary(field: &'static str, value: &str) -> Result<Dictionary, Malformed> {
    Ok(parse_entries(field, value)?
        .into_iter()
        .map(|(key, entry)| (key.to_owned(), entry))
        .collect())
}

/// As [`parse_dictionary`], returning the members in order with borrowed keys (no map).
///
/// One pass of `sfv`'s parser builds the members and notes any repeated key; the errors keep
/// their precedence: invalid syntax, then a repeated key, then too many members.
pub(crate) fn parse_entries<'de>(
    field: &'static str,
    value: &'de str,
) -> Result<Entries<'de>, Malformed> {
    if value.len() > MAX_SIGNATURE_FIELD_BYTES {
        return Err(Malformed::FieldTooLong {
            field,
            len: value.len(),
        });
    }
    let collected = Parser::new(value)
        .parse_dictionary_with_visitor(Collect::default())
        .map_err(|_| Malformed::StructuredField(field))?;
    if collected.duplicate {
        return Err(Malformed::DuplicateKey(field));
    }
    if collected.entries.len() > MAX_DICTIONARY_MEMBERS {
        return Err(Malformed::StructuredField(field));
    }
    Ok(collected.entries)
}

/// Serializes one dictionary member value (an Item or an Inner List) canonically.
pub(crate) fn serialize_entry(entry: &sfv::ListEntry) -> Option<String> {
    match entry {
        sfv::ListEntry::Item(item) => Some(item.serialize()),
        sfv::ListEntry::InnerList(_) => vec![entry.clone()].serialize(),
    }
}

/// Builds the members as `sfv`'s own `Dictionary` visitor does (a member is an Item with its
/// parameters or an Inner List of them), and records whether any key repeats in its scope:
/// a dictionary key, an item's parameter or an inner list's parameter.
#[derive(Default)]
struct Collect<'de> {
    entries: Entries<'de>,
    duplicate: bool,
}

impl<'de> DictionaryVisitor<'de> for Collect<'de> {
    type Out = Self;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        if self.entries.iter().any(|(k, _)| *k == key) {
            self.duplicate = true;
        }
        Ok(EntrySlot {
            entries: &mut self.entries,
            duplicate: &mut self.duplicate,
            key,
        })
    }

    fn finish(self) -> Result<Self, Self::Error> {
        Ok(self)
    }
}

struct EntrySlot<'de, 'a> {
    entries: &'a mut Entries<'de>,
    duplicate: &'a mut bool,
    key: &'de KeyRef,
}

impl<'de> EntryVisitor<'de> for EntrySlot<'de, '_> {
    type Error = Infallible;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        self.entries
            .push((self.key, ListEntry::InnerList(InnerList::default())));
        match self.entries.last_mut() {
            Some((_, ListEntry::InnerList(list))) => Ok(InnerBuild {
                list,
                duplicate: self.duplicate,
            }),
            _ => unreachable!("an inner list was just pushed"),
        }
    }
}

impl<'de> ItemVisitor<'de> for EntrySlot<'de, '_> {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        self.entries
            .push((self.key, ListEntry::Item(Item::new(bare_item))));
        match self.entries.last_mut() {
            Some((_, ListEntry::Item(item))) => Ok(ParamBuild {
                params: &mut item.params,
                duplicate: self.duplicate,
            }),
            _ => unreachable!("an item was just pushed"),
        }
    }
}

struct InnerBuild<'a> {
    list: &'a mut InnerList,
    duplicate: &'a mut bool,
}

impl<'de> InnerListVisitor<'de> for InnerBuild<'_> {
    type Error = Infallible;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(ItemSlot {
            items: &mut self.list.items,
            duplicate: &mut *self.duplicate,
        })
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        Ok(ParamBuild {
            params: &mut self.list.params,
            duplicate: self.duplicate,
        })
    }
}

struct ItemSlot<'a> {
    items: &'a mut Vec<Item>,
    duplicate: &'a mut bool,
}

impl<'de> ItemVisitor<'de> for ItemSlot<'_> {
    type Out = ();
    type Error = Infallible;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = ()>, Self::Error> {
        self.items.push(Item::new(bare_item));
        match self.items.last_mut() {
            Some(item) => Ok(ParamBuild {
                params: &mut item.params,
                duplicate: self.duplicate,
            }),
            None => unreachable!("an item was just pushed"),
        }
    }
}

struct ParamBuild<'a> {
    params: &'a mut Parameters,
    duplicate: &'a mut bool,
}

impl<'de> ParameterVisitor<'de> for ParamBuild<'_> {
    type Out = ();
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        if self.params.is_empty() {
            // Room for a signature's six parameters at once, instead of growing twice.
            self.params.reserve(6);
        }
        // As `sfv`: a later value replaces an earlier one in place (then refused anyway).
        if self.params.insert(key.to_owned(), value.into()).is_some() {
            *self.duplicate = true;
        }
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

    /// The single-pass parser gives exactly what the former two passes gave: `sfv`'s
    /// `Dictionary`, then a second parse refusing any repeated key, then the member bound.
    mod reference {
        use std::fmt;

        use sfv::visitor::{
            DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor, ParameterVisitor,
        };
        use sfv::{BareItemFromInput, Dictionary, KeyRef, Parser};

        use crate::error::Malformed;
        use crate::limits::{MAX_DICTIONARY_MEMBERS, MAX_SIGNATURE_FIELD_BYTES};

        pub(super) fn parse_dictionary(
            field: &'static str,
            value: &str,
        ) -> Result<Dictionary, Malformed> {
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

            fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Duplicate> {
                if self.keys.contains(&key) {
                    return Err(Duplicate);
                }
                self.keys.push(key);
                Ok(EntryCheck)
            }

            fn finish(self) -> Result<(), Duplicate> {
                Ok(())
            }
        }

        struct EntryCheck;

        impl<'de> EntryVisitor<'de> for EntryCheck {
            type Error = Duplicate;

            fn item(self) -> Result<impl ItemVisitor<'de>, Duplicate> {
                Ok(ItemCheck)
            }

            fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Duplicate> {
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
            ) -> Result<impl ParameterVisitor<'de, Out = ()>, Duplicate> {
                Ok(ParamCheck::default())
            }
        }

        struct InnerCheck;

        impl<'de> InnerListVisitor<'de> for InnerCheck {
            type Error = Duplicate;

            fn item(&mut self) -> Result<impl ItemVisitor<'de>, Duplicate> {
                Ok(ItemCheck)
            }

            fn finish(self) -> Result<impl ParameterVisitor<'de>, Duplicate> {
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
            ) -> Result<(), Duplicate> {
                if self.keys.contains(&key) {
                    return Err(Duplicate);
                }
                self.keys.push(key);
                Ok(())
            }

            fn finish(self) -> Result<(), Duplicate> {
                Ok(())
            }
        }
    }

    fn same_as_reference(value: &str) {
        let ours = parse_dictionary("f", value);
        let theirs = reference::parse_dictionary("f", value);
        // Same members in the same order (IndexMap's `==` ignores order).
        let ordered = |d: &Result<Dictionary, Malformed>| {
            d.as_ref()
                .map(|d| {
                    d.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<Vec<_>>()
                })
                .map_err(Clone::clone)
        };
        assert_eq!(ordered(&ours), ordered(&theirs), "{value:?}");
        let entries = parse_entries("f", value).map(|e| {
            e.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Vec<_>>()
        });
        assert_eq!(entries, ordered(&theirs), "{value:?}");
    }

    #[test]
    fn single_pass_matches_two_passes() {
        let long = format!("a=\"{}\"", "x".repeat(MAX_SIGNATURE_FIELD_BYTES));
        let many = (0..=MAX_DICTIONARY_MEMBERS)
            .map(|i| format!("k{i}=1"))
            .collect::<Vec<_>>()
            .join(", ");
        let many_dup = format!("{many}, k0=2");
        for value in [
            "",
            " ",
            "a",
            "a=1, a=2",
            "a=1, a=2, b=(",
            "a=1;x;x, b=(",
            "a=(1;x=1;x=2) b",
            "a=(1 2);x=1;y;x=?0",
            "a=(1 2);x=1, b=(1;p;q 2;p;p)",
            "a=1;x;x",
            "a=(\"@method\" \"@target-uri\");created=1;expires=2;nonce=\"n\";keyid=\"k\"",
            "sig1=:AAEC:, sig2=:AAECAw==:;p=%\"x\";d=@1;t=tok/en;n=-1.5",
            "a=?1, b, c;d, e=()",
            "a=1,",
            "a=1 , b=2",
            "a=\"\\\"\\\\\"",
            "a=(\"\\\"\");q=\"\\\\\"",
            "A=1",
            "a=",
            "a=(1",
            &long,
            &many,
            &many_dup,
        ] {
            same_as_reference(value);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        #[test]
        fn single_pass_matches_two_passes_random(value in "[abx=();,: ?01\"\\\\*%@-]{0,24}") {
            same_as_reference(&value);
        }
    }

    #[test]
    fn entry_serialization() {
        let d = parse_dictionary("f", "a=(1 2);p, b=?0").unwrap();
        assert_eq!(serialize_entry(&d["a"]).as_deref(), Some("(1 2);p"));
        assert_eq!(serialize_entry(&d["b"]).as_deref(), Some("?0"));
    }
}
