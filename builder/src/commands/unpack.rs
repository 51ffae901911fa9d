use std::fs;

use anyhow::Context;

use crate::cli::UnpackArgs;
use crate::error::{fail, Category};
use crate::log::info;
use crate::oci::{flatten, source::SourceImage};

pub fn run(a: UnpackArgs, epoch: u64) -> anyhow::Result<()> {
    if a.out.exists() {
        return Err(fail(
            Category::Usage,
            format!(
                "{} already exists; unpack creates a new folder",
                a.out.display()
            ),
        ));
    }
    let image = SourceImage::open(&a.image, std::path::Path::new("."), &a.arch)?;
    let mut partial = a.out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let result = flatten::flatten(&image, &partial, epoch);
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    fs::rename(&partial, &a.out).with_context(|| format!("renaming into {}", a.out.display()))?;
    info!(
        "{} layers, {} entries, {} whiteouts applied, {} device nodes skipped",
        stats.layers, stats.entries, stats.whiteouts, stats.skipped_devices
    );
    println!("{}", a.out.display());
    Ok(())
}
