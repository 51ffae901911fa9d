//! Files read as the documents they are: a text file of up to `PARSE_MAX`
//! bytes (UTF-8, or UTF-16 as its BOM or NULs say) that parses as YAML or
//! JSON is walked key by key after the parser resolved its syntax, so an
//! `edgeHostToken` key (any case, escaped `"edge\x48ostToken"`, explicit
//! `? edgeHostToken`, `!!binary`) with a value anywhere (the next line, a
//! block scalar, flow style) is refused, and so is a string holding a known
//! secret value in escaped form. Parsing builds no tree (a serde visitor
//! walks the events), so aliases cost time bounded by the parser, not memory.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::encodings::decode_base64;
use super::{Finding, Needles};
use crate::yaml;

/// Larger files are not parsed (the agent reads user-data of up to 1 MiB);
/// their same-line assignments and known values are still found by the
/// byte scan.
pub const PARSE_MAX: usize = 1 << 20;

pub struct ParsedCheck {
    buf: Vec<u8>,
    over: bool,
}

impl ParsedCheck {
    pub fn new() -> ParsedCheck {
        ParsedCheck {
            buf: Vec::new(),
            over: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.over {
            return;
        }
        if self.buf.len() + chunk.len() > PARSE_MAX {
            self.over = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Checks the file fed since the last call (unless `skip`), and resets.
    pub fn finish(&mut self, needles: &Needles, skip: bool) -> Option<Finding> {
        let found = if skip || self.over {
            None
        } else {
            decode(&self.buf).and_then(|text| check(&text, needles))
        };
        self.buf.clear();
        self.over = false;
        found
    }
}

/// The text of a file: UTF-8 (BOM or not) or UTF-16 (a BOM, or ASCII's NUL
/// halves at the start); `None` for anything else.
fn decode(buf: &[u8]) -> Option<Cow<'_, str>> {
    let utf16 = |rest: &[u8], unit: fn([u8; 2]) -> u16| {
        if !rest.len().is_multiple_of(2) {
            return None;
        }
        char::decode_utf16(rest.chunks(2).map(|c| unit([c[0], c[1]])))
            .collect::<Result<String, _>>()
            .ok()
            .map(Cow::Owned)
    };
    match buf {
        [0xef, 0xbb, 0xbf, rest @ ..] => std::str::from_utf8(rest).ok().map(Cow::Borrowed),
        [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes),
        [a, 0, ..] if a.is_ascii() && *a != 0 => utf16(buf, u16::from_le_bytes),
        [0, b, ..] if b.is_ascii() && *b != 0 => utf16(buf, u16::from_be_bytes),
        _ => std::str::from_utf8(buf).ok().map(Cow::Borrowed),
    }
}

/// Whether `text` can hide what the byte scan misses: the key (in any
/// case, maybe with its value on a later line), an escape (of the key or a
/// known value), a tag (`!!binary`). Other files are not parsed: most text
/// in a layer is no YAML, and a failed parse still costs.
fn worth_parsing(text: &str) -> bool {
    text.contains(['\\', '!'])
        || text
            .as_bytes()
            .windows(KEY.len())
            .any(|w| w.eq_ignore_ascii_case(KEY.as_bytes()))
}

const KEY: &str = "edgeHostToken";

fn check(text: &str, needles: &Needles) -> Option<Finding> {
    if !worth_parsing(text) {
        return None;
    }
    let found = RefCell::new(None);
    yaml::visit_documents(
        text,
        Walk {
            needles,
            found: &found,
        },
    );
    found.into_inner()
}

/// Whether a key names the registration token: any case (some readers
/// match keys case-insensitively), or base64 of it (a `!!binary` key).
fn is_token_key(key: &str) -> bool {
    key.eq_ignore_ascii_case(KEY)
        || (key.len() < 64
            && decode_base64(key).is_some_and(|k| k.eq_ignore_ascii_case(KEY.as_bytes())))
}

/// What the walk needs of a node: its text when it is a short scalar (a
/// key's candidate), and whether it is a value (not null or empty).
struct Node {
    text: Option<String>,
    has_value: bool,
}

impl Node {
    fn value() -> Node {
        Node {
            text: None,
            has_value: true,
        }
    }
}

#[derive(Clone, Copy)]
struct Walk<'a> {
    needles: &'a Needles,
    found: &'a RefCell<Option<Finding>>,
}

impl Walk<'_> {
    fn record(&self, f: Finding) {
        self.found.borrow_mut().get_or_insert(f);
    }

