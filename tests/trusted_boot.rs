//! Trusted boot (issue #13) under OVMF's Secure Boot firmware
//! (`OVMF_CODE_4M.secboot.fd`, q35 with SMM): the distribution's own signed
//! chain (shim + Debian's signed GRUB and kernel, taken from the root
//! filesystem) boots with Microsoft's keys enrolled; `keys generate` makes
//! key sets whose signature lists and updates firmware takes; a UKI ISO
//! signed with one enrols it from setup mode and boots with Secure Boot
//! enforced (busybox demo base and Debian base), the enrolled firmware
//! refuses a UKI with one byte changed and an ISO signed with another key
//! set, and a per-site ISO made by `iso embed` from a golden UKI ISO boots.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

const SETUP_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const MICROSOFT_GUID: &str = "77fa9abd-0359-4d32-bd60-28f4e78f784b";
const ISO: &str = "palette-edge-installer.iso";

/// Runs `tool args` in `dir` and returns its stdout; panics on failure.
#[track_caller]
fn tool(tool: &str, args: &[&str], dir: &Path) -> Vec<u8> {
    let o = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    assert!(
        o.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// `keys generate NAME --out dir/NAME` (with `extra` arguments).
#[track_caller]
fn generate_keys(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["keys", "generate", name, "--out", out.to_str().unwrap()];
    args.extend(extra);
    let o = edgeforge(&args);
    assert_ok(&o);
    out
}

/// An EFI signature list file as (owner GUID, certificate DER) entries.
fn signature_lists(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    const X509: [u8; 16] = [
        0xa1, 0x59, 0xc0, 0xa5, 0xe4, 0x94, 0xa7, 0x4a, 0x87, 0xb5, 0xab, 0x15, 0x5c, 0x2b, 0xf0,
        0x72,
    ];
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(bytes[at..at + 16], X509, "an EFI_CERT_X509_GUID list");
        let (list, header, size) = (u32_at(at + 16), u32_at(at + 20), u32_at(at + 24));
        let mut sig = at + 28 + header;
        while sig < at + list {
            out.push((
                guid(&bytes[sig..sig + 16]),
                bytes[sig + 16..sig + size].to_vec(),
            ));
            sig += size;
        }
        at += list;
    }
    out
}

fn guid(b: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        u32::from_le_bytes(b[0..4].try_into().unwrap()),
        u16::from_le_bytes(b[4..6].try_into().unwrap()),
        u16::from_le_bytes(b[6..8].try_into().unwrap()),
        b[8..10]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>(),
        b[10..16]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

fn der_of(cert: &Path, dir: &Path) -> Vec<u8> {
    tool(
        "openssl",
        &["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"],
        dir,
    )
}

/// A self-signed stand-in for one of Microsoft's certificates, PEM or DER.
fn stand_in(dir: &Path, file: &Path, cn: &str, der: bool) {
    let pem = dir.join("stand-in.pem");
    let key = dir.join("stand-in.key");
    tool(
        "openssl",
        &[
            "req",
            "-batch",
            "-new",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}/"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ],
        dir,
    );
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    if der {
        fs::write(file, der_of(&pem, dir)).unwrap();
    } else {
        fs::copy(&pem, file).unwrap();
    }
}

#[test]
fn keys_generate_makes_enrolment_lists_with_microsofts_certificates() {
    let t = tempfile::tempdir().unwrap();
    let ms = t.path().join("ms");
    stand_in(
        t.path(),
        &ms.join("KEK/kek-ca.pem"),
        "Stand-in KEK CA",
        false,
    );
    stand_in(
        t.path(),
        &ms.join("db/uefi-ca.der"),
        "Stand-in UEFI CA",
        true,
    );
    let o = edgeforge(&[
        "--output",
        "json",
        "keys",
        "generate",
        "acme",
        "--out",
        t.path().join("keys").to_str().unwrap(),
        "--expiration-days",
        "30",
        "--microsoft-certs",
        ms.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let keys = t.path().join("keys");
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["schema"], "edgeforge.keys-generate/v1");
    let owner = json["owner_guid"].as_str().unwrap().to_string();
    let shown = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");

    for var in ["PK", "KEK", "db"] {
        let mode = |f: &str| fs::metadata(keys.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&format!("{var}.key")), 0o600, "{var}.key");
        let key = fs::read_to_string(keys.join(format!("{var}.key"))).unwrap();
        assert!(!shown.contains(key.lines().nth(1).unwrap()));
        // The certificate says who and for how long.
        let text = String::from_utf8(tool(
            "openssl",
            &[
                "x509",
                "-in",
                &format!("{var}.crt"),
                "-noout",
                "-subject",
                "-dates",
            ],
            &keys,
        ))
        .unwrap();
        assert!(text.contains(&format!("CN = acme {var}")), "{text}");
        let days = |field: &str| {
            let line = text.lines().find(|l| l.starts_with(field)).unwrap();
            let date = line.split_once('=').unwrap().1;
            let secs = String::from_utf8(tool("date", &["-u", "-d", date, "+%s"], &keys)).unwrap();
            secs.trim().parse::<i64>().unwrap() / 86_400
        };
        assert_eq!(days("notAfter") - days("notBefore"), 30, "{text}");
        // Our certificate first, under our owner GUID; Microsoft's after it
        // in KEK and db, under Microsoft's.
        let lists = signature_lists(&fs::read(keys.join(format!("{var}.esl"))).unwrap());
        let ours = der_of(&keys.join(format!("{var}.crt")), &keys);
        assert_eq!(lists[0], (owner.clone(), ours), "{var}.esl");
        let theirs: Vec<Vec<u8>> = match var {
            "PK" => vec![],
            "KEK" => vec![der_of(&ms.join("KEK/kek-ca.pem"), t.path())],
            _ => vec![fs::read(ms.join("db/uefi-ca.der")).unwrap()],
        };
        let rest: Vec<(String, Vec<u8>)> = theirs
            .into_iter()
            .map(|d| (MICROSOFT_GUID.to_string(), d))
            .collect();
        assert_eq!(lists[1..], rest[..], "{var}.esl");
        // The .auth update: EFI_TIME from SOURCE_DATE_EPOCH (2023-11-14
        // 22:13:20 UTC), then the signature, then the list itself.
        let auth = fs::read(keys.join(format!("{var}.auth"))).unwrap();
        assert_eq!(&auth[..7], &[0xe7, 0x07, 11, 14, 22, 13, 20], "{var}.auth");
        let esl = fs::read(keys.join(format!("{var}.esl"))).unwrap();
        assert!(auth.ends_with(&esl), "{var}.auth carries {var}.esl");
    }
    // Each update is signed by the key above it: PK by PK, KEK by PK, db by KEK.
    for (var, signer) in [("PK", "PK"), ("KEK", "PK"), ("db", "KEK")] {
        let auth = fs::read(keys.join(format!("{var}.auth"))).unwrap();
        let signer_der = der_of(&keys.join(format!("{signer}.crt")), &keys);
        let found = auth.windows(signer_der.len()).any(|w| w == signer_der);
        assert!(found, "{var}.auth carries {signer}'s certificate");
    }

    // Keys are never overwritten; names stay plain.
    let again = edgeforge(&["keys", "generate", "acme", "--out", keys.to_str().unwrap()]);
    assert_fails(&again, 2, &["already exists", "never overwritten"]);
    let bad = edgeforge(&[
        "keys",
        "generate",
        "a/b",
        "--out",
        t.path().join("bad").to_str().unwrap(),
    ]);
    assert_fails(&bad, 2, &["key set name `a/b`"]);
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let none = edgeforge(&[
        "keys",
        "generate",
        "x",
        "--out",
        t.path().join("x").to_str().unwrap(),
        "--microsoft-certs",
        empty.to_str().unwrap(),
    ]);
    assert_fails(&none, 3, &["no certificates in its KEK/ or db/"]);
    assert!(!t.path().join("x").exists());
}

/// The hidden staging folder beside --out holds private keys until the set
/// is complete: an error after the keys exist (a Microsoft "certificate"
/// that is none) and SIGTERM while openssl runs both leave nothing behind.
#[test]
fn keys_generate_leaves_no_private_key_behind_on_errors_or_signals() {
    let t = tempfile::tempdir().unwrap();
    let leftovers = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".edgeforge-keys-"))
            .collect()
    };
    let ms = t.path().join("ms");
    fs::create_dir_all(ms.join("db")).unwrap();
    fs::write(ms.join("db/not-a-cert.der"), b"garbage").unwrap();
    let parent = t.path().join("error");
    fs::create_dir(&parent).unwrap();
    let o = edgeforge(&[
        "keys",
        "generate",
        "x",
        "--out",
        parent.join("x").to_str().unwrap(),
        "--microsoft-certs",
        ms.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["not-a-cert.der is not an X.509 certificate"]);
    assert!(!stderr(&o).contains("PRIVATE KEY"), "{}", stderr(&o));
    assert_eq!(leftovers(&parent), Vec::<String>::new());
    assert!(!parent.join("x").exists());

    // openssl slowed down, so SIGTERM comes while PK.key exists and the
    // next key is being made.
    let bin = t.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let openssl = String::from_utf8(tool("sh", &["-c", "command -v openssl"], t.path())).unwrap();
    fs::write(
        bin.join("openssl"),
        format!(
            "#!/bin/sh\n[ \"$1\" = req ] && sleep 1\nexec {} \"$@\"\n",
            openssl.trim()
        ),
    )
    .unwrap();
    fs::set_permissions(bin.join("openssl"), fs::Permissions::from_mode(0o755)).unwrap();
    let parent = t.path().join("signal");
    fs::create_dir(&parent).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_edgeforge"))
        .args(["keys", "generate", "x", "--out"])
        .arg(parent.join("x"))
        .env("PATH", path)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !leftovers(&parent)
        .iter()
        .any(|n| parent.join(n).join("keys/PK.key").exists())
    {
        assert!(started.elapsed().as_secs() < 60, "PK.key never appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tool("kill", &["-TERM", &child.id().to_string()], t.path());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted by signal 15"), "{err}");
    assert_eq!(leftovers(&parent), Vec::<String>::new());
    assert!(!parent.join("x").exists());
}

