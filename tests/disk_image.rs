//! Appliance disk images (issue #18): the Debian demo base built once by
//! `build` with `disk.formats` into a Kairos-style GPT disk (raw, raw.zst,
//! qcow2, VMDK, OVA), checked with the reference tools (sfdisk, fsck.ext4,
//! fsck.vfat, debugfs, mtools, qemu-img, tar, sha256sum, python3's XML
//! parser) and booted in QEMU through the disk's own GRUB: the raw image
//! under SeaBIOS and OVMF (Secure Boot on, Microsoft's keys), the OVA's
//! VMDK under SeaBIOS, and a per-site
//! qcow2 made by `disk embed` from the golden one under OVMF; each boot
//! reports the user-data it read from COS_OEM.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::*;

const USER_DATA: &str = "images/user-data/demo.yaml";
const DISK: &str = "palette-edge-appliance";
const FORMATS: [&str; 5] = ["raw", "raw.zst", "qcow2", "vmdk", "ova"];
/// The booted system: Debian's live root from COS_RECOVERY's squashfs, the
/// user-data from COS_OEM.
const BOOTED: &str =
    "os=debian-12 root=overlay rootfsbase=squashfs .*label=COS_RECOVERY .*user-data-from=oem";

/// The same, with the firmware's Secure Boot on.
const SECURE_BOOTED: &str = "os=debian-12 root=overlay rootfsbase=squashfs .*label=COS_RECOVERY .*secureboot=enabled user-data-from=oem";

struct Fixture {
    /// Under target/, emptied when the fixture is made: a static is never
    /// dropped, and a temporary folder would keep its 2 GB after each run.
    dir: PathBuf,
    out: PathBuf,
    definition: PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let base = debian_base();
        let dir = repo_root().join("target/disk-image-test");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let definition = write_definition(
            &dir,
            "appliance",
            &base,
            &format!(
                "overlays:\n  rootfs: [{}]\ndisk:\n  formats: [{}]\n  cpus: 2\n  memory_mib: 2048\n",
                repo_root().join("overlays/rootfs").display(),
                FORMATS.join(", "),
            ),
        );
        let text = fs::read_to_string(&definition).unwrap();
        fs::write(
            &definition,
            text.replace("distribution: ubuntu", "distribution: debian")
                .replace("version: \"22.04\"", "version: \"12\"")
                .replace("repository: ubuntu", "repository: debian"),
        )
        .unwrap();
        let out = dir.join("build");
        let o = edgeforge(&[
            "build",
            definition.to_str().unwrap(),
            "--user-data",
            USER_DATA,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_ok(&o);
        Fixture {
            dir,
            out,
            definition,
        }
    })
}

fn disk(f: &Fixture, format: &str) -> PathBuf {
    f.out.join(format!("{DISK}.{format}"))
}

fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {args:?} failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

#[track_caller]
fn assert_boots(image: &Path, format: &str, user_data: &[u8], modes: &[&str]) {
    assert_boots_with(image, format, user_data, modes, &[]);
}

#[track_caller]
fn assert_boots_with(
    image: &Path,
    format: &str,
    user_data: &[u8],
    modes: &[&str],
    env: &[(&str, &str)],
) {
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/boot-test.sh"))
        .arg(image)
        .arg(sha256_hex(user_data))
        .args(modes)
        .env("BOOT_TEST_MEMORY", "2048")
        .env("BOOT_TEST_TIMEOUT", "500")
        .env("BOOT_TEST_FORMAT", format)
        .env("BOOT_TEST_EXPECT", BOOTED)
        .envs(env.iter().copied())
        .output()
        .expect("running scripts/boot-test.sh");
    let report = format!("{}{}", stdout(&o), stderr(&o));
    println!("{report}");
    assert!(o.status.success(), "{}: {report}", image.display());
}

/// Copies `len` bytes at `offset` of `image` into a file of its own.
fn extract(image: &Path, offset: u64, len: u64, to: &Path) {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = fs::File::open(image).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    fs::write(to, buf).unwrap();
}

