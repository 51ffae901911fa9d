//! Registry references (`host/repository[:tag][@sha256:...]`) and the rule
//! that tells one from a local image path.
//!
//! A string names a registry image when it starts with `docker://`, or when
//! it has no transport prefix (`oci:`, `oci-archive:`, `docker-archive:`),
//! no file or folder exists at it (relative to the folder it is read
//! against), and its first `/`-separated component is a registry host: it
//! holds a `.` or a `:`, or is `localhost` (Docker's own rule for telling a
//! host from a repository's first part), and does not start with `.` (`..`).
//! Everything else is a local path.

use std::fmt;
use std::path::Path;

use crate::error::{fail, Category};
use crate::oci::spec::Digest;

/// A parsed registry reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub host: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

const DOCKER: &str = "docker://";
const LOCAL_PREFIXES: [&str; 3] = ["oci:", "oci-archive:", "docker-archive:"];

/// The registry reference `spec` names, or `None` when it names a local image.
pub fn classify(spec: &str, base_dir: &Path) -> anyhow::Result<Option<Reference>> {
    if let Some(rest) = spec.strip_prefix(DOCKER) {
        return Reference::parse(rest).map(Some);
    }
    if base_dir.join(spec).exists() || !looks_like_reference(spec) {
        return Ok(None);
    }
    Reference::parse(spec).map(Some)
}

/// Whether `text` has a reference's shape (`docker://`, or a registry host
/// as first component), whatever files exist.
pub fn looks_like_reference(text: &str) -> bool {
    if text.starts_with(DOCKER) {
        return true;
    }
    if LOCAL_PREFIXES.iter().any(|p| text.starts_with(p)) {
        return false;
    }
    text.split_once('/')
        .is_some_and(|(first, _)| is_host(first))
}

/// `..` and `.hidden` are folders, never hosts.
fn is_host(component: &str) -> bool {
    !component.starts_with('.')
        && (component.contains('.') || component.contains(':') || component == "localhost")
}

