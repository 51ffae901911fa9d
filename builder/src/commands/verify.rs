use std::fs::File;
use std::path::Path;

use crate::checksums::SUMS;
use crate::cli::OutputFormat;
use crate::error::{fail, Category};
use crate::io::HashingReader;
use crate::manifest;

/// Checks every artifact a checksum file lists, as `sha256sum -c` would.
/// For an output folder (or its `SHA256SUMS`) also that the set is whole:
/// every artifact in the folder is listed and `manifest.json` agrees with
/// `SHA256SUMS`; a run killed while committing its outputs leaves a folder
/// that fails here (see `output_set.rs`).
///
/// With a public key, first the OpenPGP signatures of the checksum file
/// and `manifest.json` (`release/sign.rs`): a missing one, another key's
/// or one over a changed file fails before anything is hashed.
pub fn run(path: &Path, key: Option<&Path>, output: OutputFormat) -> anyhow::Result<()> {
    let sums = if path.is_dir() {
        path.join(SUMS)
    } else {
        path.to_path_buf()
    };
    let dir = match sums.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut signatures = Vec::new();
    if let Some(key) = key {
        let checked = crate::release::sign::verify_files(&sums, key)?;
        let bad: Vec<&(String, String)> = checked.iter().filter(|(_, s)| s != "OK").collect();
        for (name, status) in &checked {
            if output == OutputFormat::Text {
                println!("{name}: {status}");
            }
            signatures.push(serde_json::json!({"name": name, "status": status}));
        }
        if !bad.is_empty() {
            if output == OutputFormat::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"sums": sums.display().to_string(), "ok": false, "signatures": signatures})
                    )?
                );
            }
            return Err(fail(
                Category::BadImage,
                format!(
                    "{} of {} signatures failed against {}: {}",
                    bad.len(),
                    checked.len(),
                    key.display(),
                    bad.iter()
                        .map(|(n, s)| format!("{n}: {s}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
    }
    let text = std::fs::read_to_string(&sums)
        .map_err(|e| fail(Category::Io, format!("reading {}: {e}", sums.display())))?;
    let (mut bad, mut total) = (0, 0);
    let mut results = Vec::new();
    let mut listed = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Some((hash, name)) = line.split_once("  ").or_else(|| line.split_once(" *")) else {
            return Err(fail(
                Category::InvalidInput,
                format!("{}:{}: expected `<sha256>  <file>`", sums.display(), n + 1),
            ));
        };
        total += 1;
        listed.push((name.to_string(), hash.to_string()));
        let status = match File::open(dir.join(name)) {
            Err(_) => "MISSING".to_string(),
            Ok(f) => match HashingReader::new(f).finish() {
                Ok((d, _)) if d.to_string() == hash => "OK".to_string(),
                Ok(_) => "FAILED".to_string(),
                Err(e) => format!("FAILED ({e})"),
            },
        };
        if status != "OK" {
            bad += 1;
        }
        if output == OutputFormat::Text {
            println!("{name}: {status}");
        }
        results.push(serde_json::json!({"name": name, "status": status}));
    }
    let mut set_bad = 0;
    if sums.file_name().is_some_and(|n| n == SUMS) {
        for (name, status) in set_problems(dir, &listed) {
            set_bad += 1;
            if output == OutputFormat::Text {
                println!("{name}: {status}");
            }
            results.push(serde_json::json!({"name": name, "status": status}));
        }
    }
    if output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"sums": sums.display().to_string(), "ok": bad + set_bad == 0, "signatures": signatures, "results": results})
            )?
        );
    }
    let mut problems = Vec::new();
    if bad > 0 {
        problems.push(format!(
            "{bad} of {total} artifacts in {} failed verification",
            sums.display()
        ));
    }
    if set_bad > 0 {
        problems.push(format!(
            "{} does not hold one committed set of artifacts ({set_bad} problems above: an interrupted run, or files added by hand)",
            dir.display()
        ));
    }
    if !problems.is_empty() {
        return Err(fail(Category::BadImage, problems.join("; ")));
    }
    Ok(())
}

/// What makes the folder's files not one committed set: an artifact the
/// checksums do not list (a new file of an interrupted run), and a
/// `manifest.json` output `SHA256SUMS` does not list with the same digest.
fn set_problems(dir: &Path, listed: &[(String, String)]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let is_listed = |name: &str| listed.iter().any(|(n, _)| n == name);
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.starts_with('.')
                && (n.ends_with(".iso")
                    || n.ends_with(".oci.tar")
                    || n.ends_with(".cdx.json")
                    || crate::disk::Format::ALL
                        .iter()
                        .any(|f| n.ends_with(&format!(".{}", f.extension()))))
        })
        .collect();
    present.sort();
    for name in present.into_iter().filter(|n| !is_listed(n)) {
        problems.push((name, format!("NOT LISTED in {SUMS}")));
    }
    let manifest_path = dir.join(manifest::FILE);
    if !manifest_path.exists() {
        return problems;
    }
    match manifest::read_outputs(&manifest_path) {
        Err(e) => problems.push((manifest::FILE.into(), format!("UNREADABLE ({e:#})"))),
        Ok(outputs) => {
            for (name, sha) in outputs {
                if !listed.iter().any(|(n, h)| *n == name && *h == sha) {
                    problems.push((
                        manifest::FILE.into(),
                        format!("lists {name} with sha256 {sha}, {SUMS} does not"),
                    ));
                }
            }
        }
    }
    problems
}

/// `verify --rebuild`: the set built again from its manifest equals the
/// folder's, byte for byte (`release/rebuild.rs`).
pub fn rebuild(
    path: &Path,
    user_data: Option<&Path>,
    cache: Option<&Path>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let dir = if path.is_dir() {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    let report = crate::release::rebuild::rebuild(dir, user_data, cache)?;
    if output == OutputFormat::Json {
        let results: Vec<_> = report
            .results
            .iter()
            .map(|(n, s)| serde_json::json!({"name": n, "status": s}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "rebuild": dir.display().to_string(),
                "ok": report.first_difference.is_none(),
                "results": results,
            }))?
        );
    } else {
        for (name, status) in &report.results {
            println!("{name}: {status}");
        }
    }
    if let Some(first) = report.first_difference {
        let changed: Vec<&str> = report
            .results
            .iter()
            .filter(|(_, s)| s.starts_with("CHANGED"))
            .map(|(n, _)| n.as_str())
            .collect();
        let why = if changed.is_empty() {
            String::new()
        } else {
            format!(" (changed since the build: {})", changed.join(", "))
        };
        return Err(fail(
            Category::BadImage,
            format!(
                "the rebuild of {} differs, first {first}{why}",
                dir.display()
            ),
        ));
    }
    Ok(())
}