#[test]
fn the_raw_disk_has_the_kairos_layout_and_clean_file_systems() {
    let f = fixture();
    let raw = disk(f, "raw");
    let table: serde_json::Value =
        serde_json::from_str(&run("sfdisk", &["--json", raw.to_str().unwrap()])).unwrap();
    let table = &table["partitiontable"];
    assert_eq!(table["label"], "gpt");
    let parts = table["partitions"].as_array().unwrap();
    let names: Vec<&str> = parts.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["bios", "efi", "oem", "recovery"]);
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "21686148-6449-6E6F-744E-656564454649",
            "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
            "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        ]
    );
    // sgdisk's verification: both tables, their CRCs, the protective MBR.
    let verified = run("sgdisk", &["-v", raw.to_str().unwrap()]);
    assert!(verified.contains("No problems found"), "{verified}");
    let mbr = fs::read(&raw).unwrap();
    assert_eq!(&mbr[510..512], &[0x55, 0xaa]);
    assert_eq!(mbr[0x1c2], 0xee, "a protective MBR");
    assert_eq!(
        u64::from_le_bytes(mbr[0x5c..0x64].try_into().unwrap()),
        parts[0]["start"].as_u64().unwrap(),
        "GRUB's boot.img loads core.img from the BIOS boot partition"
    );

    let t = tempfile::tempdir().unwrap();
    let part = |i: usize, name: &str| {
        let p = &parts[i];
        let to = t.path().join(name);
        extract(
            &raw,
            p["start"].as_u64().unwrap() * 512,
            p["size"].as_u64().unwrap() * 512,
            &to,
        );
        to
    };
    let esp = part(1, "esp.img");
    let oem = part(2, "oem.img");
    let recovery = part(3, "recovery.img");
    run("fsck.vfat", &["-n", esp.to_str().unwrap()]);
    for img in [&oem, &recovery] {
        run("fsck.ext4", &["-fn", img.to_str().unwrap()]);
    }
    for (img, label) in [
        (&esp, "COS_GRUB"),
        (&oem, "COS_OEM"),
        (&recovery, "COS_RECOVERY"),
    ] {
        let got = run(
            "blkid",
            &["-p", "-o", "value", "-s", "LABEL", img.to_str().unwrap()],
        );
        assert_eq!(got.trim(), label);
    }
    let efi = run("mdir", &["-i", esp.to_str().unwrap(), "-b", "::/EFI/BOOT"]);
    for want in ["bootx64.efi", "grubx64.efi", "grub.cfg"] {
        assert!(
            efi.to_lowercase().contains(want),
            "the ESP lacks {want}: {efi}"
        );
    }
    let debugfs =
        |img: &Path, request: &str| run("debugfs", &["-R", request, img.to_str().unwrap()]);
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    let area = debugfs(&oem, "cat /90_custom.yaml");
    assert_eq!(area.len(), 64 * 1024, "a reserved area of fixed size");
    assert!(area.as_bytes().starts_with(&user_data));
    assert!(area.contains(&format!(
        "# edgeforge:reserved-area user-data-bytes={} ",
        user_data.len()
    )));
    assert!(debugfs(&oem, "stat /90_custom.yaml").contains("Mode:  0600"));
    let env = debugfs(&oem, "cat /grubenv");
    assert!(
        env.starts_with("# GRUB Environment Block\nnext_entry=recovery\n") && env.len() == 1024
    );
    let listing = debugfs(&recovery, "ls -p /cOS");
    assert!(listing.contains("/recovery.squashfs/"), "{listing}");
    let menu = debugfs(&recovery, "cat /grub2/grub.cfg");
    assert!(
        menu.contains(
            "root=live:LABEL=COS_RECOVERY rd.live.dir=/cOS rd.live.squashimg=recovery.squashfs"
        ),
        "{menu}"
    );
    assert!(menu.contains("load_env --file ($oem)/grubenv"), "{menu}");
}

