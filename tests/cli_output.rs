//! What the command line prints: every subcommand's `--output json` result
//! (one object with its schema, from the list the binary's unit test checks
//! against clap's command tree), JSON errors on stderr, `-q` keeping
//! warnings, secrets on the command line refused with exit 8, truncated
//! bundles named as such, `cache prune` counting hard-linked bytes once.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

// `JSON_SCHEMAS` and `TEXT_ONLY`: the same list the binary's unit test
// checks against clap's command tree.
include!("../builder/src/commands/schemas.rs");

const TOKEN: &str = "cli-TOKEN-5d1c9e7a42";

/// Runs edgeforge with a cache of its own (the prune check needs one no
/// other test uses) and the token in `T`.
fn run(cache: &Path, args: &[&str]) -> Output {
    edgeforge_env(
        args,
        &[
            ("EDGEFORGE_CACHE_DIR", cache.to_str().unwrap()),
            ("T", TOKEN),
        ],
    )
}

/// The one JSON object on stdout; stdout holds nothing else.
#[track_caller]
fn one_object(o: &Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&stdout(o)).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    });
    assert!(v.is_object(), "{v}");
    v
}

/// The JSON error object: the last line of stderr; stdout is empty.
#[track_caller]
fn json_error(o: &Output, code: i32) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(code), "stderr:\n{}", stderr(o));
    assert_eq!(stdout(o), "", "stdout stays empty on failure");
    let err = stderr(o);
    let last = err.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last stderr line is no JSON object ({e}):\n{err}"));
    assert_eq!(v["schema"], "edgeforge.error/v1", "{v}");
    assert_eq!(v["exit_code"], code, "{v}");
    assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
    v
}

/// Runs `command` with `--output json` and checks its object carries the
/// listed schema; records that the command ran.
#[track_caller]
fn json_result(
    cache: &Path,
    ran: &mut BTreeSet<&'static str>,
    command: &'static str,
    args: &[&str],
) -> serde_json::Value {
    let o = run(cache, &json_args(command, args));
    check_json(&o, ran, command)
}

/// A PEM private key anywhere in a result.
fn has_private_key(v: &serde_json::Value) -> bool {
    v.to_string().contains("PRIVATE KEY")
}

/// `--output json COMMAND ARGS...`
fn json_args<'a>(command: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec!["--output", "json"];
    full.extend(command.split(' '));
    full.extend_from_slice(args);
    full
}

/// Checks a run of `command` printed one object with the listed schema and
/// no token; records that the command ran.
#[track_caller]
fn check_json(
    o: &Output,
    ran: &mut BTreeSet<&'static str>,
    command: &'static str,
) -> serde_json::Value {
    let schema = JSON_SCHEMAS
        .iter()
        .find(|(c, _)| *c == command)
        .unwrap_or_else(|| panic!("`{command}` is not in commands/schemas.rs"))
        .1;
    let o = o.clone();
    assert_ok(&o);
    let v = one_object(&o);
    assert_eq!(v["schema"], schema, "{command}: {v}");
    assert!(
        !stdout(&o).contains(TOKEN) && !stderr(&o).contains(TOKEN),
        "{command} shows the token"
    );
    let (documented, optional) = documented_fields(schema);
    let printed: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
    let undocumented: Vec<_> = printed.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "{command} prints {undocumented:?}, which docs/json-output.md does not describe: {v}"
    );
    let missing: Vec<_> = documented
        .difference(&printed)
        .filter(|f| !optional.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/json-output.md describes {missing:?} for {command}, which it does not print: {v}"
    );
    ran.insert(command);
    v
}

