//! The one place that parses YAML. serde_yaml is unmaintained upstream; keeping
//! every use behind these functions lets it be swapped without touching callers.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{fail, Category};

/// An untyped document, used only to apply `--set` overrides.
pub struct Document(serde_yaml::Value);

/// Longer lines are refused before parsing: no hand-written YAML has them,
/// and the parser's time grows with the square of some (a line of `[`).
pub const MAX_LINE: usize = 64 * 1024;

/// Parses `text` (read from `path`) into `T`; syntax and type errors name the
/// file, line and column, and quote the line with its secrets masked.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> anyhow::Result<T> {
    check_lines(path, text)?;
    let typed = serde_yaml::from_str(text).map_err(|e| located_error(path, text, &e, true))?;
    // A struct refuses a field given twice, a map (`labels`) keeps the last:
    // YAML's own value type refuses both.
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .map_err(|e| located_error(path, text, &e, false))?;
    Ok(typed)
}

/// Parses `text` into a JSON value, or `None` when it is not YAML (or has a
/// line over [`MAX_LINE`]); for finding the secrets of a document to show.
/// Any YAML goes: tags are dropped and keys that are not strings (`1:`,
/// `? [a, b]`) become their text, so no document falls back to the coarser
/// masking of unparsed text just for its shape.
pub fn parse_quietly(text: &str) -> Option<serde_json::Value> {
    if text.split('\n').any(|l| l.len() > MAX_LINE) {
        return None;
    }
    serde_yaml::from_str(text).ok().map(loose_json)
}

fn loose_json(v: serde_yaml::Value) -> serde_json::Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => serde_json::Value::Null,
        Y::Bool(b) => b.into(),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or_else(|_| n.to_string().into()),
        Y::String(s) => s.into(),
        Y::Sequence(items) => items.into_iter().map(loose_json).collect(),
        Y::Mapping(m) => m
            .into_iter()
            .map(|(k, v)| {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_json::to_string(&loose_json(other)).unwrap_or_default(),
                };
                (key, loose_json(v))
            })
            .collect(),
        Y::Tagged(t) => loose_json(t.value),
    }
}

fn check_lines(path: &Path, text: &str) -> anyhow::Result<()> {
    match text.split('\n').enumerate().find(|(_, l)| l.len() > MAX_LINE) {
        Some((i, l)) => Err(fail(
            Category::InvalidInput,
            format!(
                "{}:{}: the line is {} bytes, more than the {} KiB a YAML line may have; break it up (block style, one key per line)",
                path.display(),
                i + 1,
                l.len(),
                MAX_LINE / 1024
            ),
        )),
        None => Ok(()),
    }
}

/// Parses `text` into a JSON value, for checks that walk a document whose
/// shape is open (user-data); tabs in indentation get their own message.
pub fn parse_value(path: &Path, text: &str) -> anyhow::Result<serde_json::Value> {
    if let Some(i) = text.lines().position(|l| {
        l.chars()
            .take_while(|c| c.is_whitespace())
            .any(|c| c == '\t')
    }) {
        return Err(fail(
            Category::InvalidInput,
            format!(
                "{}:{}: a tab in the indentation; YAML indents with spaces only",
                path.display(),
                i + 1
            ),
        ));
    }
    check_lines(path, text)?;
    // A failure here is a syntax error (or a shape JSON cannot hold): there
    // is no document to find secrets in, so the quoted line is masked whole.
    // A JSON value keeps the last of two equal keys; YAML's own value type
    // refuses them, as the installer's YAML reader does, so it reads first.
    serde_yaml::from_str::<serde_yaml::Value>(text)
        .map_err(|e| located_error(path, text, &e, false))?;
    serde_yaml::from_str(text).map_err(|e| located_error(path, text, &e, false))
}

pub fn parse_document(path: &Path, text: &str) -> anyhow::Result<Document> {
    parse(path, text).map(Document)
}

