//! Refuses secrets in provider image content: user-data belongs on the
//! installer ISO only, and passwords never go into an image. Every file put
//! in a layer is looked at three ways:
//!
//! - its bytes (`stream.rs`): an `edgeHostToken` key with a value on its line
//!   (UTF-8 or UTF-16), and every secret value the run knows (the user-data's
//!   token and passwords, the definition's proxy passwords) as written, in
//!   UTF-16 and in base64 (`encodings.rs`);
//! - its gzip data (`gzip.rs`): each member inflated, bounded, and scanned
//!   the same way;
//! - its document (`parsed.rs`): a YAML or JSON file of up to 1 MiB walked
//!   key by key, so syntax (next-line values, escaped or explicit keys)
//!   hides nothing.
//!
//! This stops tokens put in an overlay by mistake or dressed in syntax; it
//! is no match for deliberate obfuscation (a token split, reversed or
//! encrypted), which is why the values the run knows are looked for too.

mod encodings;
mod gzip;
mod parsed;
mod stream;

use memchr::memmem;

use crate::definition::Proxy;
use gzip::{Budget, GzipMembers};
use parsed::ParsedCheck;
use stream::StreamScan;

/// Shorter values are looked for in context only (a password as `:pw@` in
/// a URL), so that a password like `abc` does not match every other file.
const BARE_MIN: usize = 8;

const PASSWORD_HINT: &str = "passwords never go into the provider image; render the proxy without credentials there and give sites theirs through the user-data (stylus.site.network.httpProxy)";
const USER_DATA_HINT: &str = "the user-data goes into the ISO's /config.yaml only, never into the provider image; remove it from the overlay or component";
const TOKEN_HINT: &str = "registration tokens belong in the ISO's user-data (edgeforge iso --user-data), never in the provider image; remove it from the overlay or component";

/// A secret value the run knows, and where it comes from.
#[derive(Clone)]
pub struct Secret {
    what: String,
    hint: &'static str,
    /// The byte strings that give it away, before encoding.
    plain: Vec<Vec<u8>>,
}

impl Secret {
    /// A URL's password: looked for as `:pw@`, and bare when long enough.
    pub fn url_password(what: String, password: &str, hint: &'static str) -> Option<Secret> {
        if password.is_empty() {
            return None;
        }
        let mut plain = vec![format!(":{password}@").into_bytes()];
        if password.len() >= BARE_MIN {
            plain.push(password.as_bytes().to_vec());
        }
        Some(Secret { what, hint, plain })
    }

    /// A value of the user-data (the token, a password): looked for bare,
    /// so only when long enough.
    pub fn value(what: String, value: &str) -> Option<Secret> {
        (value.len() >= BARE_MIN).then(|| Secret {
            what,
            hint: USER_DATA_HINT,
            plain: vec![value.as_bytes().to_vec()],
        })
    }
}

/// The passwords of `proxy.http_proxy` and `proxy.https_proxy` URLs.
pub fn of_proxy(p: &Proxy) -> Vec<Secret> {
    [
        ("proxy.http_proxy", &p.http_proxy),
        ("proxy.https_proxy", &p.https_proxy),
    ]
    .into_iter()
    .filter_map(|(field, url)| {
        let pw = crate::mask::url_password(url.as_deref()?)?;
        Secret::url_password(format!("the password of {field}"), pw, PASSWORD_HINT)
    })
    .collect()
}

/// The secrets of a user-data document (`user_data::secrets`), for a run
/// that builds layers and an ISO together.
pub fn of_user_data(fields: &[crate::user_data::SecretField]) -> Vec<Secret> {
    fields
        .iter()
        .filter_map(|f| {
            let what = format!("the user-data's {}", f.path);
            if f.in_url {
                Secret::url_password(format!("the password in {what}"), &f.value, USER_DATA_HINT)
            } else {
                Secret::value(what, &f.value)
            }
        })
        .collect()
}

/// What a guarded file was found to carry, and what to do about it.
#[derive(Debug)]
pub struct Finding {
    pub what: String,
    pub hint: &'static str,
}

impl Finding {
    fn token() -> Finding {
        Finding {
            what: "a stylus.site.edgeHostToken".into(),
            hint: TOKEN_HINT,
        }
    }

    fn in_gzip(mut self) -> Finding {
        const GZIP: &str = " (in gzip-compressed data)";
        if !self.what.ends_with(GZIP) {
            self.what.push_str(GZIP);
        }
        self
    }
}

/// A known value as tests use it.
#[cfg(test)]
fn known(value: &str) -> Vec<Secret> {
    vec![Secret {
        what: "the token".into(),
        hint: TOKEN_HINT,
        plain: vec![value.as_bytes().to_vec()],
    }]
}

/// Every encoded form of every secret, ready to search.
struct Needles {
    needles: Vec<Needle>,
}

struct Needle {
    finder: memmem::Finder<'static>,
    what: String,
    hint: &'static str,
}

impl Needles {
    fn new(secrets: &[Secret]) -> Needles {
        let mut needles = Vec::new();
        for s in secrets {
            for plain in &s.plain {
                for form in encodings::forms(plain, BARE_MIN) {
                    needles.push(Needle {
                        finder: memmem::Finder::new(&form.bytes).into_owned(),
                        what: format!("{}{}", s.what, form.label),
                        hint: s.hint,
                    });
                }
            }
        }
        Needles { needles }
    }

    fn longest(&self) -> usize {
        self.needles
            .iter()
            .map(|n| n.finder.needle().len())
            .max()
            .unwrap_or(0)
    }

