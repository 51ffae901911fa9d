//! Finding secrets in raw text, without a parser: which keys name secrets,
//! the value of a `key: value` pair whose key does (block, flow or JSON
//! style, in comments and block scalars too), and the password in a URL's
//! userinfo with or without a scheme. These catch what the parsed document
//! cannot show (a secret inside a comment or inside a file's content).

use std::ops::Range;

/// What a mapping key says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Plain,
    /// The whole value is secret (`edgeHostToken`, `password`, `client_secret`).
    Secret,
    /// `credentials`: a scalar is secret; a mapping holds named fields
    /// (`domain`, `username`, `password`) judged by their own names, so the
    /// registry stays visible.
    Credentials,
}

/// Key endings (after lowercasing and dropping everything but letters and
/// digits, so `edgeHostToken`, `edge_host_token` and `API-Key` compare alike).
const SECRET_SUFFIXES: &[&str] = &[
    "token",
    "tokens",
    "password",
    "passwords",
    "passwd",
    "secret",
    "secrets",
    "apikey",
    "privatekey",
];
const CREDENTIAL_SUFFIXES: &[&str] = &["credential", "credentials"];

pub fn key_kind(key: &str) -> KeyKind {
    let k: String = key
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if SECRET_SUFFIXES.iter().any(|s| k.ends_with(s)) {
        KeyKind::Secret
    } else if CREDENTIAL_SUFFIXES.iter().any(|s| k.ends_with(s)) {
        KeyKind::Credentials
    } else {
        KeyKind::Plain
    }
}

/// The password of one URL's userinfo: `http://user:PW@proxy:3128` or,
/// without a scheme, `user:PW@proxy:3128` (curl and most proxies take both).
pub fn url_password(u: &str) -> Option<&str> {
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password)
}

/// Characters that end a userinfo looking back from its `@`: a scheme's or
/// path's `/`, spaces, quotes and brackets around a URL in text.
fn ends_userinfo(c: char) -> bool {
    c.is_whitespace() || "/\"'<>()[]{},`".contains(c)
}

/// The byte ranges of every userinfo password in `text`: for each `@`, the
/// part after the first `:` of the run before it. An `@` inside a password
/// gives two overlapping ranges, and the longer one covers the password.
/// One pass, so a long line of `@` costs no more than its length.
pub fn userinfo_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut colon = None;
    for (i, c) in text.char_indices() {
        if ends_userinfo(c) {
            colon = None;
        } else if c == ':' && colon.is_none() {
            colon = Some(i);
        } else if c == '@' {
            if let Some(k) = colon.filter(|&k| k + 1 < i) {
                spans.push(k + 1..i);
            }
        }
    }
    spans
}

/// The byte ranges (in `text`, over all its lines) of the values of
/// `key: value` pairs whose key names a secret, wherever they stand on a
/// line: `edgeHostToken: X`, `{password: X, ...}`, `"token":"X"`, `# token: X`.
/// A value on the next lines (`key:` alone, `key: |`) is left to the parsed
/// document.
pub fn pair_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        for r in line_pair_spans(line.trim_end_matches(['\n', '\r'])) {
            spans.push(r.start + offset..r.end + offset);
        }
        offset += line.len();
    }
    spans
}

fn line_pair_spans(line: &str) -> Vec<Range<usize>> {
    let b = line.as_bytes();
    let mut spans = Vec::new();
    // Flow depth (`{`/`[` opened before the key), counted as the scan goes.
    let (mut depth, mut counted) = (0i64, 0);
    for (colon, _) in line.match_indices(':') {
        // A key ends at `:` followed by a space, the end, or a JSON value.
        let next = b.get(colon + 1).copied();
        if !matches!(next, None | Some(b' ' | b'\t' | b'"' | b'\'' | b'{' | b'[')) {
            continue;
        }
        for c in line[counted..colon].bytes() {
            match c {
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                _ => {}
            }
        }
        counted = colon;
        let Some(key) = key_before(&line[..colon]) else {
            continue;
        };
        let kind = key_kind(key);
        if kind == KeyKind::Plain {
            continue;
        }
        if let Some(v) = value_after(line, colon + 1, depth > 0, kind) {
            if &line[v.clone()] != super::MASK {
                spans.push(v);
            }
        }
    }
    spans.extend(assignment_spans(line));
    spans
}

