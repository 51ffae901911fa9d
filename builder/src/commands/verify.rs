use std::fs::File;
use std::path::Path;

use crate::checksums::SUMS;
use crate::cli::OutputFormat;
use crate::error::{fail, Category};
use crate::io::HashingReader;

/// Checks every artifact a checksum file lists, as `sha256sum -c` would.
pub fn run(path: &Path, output: OutputFormat) -> anyhow::Result<()> {
    let sums = if path.is_dir() {
        path.join(SUMS)
    } else {
        path.to_path_buf()
    };
    let dir = sums.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(&sums)
        .map_err(|e| fail(Category::Io, format!("reading {}: {e}", sums.display())))?;
    let (mut bad, mut total) = (0, 0);
    let mut results = Vec::new();
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
    if output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"sums": sums.display().to_string(), "ok": bad == 0, "results": results})
            )?
        );
    }
    if bad > 0 {
        return Err(fail(
            Category::BadImage,
            format!(
                "{bad} of {total} artifacts in {} failed verification",
                sums.display()
            ),
        ));
    }
    Ok(())
}