impl Reference {
    /// Parses `[host/]repository[:tag][@sha256:hex]`; no host means Docker
    /// Hub (`docker.io`, `library/` for one-part names), as skopeo reads it.
    pub fn parse(text: &str) -> anyhow::Result<Reference> {
        // `user:password@host/...` would otherwise be echoed in the messages
        // below (and reach skopeo's command line): refused, shown masked.
        // An `@` before any `/` is userinfo, unless a digest follows it
        // (`ubuntu@sha256:...`, a Docker Hub name).
        let login =
            text.trim_start_matches(DOCKER)
                .split_once('@')
                .is_some_and(|(before, after)| {
                    !before.contains('/') && (after.contains('/') || !after.starts_with("sha256:"))
                });
        if login {
            return Err(fail(
                Category::SecretRefused,
                format!("`{}`: a registry reference cannot carry a login (USER[:PASSWORD]@HOST); log in with `skopeo login HOST` or give an auth file with --authfile / REGISTRY_AUTH_FILE", super::skopeo::masked(text)),
            ));
        }
        let bad = |why: &str| {
            fail(
                Category::InvalidInput,
                format!("`{text}` is not a registry reference ({why}); expected [docker://]HOST/REPOSITORY[:TAG][@sha256:DIGEST], e.g. quay.io/kairos/ubuntu:22.04"),
            )
        };
        let (name, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(|e| bad(&e))?)),
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/` (a host may have a port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let (host, repository) = match path.split_once('/') {
            // Docker Hub's official images live under `library/`, however
            // named (`docker.io/ubuntu` is `docker.io/library/ubuntu`), so
            // one image has one cache key and one path in a site's registry.
            Some(("docker.io", r)) if !r.contains('/') => {
                ("docker.io".to_string(), format!("library/{r}"))
            }
            Some((h, r)) if is_host(h) => (h.to_string(), r.to_string()),
            Some(_) => ("docker.io".to_string(), path.to_string()),
            None => ("docker.io".to_string(), format!("library/{path}")),
        };
        if repository.is_empty()
            || !repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            })
        {
            return Err(bad(
                "a repository is lowercase letters, digits and . _ - between slashes",
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits, . _ -"));
            }
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            host,
            repository,
            tag,
            digest,
        })
    }

    /// `host/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    /// `host/repository@digest`.
    pub fn with_digest(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.name())
    }

    /// What skopeo fetches: by tag when there is one (a pinned digest is then
    /// checked by edgeforge against what the tag gives), else by digest.
    pub fn fetch_target(&self) -> String {
        match (&self.tag, &self.digest) {
            (Some(t), _) => format!("{}:{t}", self.name()),
            (None, Some(d)) => self.with_digest(d),
            (None, None) => unreachable!("parse gives a tag or a digest"),
        }
    }

    /// The same repository path and tag under another registry (and prefix),
    /// `to` being `HOST[/PREFIX]`.
    pub fn moved_to(&self, to: &str) -> anyhow::Result<Reference> {
        let to = to.trim_end_matches('/');
        let (host, prefix) = match to.split_once('/') {
            Some((h, p)) => (h, Some(p)),
            None => (to, None),
        };
        if !is_host(host) {
            return Err(fail(
                Category::Usage,
                format!("--to {to}: expected a registry HOST[:PORT][/PREFIX], e.g. registry.site.local:5000/edge"),
            ));
        }
        let repository = match prefix {
            Some(p) => format!("{p}/{}", self.repository),
            None => self.repository.clone(),
        };
        let moved = Reference {
            host: host.to_string(),
            repository,
            tag: self.tag.clone(),
            digest: None,
        };
        // Checks the prefix with the same rules.
        Reference::parse(&moved.to_string())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:b223da1e787676281b35dbdd5bd4436febe5712701fa74db6d07f62804034f45";

    #[test]
    fn references_parse_with_port_tag_and_digest() {
        let r = Reference::parse(&format!("127.0.0.1:5000/demo/base:v1@{D}")).unwrap();
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository, "demo/base");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.unwrap().to_string(), D);
        assert_eq!(r.fetch_target(), "127.0.0.1:5000/demo/base:v1");
        let r = Reference::parse("localhost:5000/base").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let r = Reference::parse(&format!("quay.io/kairos/ubuntu@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.fetch_target(), format!("quay.io/kairos/ubuntu@{D}"));
        for hub in [
            "ubuntu:22.04",
            "docker.io/ubuntu:22.04",
            "docker.io/library/ubuntu:22.04",
        ] {
            assert_eq!(
                Reference::parse(hub).unwrap().to_string(),
                "docker.io/library/ubuntu:22.04"
            );
        }
        for bad in [
            "quay.io/Kairos/x",
            "quay.io/x:",
            "quay.io/x@sha256:12",
            "quay.io/",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_paths_and_registry_references_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("my.images/base")).unwrap();
        let c = |s: &str| classify(s, dir.path()).unwrap().map(|r| r.to_string());
        assert_eq!(
            c("docker://quay.io/kairos/ubuntu:22.04").as_deref(),
            Some("quay.io/kairos/ubuntu:22.04")
        );
        assert_eq!(
            c("docker://ubuntu").as_deref(),
            Some("docker.io/library/ubuntu:latest")
        );
        assert_eq!(
            c("quay.io/kairos/ubuntu:22.04").as_deref(),
            Some("quay.io/kairos/ubuntu:22.04")
        );
        assert_eq!(
            c("localhost/base").as_deref(),
            Some("localhost/base:latest")
        );
        // A local file wins over a host-like first component.
        assert_eq!(c("my.images/base"), None);
        for local in [
            "oci:quay.io/x",
            "oci-archive:a.tar",
            "../base",
            "base/layout",
            "images/x.oci.tar",
        ] {
            assert_eq!(c(local), None, "{local}");
        }
    }

    #[test]
    fn moved_references_keep_the_repository_path() {
        let r = Reference::parse(&format!("quay.io/kairos/ubuntu:22.04@{D}")).unwrap();
        assert_eq!(
            r.moved_to("10.0.0.5:5000").unwrap().to_string(),
            "10.0.0.5:5000/kairos/ubuntu:22.04"
        );
        assert_eq!(
            r.moved_to("site.local/mirror/").unwrap().to_string(),
            "site.local/mirror/kairos/ubuntu:22.04"
        );
        assert!(r.moved_to("nohost").is_err());
    }

    #[test]
    fn a_login_in_a_reference_is_refused_without_showing_it() {
        for text in [
            "alice:s3cret@quay.io/kairos/ubuntu:22.04",
            "docker://alice:s3cret@127.0.0.1:5000/base",
            "alice@quay.io/kairos/ubuntu",
        ] {
            let e = Reference::parse(text).unwrap_err();
            assert_eq!(
                crate::error::category_of(&e),
                Category::SecretRefused,
                "{text}"
            );
            assert!(!format!("{e:#}").contains("s3cret"), "{e:#}");
        }
        let e = classify("alice:s3cret@reg.example/x:1", Path::new("/")).unwrap_err();
        assert!(!format!("{e:#}").contains("s3cret"), "{e:#}");
        let r = Reference::parse(&format!("quay.io/x:1@{D}")).unwrap();
        let e = r.moved_to("bob:pw@site.local:5000").unwrap_err();
        assert!(!format!("{e:#}").contains(":pw"), "{e:#}");
        // A digest after `@` is no login.
        assert!(Reference::parse(&format!("ubuntu@{D}")).is_ok());
    }
}