/// The top-level fields docs/json-output.md describes for `schema` (its
/// section's table rows, without nested `a[].b` or `.b` ones, plus
/// `schema`), and those of them it calls optional (present only with a
/// flag).
fn documented_fields(schema: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let doc = fs::read_to_string(repo_root().join("docs/json-output.md")).unwrap();
    let heading = format!("`: `{schema}`");
    let section = doc
        .split("\n### ")
        .find(|s| s.lines().next().is_some_and(|l| l.ends_with(&heading)))
        .unwrap_or_else(|| panic!("docs/json-output.md has no section for {schema}"));
    let mut all = BTreeSet::from(["schema".to_string()]);
    let mut optional = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').collect();
        let only_sometimes = row.contains("only with") || row.contains("present only");
        for name in cells[1].split(',').map(|n| n.trim().trim_matches('`')) {
            if !name.is_empty() && !name.contains(['.', '[']) {
                all.insert(name.to_string());
                if only_sometimes {
                    optional.insert(name.to_string());
                }
            }
        }
    }
    (all, optional)
}

/// A fresh ed25519 signing key without passphrase, exported to a file.
fn signing_key(dir: &Path) -> PathBuf {
    let home = dir.join("gnupg");
    fs::create_dir_all(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        let o = Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args(["--batch", "--no-tty"])
            .args(args)
            .output()
            .expect("running gpg (Debian package gnupg)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    };
    let uid = "cli <cli@example.com>";
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        uid,
        "ed25519",
        "sign",
        "never",
    ]);
    let key = dir.join("key.sec.asc");
    fs::write(&key, gpg(&["--armor", "--export-secret-keys", uid])).unwrap();
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&home)
        .args(["--kill", "all"])
        .output();
    key
}

/// Bytes `cache prune --all` reports freeing from a copy of `cache`.
fn pruned_bytes(cache: &Path, copy: &Path) -> u64 {
    let o = Command::new("cp")
        .arg("-a")
        .arg(cache)
        .arg(copy)
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = run(copy, &["--output", "json", "cache", "prune", "--all"]);
    assert_ok(&o);
    let v = one_object(&o);
    assert_eq!(v["schema"], "edgeforge.cache-prune/v1");
    v["bytes"].as_u64().unwrap()
}

