use crate::cli::UserDataCommand;
use crate::error::{fail, Category};
use crate::user_data::{self, validate::Severity};

pub fn run(c: UserDataCommand) -> anyhow::Result<()> {
    match c {
        UserDataCommand::Validate { file } => {
            let (_, findings) = user_data::inspect(&file)?;
            if !findings.is_empty() {
                eprintln!("{}", user_data::describe(&file, &findings));
            }
            let errors = findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .count();
            let warnings = findings.len() - errors;
            if errors > 0 {
                return Err(fail(
                    Category::InvalidInput,
                    format!("{}: {errors} errors, {warnings} warnings", file.display()),
                ));
            }
            println!("{}: valid ({warnings} warnings)", file.display());
            Ok(())
        }
    }
}