/// The busybox demo base's UKI ISOs: a golden one signed with key set A
/// (user-data embedded), the same built again without a cache, under umask
/// 077 and with `-v`, and one
/// signed with key set B; each build's own cache folder.
struct DemoUki {
    dir: FixtureDir,
    keys: PathBuf,
    other_keys: PathBuf,
    golden: PathBuf,
    rebuilt: PathBuf,
    other: PathBuf,
    caches: Vec<PathBuf>,
    manifest: PathBuf,
    log: String,
    /// The rebuild's `-v` log: every command line, key paths included.
    verbose_log: String,
}

fn demo_uki() -> &'static DemoUki {
    static F: OnceLock<DemoUki> = OnceLock::new();
    F.get_or_init(|| {
        let base = demo_base();
        let dir = FixtureDir::new("trusted-boot-demo-uki");
        let keys = generate_keys(dir.path(), "acme", &[]);
        let other_keys = generate_keys(dir.path(), "other", &[]);
        let def = write_definition(dir.path(), "uki", &base, "boot: uki\n");
        let build = |name: &str, keys: &Path, extra: &[&str]| {
            let out = dir.path().join(name);
            let cache = dir.path().join(format!("cache-{name}"));
            let mut args = vec![
                "build",
                def.to_str().unwrap(),
                "--golden",
                "--user-data",
                USER_DATA,
                "--secure-boot-keys",
                keys.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ];
            args.extend(extra);
            let o = if name == "rebuilt" {
                // Another umask: modes in the image must not follow it.
                Command::new("sh")
                    .args(["-c", "umask 077 && exec \"$@\"", "sh"])
                    .arg(env!("CARGO_BIN_EXE_edgeforge"))
                    .args(&args)
                    .current_dir(repo_root())
                    .env("SOURCE_DATE_EPOCH", EPOCH)
                    .env("EDGEFORGE_CACHE_DIR", &cache)
                    .output()
                    .unwrap()
            } else {
                edgeforge_env(&args, &[("EDGEFORGE_CACHE_DIR", cache.to_str().unwrap())])
            };
            assert_ok(&o);
            (out, cache, stderr(&o))
        };
        let (golden, cache, log) = build("golden", &keys, &[]);
        let (rebuilt, _, verbose_log) = build("rebuilt", &keys, &["--no-cache", "-v"]);
        let (other, other_cache, _) = build("other", &other_keys, &[]);
        DemoUki {
            keys,
            other_keys,
            manifest: golden.join("manifest.json"),
            golden: golden.join(ISO),
            rebuilt: rebuilt.join(ISO),
            other: other.join(ISO),
            caches: vec![cache, other_cache],
            log,
            verbose_log,
            dir,
        }
    })
}

