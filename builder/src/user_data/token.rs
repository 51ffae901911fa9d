//! The registration token: read from an environment variable or a file only
//! (a command-line value would land in shell history and process listings),
//! held in a type that never prints it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

use crate::error::{fail, Category};
use crate::log::warning;

pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn from_env(var: &str) -> anyhow::Result<Secret> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            _ => Err(fail(
                Category::InvalidInput,
                format!(
                    "the environment variable {var} (the registration token) is not set or empty"
                ),
            )),
        }
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Secret> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading token file {}", path.display()))?;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            warning!(
                "token file {} is readable by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
        let token = text.trim();
        if token.is_empty() || token.contains('\n') {
            return Err(fail(
                Category::InvalidInput,
                format!(
                    "token file {} must hold the token alone on one line",
                    path.display()
                ),
            ));
        }
        Ok(Secret(token.to_string()))
    }
}

/// Refuses `--token VALUE` (exit 8): a token on the command line is in the
/// shell history and every user's process listing before edgeforge runs.
pub fn refuse_command_line_token(value: Option<&str>) -> anyhow::Result<()> {
    match value {
        Some(_) => Err(command_line_token_refused()),
        None => Ok(()),
    }
}

/// The error for a token on the command line, also for a command line clap
/// refused that holds one.
pub fn command_line_token_refused() -> anyhow::Error {
    fail(Category::SecretRefused, REFUSED)
}

/// Why, and what to do instead; never the value.
const REFUSED: &str = "--token is refused: a token on the command line is kept in shell history and shown to every user in process listings; put it in an environment variable (--token-env VAR) or a 0600 file (--token-file FILE)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_token_is_refused_without_its_value() {
        assert!(refuse_command_line_token(None).is_ok());
        let err = refuse_command_line_token(Some("tok-1234")).unwrap_err();
        assert_eq!(crate::error::category_of(&err).exit_code(), 8);
        let text = format!("{err:#}");
        assert!(text.starts_with("--token is refused") && text.contains("--token-env VAR"));
        assert!(!text.contains("tok-1234"), "{text}");
    }
}