/// `KEY=value` (shell, `.env`, URL queries) and `key = value` (ini files),
/// as they appear in the contents of files a document writes.
fn assignment_spans(line: &str) -> Vec<Range<usize>> {
    let b = line.as_bytes();
    let mut spans = Vec::new();
    for (eq, _) in line.match_indices('=') {
        // Not `==`, `!=`, `<=`, `>=`.
        if b.get(eq + 1) == Some(&b'=') || (eq > 0 && b"=!<>".contains(&b[eq - 1])) {
            continue;
        }
        let head = &line[..eq];
        let spaced = head.ends_with(' ');
        let head = head.trim_end_matches(' ');
        let start = head
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
            .map_or(0, |i| i + 1);
        if key_kind(&head[start..]) == KeyKind::Plain || start == head.len() {
            continue;
        }
        let rest = &line[eq + 1..];
        let from = eq + 1 + (rest.len() - rest.trim_start_matches(' ').len());
        let v = &line[from..];
        let len = match v.chars().next() {
            Some(q @ ('"' | '\'')) => quoted_end(v, q).unwrap_or(v.len()),
            Some(_) if spaced => v.trim_end().len(),
            Some(_) => v
                .find(|c: char| c.is_whitespace() || "&;,".contains(c))
                .unwrap_or(v.len()),
            None => 0,
        };
        if len > 0 && &v[..len] != super::MASK {
            spans.push(from..from + len);
        }
    }
    spans
}

/// The key ending `head` (the line up to a `:`): a quoted string, or the
/// word before it.
fn key_before(head: &str) -> Option<&str> {
    match head.chars().next_back()? {
        q @ ('"' | '\'') => {
            let inner = &head[..head.len() - 1];
            inner.rfind(q).map(|open| &inner[open + 1..])
        }
        _ => {
            let start = head
                .rfind(|c: char| c.is_whitespace() || "{[,\"'#".contains(c))
                .map_or(0, |i| i + 1);
            Some(&head[start..])
        }
    }
}

fn value_after(line: &str, from: usize, in_flow: bool, kind: KeyKind) -> Option<Range<usize>> {
    let rest = &line[from..];
    let start = from + (rest.len() - rest.trim_start().len());
    let v = &line[start..];
    let first = v.chars().next()?;
    let end = match first {
        // Block scalars start on the next line: the parsed document has them.
        '|' | '>' => return None,
        // A collection: a credentials mapping's own pairs are scanned by
        // name; any other secret collection is masked whole.
        '{' | '[' if kind == KeyKind::Credentials => return None,
        '{' | '[' => start + bracket_end(v).unwrap_or(v.len()),
        '"' => quoted_end(v, '"').map_or(line.len(), |e| start + e),
        '\'' => quoted_end(v, '\'').map_or(line.len(), |e| start + e),
        _ => {
            let stop = if in_flow {
                v.find([',', '}', ']'])
            } else {
                v.find(" #")
            };
            start + v[..stop.unwrap_or(v.len())].trim_end().len()
        }
    };
    (end > start).then_some(start..end)
}

