use std::fs::File;
use std::path::Path;

use serde::Serialize;

use super::report::{self, Report};
use crate::checksums::SUMS;
use crate::cli::OutputFormat;
use crate::error::{fail, fail_with_report, Category};
use crate::io::HashingReader;
use crate::manifest;

/// `edgeforge.verify/v1`
#[derive(Serialize)]
struct Verified {
    sums: String,
    ok: bool,
    /// With `--key`: each signature file and `OK` or why not.
    signatures: Vec<Status>,
    /// Each listed artifact (`OK`, `FAILED`, `MISSING`), then what keeps the
    /// folder from being one committed set.
    results: Vec<Status>,
    /// With `--rebuild`.
    #[serde(skip_serializing_if = "Option::is_none")]
    rebuild: Option<Rebuilt>,
}

#[derive(Serialize)]
struct Status {
    name: String,
    status: String,
}

#[derive(Serialize)]
struct Rebuilt {
    dir: String,
    ok: bool,
    /// Each output compared and each input, `SAME`, `DIFFERS ...` or `CHANGED ...`.
    results: Vec<Status>,
}

impl Report for Verified {
    const SCHEMA: &'static str = "edgeforge.verify/v1";
    fn print_text(&self) {
        let rebuilt = self.rebuild.iter().flat_map(|r| &r.results);
        for s in self.signatures.iter().chain(&self.results).chain(rebuilt) {
            println!("{}: {}", s.name, s.status);
        }
    }
}

fn statuses(pairs: &[(String, String)]) -> Vec<Status> {
    pairs
        .iter()
        .map(|(n, s)| Status {
            name: n.clone(),
            status: s.clone(),
        })
        .collect()
}

/// A failed verification: the statuses so far (printed in text mode, in
/// the error object in JSON mode) and why.
fn failed(verified: &Verified, output: OutputFormat, why: String) -> anyhow::Error {
    if output == OutputFormat::Text {
        verified.print_text();
    }
    match report::to_json(verified) {
        Ok(json) => fail_with_report(Category::BadImage, why, json),
        Err(e) => e,
    }
}

/// `verify`, with `--rebuild` when `rebuild` names the user-data (if any)
/// and the cache.
pub fn run(
    path: &Path,
    key: Option<&Path>,
    rebuild: Option<(Option<&Path>, Option<&Path>)>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let mut verified = check(path, key, output)?;
    if let Some((user_data, cache)) = rebuild {
        let (rebuilt, first) = rebuild_set(path, user_data, cache)?;
        verified.ok = rebuilt.ok;
        let dir = rebuilt.dir.clone();
        let changed: Vec<String> = rebuilt
            .results
            .iter()
            .filter(|s| s.status.starts_with("CHANGED"))
            .map(|s| s.name.clone())
            .collect();
        verified.rebuild = Some(rebuilt);
        if let Some(first) = first {
            let why = if changed.is_empty() {
                String::new()
            } else {
                format!(" (changed since the build: {})", changed.join(", "))
            };
            return Err(failed(
                &verified,
                output,
                format!("the rebuild of {dir} differs, first {first}{why}"),
            ));
        }
    }
    report::emit(output, &verified)
}

/// Checks every artifact a checksum file lists, as `sha256sum -c` would.
/// For an output folder (or its `SHA256SUMS`) also that the set is whole:
/// every artifact in the folder is listed and `manifest.json` agrees with
/// `SHA256SUMS`; a run killed while committing its outputs leaves a folder
/// that fails here (see `output_set.rs`).
///
/// With a public key, first the OpenPGP signatures of the checksum file
/// and `manifest.json` (`release/sign.rs`): a missing one, another key's
/// or one over a changed file fails before anything is hashed.
fn check(path: &Path, key: Option<&Path>, output: OutputFormat) -> anyhow::Result<Verified> {
    let sums = if path.is_dir() {
        path.join(SUMS)
    } else {
        path.to_path_buf()
    };
    let dir = match sums.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut verified = Verified {
        sums: sums.display().to_string(),
        ok: true,
        signatures: Vec::new(),
        results: Vec::new(),
        rebuild: None,
    };
    if let Some(key) = key {
        let checked = crate::release::sign::verify_files(&sums, key)?;
        verified.signatures = statuses(&checked);
        let bad: Vec<&(String, String)> = checked.iter().filter(|(_, s)| s != "OK").collect();
        if !bad.is_empty() {
            verified.ok = false;
            return Err(failed(
                &verified,
                output,
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
        verified.results.push(Status {
            name: name.to_string(),
            status,
        });
    }
    let mut set_bad = 0;
    if sums.file_name().is_some_and(|n| n == SUMS) {
        for (name, status) in set_problems(dir, &listed) {
            set_bad += 1;
            verified.results.push(Status { name, status });
        }
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
        verified.ok = false;
        return Err(failed(&verified, output, problems.join("; ")));
    }
    Ok(verified)
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
/// folder's, byte for byte (`release/rebuild.rs`). Returns the statuses
/// and the first difference, if any.
fn rebuild_set(
    path: &Path,
    user_data: Option<&Path>,
    cache: Option<&Path>,
) -> anyhow::Result<(Rebuilt, Option<String>)> {
    let dir = if path.is_dir() {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    let report = crate::release::rebuild::rebuild(dir, user_data, cache)?;
    let rebuilt = Rebuilt {
        dir: dir.display().to_string(),
        ok: report.first_difference.is_none(),
        results: statuses(&report.results),
    };
    Ok((rebuilt, report.first_difference))
}