/// Every subcommand, on the busybox demo and the demo base, prints exactly
/// one JSON object with its schema; `completions` and `man` refuse
/// `--output json` (exit 2).
#[test]
fn every_subcommand_prints_one_json_object_with_its_schema() {
    let base = demo_base();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let cache = dir.join("cache");
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let mut ran = BTreeSet::new();
    let ud = p("user-data.yaml");
    fs::write(
        &ud,
        format!("#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n    edgeHostToken: {TOKEN}\n    name: cli-test\n"),
    )
    .unwrap();
    let site = p("site.yaml");
    fs::write(
        &site,
        "name: cli-site\npalette_endpoint: api.spectrocloud.com\n",
    )
    .unwrap();
    let def = "images/demo-busybox.yaml";

    let v = json_result(&cache, &mut ran, "plan", &[def]);
    assert_eq!(v["variants"][0]["variant"], "ubuntu-k3s-1.30.5-v4.5.0-demo");
    let v = json_result(&cache, &mut ran, "doctor", &[]);
    assert!(v["tools"].as_array().unwrap().len() > 5, "{v}");
    let v = json_result(&cache, &mut ran, "render", &[def, "--out", &p("render")]);
    assert!(Path::new(v["variants"][0]["dir"].as_str().unwrap())
        .join("context.json")
        .is_file());
    let v = json_result(
        &cache,
        &mut ran,
        "layer",
        &["overlays/rootfs", "--out", &p("layer.tar.gz")],
    );
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"), "{v}");
    let image = format!("oci:{}", base.display());
    let v = json_result(
        &cache,
        &mut ran,
        "unpack",
        &[&image, "--out", &p("unpacked")],
    );
    assert!(v["entries"].as_u64().unwrap() > 0, "{v}");
    let v = json_result(&cache, &mut ran, "user-data validate", &[&ud]);
    assert_eq!(v["valid"], true);
    let v = json_result(
        &cache,
        &mut ran,
        "user-data render",
        &[def, "--site", &site, "--token-env", "T"],
    );
    assert!(
        v["content"]
            .as_str()
            .unwrap()
            .contains("edgeHostToken: ****"),
        "{v}"
    );

    let out = p("out");
    let v = json_result(&cache, &mut ran, "provider-image", &[def, "--out", &out]);
    assert_eq!(
        v["images"][0]["reference"],
        "ttl.sh/ubuntu:k3s-1.30.5-v4.5.0-demo"
    );
    let provider_archive = v["images"][0]["file"].as_str().unwrap().to_string();
    let v = json_result(
        &cache,
        &mut ran,
        "iso",
        &[def, "--user-data", &ud, "--out", &out],
    );
    let iso = v["isos"][0]["file"].as_str().unwrap().to_string();
    assert_eq!(v["isos"][0]["sha256"].as_str().unwrap().len(), 64);

    let golden_dir = p("golden");
    let v = json_result(
        &cache,
        &mut ran,
        "build",
        &[def, "--golden", "--out", &golden_dir],
    );
    assert_eq!(v["manifest"]["schema"], "edgeforge.build-manifest/v1");
    let golden = Path::new(&golden_dir).join("palette-edge-installer.iso");
    let v = json_result(&cache, &mut ran, "iso show", &[&iso]);
    assert_eq!(v["volume"], "COS_LIVE");
    let v = json_result(
        &cache,
        &mut ran,
        "iso embed",
        &[
            golden.to_str().unwrap(),
            "--user-data",
            &ud,
            "-o",
            &p("site.iso"),
        ],
    );
    assert_eq!(v["isos"][0]["file"], p("site.iso"));
    // A token on the command line of a --sites run: refused too, nothing written.
    let sites = p("sites.yaml");
    fs::write(
        &sites,
        "sites:\n  - name: s1\n    palette_endpoint: api.spectrocloud.com\n",
    )
    .unwrap();
    let o = run(
        &cache,
        &[
            "iso",
            "embed",
            golden.to_str().unwrap(),
            "--sites",
            &sites,
            "--out-dir",
            &p("sites-out"),
            "--token",
            TOKEN,
        ],
    );
    assert_fails(&o, 8, &["--token is refused"]);
    assert!(entries(&dir.join("sites-out")).is_empty());
    let v = json_result(
        &cache,
        &mut ran,
        "site-media",
        &["--user-data", &ud, "-o", &p("media/m.iso")],
    );
    assert_eq!(v["media"][0]["format"], "iso");
    let bundle = p("b.tar.zst");
    let v = json_result(&cache, &mut ran, "bundle", &[&image, "-o", &bundle]);
    assert_eq!(v["file"], bundle);
    let v = json_result(&cache, &mut ran, "bundle verify", &[&bundle]);
    assert_eq!(v["ok"], true);
    let key = signing_key(dir);
    let v = json_result(
        &cache,
        &mut ran,
        "sign",
        &[&golden_dir, "--key", key.to_str().unwrap()],
    );
    assert_eq!(v["signatures"].as_array().unwrap().len(), 3, "{v}");
    let v = json_result(&cache, &mut ran, "verify", &[&golden_dir]);
    assert_eq!(v["ok"], true);

    let v = json_result(
        &cache,
        &mut ran,
        "disk",
        &[
            def,
            "--user-data",
            &ud,
            "--provider-image",
            &provider_archive,
            "--format",
            "raw",
            "--out",
            &p("disk"),
        ],
    );
    let disk = v["outputs"][0]["path"].as_str().unwrap().to_string();
    assert_eq!(v["outputs"][0]["format"], "raw", "{v}");
    let v = json_result(
        &cache,
        &mut ran,
        "disk embed",
        &[&disk, "--user-data", &ud, "-o", &p("site-disk/site.raw")],
    );
    assert_eq!(v["user_data_sha256"].as_str().unwrap().len(), 64, "{v}");

    let keys = p("keys/edge");
    let v = json_result(&cache, &mut ran, "keys generate", &["edge", "--out", &keys]);
    assert_eq!(v["certificates"].as_array().unwrap().len(), 3, "{v}");
    assert!(!has_private_key(&v), "{v}");

    // push and bundle load, against a real registry on 127.0.0.1.
    let reg = registry::Registry::start();
    let target = format!("{}/cli/provider:json", reg.host);
    let o = reg.edgeforge(&cache, &json_args("push", &[&provider_archive, &target]));
    let v = check_json(&o, &mut ran, "push");
    assert_eq!(
        v["reference"].as_str().unwrap(),
        format!("{target}@{}", v["digest"].as_str().unwrap()),
        "{v}"
    );
    // A bundle of the provider image, which records its registry reference.
    let site_bundle = p("site.tar.zst");
    assert_ok(&run(
        &cache,
        &["bundle", &provider_archive, "-o", &site_bundle],
    ));
    let to = format!("{}/site", reg.host);
    let o = reg.edgeforge(
        &cache,
        &json_args("bundle load", &[&site_bundle, "--to", &to]),
    );
    let v = check_json(&o, &mut ran, "bundle load");
    assert_eq!(v["images"].as_array().unwrap().len(), 1, "{v}");
    drop(reg);

    // cache prune, and the bytes it reports: each file once, however many
    // hard links it has. Two more links to the largest file of a cache
    // entry (`<kind>/<key>/...`, removed with the entry) change nothing.
    let unlinked = pruned_bytes(&cache, &dir.join("cache-a"));
    let largest = walk_files(&cache)
        .into_iter()
        .filter(|f| f.strip_prefix(&cache).unwrap().components().count() >= 3)
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    let size = fs::metadata(&largest).unwrap().len();
    assert!(size > 0);
    for n in 1..=2 {
        fs::hard_link(&largest, largest.with_file_name(format!("extra-link-{n}"))).unwrap();
    }
    let copy = dir.join("cache-b");
    assert_eq!(pruned_bytes(&cache, &copy), unlinked);
    let linked = copy.join(
        largest
            .with_file_name("extra-link-1")
            .strip_prefix(&cache)
            .unwrap(),
    );
    assert!(!linked.exists(), "the links went with their entry");
    json_result(&cache, &mut ran, "cache prune", &["--all"]);

    let listed: BTreeSet<&str> = JSON_SCHEMAS.iter().map(|(c, _)| *c).collect();
    let missing: Vec<_> = listed.difference(&ran).collect();
    assert!(
        missing.is_empty(),
        "not run with --output json: {missing:?}"
    );

    for command in TEXT_ONLY {
        let mut args = vec!["--output", "json", command];
        if *command == "completions" {
            args.push("bash");
        }
        let e = json_error(&run(&cache, &args), 2);
        assert_eq!(e["category"], "usage");
    }
}

