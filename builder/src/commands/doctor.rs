use crate::error::{fail, Category};
use crate::host_tools::{self, Requirement};

/// Lists every host tool with its version, or the Debian package to install.
pub fn run() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    let show = |r: &Requirement, role: &str, missing: &mut Vec<&'static str>| match r.version() {
        Some(v) => println!("ok       {:26} {:20} {role:6} {v}", r.what, r.package),
        None => {
            println!(
                "MISSING  {:26} {:20} {role:6} apt-get install {}",
                r.what, r.package, r.package
            );
            if role == "build" {
                missing.push(r.package);
            }
        }
    };
    println!(
        "status   {:26} {:20} {:6} version",
        "tool", "debian package", "role"
    );
    for r in host_tools::BUILD {
        show(r, "build", &mut missing);
    }
    for r in host_tools::DISK.into_iter().chain([&host_tools::QEMU_IMG]) {
        show(r, "disk", &mut missing);
    }
    for r in &host_tools::CHECKS {
        show(r, "checks", &mut missing);
    }
    println!("edgeforge {}", env!("CARGO_PKG_VERSION"));
    if !missing.is_empty() {
        missing.dedup();
        return Err(fail(
            Category::MissingTool,
            format!("tools for building ISOs are missing: apt-get install {} (or scripts/install-host-tools.sh)", missing.join(" ")),
        ));
    }
    Ok(())
}
