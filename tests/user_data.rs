//! User-data: validation messages with field paths and lines, documents in the
//! shape of the Palette docs' examples, templated user-data with the token
//! from an environment variable or a file only, and masking.

mod support;

use std::fs;

use support::*;

fn validate(text: &str) -> std::process::Output {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("user-data.yaml");
    fs::write(&p, text).unwrap();
    let o = edgeforge(&["user-data", "validate", p.to_str().unwrap()]);
    // Keep the tempdir alive until the command has run.
    drop(t);
    o
}

#[test]
fn bad_documents_get_their_specific_message_with_path_and_line() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("no header", "stylus:\n  site:\n    name: a\n", &[":1:", "#cloud-config"]),
        ("tab indentation", "#cloud-config\nstylus:\n\tsite: {}\n", &[":3:", "tab in the indentation"]),
        ("syntax", "#cloud-config\nstylus: [\n", &[":3:"]),
        (
            "wrong type",
            "#cloud-config\nstylus:\n  site:\n    debug: \"yes\"\n",
            &[":4: error: stylus.site.debug: expected true or false, found a string"],
        ),
        (
            "endpoint with scheme",
            "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: https://api.spectrocloud.com\n    edgeHostToken: x\n",
            &[":4: error: stylus.site.paletteEndpoint:", "without scheme"],
        ),
        ("bad device", "#cloud-config\ninstall:\n  device: sda\n", &[":3: error: install.device: `sda` must be `auto`, a /dev/... path or script://..."]),
        (
            "unknown stage",
            "#cloud-config\nstages:\n  after-instal:\n    - commands: [echo]\n",
            &[":3: error: stages.after-instal: unknown stage `after-instal`"],
        ),
        (
            "static interface ip",
            "#cloud-config\nstylus:\n  site:\n    network:\n      interfaces:\n        - type: static\n          ipAddress: 10.1.1.300\n          mask: 24\n          gateway: 10.1.1.1\n",
            &[":7: error: stylus.site.network.interfaces[0].ipAddress: `10.1.1.300` is not an IP address"],
        ),
        (
            "stage step not a list",
            "#cloud-config\nstages:\n  boot:\n    commands: [echo]\n",
            &[":3: error: stages.boot: expected a list, found a mapping"],
        ),
        (
            "user name",
            "#cloud-config\nstages:\n  initramfs:\n    - users:\n        Admin: {passwd: x}\n",
            &[":5: error: stages.initramfs[0].users.Admin: user name `Admin`"],
        ),
        ("reboot and poweroff", "#cloud-config\ninstall:\n  reboot: true\n  poweroff: true\n", &["install.poweroff: reboot and poweroff are both true"]),
        ("proxy without scheme", "#cloud-config\nstylus:\n  site:\n    network:\n      httpsProxy: proxy:3128\n", &["stylus.site.network.httpsProxy"]),
        ("both project fields", "#cloud-config\nstylus:\n  site:\n    projectName: a\n    projectUid: b\n", &["set projectName or projectUid, not both"]),
    ];
    for (name, text, needles) in cases {
        let o = validate(text);
        assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
        for n in *needles {
            assert!(
                stderr(&o).contains(n),
                "{name}: stderr lacks {n:?}:\n{}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn unknown_stylus_keys_are_warnings_not_errors() {
    let o = validate("#cloud-config\nstylus:\n  site:\n    edgeHostToken: x\n    siteColour: blue\n  sitee: {}\n");
    assert_ok(&o);
    assert!(stdout(&o).contains("valid (2 warnings)"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(":5: warning: stylus.site.siteColour"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(":6: warning: stylus.sitee"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn documents_shaped_like_the_palette_examples_pass() {
    let docs = [
        // Registration with a token, proxy and static networking.
        "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n    edgeHostToken: aUAxxxxxxxxx0ChYCrO\n    projectName: Default\n    name: edge-randomid\n    tags:\n      key1: value1\n      key2: value2\n    network:\n      httpProxy: http://proxy.example.com\n      httpsProxy: https://proxy.example.com\n      noProxy: 10.10.128.10,10.0.0.0/8\n      nameserver: 1.1.1.1\n      interfaces:\n        enp0s3:\n          type: static\n          ipAddress: 10.0.10.25\n          mask: 255.255.255.0\n          gateway: 10.0.10.1\n          nameserver: 10.10.128.8\n        enp0s4:\n          type: dhcp\n    caCerts:\n      - |\n        -----BEGIN CERTIFICATE-----\n        MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n        -----END CERTIFICATE-----\n  registryCredentials:\n    domain: registry.example.com\n    username: bob\n    password: \"****\"\n    insecure: false\ninstall:\n  poweroff: true\n",
        // Users and stages, local management, airgap.
        "#cloud-config\nstylus:\n  managementMode: local\n  site:\n    name: edge-local-1\ninstallationMode: airgap\ninstall:\n  device: /dev/sda\n  reboot: true\n  grub_options:\n    extra_cmdline: \"console=ttyS0\"\n  bind_mounts:\n    - /var/lib/extra\nstages:\n  initramfs:\n    - users:\n        kairos:\n          groups: [sudo]\n          passwd: kairos\n          ssh_authorized_keys: [\"ssh-ed25519 AAAA... admin\"]\n  after-install:\n    - name: marker\n      commands:\n        - echo done > /oem/done\n  network.after:\n    - files:\n        - path: /etc/motd\n          content: hello\n",
        // Script device and project UID.
        "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.console.example.com:443\n    edgeHostToken: t\n    projectUid: \"5f8a4e1c9b2d\"\ninstall:\n  device: script:///usr/local/bin/pick-disk\n",
    ];
    for d in docs {
        let o = validate(d);
        assert_ok(&o);
        assert!(
            stdout(&o).contains("valid (0 warnings)"),
            "{}\n{}",
            stdout(&o),
            stderr(&o)
        );
    }
}