    fn string(&self, s: &str) -> Node {
        if let Some(f) = self.needles.find_in(s.as_bytes()) {
            self.record(f);
        }
        Node {
            text: (s.len() < 64).then(|| s.to_string()),
            has_value: !s.is_empty(),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::value())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::value())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::value())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::value())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Node, E> {
        Ok(self.string(s))
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Node, E> {
        Ok(self.string(&String::from_utf8_lossy(b)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node {
            text: None,
            has_value: false,
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut any = false;
        while seq.next_element_seed(self)?.is_some() {
            any = true;
        }
        Ok(Node {
            text: None,
            has_value: any,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut any = false;
        // Keys are walked too: a complex key can hold a mapping.
        while let Some(key) = map.next_key_seed(self)? {
            let value = map.next_value_seed(self)?;
            if value.has_value && key.text.as_deref().is_some_and(is_token_key) {
                self.record(Finding::token());
            }
            any = true;
        }
        Ok(Node {
            text: None,
            has_value: any,
        })
    }

    /// A node with a local tag (`!secret value`): its content counts.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (_, variant) = data.variant::<de::IgnoredAny>()?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::secrets::{known, Secret, SecretGuard};

    fn found(secrets: Vec<Secret>, data: &[u8]) -> Option<String> {
        let mut g = SecretGuard::new(secrets);
        for c in data.chunks(7) {
            g.feed(c);
        }
        g.finish().map(|f| f.what)
    }

    fn token(doc: &str) -> bool {
        found(Vec::new(), doc.as_bytes()).is_some()
    }

    #[test]
    fn finds_the_key_whatever_the_syntax() {
        for doc in [
            "stylus:\n  site:\n    edgeHostToken:\n      abcdef123\n",
            "edgeHostToken:\n\n  # the value follows\n  abcdef123\n",
            "\"edge\\x48ostToken\": abcdef123\n",
            "{\"edge\\u0048ostToken\": \"abcdef123\"}",
            "? edgeHostToken\n: abcdef123\n",
            "? |-\n  edgeHostToken\n: abcdef123\n",
            "edgeHostToken: |\n  abcdef123\n",
            "site: {edgeHostToken:\n  abcdef123}\n",
            "EdgeHostToken:\n  abcdef123\n",
            "? !!binary ZWRnZUhvc3RUb2tlbg==\n: abcdef123\n",
            "a: &t abcdef123\nedgeHostToken:\n  *t\n",
            "---\nx: 1\n---\nedgeHostToken:\n  - abcdef123\n",
            "? {edgeHostToken:\n    abcdef123}\n: 1\n",
            "{\n\t\"edge\\u0048ostToken\": \"abcdef123\"\n}\n",
        ] {
            assert!(token(doc), "{doc}");
        }
    }

    #[test]
    fn a_key_without_a_value_is_no_token() {
        for doc in [
            "# edgeHostToken comes from the user-data\nedgeHostToken:\nname: x\n",
            "edgeHostToken: \"\"\n",
            "\"edgeHostToken\":\n  \"\"\n",
            "\"edge\\x48ostToken\": \"\"\n",
            "edgeHostToken:\n  # set per site\nother: {}\n",
            "The registration token (edgeHostToken) is set per site.\nSee the docs!\n",
        ] {
            assert!(!token(doc), "{doc}");
        }
    }

    #[test]
    fn reads_utf16_documents() {
        let doc = "stylus:\n  site:\n    edgeHostToken:\n      abcdef123\n";
        let le: Vec<u8> = doc.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = doc.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let bom = [&[0xff, 0xfe][..], &le].concat();
        for data in [le, be, bom] {
            assert!(found(Vec::new(), &data).is_some());
        }
    }

    #[test]
    fn finds_escaped_known_values() {
        let secrets = known("s3cr3t-t0ken-value");
        for doc in [
            "note: \"\\x73\\x33cr3t-t0ken-value\"\n",
            "{\"v\": \"\\u0073\\u0033cr3t-t0ken-value\"}",
        ] {
            assert_eq!(
                found(secrets.clone(), doc.as_bytes()).as_deref(),
                Some("the token"),
                "{doc}"
            );
        }
    }

    #[test]
    fn large_files_are_not_parsed() {
        let doc = format!(
            "{}edgeHostToken:\n  abcdef123\n",
            "# padding\n".repeat(PARSE_MAX / 10 + 1)
        );
        assert!(!token(&doc), "beyond PARSE_MAX only the byte scan applies");
    }
}