#[test]
fn every_format_is_listed_readable_and_reproducible() {
    let f = fixture();
    let raw_size = fs::metadata(disk(f, "raw")).unwrap().len();
    for format in ["qcow2", "vmdk"] {
        let info: serde_json::Value = serde_json::from_str(&run(
            "qemu-img",
            &[
                "info",
                "--output",
                "json",
                disk(f, format).to_str().unwrap(),
            ],
        ))
        .unwrap();
        assert_eq!(info["format"], format);
        assert_eq!(info["virtual-size"], raw_size);
    }
    let info: serde_json::Value = serde_json::from_str(&run(
        "qemu-img",
        &[
            "info",
            "--output",
            "json",
            disk(f, "vmdk").to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(
        info["format-specific"]["data"]["create-type"],
        "streamOptimized"
    );
    // raw.zst is the raw image.
    let mut unpacked = Vec::new();
    use std::io::Read;
    zstd::Decoder::new(fs::File::open(disk(f, "raw.zst")).unwrap())
        .unwrap()
        .read_to_end(&mut unpacked)
        .unwrap();
    assert!(
        unpacked == fs::read(disk(f, "raw")).unwrap(),
        "raw.zst holds the raw image"
    );
    drop(unpacked);

    // Listed in SHA256SUMS and manifest.json, with sidecars that verify.
    let sums = fs::read_to_string(f.out.join("SHA256SUMS")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(f.out.join("manifest.json")).unwrap()).unwrap();
    for format in FORMATS {
        let name = format!("{DISK}.{format}");
        assert!(
            sums.lines().any(|l| l.ends_with(&format!("  {name}"))),
            "{name} not in SHA256SUMS"
        );
        let output = manifest["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not in manifest.json"));
        assert_eq!(output["size"], fs::metadata(disk(f, format)).unwrap().len());
        let mode = fs::metadata(disk(f, format)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o777,
            0o600,
            "{name} holds user-data"
        );
    }
    assert_ok(&edgeforge(&["verify", f.out.to_str().unwrap()]));

    // A second build (disk command, another folder, umask 077) gives the same bytes.
    let again = f.dir.join("again");
    let formats = FORMATS.join(",");
    let o = Command::new("bash")
        .arg("-c")
        .arg("umask 077; exec \"$@\"")
        .arg("bash")
        .arg(env!("CARGO_BIN_EXE_edgeforge"))
        .args([
            "--output",
            "json",
            "disk",
            f.definition.to_str().unwrap(),
            "--provider-image",
            f.out
                .join("debian-k3s-1.30.5-v4.5.0-test.oci.tar")
                .to_str()
                .unwrap(),
            "--user-data",
            USER_DATA,
            "--format",
            &formats,
            "--out",
            again.to_str().unwrap(),
        ])
        .current_dir(repo_root())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("EDGEFORGE_CACHE_DIR", test_cache())
        .output()
        .unwrap();
    assert_ok(&o);
    for text in [
        stdout(&o),
        stderr(&o),
        fs::read_to_string(f.out.join("manifest.json")).unwrap(),
    ] {
        assert!(
            !text.contains("DEMO-PLACEHOLDER-TOKEN"),
            "the token leaked: {text}"
        );
    }
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["schema"], "edgeforge.disk/v1");
    assert_eq!(doc["outputs"].as_array().unwrap().len(), FORMATS.len());
    for format in FORMATS {
        let name = format!("{DISK}.{format}");
        assert!(
            fs::read(again.join(&name)).unwrap() == fs::read(f.out.join(&name)).unwrap(),
            "{name} differs between two builds"
        );
    }
    fs::remove_dir_all(&again).unwrap();
}

#[test]
fn the_ova_holds_an_ovf_a_vmdk_and_a_manifest_that_verifies() {
    let f = fixture();
    let listing = run("tar", &["-tvf", disk(f, "ova").to_str().unwrap()]);
    let names: Vec<&str> = listing
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("{DISK}.ovf"),
            format!("{DISK}.vmdk"),
            format!("{DISK}.mf")
        ]
    );
    let t = tempfile::tempdir().unwrap();
    run(
        "tar",
        &[
            "-xf",
            disk(f, "ova").to_str().unwrap(),
            "-C",
            t.path().to_str().unwrap(),
        ],
    );
    let o = Command::new("sha256sum")
        .args(["-c", &format!("{DISK}.mf")])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).matches(": OK").count(), 2, "{}", stdout(&o));
    let vmdk = t.path().join(format!("{DISK}.vmdk"));
    assert!(
        fs::read(&vmdk).unwrap() == fs::read(disk(f, "vmdk")).unwrap(),
        "the OVA carries the VMDK"
    );
    let raw_size = fs::metadata(disk(f, "raw")).unwrap().len();
    let script = r#"
