//! Trusted boot (issue #13) under OVMF's Secure Boot firmware
//! (`OVMF_CODE_4M.secboot.fd`, q35 with SMM): the distribution's own signed
//! chain (shim + Debian's signed GRUB and kernel, taken from the root
//! filesystem) boots with Microsoft's keys enrolled.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

const USER_DATA: &str = "images/user-data/demo.yaml";
const MS_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";

/// Boots `iso` under the Secure Boot firmware with `env` (boot-test knobs)
/// and returns boot-test's report; panics when the boot does not pass.
#[track_caller]
fn secure_boot(iso: &Path, user_data: &[u8], env: &[(&str, &str)]) -> String {
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/boot-test.sh"))
        .arg(iso)
        .arg(sha256_hex(user_data))
        .arg("uefi")
        .env("BOOT_TEST_SECURE", "1")
        .env("BOOT_TEST_TIMEOUT", "400")
        .envs(env.iter().copied())
        .output()
        .expect("running scripts/boot-test.sh");
    let report = format!("{}{}", stdout(&o), stderr(&o));
    println!("{report}");
    assert!(o.status.success(), "{report}");
    report
}

/// The Debian demo ISO in GRUB mode: shim (Microsoft-signed) and Debian's
/// signed CD GRUB from the rootfs, Debian's signed kernel; the firmware
/// enforces Secure Boot with Microsoft's keys, and the kernel sees it.
#[test]
fn debian_grub_chain_boots_under_microsofts_keys() {
    debian_base();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("build");
    let o = edgeforge(&[
        "build",
        "images/demo.yaml",
        "--user-data",
        USER_DATA,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("EFI loader: signed shim"),
        "the loaders must come from the rootfs:\n{}",
        stderr(&o)
    );
    let user_data = std::fs::read(repo_root().join(USER_DATA)).unwrap();
    let report = secure_boot(
        &out.join("palette-edge-installer-debian.iso"),
        &user_data,
        &[
            ("BOOT_TEST_MEMORY", "2048"),
            ("BOOT_TEST_VARS", MS_VARS),
            ("BOOT_TEST_EXPECT", "secureboot=enabled user-data-from=live"),
        ],
    );
    assert!(report.contains("secureboot=enabled"), "{report}");
}