/// Regular files under `dir`.
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files.extend(walk_files(&e.path()));
        } else if t.is_file() {
            files.push(e.path());
        }
    }
    files
}

/// Failures under `--output json`: one error object as stderr's last line,
/// stdout empty, the exit code of the category; contradicting formats and
/// clap's own refusals included; secrets masked as in text errors.
#[test]
fn errors_in_json_mode_are_one_object_on_stderr() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let bad = t.path().join("bad.tar.zst");
    fs::write(&bad, b"not a bundle").unwrap();
    let e = json_error(
        &run(
            &cache,
            &[
                "--output",
                "json",
                "bundle",
                "verify",
                bad.to_str().unwrap(),
            ],
        ),
        7,
    );
    assert_eq!(e["category"], "corrupt-image");
    assert!(e["error"].as_str().unwrap().contains("bad.tar.zst"), "{e}");

    let e = json_error(&run(&cache, &["--output", "json", "plan"]), 2);
    assert_eq!(e["category"], "usage");
    assert!(e["error"].as_str().unwrap().contains("<IMAGE_YAML>"), "{e}");
    json_error(&run(&cache, &["--output", "json", "cache"]), 2);
    let e = json_error(&run(&cache, &["--output=json", "verify", "--frob", "x"]), 2);
    assert!(e["error"].as_str().unwrap().contains("--frob"), "{e}");
    let e = json_error(
        &run(
            &cache,
            &[
                "--output",
                "json",
                "plan",
                "images/demo-busybox.yaml",
                "--format",
                "github",
            ],
        ),
        2,
    );
    assert!(
        e["error"].as_str().unwrap().contains("--format github"),
        "{e}"
    );
    // Each alone is fine.
    let o = run(
        &cache,
        &["plan", "images/demo-busybox.yaml", "--format", "github"],
    );
    assert_ok(&o);
    assert!(one_object(&o).get("include").is_some());

    let e = json_error(
        &run(
            &cache,
            &["--output", "json", "provider-image", "nonexistent.yaml"],
        ),
        5,
    );
    assert_eq!(e["category"], "io");

    // A secret in a failing --set is masked in the JSON error as in text.
    let secret = "hunter2-cli-secret";
    let set = format!("proxy.http_proxy=http://bob:{secret}@proxy:3128");
    for output in ["text", "json"] {
        let o = run(
            &cache,
            &[
                "--output",
                output,
                "provider-image",
                "images/demo-busybox.yaml",
                "--set",
                &set,
                "--set",
                "no_such_field=1",
                "--out",
                t.path().join("out").to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
        assert!(!stderr(&o).contains(secret), "{output}: {}", stderr(&o));
        assert!(stderr(&o).contains("bob:****@proxy"), "{}", stderr(&o));
        if output == "json" {
            json_error(&o, 3);
        }
    }

    // A failed verify: its statuses in the error object's report.
    let out = t.path().join("sums");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("a.iso"), b"changed").unwrap();
    fs::write(
        out.join("SHA256SUMS"),
        format!("{}  a.iso\n", sha256_hex(b"original")),
    )
    .unwrap();
    let e = json_error(
        &run(
            &cache,
            &["--output", "json", "verify", out.to_str().unwrap()],
        ),
        7,
    );
    assert_eq!(e["report"]["schema"], "edgeforge.verify/v1");
    assert_eq!(e["report"]["results"][0]["status"], "FAILED");
}

