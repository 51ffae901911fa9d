//! Masking secrets in everything edgeforge shows (`iso show`, `user-data
//! render`, validation and parse errors, `manifest.json`, `context.json`,
//! logs): secret values show as `****`.
//!
//! Secrets are found on the parsed document, not on lines, so the style the
//! document is written in does not matter (flow `{edgeHostToken: X}`, JSON,
//! block scalars, a value on the next line, escaped or explicit keys): every
//! scalar under a key naming a secret (`scan::key_kind`) and every URL
//! userinfo password in any string is collected, then each occurrence of
//! those values (and of the words of a multi-line value, as folding and
//! block scalars split it across lines) is masked wherever the text is shown.
//! On top of that, raw-text scans mask `key: value` pairs with a secret key
//! and userinfo passwords anywhere, which covers comments and file contents
//! the parser sees only as strings. Text that does not parse at all is shown
//! by [`unparsed`] rules.

pub mod scan;
mod unparsed;

use std::ops::Range;

use aho_corasick::AhoCorasick;
use serde_json::Value;

pub use scan::url_password;
pub use unparsed::{snippet, unparsed_line};

pub const MASK: &str = "****";

/// An occurrence of a secret value this long is masked wherever it is; a
/// shorter one only where it stands alone (not inside a longer word), so a
/// password `ab` does not mask every `ab` of the document.
const LONG: usize = 8;

/// Whether the value under `key` is a secret: a key naming one (`*token`,
/// `*password`, `passwd`, `*secret`, ...), or a `credentials` key holding a
/// single value (a `credentials` mapping keeps its username visible). One
/// rule for what is shown masked and what the secret guard looks for.
pub fn is_secret_field(key: &str, value: &Value) -> bool {
    match scan::key_kind(key) {
        scan::KeyKind::Secret => true,
        scan::KeyKind::Credentials => !value.is_object(),
        scan::KeyKind::Plain => false,
    }
}

/// The secret values of one document, and a matcher for all of them.
#[derive(Default)]
pub struct Secrets {
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Secrets {
    /// No known values: only the raw-text scans apply.
    pub fn none() -> Secrets {
        Secrets::default()
    }

    /// The secrets of a parsed document (user-data, a definition, a
    /// template context).
    pub fn of(doc: &Value) -> Secrets {
        let mut s = Secrets::none();
        s.walk(doc, false);
        s.build();
        s
    }

    fn walk(&mut self, v: &Value, secret: bool) {
        match v {
            Value::String(s) => {
                if secret {
                    self.values.push(s.clone());
                }
                self.userinfo(s);
            }
            // A number can be a PIN; a boolean or null says nothing.
            Value::Number(n) if secret => self.values.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|x| self.walk(x, secret)),
            Value::Object(m) => {
                for (k, x) in m {
                    self.userinfo(k);
                    self.walk(x, secret || is_secret_field(k, x));
                }
            }
            _ => {}
        }
    }

    fn userinfo(&mut self, s: &str) {
        for r in scan::userinfo_spans(s) {
            self.values.push(s[r].to_string());
        }
    }

    /// The strings to look for: each value, its words when it spans words
    /// or lines, and the forms quoting gives them in YAML or JSON text.
    fn build(&mut self) {
        let mut pieces: Vec<String> = Vec::new();
        for v in &self.values {
            let v = v.trim();
            let mut forms = vec![v];
            if v.contains(char::is_whitespace) {
                forms.extend(v.split_whitespace());
            }
            for f in forms {
                let json = serde_json::to_string(f).expect("a string serializes");
                pieces.push(json[1..json.len() - 1].to_string());
                pieces.push(f.replace('\'', "''"));
                pieces.push(f.to_string());
            }
        }
        pieces.retain(|p| !p.is_empty() && p != MASK);
        pieces.sort();
        pieces.dedup();
        self.matcher = (!pieces.is_empty())
            .then(|| AhoCorasick::new(&pieces).expect("a matcher for a bounded document"));
    }

    /// `text` with every secret masked.
    pub fn text(&self, text: &str) -> String {
        let mut spans = scan::pair_spans(text);
        spans.extend(scan::userinfo_spans(text));
        if let Some(m) = &self.matcher {
            // Overlapping matches: a rejected short match must not hide a
            // longer secret that starts inside it.
            spans.extend(
                m.find_overlapping_iter(text)
                    .map(|m| m.range())
                    .filter(|r| r.len() >= LONG || standalone(text, r)),
            );
        }
        replace(text, spans)
    }

    /// Masks every string in a JSON document in place (`manifest.json`,
    /// `context.json`), keeping it valid JSON.
    pub fn json(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|x| self.json(x)),
            Value::Object(m) => m.values_mut().for_each(|x| self.json(x)),
            _ => {}
        }
    }
}

/// Masks a JSON document's own secrets in place.
pub fn json(doc: &mut Value) {
    Secrets::of(doc).json(doc);
}

/// Whether a dotted key (`--site-value a.b.token`) names a secret value.
pub fn is_secret_key(dotted: &str) -> bool {
    scan::key_kind(dotted.rsplit('.').next().unwrap_or(dotted)) == scan::KeyKind::Secret
}

/// A `key=value` argument (`--set`, `--site-value`) as it may be shown.
pub fn assignment(arg: &str) -> String {
    match arg.split_once('=') {
        Some((k, _))
            if scan::key_kind(k.rsplit('.').next().unwrap_or(k)) != scan::KeyKind::Plain =>
        {
            format!("{k}={MASK}")
        }
        _ => Secrets::none().text(arg),
    }
}

