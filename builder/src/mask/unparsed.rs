//! Showing text that did not parse, and cutting quoted lines.
//!
//! Without a parsed document nothing tells a secret from other text, so a
//! line that did not parse is shown as its structure only: indentation,
//! punctuation (`{ } [ ] , : - ?`, quotes) and the keys (a word or quoted
//! string followed by `:` where a key can stand: at the line's start, after
//! `{`, `,`, `[`, `- ` or `? `). Every other run of characters (values,
//! comments, anything else) shows as `****`. That is enough to see a
//! missing bracket or a stray `:`, and shows no value.

/// A line of a document that did not parse, with every non-key masked.
pub fn unparsed_line(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(4096));
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    // What came last: None at the line's start, or a punctuation char, or 'v'
    // after a scalar.
    let mut prev: Option<char> = None;
    // After a quoted scalar, `:` is an indicator even when a value follows
    // at once (JSON's `"n":1`).
    let mut after_quoted = false;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let next = chars.get(i + 1).map(|&(_, n)| n);
        match c {
            _ if c.is_whitespace() => {
                out.push(c);
                i += 1;
                continue;
            }
            '{' | '}' | '[' | ']' | ',' => {
                out.push(c);
                prev = Some(c);
                after_quoted = false;
                i += 1;
                continue;
            }
            ':' if after_quoted || indicator_follows(next) => {
                out.push(c);
                prev = Some(':');
                after_quoted = false;
                i += 1;
                continue;
            }
            '-' | '?' if next.is_none_or(char::is_whitespace) => {
                out.push(c);
                prev = Some(c);
                after_quoted = false;
                i += 1;
                continue;
            }
            '#' if i == 0 || chars[i - 1].1.is_whitespace() => {
                out.push_str("# ****");
                break;
            }
            _ => {}
        }
        // A scalar: quoted, or plain up to the next indicator.
        let quoted = c == '"' || c == '\'';
        let end = match quoted {
            true => quoted_end(&chars, i),
            false => plain_end(&chars, i),
        };
        let text_end = chars.get(end).map_or(line.len(), |&(b, _)| b);
        let scalar = &line[at..text_end];
        let mut j = end;
        while chars.get(j).is_some_and(|&(_, c)| c == ' ' || c == '\t') {
            j += 1;
        }
        let is_key = matches!(prev, None | Some('{' | ',' | '[' | '-' | '?'))
            && chars.get(j).is_some_and(|&(_, c)| c == ':')
            && (quoted || indicator_follows(chars.get(j + 1).map(|&(_, n)| n)));
        if is_key {
            out.push_str(scalar);
        } else {
            match c {
                '"' | '\'' => {
                    out.push(c);
                    out.push_str(super::MASK);
                    out.push(c);
                }
                _ => out.push_str(super::MASK),
            }
        }
        prev = Some('v');
        after_quoted = quoted;
        i = end;
    }
    out
}

/// Whether a `:` followed by `next` ends a key (YAML's `: `, JSON's `":"`).
fn indicator_follows(next: Option<char>) -> bool {
    next.is_none_or(|n| n.is_whitespace() || ",[]{}\"'".contains(n))
}

fn quoted_end(chars: &[(usize, char)], start: usize) -> usize {
    let q = chars[start].1;
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i].1 {
            '\\' if q == '"' => i += 2,
            c if c == q => {
                if q == '\'' && chars.get(i + 1).is_some_and(|&(_, n)| n == '\'') {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

fn plain_end(chars: &[(usize, char)], start: usize) -> usize {
    let mut i = start;
    while i < chars.len() {
        let c = chars[i].1;
        let next = chars.get(i + 1).map(|&(_, n)| n);
        if ",[]{}".contains(c)
            || (c == ':' && indicator_follows(next))
            || (c.is_whitespace() && next == Some('#'))
        {
            break;
        }
        i += 1;
    }
    // Trailing spaces belong to the output as spaces, not to the scalar.
    while i > start && chars[i - 1].1.is_whitespace() {
        i -= 1;
    }
    i.max(start + 1)
}

/// At most this many characters of a line are quoted in an error.
pub const SNIPPET: usize = 120;

/// A (masked) line cut to [`SNIPPET`] characters around `column` (1-based,
/// in characters of the masked line), with `...` where it was cut, so an
/// error about a 60 000-character line stays one readable line.
pub fn snippet(masked: &str, column: usize) -> String {
    let n = masked.chars().count();
    if n <= SNIPPET {
        return masked.to_string();
    }
    let start = column.saturating_sub(SNIPPET / 2).min(n - SNIPPET);
    let text: String = masked.chars().skip(start).take(SNIPPET).collect();
    let head = if start > 0 { "..." } else { "" };
    let tail = if start + SNIPPET < n { "..." } else { "" };
    format!("{head}{text}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_structure_and_keys_only() {
        let cases = [
            (
                "stylus: {site: {edgeHostToken: TOK1, name: x}}}",
                "stylus: {site: {edgeHostToken: ****, name: ****}}}",
            ),
            (
                "{\"stylus\":{\"edgeHostToken\":\"TOK1\",\"n\":1}",
                "{\"stylus\":{\"edgeHostToken\":\"****\",\"n\":****}",
            ),
            (
                "    edgeHostToken: TOK1: oops",
                "    edgeHostToken: ****: ****",
            ),
            ("  - TOK1 # TOK2", "  - **** # ****"),
            ("  TOK1", "  ****"),
            ("  [TOK1, \"a\\\"TOK2\"", "  [****, \"****\""),
            ("key: 'it''s TOK1'", "key: '****'"),
            ("url: http://bob:TOK1@p:3", "url: ****"),
        ];
        for (line, want) in cases {
            assert_eq!(unparsed_line(line), want, "{line}");
        }
    }

    #[test]
    fn snippets_are_cut_around_the_column() {
        assert_eq!(snippet("short", 3), "short");
        let long = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let s = snippet(&long, 1001);
        assert_eq!(s.chars().count(), SNIPPET + 6);
        assert!(s.starts_with("...a") && s.ends_with("b...") && s.contains('X'));
        assert!(snippet(&long, 1).starts_with("aaa"));
        assert!(snippet(&long, 5000).ends_with("bbb"));
    }
}