import sys, xml.etree.ElementTree as ET
OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{%s}Envelope" % OVF, root.tag
f = root.find("{%s}References/{%s}File" % (OVF, OVF))
disk = root.find("{%s}DiskSection/{%s}Disk" % (OVF, OVF))
vs = root.find("{%s}VirtualSystem" % OVF)
product = vs.find("{%s}ProductSection" % OVF)
items = {}
for item in vs.iter("{%s}Item" % OVF):
    items[item.find("{%s}ResourceType" % RASD).text] = item
cfg = [c for c in vs.iter("{http://www.vmware.com/schema/ovf}Config")]
print(f.get("{%s}href" % OVF), f.get("{%s}size" % OVF), disk.get("{%s}capacity" % OVF),
      product.find("{%s}Product" % OVF).text, product.find("{%s}Version" % OVF).text,
      items["3"].find("{%s}VirtualQuantity" % RASD).text, items["4"].find("{%s}VirtualQuantity" % RASD).text,
      sorted(items), cfg[0].get("{http://www.vmware.com/schema/ovf}value"))
"#;
    let got = run(
        "python3",
        &[
            "-c",
            script,
            t.path().join(format!("{DISK}.ovf")).to_str().unwrap(),
        ],
    );
    let want = format!(
        "{DISK}.vmdk {} {raw_size} Palette Edge debian 12 k3s 1.30.5 k3s-1.30.5-v4.5.0-test 2 2048 ['10', '17', '3', '4', '6'] efi",
        fs::metadata(&vmdk).unwrap().len()
    );
    assert_eq!(got.trim(), want);
    // The OVA's VMDK boots (SeaBIOS).
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    assert_boots(&vmdk, "vmdk", &user_data, &["disk"]);
}

/// SeaBIOS, and OVMF with Secure Boot on and Microsoft's keys enrolled:
/// shim and Debian's signed GRUB on COS_GRUB keep the chain intact.
#[test]
fn the_raw_disk_boots_under_seabios_and_under_ovmf_with_secure_boot() {
    let f = fixture();
    let user_data = fs::read(repo_root().join(USER_DATA)).unwrap();
    assert_boots(&disk(f, "raw"), "raw", &user_data, &["disk"]);
    assert_boots_with(
        &disk(f, "raw"),
        "raw",
        &user_data,
        &["usb"],
        &[
            ("BOOT_TEST_SECURE", "1"),
            ("BOOT_TEST_VARS", "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"),
            ("BOOT_TEST_EXPECT", SECURE_BOOTED),
        ],
    );
}

