use serde::Serialize;

use super::report::{self, Report};
use crate::cli::OutputFormat;
use crate::error::{fail_with_report, Category};
use crate::host_tools::{self, Requirement};

/// `edgeforge.doctor/v1`
#[derive(Serialize)]
struct Doctor {
    edgeforge: &'static str,
    tools: Vec<Tool>,
    /// Debian packages to install for building ISOs (empty when all are there).
    missing_packages: Vec<&'static str>,
}

#[derive(Serialize)]
struct Tool {
    tool: &'static str,
    package: &'static str,
    /// `build` (edgeforge runs it), `registry` (registry images only), `uki`
    /// (Secure Boot keys and UKI ISOs only), `disk` (appliance disk images
    /// only) or `checks` (tests and checks run it).
    role: &'static str,
    /// `ok` or `missing`.
    status: &'static str,
    version: Option<String>,
}

impl Report for Doctor {
    const SCHEMA: &'static str = "edgeforge.doctor/v1";
    fn print_text(&self) {
        println!(
            "status   {:26} {:20} {:8} version",
            "tool", "debian package", "role"
        );
        for t in &self.tools {
            match &t.version {
                Some(v) => println!("ok       {:26} {:20} {:8} {v}", t.tool, t.package, t.role),
                None => println!(
                    "MISSING  {:26} {:20} {:8} apt-get install {}",
                    t.tool, t.package, t.role, t.package
                ),
            }
        }
        println!("edgeforge {}", self.edgeforge);
    }
}

/// Lists every host tool with its version, or the Debian package to install.
pub fn run(output: OutputFormat) -> anyhow::Result<()> {
    let tool = |r: &Requirement, role: &'static str| {
        let version = r.version();
        Tool {
            tool: r.what,
            package: r.package,
            role,
            status: if version.is_some() { "ok" } else { "missing" },
            version,
        }
    };
    let tools: Vec<Tool> = host_tools::BUILD
        .iter()
        .map(|r| tool(r, "build"))
        // Only for registry images (pull, push, bundle load): not required to build.
        .chain(std::iter::once(tool(&host_tools::SKOPEO, "registry")))
        // Secure Boot keys and UKI ISOs (`keys generate`, `boot: uki`).
        .chain(
            host_tools::KEYS
                .iter()
                .chain(&host_tools::UKI)
                .chain([&&host_tools::SYSTEMD_BOOT_EFI])
                .map(|r| tool(r, "uki")),
        )
        // Appliance disk images (`disk`, `disk.formats`).
        .chain(
            host_tools::DISK
                .into_iter()
                .chain([&host_tools::QEMU_IMG])
                .map(|r| tool(r, "disk")),
        )
        .chain(host_tools::CHECKS.iter().map(|r| tool(r, "checks")))
        .collect();
    let mut missing: Vec<&'static str> = tools
        .iter()
        .filter(|t| t.role == "build" && t.version.is_none())
        .map(|t| t.package)
        .collect();
    missing.dedup();
    let doctor = Doctor {
        edgeforge: env!("CARGO_PKG_VERSION"),
        tools,
        missing_packages: missing,
    };
    if !doctor.missing_packages.is_empty() {
        // The table still helps in text mode; JSON carries it in the error.
        if output == OutputFormat::Text {
            doctor.print_text();
        }
        return Err(fail_with_report(
            Category::MissingTool,
            format!("tools for building ISOs are missing: apt-get install {} (or scripts/install-host-tools.sh)", doctor.missing_packages.join(" ")),
            report::to_json(&doctor)?,
        ));
    }
    report::emit(output, &doctor)
}
