//! Running skopeo against a registry: the user's options (auth file, CA
//! folder, TLS verification) added to every call, and its failures turned
//! into categorized errors with anything credential-like masked.
//!
//! Credentials never pass through edgeforge: skopeo reads them itself from
//! `--authfile`, `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`
//! or `~/.docker/config.json`; it gets only paths on its command line.

use std::process::Output;

use anyhow::Context;

use super::Settings;
use crate::error::{fail, Category};
use crate::host_tools;
use crate::log::verbose;

/// Which side of a `copy` the registry is on (its options are named after it).
#[derive(Clone, Copy)]
pub enum Side {
    /// `inspect`: plain option names.
    Inspect,
    Src,
    Dest,
}

/// The registry options for one side: `--authfile`, `--[src-|dest-]cert-dir`,
/// `--[src-|dest-]tls-verify=false`.
pub fn options(s: &Settings, side: Side) -> Vec<String> {
    let prefix = match side {
        Side::Inspect => "",
        Side::Src => "src-",
        Side::Dest => "dest-",
    };
    let mut args = Vec::new();
    if let Some(f) = &s.authfile {
        args.push(format!("--{prefix}authfile"));
        args.push(f.display().to_string());
    }
    if let Some(d) = &s.cert_dir {
        args.push(format!("--{prefix}cert-dir"));
        args.push(d.display().to_string());
    }
    if !s.tls_verify {
        args.push(format!("--{prefix}tls-verify=false"));
    }
    args
}

/// Runs skopeo with `args`; a failure is classified by what skopeo says
/// (`what` names the operation for the message).
pub fn run(args: &[String], what: &str) -> anyhow::Result<Output> {
    host_tools::require(&[&host_tools::SKOPEO])?;
    let sh = host_tools::shell()?;
    let mut cmd = sh.cmd("skopeo");
    if let Some(conf) = &super::settings().registries_conf {
        cmd = cmd.arg("--registries-conf").arg(conf);
    }
    let cmd = cmd.args(args);
    verbose!("$ {cmd}");
    let shown = cmd.to_string();
    let out = cmd
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running {shown}"))?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = masked(&String::from_utf8_lossy(&out.stderr));
    let said = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(fatal_message)
        // Killed, or out of memory: nothing to classify, but say how it ended.
        .unwrap_or_else(|| format!("skopeo {} and said nothing", out.status));
    let (category, hint) = classify(&said);
    Err(fail(category, format!("{what} failed: {said}\n{hint}")))
}

/// The text of logrus's `level=fatal msg="..."` line, unquoted.
fn fatal_message(line: &str) -> String {
    match line.split_once("msg=\"") {
        Some((_, m)) => m.strip_suffix('"').unwrap_or(m).replace("\\\"", "\""),
        None => line.trim().to_string(),
    }
}

/// The category of a skopeo failure, with what to do about it. Registries
/// word the same failure differently (and skopeo passes their text on), so
/// the match is on lowercase fragments and HTTP status texts; anything else
/// is a build failure shown with skopeo's own words.
fn classify(said: &str) -> (Category, &'static str) {
    let said = said.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| said.contains(n));
    if has(&[
        "digest did not match",
        "does not match digest",
        "digest mismatch",
    ]) {
        (Category::BadImage, "the registry sent a blob whose content does not hash to its digest (its storage, or a proxy on the way, damaged it); nothing of it was used: repair or re-push the image in the registry")
    } else if has(&[
        "unauthorized",
        "authentication required",
        "invalid username/password",
        "requested access to the resource is denied",
        "denied: ",
        "no basic auth credentials",
        "(forbidden)",
        "403 forbidden",
        "credential file is not accessible",
    ]) {
        (Category::RegistryAuth, "the registry wants credentials it did not get or refused: log in (`skopeo login HOST` or `podman login`, which write $XDG_RUNTIME_DIR/containers/auth.json), or give an auth file with --authfile / REGISTRY_AUTH_FILE")
    } else if has(&[
        "x509:",
        "tls:",
        "certificate",
        "server gave http response to https client",
    ]) {
        (Category::RegistryTls, "the registry's TLS certificate is not trusted: put its CA certificate (ca.crt) in /etc/containers/certs.d/HOST/ or a folder given with --cert-dir; --tls-verify=false only for a registry you trust")
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "network is unreachable",
        "no route to host",
        "connection reset",
        "tls handshake timeout",
        "context deadline exceeded",
        "server misbehaving",
    ]) {
        (Category::RegistryUnreachable, "the registry cannot be reached: check the host and port, the network and proxies, or build with --offline from what the cache holds")
    } else if has(&["manifest unknown", "name unknown", "not found"]) {
        (
            Category::InvalidInput,
            "the registry has no such repository or tag: check the reference",
        )
    } else {
        (Category::Build, "see skopeo's message above")
    }
}

