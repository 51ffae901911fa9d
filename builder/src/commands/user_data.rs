use serde::Serialize;

use super::report::{self, Report};
use crate::cli::{OutputFormat, UserDataCommand};
use crate::definition::LoadedDefinition;
use crate::error::{fail_with_report, Category};
use crate::io::AtomicFile;
use crate::mask;
use crate::provider::renderer_for;
use crate::user_data::{
    self,
    validate::{Mode, Severity},
};

use super::user_data_source;

/// `edgeforge.user-data-validate/v1`
#[derive(Serialize)]
struct Validated {
    file: String,
    /// `full` (an installer's user-data) or `override` (a site medium's).
    mode: &'static str,
    valid: bool,
    errors: usize,
    warnings: usize,
    findings: Vec<Finding>,
}

#[derive(Serialize)]
struct Finding {
    /// `error` or `warning`.
    severity: &'static str,
    line: Option<usize>,
    /// The field, e.g. `stylus.site.network.interfaces.eth0.ipAddress`.
    path: String,
    message: String,
}

impl Report for Validated {
    const SCHEMA: &'static str = "edgeforge.user-data-validate/v1";
    fn print_text(&self) {
        println!("{}: valid ({} warnings)", self.file, self.warnings);
    }
}

/// `edgeforge.user-data-render/v1`
#[derive(Serialize)]
struct Rendered {
    /// The file written (`-o`); none when printed.
    file: Option<String>,
    sha256: String,
    /// The document with its secrets masked, when printed (no `-o`).
    content: Option<String>,
}

impl Report for Rendered {
    const SCHEMA: &'static str = "edgeforge.user-data-render/v1";
    fn print_text(&self) {
        match (&self.file, &self.content) {
            (Some(file), _) => println!("{file}\tsha256:{}", self.sha256),
            (None, Some(content)) => print!("{content}"),
            (None, None) => {}
        }
    }
}

pub fn run(c: UserDataCommand, epoch: u64, output: OutputFormat) -> anyhow::Result<()> {
    match c {
        UserDataCommand::Validate {
            file,
            site_override,
        } => {
            let mode = if site_override {
                Mode::Override
            } else {
                Mode::Full
            };
            let (_, findings) = user_data::inspect_as(&file, mode)?;
            // The findings go to stderr in text mode, into the result in JSON.
            if !findings.is_empty() && output == OutputFormat::Text {
                eprintln!("{}", user_data::describe(&file, &findings));
            }
            let errors = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let validated = Validated {
                file: file.display().to_string(),
                mode: if site_override { "override" } else { "full" },
                valid: errors == 0,
                errors,
                warnings: findings.len() - errors,
                findings: findings
                    .into_iter()
                    .map(|f| Finding {
                        severity: match f.severity {
                            Severity::Error => "error",
                            Severity::Warning => "warning",
                        },
                        line: f.line,
                        path: f.path,
                        message: f.message,
                    })
                    .collect(),
            };
            if errors > 0 {
                return Err(fail_with_report(
                    Category::InvalidInput,
                    format!(
                        "{}: {errors} errors, {} warnings",
                        file.display(),
                        validated.warnings
                    ),
                    report::to_json(&validated)?,
                ));
            }
            report::emit(output, &validated)
        }
        UserDataCommand::Render {
            def,
            user_data,
            out,
        } => {
            let l = LoadedDefinition::load(&def.definition, &def.sets)?;
            let first = l.variants().remove(0);
            let ud = user_data_source::require(&user_data, || renderer_for(&l, &first, epoch))?;
            let rendered = match out {
                Some(path) => {
                    AtomicFile::write(&path, ud.bytes(), 0o600)?;
                    Rendered {
                        file: Some(path.display().to_string()),
                        sha256: ud.sha256.to_string(),
                        content: None,
                    }
                }
                None => {
                    let text = String::from_utf8_lossy(ud.bytes());
                    let masked: String = mask::document(&text)
                        .lines()
                        .map(|l| format!("{l}\n"))
                        .collect();
                    Rendered {
                        file: None,
                        sha256: ud.sha256.to_string(),
                        content: Some(masked),
                    }
                }
            };
            report::emit(output, &rendered)
        }
    }
}
