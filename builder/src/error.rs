//! Error categories and their stable exit codes.
//!
//! Errors travel as `anyhow::Error` with context; the category is carried by a
//! [`Failure`] somewhere in the chain (possibly wrapped in an `io::Error` by a
//! reader adapter) and decides the process exit code.

use std::fmt;

/// What kind of failure ended the run. The numbers are part of the CLI contract
/// (documented in README.md) and must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// A host tool or an internal step failed.
    Build,
    /// The command line is wrong.
    Usage,
    /// An image definition, user-data or other input file is invalid.
    InvalidInput,
    /// A host tool is not installed.
    MissingTool,
    /// Reading or writing a file failed.
    Io,
    /// A template could not be parsed or rendered.
    Template,
    /// An image or archive is corrupt or unsafe (digest mismatch, path escaping the root).
    BadImage,
    /// A secret was found where it must never go.
    SecretRefused,
    /// A registry refused the credentials, or none were found for it.
    RegistryAuth,
    /// A registry's TLS certificate is not trusted (unknown CA, wrong name).
    RegistryTls,
    /// A registry could not be reached (connection refused, no such host, timeout).
    RegistryUnreachable,
    /// `--offline` and the content is not in the cache.
    Offline,
}

impl Category {
    pub fn exit_code(self) -> i32 {
        match self {
            Category::Build => 1,
            Category::Usage => 2,
            Category::InvalidInput => 3,
            Category::MissingTool => 4,
            Category::Io => 5,
            Category::Template => 6,
            Category::BadImage => 7,
            Category::SecretRefused => 8,
            Category::RegistryAuth => 9,
            Category::RegistryTls => 10,
            Category::RegistryUnreachable => 11,
            Category::Offline => 12,
        }
    }

    /// The category's name in JSON errors (`edgeforge.error/v1`); as stable
    /// as the exit code.
    pub fn name(self) -> &'static str {
        match self {
            Category::Build => "build",
            Category::Usage => "usage",
            Category::InvalidInput => "invalid-input",
            Category::MissingTool => "missing-tool",
            Category::Io => "io",
            Category::Template => "template",
            Category::BadImage => "corrupt-image",
            Category::SecretRefused => "secret-refused",
            Category::RegistryAuth => "registry-auth",
            Category::RegistryTls => "registry-tls",
            Category::RegistryUnreachable => "registry-unreachable",
            Category::Offline => "offline",
        }
    }
}

/// An error with a category; its message is complete on its own.
#[derive(Debug)]
pub struct Failure {
    pub category: Category,
    message: String,
    /// The command's result so far, for a failure that has one (the
    /// per-file statuses of a failed `verify`): `--output json` puts it in
    /// the error object, since stdout stays empty on failure.
    pub report: Option<serde_json::Value>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Builds an `anyhow::Error` of the given category.
pub fn fail(category: Category, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        category,
        message: message.into(),
        report: None,
    })
}

/// Like [`fail`], carrying the command's result (see [`Failure::report`]).
pub fn fail_with_report(
    category: Category,
    message: impl Into<String>,
    report: serde_json::Value,
) -> anyhow::Error {
    anyhow::Error::new(Failure {
        category,
        message: message.into(),
        report: Some(report),
    })
}

/// The report a failure in the chain carries, if any.
pub fn report_of(err: &anyhow::Error) -> Option<&serde_json::Value> {
    err.chain()
        .find_map(|c| c.downcast_ref::<Failure>())
        .and_then(|f| f.report.as_ref())
}

/// The error as `--output json` prints it: one object on one line.
pub fn to_json(err: &anyhow::Error) -> serde_json::Value {
    let category = category_of(err);
    let mut v = serde_json::json!({
        "schema": "edgeforge.error/v1",
        "error": format!("{err:#}"),
        "category": category.name(),
        "exit_code": category.exit_code(),
    });
    if let Some(r) = report_of(err) {
        v["report"] = r.clone();
    }
    v
}

/// The category of the first categorized cause in the chain; plain I/O errors
/// count as [`Category::Io`], anything else as [`Category::Build`].
pub fn category_of(err: &anyhow::Error) -> Category {
    let mut io_seen = false;
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.category;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(f) = io.get_ref().and_then(|e| e.downcast_ref::<Failure>()) {
                return f.category;
            }
            io_seen = true;
        }
    }
    if io_seen {
        Category::Io
    } else {
        Category::Build
    }
}

/// Wraps a categorized failure in an `io::Error`, for reader and writer adapters
/// that must speak `io::Result` yet keep the category.
pub fn io_failure(category: Category, message: impl Into<String>) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        Failure {
            category,
            message: message.into(),
            report: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn category_survives_context_and_io_wrapping() {
        let e = Err::<(), _>(fail(Category::Template, "x"))
            .context("rendering")
            .unwrap_err();
        assert_eq!(category_of(&e), Category::Template);

        let io = io_failure(Category::BadImage, "digest mismatch");
        let e = anyhow::Error::new(io).context("copying blob");
        assert_eq!(category_of(&e), Category::BadImage);

        let plain = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(category_of(&anyhow::Error::new(plain)), Category::Io);
        assert_eq!(category_of(&anyhow::anyhow!("other")), Category::Build);
    }

    #[test]
    fn json_errors_carry_category_code_and_report() {
        let e = Err::<(), _>(fail(Category::InvalidInput, "bad field"))
            .context("loading x.yaml")
            .unwrap_err();
        let v = to_json(&e);
        assert_eq!(v["schema"], "edgeforge.error/v1");
        assert_eq!(v["error"], "loading x.yaml: bad field");
        assert_eq!(v["category"], "invalid-input");
        assert_eq!(v["exit_code"], 3);
        assert!(v.get("report").is_none());
        let e = fail_with_report(
            Category::BadImage,
            "1 failed",
            serde_json::json!({"ok": false}),
        );
        assert_eq!(to_json(&e)["report"]["ok"], false);
        assert_eq!(to_json(&e)["exit_code"], 7);
    }
}
