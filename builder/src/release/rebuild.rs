//! `verify --rebuild DIR`: builds a set again from what its `manifest.json`
//! records (the `build` invocation: definition, `--set`s, variant, golden;
//! the epoch) into a temporary folder, and compares every output byte for
//! byte, naming the first difference (file and offset) and, before that,
//! every input whose digest changed since. The user-data is not in the
//! manifest (it holds secrets): a set built with user-data needs
//! `--user-data FILE` again, checked against the recorded sha256.
//! Inputs are read where the manifest says, relative to the current folder
//! (as `build` was run), so run it from the same checkout.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::definition::LoadedDefinition;
use crate::error::{fail, Category};
use crate::io::file_sha256;
use crate::log::info;
use crate::manifest;

/// What the rebuild found: `(name, status)` per output and input.
pub struct Report {
    pub results: Vec<(String, String)>,
    pub first_difference: Option<String>,
}

pub fn rebuild(
    dir: &Path,
    user_data: Option<&Path>,
    cache: Option<&Path>,
) -> anyhow::Result<Report> {
    let path = dir.join(manifest::FILE);
    let bytes = std::fs::read(&path)
        .map_err(|e| fail(Category::Io, format!("reading {}: {e}", path.display())))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            Category::BadImage,
            format!("{} is not JSON: {e}", path.display()),
        )
    })?;
    let inv = &doc["invocation"];
    let Some(definition) = inv["definition"].as_str() else {
        return Err(fail(
            Category::InvalidInput,
            format!(
                "{} records no `build` invocation (made by `iso`/`provider-image` or an older edgeforge): nothing to rebuild from",
                path.display()
            ),
        ));
    };
    let sets: Vec<String> = inv["sets"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(s) = sets.iter().find(|s| s.contains(crate::mask::MASK)) {
        return Err(fail(
            Category::Usage,
            format!("the build set a secret (--set {s}), which the manifest does not keep: it cannot be rebuilt from it"),
        ));
    }
    let epoch = doc["source_date_epoch"].as_u64().unwrap_or(0);
    let mut results = Vec::new();

    // User-data: given again, and the same.
    let recorded_ud = doc["user_data"]["sha256"].as_str();
    match (recorded_ud, user_data) {
        (Some(_), None) => {
            return Err(fail(
                Category::Usage,
                format!(
                    "{} was built with user-data ({}), which the manifest does not keep: give it again with --user-data FILE",
                    dir.display(),
                    doc["user_data"]["source"].as_str().unwrap_or("?")
                ),
            ))
        }
        (Some(want), Some(f)) => {
            let (d, _) = file_sha256(f)
                .map_err(|e| fail(Category::Io, format!("reading {}: {e}", f.display())))?;
            let got = format!("sha256:{d}");
            if got != want {
                results.push((
                    "user_data".to_string(),
                    format!("CHANGED ({} is {got}, the build used {want})", f.display()),
                ));
            }
        }
        (None, _) => {}
    }

    // Inputs: which changed since (they explain a difference below).
    let l = LoadedDefinition::load(Path::new(definition), &sets)?;
    let now = crate::inputs::of_definition(&l)?;
    if let Some(recorded) = doc["inputs"].as_object() {
        for (name, want) in recorded {
            let got = now.get(name).map(String::as_str).unwrap_or("missing");
            if Some(got) != want.as_str() {
                results.push((
                    format!("input {name}"),
                    format!(
                        "CHANGED ({} now, the build used {})",
                        got,
                        want.as_str().unwrap_or("?")
                    ),
                ));
            }
        }
    }

    let tmp = tempfile::Builder::new()
        .prefix("edgeforge-rebuild-")
        .tempdir()
        .context("creating a folder to rebuild into")?;
    let out = tmp.path().join("build");
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.env("SOURCE_DATE_EPOCH", epoch.to_string());
    match cache {
        Some(c) => cmd.arg("--cache-dir").arg(c),
        None => cmd.arg("--no-cache"),
    };
    // A registry base is reached (or not, --offline) as this run reaches it.
    let registry = crate::registry::settings();
    if let Some(f) = &registry.authfile {
        cmd.arg("--authfile").arg(f);
    }
    if let Some(d) = &registry.cert_dir {
        cmd.arg("--cert-dir").arg(d);
    }
    if let Some(c) = &registry.registries_conf {
        cmd.arg("--registries-conf").arg(c);
    }
    if !registry.tls_verify {
        cmd.arg("--tls-verify=false");
    }
    if registry.offline {
        cmd.arg("--offline");
    }
    cmd.arg("--quiet").arg("build").arg(definition);
    for s in &sets {
        cmd.arg("--set").arg(s);
    }
    if let Some(v) = inv["variant"].as_str() {
        cmd.args(["--variant", v]);
    }
    if inv["golden"].as_bool() == Some(true) {
        cmd.arg("--golden");
    }
    if let (Some(_), Some(f)) = (recorded_ud, user_data) {
        cmd.arg("--user-data").arg(f);
    }
    cmd.arg("--out").arg(&out);
    cmd.stdout(std::process::Stdio::null());
    info!("rebuilding {} into {}", dir.display(), out.display());
    let status = cmd.status().context("running edgeforge build")?;
    if !status.success() {
        return Err(fail(
            Category::Build,
            format!("the rebuild of {} failed (see above)", dir.display()),
        ));
    }

    let mut first_difference = None;
    for (name, _) in manifest::read_outputs(&path)? {
        let status = match first_diff(&dir.join(&name), &out.join(&name))? {
            None => "IDENTICAL".to_string(),
            Some(what) => {
                let s = format!("DIFFERS ({what})");
                first_difference.get_or_insert_with(|| format!("{name}: {what}"));
                s
            }
        };
        results.push((name, status));
    }
    Ok(Report {
        results,
        first_difference,
    })
}

