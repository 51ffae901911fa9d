//! Inputs as the tools that read them accept them, checked before anything
//! is written: Palette's user-data forms, duplicate keys, `--set` blame,
//! `iso embed --sites` all or nothing, verified bundles, the provider image
//! an ISO names, preflight, plan digests and the golden reserved area size.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::*;

fn palette_examples() -> Vec<PathBuf> {
    let dir = repo_root().join("tests/fixtures/user-data/palette");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for form in [
        "static-prefix",
        "dhcp",
        "proxy",
        "proxy-credentials",
        "project-uid-number",
        "project-uid-string",
        "registry-credentials",
        "ca-certs",
    ] {
        assert!(
            files.contains(&dir.join(format!("{form}.yaml"))),
            "the example {form}.yaml is missing"
        );
    }
    files
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn palette_documented_user_data_passes_validation() {
    for file in palette_examples() {
        let o = edgeforge(&["user-data", "validate", file.to_str().unwrap()]);
        assert_ok(&o);
        assert!(
            stdout(&o).contains("valid (0 warnings)"),
            "{}: {}{}",
            file.display(),
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn user_data_is_checked_no_stricter_than_the_installer() {
    let t = tempfile::tempdir().unwrap();
    // A static interface with neither mask nor prefix, or without gateway,
    // is not known to be refused by the installer: warnings.
    let p = write(
        t.path(),
        "no-mask.yaml",
        "#cloud-config\nstylus:\n  site:\n    name: a\n    network:\n      interfaces:\n        enp1s0:\n          type: static\n          ipAddress: 10.0.10.25\n",
    );
    let o = edgeforge(&["user-data", "validate", p.to_str().unwrap()]);
    assert_ok(&o);
    assert!(stdout(&o).contains("valid (2 warnings)"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(":7: warning: stylus.site.network.interfaces.enp1s0.mask"),
        "{}",
        stderr(&o)
    );
    // A prefix that is no prefix is still an error.
    let p = write(
        t.path(),
        "bad-prefix.yaml",
        "#cloud-config\nstylus:\n  site:\n    network:\n      interfaces:\n        enp1s0:\n          type: static\n          ipAddress: 10.0.10.25/33\n          gateway: 10.0.10.1\n",
    );
    assert_fails(
        &edgeforge(&["user-data", "validate", p.to_str().unwrap()]),
        3,
        &[":8: error: stylus.site.network.interfaces.enp1s0.ipAddress: `10.0.10.25/33`"],
    );
}

#[test]
fn duplicate_keys_are_refused_at_the_second_key() {
    let t = tempfile::tempdir().unwrap();
    let p = write(
        t.path(),
        "dup.yaml",
        "#cloud-config\nstylus:\n  site:\n    name: store-1\n    projectName: Default\n    name: store-2\n",
    );
    assert_fails(
        &edgeforge(&["user-data", "validate", p.to_str().unwrap()]),
        3,
        &[
            &format!("{}:6:5: ", p.display()),
            "duplicate entry with key \"name\"",
        ],
    );
    // The same in an image definition: the duplicate's line, not the mapping's.
    let def = write_definition(t.path(), "dup", &t.path().join("base"), "");
    let text = fs::read_to_string(&def).unwrap().replace(
        "  version: \"1.30.5\"\n",
        "  version: \"1.30.5\"\n  version: \"1.31.1\"\n",
    );
    fs::write(&def, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l == "  version: \"1.31.1\"")
        .unwrap()
        + 1;
    assert_fails(
        &edgeforge(&["plan", def.to_str().unwrap()]),
        3,
        &[
            &format!("{}:{line}:3: ", def.display()),
            "duplicate field `version`",
        ],
    );
}

#[test]
fn a_bad_set_value_is_blamed_on_the_set() {
    let t = tempfile::tempdir().unwrap();
    let o = edgeforge(&[
        "render",
        "images/demo.yaml",
        "--set",
        "kubernetes.version=1.31",
        "--out",
        t.path().join("r").to_str().unwrap(),
    ]);
    assert_fails(
        &o,
        3,
        &["--set kubernetes.version=1.31: kubernetes.version: `1.31` is not MAJOR.MINOR.PATCH"],
    );
    assert!(!stderr(&o).contains("images/demo.yaml:"), "{}", stderr(&o));
    // The file's own mistakes keep their line.
    let def = write_definition(t.path(), "bad", &t.path().join("base"), "");
    let text = fs::read_to_string(&def).unwrap().replace("1.30.5", "1.30");
    fs::write(&def, &text).unwrap();
    assert_fails(
        &edgeforge(&[
            "render",
            def.to_str().unwrap(),
            "--set",
            "fips=false",
            "--out",
            t.path().join("r").to_str().unwrap(),
        ]),
        3,
        &[&format!("{}:7: kubernetes.version", def.display())],
    );
}