/// `text` with URL userinfo, `key: value` secrets and HTTP authorization
/// values replaced by `****`: skopeo's messages quote what the registry said.
pub fn masked(text: &str) -> String {
    let mut spans = crate::mask::scan::userinfo_spans(text);
    spans.extend(crate::mask::scan::pair_spans(text));
    spans.extend(auth_spans(text));
    for scheme in ["Bearer ", "Basic ", "bearer ", "basic "] {
        let mut from = 0;
        while let Some(i) = text[from..].find(scheme) {
            let start = from + i + scheme.len();
            let end = text[start..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
                .map_or(text.len(), |e| start + e);
            if end > start {
                spans.push(start..end);
            }
            from = end.max(start);
        }
    }
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in spans {
        if r.start < at {
            at = at.max(r.end);
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str("****");
        at = r.end;
    }
    out.push_str(&text[at.min(text.len())..]);
    out
}

/// The values of auth.json's `"auth": "<base64 user:password>"` (also
/// quoted inside a logrus `msg="..."`, as `\"auth\":\"...\"`): `auth` is
/// no secret word anywhere else, so the general key scan leaves it.
fn auth_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    for (i, _) in text.match_indices("\"auth") {
        let rest = &text[i + 5..];
        let after_key = rest.trim_start_matches(['\\', '"']);
        let Some(value) = after_key.trim_start().strip_prefix(':') else {
            continue;
        };
        let value = value.trim_start().trim_start_matches(['\\', '"']);
        let start = text.len() - value.len();
        let len = value
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)))
            .unwrap_or(value.len());
        if len > 0 {
            spans.push(start..start + len);
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skopeo_failures_get_their_category() {
        let c = |s: &str| classify(s).0;
        assert_eq!(c("checking whether a blob exists in 127.0.0.1:5999/demo/base: unauthorized: authentication required"), Category::RegistryAuth);
        assert_eq!(c("pinging container registry 127.0.0.1:5999: Get \"https://127.0.0.1:5999/v2/\": x509: certificate signed by unknown authority"), Category::RegistryTls);
        assert_eq!(
            c("dial tcp 127.0.0.1:5998: connect: connection refused"),
            Category::RegistryUnreachable
        );
        assert_eq!(c("reading manifest v2 in 127.0.0.1:5999/demo/base: manifest unknown: manifest unknown"), Category::InvalidInput);
        // Other registries' words for the same failures.
        for auth in [
            "reading manifest 1 in quay.io/x/y: unauthorized: access to the requested resource is not authorized",
            "initializing source docker://ghcr.io/x/y:1: reading manifest 1 in ghcr.io/x/y: denied: denied",
            "trying to reuse blob at destination: invalid status code from registry 403 (Forbidden)",
            "requested access to the resource is denied",
            "Unauthorized",
        ] {
            assert_eq!(c(auth), Category::RegistryAuth, "{auth}");
        }
        assert_eq!(c("pinging container registry r.local: Get \"https://r.local/v2/\": http: server gave HTTP response to HTTPS client"), Category::RegistryTls);
        assert_eq!(
            c("net/http: TLS handshake timeout"),
            Category::RegistryUnreachable
        );
        assert_eq!(
            c("reading blob sha256:12: fetching blob: 404 (Not Found)"),
            Category::InvalidInput
        );
        assert_eq!(c("writing blob: happened during read: Digest did not match, expected sha256:12, got sha256:34"), Category::BadImage);
        assert_eq!(
            c("writing blob: happened during read: unexpected EOF"),
            Category::Build
        );
    }

    #[test]
    fn credentials_in_messages_are_masked() {
        let m = masked("Get \"https://alice:s3cret@reg.example/v2/\": Authorization: Bearer abc.def.ghi, password: hunter2");
        assert!(
            !m.contains("s3cret") && !m.contains("abc.def") && !m.contains("hunter2"),
            "{m}"
        );
        // auth.json's base64 login, as JSON and quoted inside a logrus msg.
        for text in [
            r#"{"auths":{"r.local":{"auth":"ZWRnZTpzM2NyZXQ="}}}"#,
            r#"msg="bad {\"auths\":{\"r\":{\"auth\": \"ZWRnZTpzM2NyZXQ=\"}}}""#,
        ] {
            let m = masked(text);
            assert!(!m.contains("ZWRnZTpz"), "{m}");
            assert!(m.contains("****"), "{m}");
        }
        assert_eq!(masked(r#""auths": {}"#), r#""auths": {}"#);
        assert_eq!(
            fatal_message(r#"time="x" level=fatal msg="reading \"a\": manifest unknown""#),
            r#"reading "a": manifest unknown"#
        );
    }
}