/// The ESP of a UKI ISO: its GPT partition 2, which the El Torito EFI
/// entry names too, extracted into `dir` by xorriso.
fn extract_esp(iso: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("boot-images");
    tool(
        "xorriso",
        &[
            "-osirrox",
            "on",
            "-indev",
            iso.to_str().unwrap(),
            "-extract_boot_images",
            out.to_str().unwrap(),
        ],
        dir,
    );
    let (gpt, torito) = (
        out.join("gpt_part2_efi.img"),
        out.join("eltorito_img1_uefi.img"),
    );
    assert_eq!(fs::read(&gpt).unwrap(), fs::read(&torito).unwrap());
    gpt
}

#[test]
fn uki_iso_is_signed_reproducible_uefi_only_and_holds_no_private_key() {
    let f = demo_uki();
    let t = tempfile::tempdir().unwrap();
    assert_eq!(
        sha256_hex(&fs::read(&f.golden).unwrap()),
        sha256_hex(&fs::read(&f.rebuilt).unwrap()),
        "a rebuild without the cache, under another umask and path, gives the same bytes"
    );
    assert!(
        f.log
            .contains("UKI EFI/Linux/palette-edge-installer-install.efi: rdinit=/sbin/init")
            && !f.log.contains("root=live:"),
        "{}",
        f.log
    );
    let shown = stdout(&edgeforge(&["iso", "show", f.golden.to_str().unwrap()]));
    assert!(
        shown.contains("UEFI (El Torito)") && !shown.contains("BIOS"),
        "UEFI only:\n{shown}"
    );
    // No root filesystem outside the signed images.
    let listing = String::from_utf8(tool(
        "xorriso",
        &[
            "-indev",
            f.golden.to_str().unwrap(),
            "-find",
            "/",
            "-type",
            "f",
        ],
        t.path(),
    ))
    .unwrap();
    assert!(
        !listing.contains("rootfs.squashfs") && !listing.contains("/boot/kernel"),
        "{listing}"
    );

    let esp = extract_esp(&f.golden, t.path());
    let mdir = String::from_utf8(tool(
        "mdir",
        &["-i", esp.to_str().unwrap(), "-/", "-b", "::/"],
        t.path(),
    ))
    .unwrap();
    for want in [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/EFI/Linux/palette-edge-installer-install.efi",
        "::/EFI/Linux/palette-edge-installer-debug.efi",
        "::/loader/loader.conf",
        "::/loader/keys/auto/PK.auth",
        "::/loader/keys/auto/KEK.auth",
        "::/loader/keys/auto/db.auth",
        "::/loader/keys/acme/db.auth",
    ] {
        assert!(mdir.lines().any(|l| l == want), "{want} missing:\n{mdir}");
    }
    let conf = tool(
        "mtype",
        &["-i", esp.to_str().unwrap(), "::/loader/loader.conf"],
        t.path(),
    );
    let conf = String::from_utf8(conf).unwrap();
    assert!(
        conf.contains("secure-boot-enroll force")
            && conf.contains("default palette-edge-installer-install.efi"),
        "{conf}"
    );
    for (file, var) in [("auto/PK.auth", "PK"), ("acme/db.auth", "db")] {
        let on_esp = tool(
            "mtype",
            &[
                "-i",
                esp.to_str().unwrap(),
                &format!("::/loader/keys/{file}"),
            ],
            t.path(),
        );
        assert_eq!(
            on_esp,
            fs::read(f.keys.join(format!("{var}.auth"))).unwrap()
        );
    }
    // sbverify accepts every binary with the db certificate, and refuses
    // them with another key set's.
    for bin in [
        "EFI/BOOT/BOOTX64.EFI",
        "EFI/Linux/palette-edge-installer-install.efi",
        "EFI/Linux/palette-edge-installer-debug.efi",
    ] {
        let local = t.path().join(bin.rsplit('/').next().unwrap());
        tool(
            "mcopy",
            &[
                "-n",
                "-i",
                esp.to_str().unwrap(),
                &format!("::/{bin}"),
                local.to_str().unwrap(),
            ],
            t.path(),
        );
        let verify = |keys: &Path| {
            Command::new("sbverify")
                .args([
                    "--cert",
                    keys.join("db.crt").to_str().unwrap(),
                    local.to_str().unwrap(),
                ])
                .output()
                .unwrap()
                .status
                .success()
        };
        assert!(verify(&f.keys), "sbverify refused {bin}");
        assert!(
            !verify(&f.other_keys),
            "sbverify accepted {bin} with another key set"
        );
    }

    // The verbose log names the db key by its path only.
    assert!(
        f.verbose_log.contains("osslsigncode sign")
            && f.verbose_log
                .contains(f.keys.join("db.key").to_str().unwrap()),
        "{}",
        f.verbose_log
    );
    // No private key byte sequence in the ISO, the manifest, the cache or a log.
    let mut files = vec![f.golden.clone(), f.manifest.clone()];
    for c in &f.caches {
        files.extend(
            walk(c)
                .into_iter()
                .filter(|p| p.is_file() && !p.is_symlink()),
        );
    }
    assert!(files.len() > 3, "the cache holds entries");
    for var in ["PK", "KEK", "db"] {
        let key = f.keys.join(format!("{var}.key"));
        let pem = fs::read_to_string(&key).unwrap();
        let der = tool(
            "openssl",
            &["pkey", "-in", key.to_str().unwrap(), "-outform", "DER"],
            t.path(),
        );
        let needles: Vec<Vec<u8>> = vec![
            pem.lines().nth(5).unwrap().as_bytes().to_vec(),
            der[der.len() / 2..der.len() / 2 + 32].to_vec(),
        ];
        for file in &files {
            let bytes = fs::read(file).unwrap();
            for n in &needles {
                assert!(
                    memchr::memmem::find(&bytes, n).is_none(),
                    "{var}.key material in {}",
                    file.display()
                );
            }
        }
        for (what, log) in [("log", &f.log), ("-v log", &f.verbose_log)] {
            for n in &needles {
                assert!(
                    memchr::memmem::find(log.as_bytes(), n).is_none(),
                    "{var}.key material in the {what}"
                );
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The whole chain on the busybox demo base: setup mode enrols key set A
/// from the ISO, resets, boots with Secure Boot enforced; with those keys
/// enrolled, a per-site ISO (`iso embed`) boots and reports its own
/// user-data, a UKI with one byte of its signed command line changed is
/// refused, and an ISO signed with key set B is refused.
#[test]
fn demo_uki_iso_enrols_its_keys_and_the_firmware_refuses_others() {
    let f = demo_uki();
    let dir = f.dir.path();
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    let vars = dir.join("enrolled-vars.fd");
    let report = secure_boot(
        &f.golden,
        &user_data,
        &[
            ("BOOT_TEST_VARS", SETUP_VARS),
            ("BOOT_TEST_REBOOT", "1"),
            ("BOOT_TEST_VARS_OUT", vars.to_str().unwrap()),
            ("BOOT_TEST_EXPECT", "root=initrd .*secureboot=enabled"),
        ],
    );
    assert!(report.contains("secureboot=enabled"), "{report}");
    let vars = vars.to_str().unwrap();

    // A per-site ISO from the golden one, booted with the keys enrolled.
    let site_data = b"#cloud-config\nstylus:\n  site:\n    name: store-9\n".to_vec();
    let site_file = dir.join("site.yaml");
    fs::write(&site_file, &site_data).unwrap();
    let site_iso = dir.join("store-9.iso");
    let o = edgeforge(&[
        "iso",
        "embed",
        f.golden.to_str().unwrap(),
        "--user-data",
        site_file.to_str().unwrap(),
        "-o",
        site_iso.to_str().unwrap(),
    ]);
    assert_ok(&o);
    secure_boot(
        &site_iso,
        &site_data,
        &[
            ("BOOT_TEST_VARS", vars),
            ("BOOT_TEST_EXPECT", "root=initrd .*secureboot=enabled"),
        ],
    );

    // One byte of the install UKI's signed command line changed: the
    // firmware refuses to load it.
    let mut bytes = fs::read(&f.golden).unwrap();
    let needle = b"console=tty1 install-mode\0";
    let mut changed = 0;
    while let Some(at) = memchr::memmem::find(&bytes, needle) {
        bytes[at + needle.len() - 2] = b'f';
        changed += 1;
    }
    assert_eq!(changed, 1, "the ESP is in the image once");
    let tampered = dir.join("tampered.iso");
    fs::write(&tampered, &bytes).unwrap();
    let refused = secure_boot(
        &tampered,
        &user_data,
        &[
            ("BOOT_TEST_VARS", vars),
            ("BOOT_TEST_REFUSE", "Access Denied"),
        ],
    );
    assert!(
        refused.contains("palette-edge-installer-install.efi"),
        "{refused}"
    );

    // Signed with another key set: the firmware refuses systemd-boot itself.
    secure_boot(
        &f.other,
        &user_data,
        &[
            ("BOOT_TEST_VARS", vars),
            ("BOOT_TEST_REFUSE", "Access Denied"),
        ],
    );
}

/// The Debian base as a UKI ISO (`--set boot=uki`): the root filesystem in
/// the signed initrd, systemd as init from it; enrols from setup mode and
/// boots with Secure Boot enforced, reading the user-data from the medium.
/// The fixture's report probes for the COS_LIVE medium once, when
/// multi-user starts; with no initramfs before it, the CD drivers come with
/// udev's coldplug, often later, so the signed command line has systemd load
/// them first (`modules_load=`, through `iso.extra_cmdline`).
#[test]
fn debian_uki_iso_enrols_and_boots_with_secure_boot() {
    debian_base();
    let dir = tempfile::tempdir().unwrap();
    let keys = generate_keys(dir.path(), "debian-edge", &[]);
    let out = dir.path().join("build");
    let o = edgeforge(&[
        "build",
        "images/demo.yaml",
        "--set",
        "boot=uki",
        "--set",
        "iso.extra_cmdline=modules_load=ahci,sr_mod,isofs",
        "--secure-boot-keys",
        keys.to_str().unwrap(),
        "--user-data",
        USER_DATA,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(
        stderr(&o).contains("systemd-boot /") && stderr(&o).contains("root filesystem initrd"),
        "{}",
        stderr(&o)
    );
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    secure_boot(
        &out.join("palette-edge-installer-debian.iso"),
        &user_data,
        &[
            ("BOOT_TEST_MEMORY", "3072"),
            ("BOOT_TEST_VARS", SETUP_VARS),
            ("BOOT_TEST_REBOOT", "1"),
            ("BOOT_TEST_TIMEOUT", "600"),
            (
                "BOOT_TEST_EXPECT",
                "os=debian-12 root=rootfs .*secureboot=enabled user-data-from=medium",
            ),
        ],
    );
}

#[test]
fn uki_mode_needs_a_key_set() {
    let t = tempfile::tempdir().unwrap();
    let def = write_definition(t.path(), "uki", Path::new("/nonexistent"), "boot: uki\n");
    let o = edgeforge(&[
        "iso",
        def.to_str().unwrap(),
        "--golden",
        "--rootfs",
        t.path().to_str().unwrap(),
        "--out",
        t.path().join("out").to_str().unwrap(),
    ]);
    assert_fails(&o, 2, &["boot: uki needs a key set", "keys generate"]);
    let grub = write_definition(
        t.path(),
        "grub",
        Path::new("/nonexistent"),
        "secure_boot_keys: /nowhere\n",
    );
    let o = edgeforge(&[
        "iso",
        grub.to_str().unwrap(),
        "--golden",
        "--rootfs",
        t.path().to_str().unwrap(),
        "--out",
        t.path().join("out").to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["secure_boot_keys", "boot: uki"]);
}

/// A key set folder that is missing, mixes two sets, or exposes its db
/// key is refused before anything is built, saying which file and why; an
/// expired db certificate is warned about before the build starts.
#[test]
fn a_key_set_that_is_not_whole_is_refused_and_an_expired_one_warned() {
    let t = tempfile::tempdir().unwrap();
    let def = write_definition(t.path(), "uki", Path::new("/nonexistent"), "boot: uki\n");
    let iso = |keys: &Path| {
        edgeforge(&[
            "iso",
            def.to_str().unwrap(),
            "--golden",
            "--rootfs",
            t.path().to_str().unwrap(),
            "--secure-boot-keys",
            keys.to_str().unwrap(),
            "--out",
            t.path().join("out").to_str().unwrap(),
        ])
    };
    let missing = iso(&t.path().join("nowhere"));
    assert_fails(&missing, 3, &["keys.json", "keys generate"]);

    let good = generate_keys(t.path(), "acme", &[]);
    let variant = |name: &str, change: &dyn Fn(&Path)| {
        let dir = t.path().join(name);
        fs::create_dir(&dir).unwrap();
        for e in fs::read_dir(&good).unwrap().flatten() {
            if e.file_type().unwrap().is_file() {
                fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
        change(&dir);
        dir
    };
    let other_cert = variant("other-cert", &|d| {
        fs::copy(d.join("KEK.crt"), d.join("db.crt")).unwrap();
    });
    assert_fails(
        &iso(&other_cert),
        3,
        &["db.crt", "is not the db certificate"],
    );
    let other_key = variant("other-key", &|d| {
        fs::copy(d.join("KEK.key"), d.join("db.key")).unwrap();
    });
    let o = iso(&other_key);
    assert_fails(&o, 3, &["db.key is not the private key of"]);
    assert!(!stderr(&o).contains("PRIVATE KEY"), "{}", stderr(&o));
    let open = variant("open", &|d| {
        fs::set_permissions(d.join("db.key"), fs::Permissions::from_mode(0o644)).unwrap();
    });
    assert_fails(
        &iso(&open),
        8,
        &["db.key is readable by others", "chmod 0600"],
    );

    // A db certificate valid for one day of 2020 (openssl ca sets the
    // dates), recorded in keys.json: warned, then the build goes on (and
    // stops at the empty root filesystem).
    let expired = variant("expired", &|d| {
        let ca = t.path().join("ca");
        fs::create_dir_all(ca.join("new")).unwrap();
        fs::write(ca.join("index.txt"), "").unwrap();
        fs::write(ca.join("serial"), "01\n").unwrap();
        fs::write(
            ca.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca=c\n[c]\ndatabase={0}/index.txt\nnew_certs_dir={0}/new\nserial={0}/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
                ca.display()
            ),
        )
        .unwrap();
        let (key, csr, crt) = (d.join("db.key"), ca.join("db.csr"), d.join("db.crt"));
        let p = |p: &Path| p.to_str().unwrap().to_string();
        tool(
            "openssl",
            &[
                "req",
                "-batch",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=acme db/",
                "-keyout",
                &p(&key),
                "-out",
                &p(&csr),
            ],
            d,
        );
        tool(
            "openssl",
            &[
                "ca",
                "-batch",
                "-config",
                &p(&ca.join("ca.cnf")),
                "-selfsign",
                "-keyfile",
                &p(&key),
                "-in",
                &p(&csr),
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
                "-out",
                &p(&crt),
            ],
            d,
        );
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let mut meta: serde_json::Value =
            serde_json::from_slice(&fs::read(d.join("keys.json")).unwrap()).unwrap();
        for c in meta["certificates"].as_array_mut().unwrap() {
            if c["var"] == "db" {
                c["sha256"] = sha256_hex(&der_of(&crt, d)).into();
            }
        }
        fs::write(d.join("keys.json"), meta.to_string()).unwrap();
    });
    let o = iso(&expired);
    let err = stderr(&o);
    assert!(
        err.contains("db.crt has expired (Jan  2 00:00:00 2020 GMT)")
            && err.contains("firmware does not check the dates")
            && err.contains("no kernel"),
        "{err}"
    );
}