/// Tokens on the command line: refused with exit 8 (secret refused), the
/// message pointing at the environment or a file, the value never shown.
#[test]
fn a_token_on_the_command_line_is_a_refused_secret() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let out = t.path().join("x.iso");
    let token_flag = format!("--token={TOKEN}");
    for args in [
        vec![
            "user-data",
            "render",
            "images/demo-busybox.yaml",
            "--site-value",
            "name=a",
            "--token",
            TOKEN,
        ],
        vec![
            "site-media",
            "--site-value",
            "name=a",
            "--token",
            TOKEN,
            "-o",
            out.to_str().unwrap(),
        ],
        vec![
            "iso",
            "images/demo-busybox.yaml",
            "--site-value",
            "name=a",
            "--token",
            TOKEN,
        ],
        vec![
            "user-data",
            "render",
            "images/demo-busybox.yaml",
            "--site-value",
            "name=a",
            "--site-value",
            &format!("token={TOKEN}"),
        ],
        // A line clap refuses for another reason (no IMAGE_YAML) still
        // refuses the token first, in both spellings.
        vec![
            "user-data",
            "render",
            "--site-value",
            "name=a",
            "--token",
            TOKEN,
        ],
        vec!["user-data", "render", &token_flag],
    ] {
        let o = run(&cache, &args);
        assert_fails(&o, 8, &["--token-env", "--token-file"]);
        assert!(!stderr(&o).contains(TOKEN) && !stdout(&o).contains(TOKEN));
        let mut json = vec!["--output", "json"];
        json.extend(&args);
        let e = json_error(&run(&cache, &json), 8);
        assert_eq!(e["category"], "secret-refused");
    }
    assert!(!out.exists());
}