impl Document {
    /// Sets a dotted `key` (`kubernetes.version`) to `value`, parsed as a YAML
    /// scalar or flow collection. Non-integer numbers stay strings: `1.30` is a
    /// version, and must not turn into `1.3`.
    pub fn set(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        let parsed: serde_yaml::Value = match serde_yaml::from_str(value) {
            Ok(serde_yaml::Value::Number(n)) if !n.is_f64() => serde_yaml::Value::Number(n),
            Ok(serde_yaml::Value::Number(_)) | Err(_) => serde_yaml::Value::String(value.into()),
            Ok(v) => v,
        };
        let mut node = &mut self.0;
        for part in key.split('.') {
            if part.is_empty() {
                return Err(fail(
                    Category::Usage,
                    format!(
                        "--set {}: empty segment in key `{key}`",
                        crate::mask::assignment(&format!("{key}={value}"))
                    ),
                ));
            }
            if node.is_null() {
                *node = serde_yaml::Value::Mapping(Default::default());
            }
            let map = node.as_mapping_mut().ok_or_else(|| {
                fail(
                    Category::Usage,
                    format!(
                        "--set {}: `{part}` is below a field that is not a mapping",
                        crate::mask::assignment(&format!("{key}={value}"))
                    ),
                )
            })?;
            node = map
                .entry(serde_yaml::Value::String(part.into()))
                .or_insert(serde_yaml::Value::Null);
        }
        *node = parsed;
        Ok(())
    }

    /// Deserializes the (overridden) document; errors cannot carry a line since
    /// the values may come from the command line, so they name `origin`.
    pub fn into_typed<T: DeserializeOwned>(self, origin: &str) -> anyhow::Result<T> {
        let secrets = serde_json::to_value(&self.0)
            .map(|doc| crate::mask::Secrets::of(&doc))
            .unwrap_or_else(|_| crate::mask::Secrets::none());
        serde_yaml::from_value(self.0).map_err(|e| {
            fail(
                Category::InvalidInput,
                format!("{origin}: {}", bounded(secrets.text(&hint(&e.to_string())))),
            )
        })
    }
}

/// Runs `seed` over every document of `text`, read as YAML or else as JSON
/// (which YAML 1.1 parsers refuse in places, such as tab indentation),
/// without building a tree: for checks that look into any file (the secret
/// guard). Returns whether `text` parsed.
pub fn visit_documents<S>(text: &str, seed: S) -> bool
where
    S: for<'de> serde::de::DeserializeSeed<'de> + Copy,
{
    let yaml = serde_yaml::Deserializer::from_str(text).all(|doc| seed.deserialize(doc).is_ok());
    yaml || {
        let mut json = serde_json::Deserializer::from_str(text);
        seed.deserialize(&mut json).is_ok() && json.end().is_ok()
    }
}

/// `file:line:column: message`, then the line, masked and cut to a bounded
/// length. `reparse`: whether the text may still parse as a plain document
/// (the error was about types), which gives the secrets to mask by value;
/// otherwise the line shows its structure only.
fn located_error(path: &Path, text: &str, e: &serde_yaml::Error, reparse: bool) -> anyhow::Error {
    let parsed = reparse.then(|| parse_quietly(text)).flatten();
    let secrets = parsed.as_ref().map(crate::mask::Secrets::of);
    let msg = hint(&e.to_string());
    let msg = bounded(match &secrets {
        Some(s) => s.text(&msg),
        // A syntax error's message is the parser's own, without content.
        None => msg,
    });
    let at = e.location().map(|l| {
        duplicate_key(&msg)
            .and_then(|key| second_key_line(text, l.line(), l.column(), key))
            .unwrap_or((l.line(), l.column()))
    });
    let loc = match at {
        Some((line, column)) => format!("{}:{line}:{column}", path.display()),
        None => path.display().to_string(),
    };
    let quoted = at
        .and_then(|(line_no, column)| {
            let line = text.lines().nth(line_no.saturating_sub(1))?.trim_end();
            let before: String = line.chars().take(column.saturating_sub(1)).collect();
            let mask = |t: &str| match &secrets {
                Some(s) => s.text(t),
                None => crate::mask::unparsed_line(t),
            };
            let column = mask(&before).chars().count() + 1;
            Some(format!(
                "\n    {}",
                crate::mask::snippet(&mask(line), column)
            ))
        })
        .unwrap_or_default();
    fail(Category::InvalidInput, format!("{loc}: {msg}{quoted}"))
}