/// Where two files first differ, or `None` if they are the same bytes.
fn first_diff(a: &Path, b: &Path) -> anyhow::Result<Option<String>> {
    let open = |p: &PathBuf| -> anyhow::Result<Option<BufReader<File>>> {
        match File::open(p) {
            Ok(f) => Ok(Some(BufReader::with_capacity(1 << 20, f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    };
    let (Some(mut x), Some(mut y)) = (open(&a.to_path_buf())?, open(&b.to_path_buf())?) else {
        return Ok(Some(if a.exists() {
            "the rebuild did not write it".to_string()
        } else {
            "missing from the folder".to_string()
        }));
    };
    let (mut bx, mut by) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut offset: u64 = 0;
    loop {
        let n = read_full(&mut x, &mut bx)?;
        let m = read_full(&mut y, &mut by)?;
        if let Some(i) = bx[..n.min(m)]
            .iter()
            .zip(&by[..n.min(m)])
            .position(|(p, q)| p != q)
        {
            return Ok(Some(format!(
                "first differing byte at offset {}",
                offset + i as u64
            )));
        }
        if n != m {
            return Ok(Some(format!(
                "sizes differ: one ends at offset {}",
                offset + n.min(m) as u64
            )));
        }
        if n == 0 {
            return Ok(None);
        }
        offset += n as u64;
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_differing_offset() {
        let t = tempfile::tempdir().unwrap();
        let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
        let mut big = vec![7u8; 200_000];
        std::fs::write(&a, &big).unwrap();
        std::fs::write(&c, &big[..150_000]).unwrap();
        big[123_456] = 8;
        std::fs::write(&b, &big).unwrap();
        assert_eq!(first_diff(&a, &a).unwrap(), None);
        assert_eq!(
            first_diff(&a, &b).unwrap().unwrap(),
            "first differing byte at offset 123456"
        );
        assert!(first_diff(&a, &c).unwrap().unwrap().contains("150000"));
        assert!(first_diff(&a, &t.path().join("gone")).unwrap().is_some());
    }
}