/// The end (exclusive) of the flow collection opening at `v[0]`.
fn bracket_end(v: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in v.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The end (exclusive, after the closing quote) of a quoted scalar starting
/// at `v[0]`; `None` when it is not closed on this line.
fn quoted_end(v: &str, q: char) -> Option<usize> {
    let mut chars = v.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if q == '"' && c == '\\' {
            chars.next();
        } else if c == q {
            if q == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') {
                chars.next();
                continue;
            }
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str, spans: Vec<Range<usize>>) -> String {
        let mut out = text.to_string();
        for r in spans.into_iter().rev() {
            out.replace_range(r, "****");
        }
        out
    }

    #[test]
    fn secret_keys() {
        for k in [
            "edgeHostToken",
            "password",
            "passwd",
            "client_secret",
            "API-Key",
            "private_key",
        ] {
            assert_eq!(key_kind(k), KeyKind::Secret, "{k}");
        }
        assert_eq!(key_kind("registryCredentials"), KeyKind::Credentials);
        for k in ["tokenFile", "token_env", "name", "encodedPasswordx"] {
            assert_eq!(key_kind(k), KeyKind::Plain, "{k}");
        }
    }

    #[test]
    fn pairs_anywhere_on_a_line() {
        let cases = [
            ("    edgeHostToken: abc123", "    edgeHostToken: ****"),
            ("  \"password\": \"x\",", "  \"password\": ****,"),
            ("  - passwd: hunter2 # old", "  - passwd: **** # old"),
            (
                "site: {edgeHostToken: T, name: x}",
                "site: {edgeHostToken: ****, name: x}",
            ),
            (
                "{\"stylus\":{\"site\":{\"edgeHostToken\":\"T\",\"name\":\"x\"}}}",
                "{\"stylus\":{\"site\":{\"edgeHostToken\":****,\"name\":\"x\"}}}",
            ),
            ("# token: abc", "# token: ****"),
            ("  name: edge-1", "  name: edge-1"),
            ("  tokens:", "  tokens:"),
            ("  edgeHostToken: >-", "  edgeHostToken: >-"),
            ("  secret: 'it''s: x'", "  secret: ****"),
            (
                "creds: {registryCredentials: {domain: r, password: p}}",
                "creds: {registryCredentials: {domain: r, password: ****}}",
            ),
            ("tokens: [a, b], x: y", "tokens: ****, x: y"),
            ("DB_PASSWORD=abc export", "DB_PASSWORD=**** export"),
            ("db_password = two words", "db_password = ****"),
            (
                "GET /x?api_token=abc&page=2",
                "GET /x?api_token=****&page=2",
            ),
            ("if [ $TOKEN == x ]; name=y", "if [ $TOKEN == x ]; name=y"),
        ];
        for (line, want) in cases {
            assert_eq!(masked(line, pair_spans(line)), want, "{line}");
        }
    }

    #[test]
    fn userinfo_with_or_without_a_scheme() {
        let cases = [
            (
                "http://bob:hunter2@proxy:3128",
                "http://bob:****@proxy:3128",
            ),
            ("bob:hunter2@proxy:3128", "bob:****@proxy:3128"),
            ("HTTPS_PROXY=bob:pw@p x", "HTTPS_PROXY=bob:****@p x"),
            ("`bob:p@ss@proxy` is bad", "`bob:****@proxy` is bad"),
            ("http://proxy:3128", "http://proxy:3128"),
            ("git@github.com:a/b", "git@github.com:a/b"),
            ("reg:5000/img@sha256:ab", "reg:5000/img@sha256:ab"),
        ];
        for (text, want) in cases {
            let mut spans = userinfo_spans(text);
            // The masker merges overlapping spans; keep the widest here.
            spans.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
            spans.dedup_by(|b, a| b.start >= a.start && b.end <= a.end);
            assert_eq!(masked(text, spans), want, "{text}");
        }
        assert_eq!(url_password("http://bob:pw@proxy:3128"), Some("pw"));
        assert_eq!(url_password("bob:pw@proxy:3128"), Some("pw"));
        assert_eq!(url_password("http://bob:p@ss@proxy"), Some("p@ss"));
        assert_eq!(url_password("http://bob@proxy:3128"), None);
        assert_eq!(url_password("proxy:3128"), None);
    }
}