/// `-q` hides progress and information, never a warning.
#[test]
fn quiet_keeps_warnings() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let token = t.path().join("token");
    fs::write(&token, TOKEN).unwrap();
    fs::set_permissions(&token, fs::Permissions::from_mode(0o644)).unwrap();
    let site = t.path().join("site.yaml");
    fs::write(&site, "name: q\npalette_endpoint: api.spectrocloud.com\n").unwrap();
    let args = |quiet: bool, with_token: bool| {
        let mut a = vec![];
        if quiet {
            a.push("-q");
        }
        a.extend([
            "user-data",
            "render",
            "images/demo-busybox.yaml",
            "--site",
            site.to_str().unwrap(),
        ]);
        if with_token {
            a.extend(["--token-file", token.to_str().unwrap()]);
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    for quiet in [false, true] {
        let a = args(quiet, true);
        let o = run(&cache, &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_ok(&o);
        assert!(
            stderr(&o).contains("is readable by others"),
            "-q={quiet}: {}",
            stderr(&o)
        );
        // Information: shown without -q only.
        assert_eq!(
            stderr(&o).contains("user-data templates/user-data.tera"),
            !quiet,
            "{}",
            stderr(&o)
        );
        let a = args(quiet, false);
        let o = run(&cache, &a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_ok(&o);
        assert!(
            stderr(&o)
                .contains("no edgeHostToken, so the device will wait for manual registration"),
            "-q={quiet}: {}",
            stderr(&o)
        );
    }
}

/// A bundle cut short says it is truncated, with the sizes, not "not an
/// edgeforge bundle".
#[test]
fn a_truncated_bundle_is_named_truncated() {
    let base = demo_base();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let bundle = t.path().join("b.tar.zst");
    let image = format!("oci:{}", base.display());
    assert_ok(&run(
        &cache,
        &["bundle", &image, "-o", bundle.to_str().unwrap()],
    ));
    let bytes = fs::read(&bundle).unwrap();
    for keep in [bytes.len() / 2, bytes.len() - 8] {
        let cut = t.path().join("cut.tar.zst");
        fs::write(&cut, &bytes[..keep]).unwrap();
        let o = run(&cache, &["bundle", "verify", cut.to_str().unwrap()]);
        assert_fails(&o, 7, &["is truncated", &format!("its {keep} bytes")]);
        assert!(
            !stderr(&o).contains("not an edgeforge bundle"),
            "{}",
            stderr(&o)
        );
    }
    // Cut in its largest blob: which blob, and its size against what was read.
    let cut = t.path().join("cut.tar.zst");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&cache, &["bundle", "verify", cut.to_str().unwrap()]);
    assert_fails(&o, 7, &["inside blob sha256:", "should hold", "read)"]);
}

/// `man --out DIR`: a page per command and subcommand, so every
/// `edgeforge-X(1)` a page refers to is in DIR; each is roff that groff
/// formats without a warning. `man` alone still prints the main page.
#[test]
fn man_out_writes_every_page_the_pages_refer_to() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("man");
    let o = edgeforge(&["man", "--out", dir.to_str().unwrap()]);
    assert_ok(&o);
    let pages = entries(&dir);
    for expected in [
        "edgeforge.1",
        "edgeforge-iso.1",
        "edgeforge-iso-embed.1",
        "edgeforge-cache-prune.1",
        "edgeforge-user-data-validate.1",
    ] {
        assert!(
            pages.iter().any(|p| p == expected),
            "{expected} in {pages:?}"
        );
    }
    let mut referenced = BTreeSet::new();
    for page in &pages {
        let text = fs::read_to_string(dir.join(page)).unwrap();
        let name = page.trim_end_matches(".1");
        assert!(
            text.contains(&format!(".TH {name} 1 ")),
            "{page}: no .TH line"
        );
        assert!(
            text.contains(".SH NAME") && text.contains(".SH SYNOPSIS"),
            "{page}"
        );
        // References as the pages write them: `edgeforge\-iso\-embed(1)`.
        for (i, _) in text.match_indices("(1)") {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '\\'))
                .map_or(0, |s| s + 1);
            let reference = text[start..i].replace("\\-", "-");
            if reference.starts_with("edgeforge") {
                referenced.insert(format!("{reference}.1"));
            }
        }
        let g = Command::new("groff")
            .args(["-man", "-Tutf8", "-z", "-ww"])
            .arg(dir.join(page))
            .output()
            .expect("groff (groff-base; scripts/install-host-tools.sh)");
        assert!(
            g.status.success() && g.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&g.stderr)
        );
    }
    assert!(referenced.len() > 15, "{referenced:?}");
    for r in &referenced {
        assert!(
            pages.contains(r),
            "{r} is referred to but not written: {pages:?}"
        );
    }
    assert!(!pages.iter().any(|p| p.contains("help")), "{pages:?}");
    // The written files are listed on stdout.
    assert_eq!(stdout(&o).lines().count(), pages.len());

    let m = edgeforge(&["man"]);
    assert_ok(&m);
    assert_eq!(
        stdout(&m).as_bytes(),
        fs::read(dir.join("edgeforge.1")).unwrap()
    );
}