/// A whole document to show (`iso show`, `user-data render`): masked by its
/// parsed secrets, or line by line by the [`unparsed`] rules when it does not
/// parse.
pub fn document(text: &str) -> String {
    match crate::yaml::parse_quietly(text) {
        Some(doc) => Secrets::of(&doc).text(text),
        None => text
            .split_inclusive('\n')
            .map(|l| match l.trim_end() {
                "#cloud-config" => l.to_string(),
                _ => unparsed_line(l.trim_end_matches(['\n', '\r'])) + "\n",
            })
            .collect(),
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn standalone(text: &str, r: &Range<usize>) -> bool {
    !text[..r.start].chars().next_back().is_some_and(is_word)
        && !text[r.end..].chars().next().is_some_and(is_word)
}

/// `text` with each (possibly overlapping) range replaced by one `****`.
fn replace(text: &str, mut spans: Vec<Range<usize>>) -> String {
    if spans.is_empty() {
        return text.to_string();
    }
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut i = 0;
    while i < spans.len() {
        let start = spans[i].start.max(done);
        let mut end = spans[i].end;
        while i + 1 < spans.len() && spans[i + 1].start <= end {
            i += 1;
            end = end.max(spans[i].end);
        }
        if end > start {
            out.push_str(&text[done..start]);
            out.push_str(MASK);
            done = end;
        }
        i += 1;
    }
    out.push_str(&text[done..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(yaml: &str) -> Secrets {
        Secrets::of(&serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn masks_values_found_in_the_parsed_document() {
        let cases = [
            "stylus: {site: {edgeHostToken: T0K3Nvalue, name: edge-1}}\n",
            "{\"stylus\": {\"site\": {\"edgeHostToken\": \"T0K3Nvalue\", \"name\": \"edge-1\"}}}\n",
            "stylus:\n  site:\n    edgeHostToken: >-\n      T0K3Nvalue\n    name: edge-1\n",
            "stylus:\n  site:\n    edgeHostToken:\n      T0K3Nvalue\n    name: edge-1\n",
            "stylus:\n  site:\n    ? edgeHostToken\n    : T0K3Nvalue\n    name: edge-1\n",
            "stylus:\n  site:\n    \"edge\\x48ostToken\": T0K3Nvalue\n    name: edge-1\n",
        ];
        for doc in cases {
            let shown = secrets(doc).text(doc);
            assert!(!shown.contains("T0K3Nvalue"), "{shown}");
            assert!(
                shown.contains("edge-1") && shown.contains("****"),
                "{shown}"
            );
        }
    }

    #[test]
    fn masks_every_line_of_a_multi_line_value() {
        let doc = "password: |\n  first-Line-1\n  second Line 2\ntoken: >\n  folded part1\n  part2\nname: edge-1\n";
        let shown = secrets(doc).text(doc);
        for gone in ["first-Line-1", "second", "part1", "part2"] {
            assert!(!shown.contains(gone), "{shown}");
        }
        assert!(shown.contains("name: edge-1"), "{shown}");
    }

    #[test]
    fn credentials_keep_their_names_and_proxies_their_hosts() {
        let doc = "stylus:\n  registryCredentials:\n    domain: registry.example.com\n    username: bob\n    password: pw-Secret-1\n  site:\n    network:\n      httpProxy: bob:prx-Pass-9@proxy:3128\n";
        let shown = secrets(doc).text(doc);
        assert!(
            !shown.contains("pw-Secret-1") && !shown.contains("prx-Pass-9"),
            "{shown}"
        );
        assert!(
            shown.contains("registry.example.com")
                && shown.contains("username: bob")
                && shown.contains("bob:****@proxy:3128"),
            "{shown}"
        );
    }

    #[test]
    fn short_values_are_masked_only_where_they_stand_alone() {
        let s = secrets("passwd: ab\n");
        assert_eq!(s.text("x ab y, abc, `ab`"), "x **** y, abc, `****`");
    }

    #[test]
    fn documents_that_do_not_parse_show_their_structure() {
        let doc = "#cloud-config\nstylus: {site: {edgeHostToken: T0K3Nvalue, name: x}\n  # T0K3N2\n  - [T0K3N3\n";
        assert_eq!(
            document(doc),
            "#cloud-config\nstylus: {site: {edgeHostToken: ****, name: ****}\n  # ****\n  - [****\n"
        );
        // Keys that are not strings still parse, and stay visible.
        let doc = "#cloud-config\ntags: {1: one}\npassword: !secret T0K3Nvalue\n";
        assert_eq!(
            document(doc),
            "#cloud-config\ntags: {1: one}\npassword: ****\n"
        );
    }

    #[test]
    fn json_documents_keep_their_shape() {
        let mut v = serde_json::json!({"proxy": {"http_proxy": "bob:hunter2@proxy:3128"}, "labels": {"a": "hunter2"}});
        json(&mut v);
        assert_eq!(v["proxy"]["http_proxy"], "bob:****@proxy:3128");
        assert_eq!(v["labels"]["a"], "****");
    }

    #[test]
    fn assignments() {
        assert_eq!(
            assignment("proxy.http_proxy=bob:pw@p:1"),
            "proxy.http_proxy=bob:****@p:1"
        );
        assert_eq!(assignment("site.token=abc"), "site.token=****");
        assert_eq!(assignment("name=x"), "name=x");
    }
}