/// `disk embed`: per-site disks from a golden one, in place for raw, through
/// raw for qcow2, raw.zst and the OVA; all agree, only the OEM area changed,
/// and the per-site qcow2 boots (OVMF) and reports its own user-data.
#[test]
fn a_per_site_disk_from_a_golden_one_boots_with_its_user_data() {
    let f = fixture();
    let site = f.dir.join("site.yaml");
    let user_data = b"#cloud-config\nstylus:\n  site:\n    name: disk-site-7\n    paletteEndpoint: api.spectrocloud.com\n";
    fs::write(&site, user_data).unwrap();
    let sites = f.dir.join("sites");
    fs::create_dir_all(&sites).unwrap();
    let mut written = Vec::new();
    for format in ["raw", "qcow2", "raw.zst", "ova", "vmdk"] {
        let out = sites.join(format!("site-7.{format}"));
        let o = edgeforge(&[
            "--output",
            "json",
            "disk",
            "embed",
            disk(f, format).to_str().unwrap(),
            "--user-data",
            site.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_ok(&o);
        let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(doc["schema"], "edgeforge.disk-embed/v1");
        assert_eq!(doc["user_data_sha256"], sha256_hex(user_data));
        println!("disk embed {format}: {}s", doc["seconds"]);
        let sidecar = fs::read_to_string(format!("{}.sha256", out.display())).unwrap();
        assert_eq!(
            sidecar.split_whitespace().next().unwrap(),
            doc["sha256"].as_str().unwrap()
        );
        written.push(out);
    }
    let golden = fs::read(disk(f, "raw")).unwrap();
    let site_raw = fs::read(&written[0]).unwrap();
    assert_eq!(golden.len(), site_raw.len());
    let changed: Vec<usize> = (0..golden.len())
        .filter(|&i| golden[i] != site_raw[i])
        .collect();
    assert!(!changed.is_empty());
    assert!(
        changed.last().unwrap() - changed[0] < 64 * 1024,
        "only the reserved area changes"
    );
    for i in [1, 4] {
        let back = f.dir.join("site-back.raw");
        run(
            "qemu-img",
            &[
                "convert",
                "-O",
                "raw",
                written[i].to_str().unwrap(),
                back.to_str().unwrap(),
            ],
        );
        assert!(
            fs::read(&back).unwrap() == site_raw,
            "{} and raw per-site disks agree",
            written[i].display()
        );
        fs::remove_file(&back).unwrap();
    }
    let mut from_zst = Vec::new();
    use std::io::Read;
    zstd::Decoder::new(fs::File::open(&written[2]).unwrap())
        .unwrap()
        .read_to_end(&mut from_zst)
        .unwrap();
    assert!(from_zst == site_raw, "raw.zst and raw per-site disks agree");
    drop(from_zst);
    // The per-site OVA: OVF first, a manifest that verifies, its VMDK the site's disk.
    let t = tempfile::tempdir().unwrap();
    run(
        "tar",
        &[
            "-xf",
            written[3].to_str().unwrap(),
            "-C",
            t.path().to_str().unwrap(),
        ],
    );
    let listing = run("tar", &["-tf", written[3].to_str().unwrap()]);
    assert!(listing.starts_with(&format!("{DISK}.ovf\n")), "{listing}");
    let o = Command::new("sha256sum")
        .args(["-c", &format!("{DISK}.mf")])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let vmdk = t.path().join(format!("{DISK}.vmdk"));
    let ovf = fs::read_to_string(t.path().join(format!("{DISK}.ovf"))).unwrap();
    assert!(ovf.contains(&format!(
        "ovf:size=\"{}\"",
        fs::metadata(&vmdk).unwrap().len()
    )));
    let from_ova = t.path().join("site.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-O",
            "raw",
            vmdk.to_str().unwrap(),
            from_ova.to_str().unwrap(),
        ],
    );
    assert!(
        fs::read(&from_ova).unwrap() == site_raw,
        "the per-site OVA's VMDK is the site's disk"
    );
    drop(t);
    // Not an appliance disk: refused with the reason.
    let o = edgeforge(&[
        "disk",
        "embed",
        repo_root().join(USER_DATA).to_str().unwrap(),
        "--user-data",
        site.to_str().unwrap(),
        "-o",
        sites.join("bad.raw").to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["is not an edgeforge appliance disk"]);
    // A raw golden disk keeps its format: a per-site one named .qcow2 is refused.
    let o = edgeforge(&[
        "disk",
        "embed",
        disk(f, "raw").to_str().unwrap(),
        "--user-data",
        site.to_str().unwrap(),
        "-o",
        sites.join("raw-bytes.qcow2").to_str().unwrap(),
    ]);
    assert_fails(&o, 2, &["name it *.raw"]);
    assert!(!sites.join("raw-bytes.qcow2").exists());

    // A golden disk (--golden, no user-data): readable by all, its area the
    // empty document, and the site's disk from it is the same bytes as the
    // one from the disk built with user-data.
    let golden_dir = f.dir.join("golden");
    let o = edgeforge(&[
        "disk",
        f.definition.to_str().unwrap(),
        "--provider-image",
        f.out
            .join("debian-k3s-1.30.5-v4.5.0-test.oci.tar")
            .to_str()
            .unwrap(),
        "--golden",
        "--format",
        "raw",
        "--out",
        golden_dir.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let golden_raw = golden_dir.join(format!("{DISK}.raw"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&golden_raw).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let bytes = fs::read(&golden_raw).unwrap();
    let empty = b"#cloud-config\n# edgeforge:reserved-area user-data-bytes=14 size=65536\n";
    assert!(
        memchr::memmem::find(&bytes, empty).is_some(),
        "an empty OEM area"
    );
    assert!(memchr::memmem::find(&bytes, b"DEMO-PLACEHOLDER-TOKEN").is_none());
    drop(bytes);
    let from_golden = sites.join("from-golden.raw");
    assert_ok(&edgeforge(&[
        "disk",
        "embed",
        golden_raw.to_str().unwrap(),
        "--user-data",
        site.to_str().unwrap(),
        "-o",
        from_golden.to_str().unwrap(),
    ]));
    assert!(
        fs::read(&from_golden).unwrap() == site_raw,
        "golden and built disks give the same per-site disk"
    );
    fs::remove_dir_all(&golden_dir).unwrap();
    assert_boots(&written[1], "qcow2", user_data, &["usb"]);
    fs::remove_dir_all(&sites).unwrap();
}

/// Refused in seconds, before a root file system is made: a `boot: uki`
/// definition (the disk boots GRUB), and user-data larger than COS_OEM's
/// fixed area, for `disk`, for `build` (whose ISO area is large enough)
/// and for `disk embed` (before the golden disk is read); a disk name too
/// long for an OVA.
#[test]
fn disks_refuse_uki_definitions_and_user_data_larger_than_the_oem_area() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    let out = t.path().join("out");
    let out = out.to_str().unwrap();
    let big = t.path().join("big.yaml");
    let text = format!(
        "#cloud-config\n{}",
        format!("# {}\n", "x".repeat(68)).repeat(1000)
    );
    fs::write(&big, &text).unwrap();
    let big = big.to_str().unwrap();

    let uki = write_definition(t.path(), "uki", &base, "boot: uki\n");
    let o = edgeforge(&[
        "disk",
        uki.to_str().unwrap(),
        "--user-data",
        USER_DATA,
        "--out",
        out,
    ]);
    assert_fails(
        &o,
        3,
        &["boot", "appliance disks boot GRUB", "--set boot=grub"],
    );

    let def = write_definition(
        t.path(),
        "appliance",
        &base,
        "iso:\n  reserved_area: 1MiB\ndisk:\n  formats: [raw]\n",
    );
    let def = def.to_str().unwrap();
    let size = format!("{} bytes", text.len());
    let fixed = [size.as_str(), "fixed at 64 KiB", "iso.reserved_area"];
    let o = edgeforge(&["disk", def, "--user-data", big, "--out", out]);
    assert_fails(&o, 3, &fixed);
    let o = edgeforge(&["build", def, "--user-data", big, "--out", out]);
    assert_fails(&o, 3, &fixed);
    let o = edgeforge(&[
        "disk",
        "embed",
        repo_root().join(USER_DATA).to_str().unwrap(),
        "--user-data",
        big,
        "-o",
        t.path().join("site.raw").to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &fixed);
    assert!(!t.path().join("site.raw").exists());

    // An OVA's members must fit ustar's 100-byte names (the OVF first).
    let long = write_definition(
        t.path(),
        "long",
        &base,
        &format!("disk:\n  name: {}\n  formats: [ova]\n", "n".repeat(96)),
    );
    let o = edgeforge(&[
        "disk",
        long.to_str().unwrap(),
        "--user-data",
        USER_DATA,
        "--out",
        out,
    ]);
    assert_fails(&o, 3, &["disk.name", "100 bytes", "shorten disk.name"]);
}