/// The key a "duplicate field" (typed) or "duplicate entry" (untyped)
/// error is about.
fn duplicate_key(msg: &str) -> Option<&str> {
    // Typed errors start with the field path (`kubernetes: duplicate ...`).
    if let Some((_, rest)) = msg.split_once("duplicate field `") {
        return rest.split('`').next();
    }
    let (_, rest) = msg.split_once("duplicate entry with key \"")?;
    rest.strip_suffix('"')
}

/// serde_yaml places a duplicate-key error at the mapping's first key
/// (`line`, `column`, 1-based); the line to fix is the key's second
/// occurrence in that block mapping. `None` for flow mappings (`{a: 1, a: 2}`)
/// or keys spelled in ways this does not follow (escapes, anchors).
fn second_key_line(text: &str, line: usize, column: usize, key: &str) -> Option<(usize, usize)> {
    let indent = column.checked_sub(1)?;
    let spellings = [
        format!("{key}:"),
        format!("\"{key}\":"),
        format!("'{key}':"),
    ];
    let first = line.checked_sub(1)?;
    let mut seen = 0;
    for (i, l) in text.lines().enumerate().skip(first) {
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let raw_indent = l.len() - trimmed.len();
        // The first key may follow a list item's dash; after it, anything
        // indented less (a parent key, the next list item) ends the mapping.
        let key_text = if i == first {
            match l.get(indent..) {
                Some(t) if !t.starts_with('{') => t,
                _ => return None,
            }
        } else if raw_indent < indent {
            break;
        } else if raw_indent > indent {
            continue;
        } else {
            trimmed
        };
        if spellings.iter().any(|s| key_text.starts_with(s.as_str())) {
            seen += 1;
            if seen == 2 {
                return Some((i + 1, column));
            }
        }
    }
    None
}

/// A type error quotes the value it got (`invalid type: string "..."`), which
/// may be a whole long line: cut it (after masking, so no secret is cut in
/// half) while keeping the longest field lists whole.
fn bounded(msg: String) -> String {
    const MAX: usize = 600;
    match msg.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &msg[..i]),
        None => msg,
    }
}

/// serde_yaml says "at line X column Y" itself; we print the location up front,
/// so strip it, and add what to do for the commonest mistakes.
fn hint(msg: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    if (msg.contains("invalid type: floating point") || msg.contains("invalid type: integer"))
        && !msg.contains("quote")
    {
        format!("{msg} (quote version numbers: \"1.30\")")
    } else if msg.contains("unknown field") {
        format!("{msg}; check the spelling against images/README.md")
    } else {
        msg.to_string()
    }
}

