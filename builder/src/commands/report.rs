//! Command results: one serde type per command, printed either as one JSON
//! object on stdout (`--output json`, its first field `schema`) or as text
//! for people. The schemas are listed in `schemas.rs` and described in
//! docs/json-output.md; within a version fields are only ever added.

use serde::Serialize;

use crate::cli::OutputFormat;

/// A command's result.
pub trait Report: Serialize {
    /// `edgeforge.<command>/v1`, as `schemas.rs` lists it.
    const SCHEMA: &'static str;
    /// The text form, for people.
    fn print_text(&self);
}

/// The result as one JSON object: `schema` first, then the type's fields.
pub fn to_json<R: Report>(r: &R) -> anyhow::Result<serde_json::Value> {
    let mut object = serde_json::Map::new();
    object.insert("schema".into(), R::SCHEMA.into());
    match serde_json::to_value(r)? {
        serde_json::Value::Object(fields) => object.extend(fields),
        other => anyhow::bail!("{} is not a JSON object: {other}", R::SCHEMA),
    }
    Ok(serde_json::Value::Object(object))
}

/// Prints the result in the requested format.
pub fn emit<R: Report>(output: OutputFormat, r: &R) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&to_json(r)?)?),
        OutputFormat::Text => r.print_text(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Sample {
        file: &'static str,
        size: u64,
    }

    impl Report for Sample {
        const SCHEMA: &'static str = "edgeforge.sample/v1";
        fn print_text(&self) {}
    }

    #[test]
    fn the_schema_comes_first() {
        let v = to_json(&Sample { file: "a", size: 3 }).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"schema":"edgeforge.sample/v1","file":"a","size":3}"#
        );
    }

    /// Every subcommand clap knows is in `schemas.rs`: a new command cannot
    /// forget its JSON form (tests/cli_output.rs runs every entry).
    #[test]
    fn every_subcommand_has_a_json_schema_or_is_text_only() {
        use clap::CommandFactory;
        fn walk(prefix: &str, cmd: &clap::Command, found: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let name = format!("{prefix}{}", sub.get_name()).trim().to_string();
                // A command with subcommands is itself runnable unless it
                // requires one (`iso IMAGE_YAML` is, `cache` is not).
                if !sub.has_subcommands() || !sub.is_subcommand_required_set() {
                    found.push(name.clone());
                }
                walk(&format!("{name} "), sub, found);
            }
        }
        let mut found = Vec::new();
        walk("", &crate::cli::Cli::command(), &mut found);
        let listed: Vec<&str> = super::super::schemas::JSON_SCHEMAS
            .iter()
            .map(|(c, _)| *c)
            .chain(super::super::schemas::TEXT_ONLY.iter().copied())
            .collect();
        for name in &found {
            assert!(
                listed.contains(&name.as_str()),
                "`edgeforge {name}` has no entry in commands/schemas.rs: give it a result type with a schema (commands/report.rs), document it in docs/json-output.md"
            );
        }
        for name in &listed {
            assert!(
                found.iter().any(|f| f == name),
                "commands/schemas.rs lists `{name}`, which is no subcommand"
            );
        }
        for (command, schema) in super::super::schemas::JSON_SCHEMAS {
            assert_eq!(
                *schema,
                format!("edgeforge.{}/v1", command.replace(' ', "-")),
                "schema names follow the command"
            );
        }
    }
}