/// Names say each fact once and differ between definitions: two
/// definitions whose repositories end alike (`ttl.sh/ubuntu`,
/// `ttl.sh/edge/ubuntu`) plan and build into one folder side by side;
/// names two definitions would share are refused by `plan`.
#[test]
fn names_are_unique_per_definition_and_say_each_fact_once() {
    let base = demo_base();
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let define = |name: &str, extra: &str, from: &str, to: &str| {
        let p = write_definition(t.path(), name, &base, extra);
        let text = fs::read_to_string(&p).unwrap().replace(from, to);
        fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let a = define("a", "iso_name: a-installer\n", "", "");
    let b = define(
        "b",
        "iso_name: b-installer\n",
        "repository: ubuntu\n",
        "repository: edge/ubuntu\n",
    );
    let o = run(&cache, &["--output", "json", "plan", &a, &b]);
    assert_ok(&o);
    let plan = one_object(&o);
    let names: Vec<&str> = plan["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["provider_image"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar",
            "edge-ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar"
        ]
    );

    let out = t.path().join("out");
    for def in [&a, &b] {
        assert_ok(&run(
            &cache,
            &["build", def, "--golden", "--out", out.to_str().unwrap()],
        ));
    }
    let sums = fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for name in names.iter().chain(&["a-installer.iso", "b-installer.iso"]) {
        assert!(out.join(name).is_file(), "{name}: {:?}", entries(&out));
        assert!(sums.contains(&format!("  {name}\n")), "{name}:\n{sums}");
    }
    assert_ok(&run(&cache, &["verify", out.to_str().unwrap()]));

    // Another registry, same repository and tag: the same names, refused.
    let c = define(
        "c",
        "iso_name: c-installer\n",
        "registry: ttl.sh\n",
        "registry: quay.io\n",
    );
    let o = run(&cache, &["plan", &a, &c]);
    assert_fails(
        &o,
        3,
        &[&a, &c, "ubuntu-k3s-1.30.5-v4.5.0-test", "overwrite"],
    );

    // Each fact once: the ISO name does not repeat the distribution its
    // iso_name already says.
    let o = run(
        &cache,
        &["--output", "json", "plan", "images/ubuntu-22.04-k3s.yaml"],
    );
    assert_ok(&o);
    for v in one_object(&o)["variants"].as_array().unwrap() {
        let iso = v["iso"].as_str().unwrap();
        let version = v["kubernetes"].as_str().unwrap().split(' ').nth(1).unwrap();
        assert_eq!(
            iso,
            format!("palette-edge-installer-ubuntu-22.04-k3s-{version}-v4.5.0.iso")
        );
        assert_eq!(
            v["variant"].as_str().unwrap(),
            format!("edge-ubuntu-k3s-{version}-v4.5.0")
        );
    }
}