/// The 1-based line of a block-style mapping key path such as
/// `["kubernetes", "version"]`, for errors found after parsing. Returns the
/// deepest key found, so a missing leaf still points at its parent.
pub fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    let mut start = 0;
    let mut parent_indent: Option<usize> = None;
    for key in path {
        let needle = format!("{key}:");
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            // A key that opens a list item (`- users:`) sits at the dash's indent plus two.
            let key_text = trimmed.trim_start_matches("- ");
            let key_indent = indent + (trimmed.len() - key_text.len());
            let top_level_ok = parent_indent.is_some() || key_indent == 0;
            if top_level_ok
                && (key_text.starts_with(&needle) || key_text.starts_with(&format!("\"{key}\":")))
            {
                hit = Some((i, key_indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i + 1);
                start = i + 1;
                parent_indent = Some(indent);
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_finds_nested_keys_in_their_block() {
        let text = "os:\n  version: a\nkubernetes:\n  distribution: k3s\n  # c\n  version: \"1.30.5\"\nfips: true\nstages:\n  boot:\n    - users:\n        x: {}\n";
        assert_eq!(line_of(text, &["kubernetes", "version"]), Some(6));
        assert_eq!(line_of(text, &["os", "version"]), Some(2));
        assert_eq!(line_of(text, &["fips"]), Some(7));
        assert_eq!(line_of(text, &["kubernetes", "missing"]), Some(3));
        assert_eq!(line_of(text, &["version"]), None);
        assert_eq!(line_of(text, &["stages", "boot", "users", "x"]), Some(11));
    }

    #[test]
    fn set_keeps_numbers_as_strings_and_creates_maps() {
        let mut d = parse_document(Path::new("x"), "a: 1\n").unwrap();
        d.set("k.version", "1.30").unwrap();
        d.set("flag", "true").unwrap();
        d.set("n", "5").unwrap();
        let v: serde_yaml::Value = d.into_typed("test").unwrap();
        assert_eq!(v["k"]["version"], serde_yaml::Value::String("1.30".into()));
        assert_eq!(v["flag"], serde_yaml::Value::Bool(true));
        assert_eq!(v["n"], serde_yaml::Value::Number(5.into()));
    }

    #[test]
    fn errors_about_long_values_stay_short_and_masked() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct D {
            flag: bool,
            password: Option<String>,
        }
        let text = format!(
            "password: hunter2-x\nflag: \"hunter2-x {}\"\n",
            "y".repeat(50_000)
        );
        let e = parse::<D>(Path::new("d.yaml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.len() < 1000 && e.starts_with("d.yaml:2:"), "{e}");
        assert!(!e.contains("hunter2") && e.contains("..."), "{e}");
        let long = format!("a: {}\n", "b".repeat(MAX_LINE));
        let e = parse::<serde_yaml::Value>(Path::new("d.yaml"), &long).unwrap_err();
        assert!(e.to_string().starts_with("d.yaml:1: the line is"), "{e}");
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second_key() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct K {
            k: Inner,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            distribution: String,
            version: String,
            nested: serde_yaml::Value,
        }
        let text = "k:\n  distribution: k3s\n  # note\n  version: a\n  nested:\n    version: x\n  version: b\n";
        let e = parse::<serde_yaml::Value>(Path::new("d.yaml"), text);
        assert!(e.unwrap_err().to_string().starts_with("d.yaml:7:3: "));
        let e = parse::<K>(Path::new("d.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("d.yaml:7:3: "), "{e}");
        let list = "#c\nusers:\n  - name: a\n    groups: []\n  - name: b\n    name: c\n";
        let e = parse_value(Path::new("u.yaml"), list)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("u.yaml:6:5: ") && e.contains("\"name\""),
            "{e}"
        );
        // A map field keeps the last of two equal keys; refused too.
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Labels {
            labels: std::collections::BTreeMap<String, String>,
        }
        let maps = "labels:\n  a: 1\n  b: 2\n  a: 3\n";
        let e = parse::<Labels>(Path::new("d.yaml"), maps).unwrap_err();
        assert!(e.to_string().starts_with("d.yaml:4:3: "), "{e}");
        // A flow mapping keeps the parser's own location.
        let e = parse_value(Path::new("u.yaml"), "a: {b: 1, b: 2}\n").unwrap_err();
        assert!(e.to_string().starts_with("u.yaml:1:"), "{e}");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let e = parse::<serde_yaml::Value>(Path::new("d.yaml"), "a: [1,\nb: 2\n").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("d.yaml:"), "{s}");
    }
}
