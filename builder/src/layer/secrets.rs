//! Refuses secrets in provider image content: user-data belongs on the
//! installer ISO only, and passwords never go into an image. Looks for an
//! `edgeHostToken` key with a non-empty value, and for the secret values the
//! definition declares (proxy passwords), across read boundaries, at memchr
//! speed.

use memchr::memmem;

use crate::definition::Proxy;

const KEY: &[u8] = b"edgeHostToken";
/// Bytes after the key needed to decide whether a value follows.
const LOOKAHEAD: usize = 64;
const WINDOW: usize = KEY.len() + LOOKAHEAD;
/// Shorter passwords are looked for with their URL context (`:pw@`) only, so
/// that a password like `abc` does not match every other file.
const BARE_MIN: usize = 8;

/// A secret value the definition declares, and where it is declared.
#[derive(Clone)]
pub struct Secret {
    pub what: String,
    needles: Vec<Vec<u8>>,
}

/// The passwords of `proxy.http_proxy` and `proxy.https_proxy` URLs.
pub fn of_proxy(p: &Proxy) -> Vec<Secret> {
    [
        ("proxy.http_proxy", &p.http_proxy),
        ("proxy.https_proxy", &p.https_proxy),
    ]
    .into_iter()
    .filter_map(|(field, url)| {
        let pw = crate::mask::url_password(url.as_deref()?).filter(|pw| !pw.is_empty())?;
        let mut needles = vec![format!(":{pw}@").into_bytes()];
        if pw.len() >= BARE_MIN {
            needles.push(pw.as_bytes().to_vec());
        }
        Some(Secret {
            what: format!("the password of {field}"),
            needles,
        })
    })
    .collect()
}

/// What a guarded file was found to carry.
pub enum Finding {
    Token,
    Secret(String),
}

pub struct SecretGuard {
    secrets: Vec<Secret>,
    window: usize,
    tail: Vec<u8>,
    found: Option<Finding>,
}

impl SecretGuard {
    pub fn new(secrets: Vec<Secret>) -> SecretGuard {
        let longest = secrets
            .iter()
            .flat_map(|s| s.needles.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        SecretGuard {
            window: WINDOW.max(longest),
            secrets,
            tail: Vec::new(),
            found: None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.found.is_some() || chunk.is_empty() {
            return;
        }
        let window = self.window;
        // A key split across reads is seen in the tail of the previous read
        // joined with the head of this one.
        let had_tail = !self.tail.is_empty();
        if had_tail {
            self.tail
                .extend_from_slice(&chunk[..chunk.len().min(window)]);
            self.found = self.scan(&self.tail);
        }
        if self.found.is_none() {
            self.found = self.scan(chunk);
        }
        if chunk.len() >= window {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - window..]);
        } else {
            if !had_tail {
                self.tail.extend_from_slice(chunk);
            }
            let excess = self.tail.len().saturating_sub(window);
            self.tail.drain(..excess);
        }
    }

    /// What the file fed since the last call carries, if anything; resets
    /// for the next file.
    pub fn finish(&mut self) -> Option<Finding> {
        let found = self.found.take().or_else(|| self.scan(&self.tail));
        self.tail.clear();
        found
    }

    fn scan(&self, buf: &[u8]) -> Option<Finding> {
        if memmem::find_iter(buf, KEY).any(|pos| assigns_value(&buf[pos + KEY.len()..])) {
            return Some(Finding::Token);
        }
        self.secrets
            .iter()
            .find(|s| s.needles.iter().any(|n| memmem::find(buf, n).is_some()))
            .map(|s| Finding::Secret(s.what.clone()))
    }
}

fn assigns_value(after: &[u8]) -> bool {
    let mut i = 0;
    if matches!(after.first(), Some(b'"' | b'\'')) {
        i += 1;
    }
    while matches!(after.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    if !matches!(after.get(i), Some(b':' | b'=')) {
        return false;
    }
    i += 1;
    while matches!(after.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    match after.get(i) {
        None | Some(b'\n' | b'\r' | b'#' | b',' | b'}') => false,
        Some(q @ (b'"' | b'\'')) => after.get(i + 1).is_some_and(|c| c != q),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found_in_chunks(data: &[u8], size: usize) -> bool {
        let mut g = SecretGuard::new(Vec::new());
        for c in data.chunks(size) {
            g.feed(c);
        }
        matches!(g.finish(), Some(Finding::Token))
    }

    #[test]
    fn finds_assignments_across_chunk_boundaries() {
        let doc = b"#cloud-config\nstylus:\n  site:\n    edgeHostToken: abcdef123\n";
        for size in [1, 3, 7, 13, 64, 4096] {
            assert!(found_in_chunks(doc, size), "chunk size {size}");
        }
        assert!(found_in_chunks(br#"{"edgeHostToken": "x"}"#, 5));
        assert!(found_in_chunks(b"EDGE=1\nedgeHostToken=zzz", 2));
    }

    #[test]
    fn ignores_mentions_without_a_value() {
        for doc in [
            &b"# set edgeHostToken in user-data, never here\n"[..],
            b"edgeHostToken:\n",
            b"edgeHostToken: \"\"\n",
            b"edgeHostToken: # filled per site\n",
            b"edgeHostToken",
        ] {
            assert!(!found_in_chunks(doc, 3), "{}", String::from_utf8_lossy(doc));
        }
    }

    fn proxy(url: &str) -> Proxy {
        Proxy {
            http_proxy: Some(url.into()),
            ..Proxy::default()
        }
    }

    fn secret_in_chunks(secrets: Vec<Secret>, data: &[u8], size: usize) -> Option<String> {
        let mut g = SecretGuard::new(secrets);
        for c in data.chunks(size) {
            g.feed(c);
        }
        match g.finish() {
            Some(Finding::Secret(what)) => Some(what),
            _ => None,
        }
    }

    #[test]
    fn finds_proxy_passwords_across_chunk_boundaries() {
        let secrets = of_proxy(&proxy("http://bob:correct-horse-battery@proxy:3128"));
        let long = [b"x".repeat(5000), b"pw=correct-horse-battery\n".to_vec()].concat();
        for size in [1, 5, 17, 4096] {
            assert_eq!(
                secret_in_chunks(secrets.clone(), &long, size).as_deref(),
                Some("the password of proxy.http_proxy"),
                "chunk size {size}"
            );
        }
        let env = b"HTTP_PROXY=http://bob:correct-horse-battery@proxy:3128\n";
        assert!(secret_in_chunks(secrets.clone(), env, 3).is_some());
        assert!(secret_in_chunks(secrets, b"HTTP_PROXY=http://proxy:3128\n", 3).is_none());
    }

    #[test]
    fn short_passwords_are_matched_in_their_url_only() {
        let secrets = of_proxy(&proxy("http://bob:abc@proxy:3128"));
        assert!(secret_in_chunks(secrets.clone(), b"abcdef", 2).is_none());
        assert!(secret_in_chunks(secrets, b"http://bob:abc@proxy:3128", 2).is_some());
        assert!(of_proxy(&proxy("http://bob@proxy:3128")).is_empty());
        assert!(of_proxy(&Proxy::default()).is_empty());
    }
}
