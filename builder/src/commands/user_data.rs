use crate::cli::UserDataCommand;
use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::io::AtomicFile;
use crate::mask;
use crate::provider::renderer_for;
use crate::user_data::{
    self,
    validate::{Mode, Severity},
};

use super::user_data_source;

pub fn run(c: UserDataCommand, epoch: u64) -> anyhow::Result<()> {
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
        UserDataCommand::Render {
            def,
            user_data,
            out,
        } => {
            let l = LoadedDefinition::load(&def.definition, &def.sets)?;
            let first = l.variants().remove(0);
            let ud = user_data_source::require(&user_data, || renderer_for(&l, &first, epoch))?;
            match out {
                Some(path) => {
                    AtomicFile::write(&path, ud.bytes(), 0o600)?;
                    println!("{}\tsha256:{}", path.display(), ud.sha256);
                }
                None => {
                    let text = String::from_utf8_lossy(ud.bytes());
                    for line in mask::document(&text).lines() {
                        println!("{line}");
                    }
                }
            }
            Ok(())
        }
    }
}