    fn find_in(&self, buf: &[u8]) -> Option<Finding> {
        self.needles
            .iter()
            .find(|n| n.finder.find(buf).is_some())
            .map(|n| Finding {
                what: n.what.clone(),
                hint: n.hint,
            })
    }
}

/// The scan of one stream: a file, or a gzip member inside one.
struct Scan {
    stream: StreamScan,
    parsed: ParsedCheck,
    gzip: GzipMembers,
    found: Option<Finding>,
}

impl Scan {
    fn new(needles: &Needles, depth: u8) -> Scan {
        Scan {
            stream: StreamScan::new(needles),
            parsed: ParsedCheck::new(),
            gzip: GzipMembers::new(depth),
            found: None,
        }
    }

    fn found(&self) -> bool {
        self.found.is_some() || self.stream.found()
    }

    fn feed(&mut self, chunk: &[u8], needles: &Needles, budget: &mut Budget) {
        if self.found() {
            return;
        }
        self.stream.feed(chunk, needles);
        self.parsed.feed(chunk);
        self.found = self.gzip.feed(chunk, needles, budget);
    }

    /// What the stream fed since the last call carries; resets.
    fn finish(&mut self, needles: &Needles, budget: &mut Budget) -> Option<Finding> {
        let found = self.found.take();
        let found = found.or(self.stream.finish(needles));
        let found = found.or(self.gzip.finish(needles, budget));
        let skip = found.is_some();
        found.or(self.parsed.finish(needles, skip))
    }
}

/// Looks at every file of a layer as it is written.
pub struct SecretGuard {
    needles: Needles,
    scan: Scan,
    budget: Budget,
    inflate_max: u64,
}

impl SecretGuard {
    pub fn new(secrets: Vec<Secret>) -> SecretGuard {
        Self::with_inflate_max(secrets, gzip::INFLATE_MAX)
    }

    fn with_inflate_max(secrets: Vec<Secret>, inflate_max: u64) -> SecretGuard {
        let needles = Needles::new(&secrets);
        SecretGuard {
            scan: Scan::new(&needles, 0),
            needles,
            budget: Budget::new(inflate_max),
            inflate_max,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.scan.feed(chunk, &self.needles, &mut self.budget);
    }

    /// What the file fed since the last call carries, if anything; resets
    /// for the next file.
    pub fn finish(&mut self) -> Option<Finding> {
        let found = self.scan.finish(&self.needles, &mut self.budget);
        self.budget = Budget::new(self.inflate_max);
        found
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
        g.finish()
            .is_some_and(|f| f.what == "a stylus.site.edgeHostToken")
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
    fn finds_assignments_in_utf16_text_of_any_size() {
        // Past the parse limit, so the byte scan alone decides.
        let doc = format!(
            "{}\nedgeHostToken: abcdef123\n",
            "x".repeat(parsed::PARSE_MAX)
        );
        let le: Vec<u8> = doc.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = doc.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for data in [le, be] {
            for size in [3, 4096] {
                assert!(found_in_chunks(&data, size), "chunk size {size}");
            }
        }
        let empty: Vec<u8> = "edgeHostToken:\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(!found_in_chunks(&empty, 3));
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
        g.finish().map(|f| f.what)
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

    #[test]
    fn finds_known_values_in_utf16_and_base64() {
        let secrets = known("aUAxxxxxxxxx0ChYCrO");
        let utf16: Vec<u8> = "token=aUAxxxxxxxxx0ChYCrO"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        // base64 of "tok=aUAxxxxxxxxx0ChYCrO\n"
        let b64 = b"dG9rPWFVQXh4eHh4eHh4eDBDaFlDck8K";
        for (data, what) in [
            (&b"x aUAxxxxxxxxx0ChYCrO y"[..], "the token"),
            (&utf16, "the token (as UTF-16)"),
            (b64, "the token (base64-encoded)"),
        ] {
            for size in [1, 4, 4096] {
                assert_eq!(
                    secret_in_chunks(secrets.clone(), data, size).as_deref(),
                    Some(what)
                );
            }
        }
    }

    #[test]
    fn user_data_secrets_are_looked_for_bare_when_long_enough() {
        let field = |path: &str, value: &str, in_url| crate::user_data::SecretField {
            path: path.into(),
            value: value.into(),
            in_url,
        };
        let secrets = of_user_data(&[
            field("stylus.site.edgeHostToken", "aUAxxxxxxxxx0ChYCrO", false),
            field("stylus.registryCredentials.password", "short", false),
            field("stylus.site.network.httpProxy", "pw", true),
        ]);
        assert_eq!(secrets.len(), 2, "the short password is left out");
        assert_eq!(
            secret_in_chunks(secrets.clone(), b"t: aUAxxxxxxxxx0ChYCrO\n", 3).as_deref(),
            Some("the user-data's stylus.site.edgeHostToken")
        );
        assert_eq!(secret_in_chunks(secrets.clone(), b"short", 3), None);
        assert_eq!(
            secret_in_chunks(secrets, b"http://u:pw@proxy:3128", 3).as_deref(),
            Some("the password in the user-data's stylus.site.network.httpProxy")
        );
    }

    #[test]
    fn resets_between_files() {
        let mut g = SecretGuard::new(Vec::new());
        g.feed(b"edgeHost");
        assert!(g.finish().is_none());
        g.feed(b"Token: abcdef123\n");
        assert!(
            g.finish().is_none(),
            "a key split across two files is no key"
        );
    }
}
