//! Secrets stay masked in everything edgeforge shows, whatever style the
//! document is written in: `iso show` (text and JSON), `user-data validate`
//! findings and parse errors, `user-data render`, `manifest.json`,
//! `context.json` and errors quoting `--set` values. Every test uses fresh
//! random secrets and looks for them in all output and every file written.

mod support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A random secret, shaped like a registration token.
fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 18];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

#[track_caller]
fn assert_absent(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

#[track_caller]
fn assert_output_clean(o: &std::process::Output, secrets: &[&str]) {
    assert_absent("stdout", &stdout(o), secrets);
    assert_absent("stderr", &stderr(o), secrets);
}

/// Every file under `dir` except those named in `allowed` holds none of `secrets`.
#[track_caller]
fn assert_files_clean(dir: &Path, allowed: &[PathBuf], secrets: &[&str]) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !allowed.contains(&p) {
                let bytes = fs::read(&p).unwrap();
                for s in secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "{} holds the secret {s}",
                        p.display()
                    );
                }
            }
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// Runs edgeforge with a hang guard: the run is killed after `limit` and the
/// test fails. Output goes to files, so a huge output cannot block the child.
fn edgeforge_bounded(args: &[&str], dir: &Path, limit: Duration) -> (Option<i32>, String, String) {
    let (out, err) = (dir.join("bounded.out"), dir.join("bounded.err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgeforge"))
        .args(args)
        .current_dir(repo_root())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("EDGEFORGE_CACHE_DIR", test_cache())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("edgeforge {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned();
    (status.code(), read(&out), read(&err))
}

#[test]
fn parse_errors_on_a_line_holding_a_secret_show_its_structure_only() {
    let t = tempfile::tempdir().unwrap();
    let tok = random_secret("pe");
    let pw = random_secret("pw");
    let cases = [
        (
            "flow style",
            format!("#cloud-config\nstylus: {{site: {{edgeHostToken: {tok}, name: edge-1}}}}}}\n"),
            "stylus: {site: {edgeHostToken: ****, name: ****}}}",
        ),
        (
            "one-line JSON",
            format!("#cloud-config\n{{\"stylus\": {{\"site\": {{\"edgeHostToken\": \"{tok}\", \"name\": \"edge-1\" \"x\"}}}}}}\n"),
            "{\"stylus\": {\"site\": {\"edgeHostToken\": \"****\", \"name\": \"****\" \"****\"}}}",
        ),
        (
            "registry password",
            format!("#cloud-config\nstylus: {{registryCredentials: {{domain: r.example.com, password: {pw}}}}}}}\n"),
            "stylus: {registryCredentials: {domain: ****, password: ****}}}",
        ),
    ];
    for (name, text, shown) in cases {
        let f = write(t.path(), "user-data.yaml", &text);
        let o = edgeforge(&["user-data", "validate", f.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{name}: {err}");
        assert!(
            err.contains(&format!("{}:2:", f.display())) && err.contains(shown),
            "{name}: the error lacks {shown:?}:\n{err}"
        );
        assert_output_clean(&o, &[&tok, &pw]);
    }
}

#[test]
fn validation_findings_mask_a_scheme_less_proxy_password() {
    let t = tempfile::tempdir().unwrap();
    let pw = random_secret("px");
    let f = write(
        t.path(),
        "user-data.yaml",
        &format!(
            "#cloud-config\nstylus:\n  site:\n    network:\n      httpProxy: bob:{pw}@proxy:3128\n"
        ),
    );
    let o = edgeforge(&["user-data", "validate", f.to_str().unwrap()]);
    assert_fails(
        &o,
        3,
        &[":5: error: stylus.site.network.httpProxy: `bob:****@proxy:3128` must be a URL"],
    );
    assert_output_clean(&o, &[&pw]);
}

#[test]
fn long_lines_give_a_bounded_error_quickly() {
    let t = tempfile::tempdir().unwrap();
    let tok = random_secret("ll");
    let guard = Duration::from_secs(10);

    // 200 000 `[` on one line: refused before the parser, whose time grows
    // with the square of the nesting, and not quoted back.
    let f = write(
        t.path(),
        "brackets.yaml",
        &format!("#cloud-config\nstylus: {}\n", "[".repeat(200_000)),
    );
    let (code, out, err) = edgeforge_bounded(
        &["user-data", "validate", f.to_str().unwrap()],
        t.path(),
        guard,
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(&format!("{}:2:", f.display())) && err.contains("64 KiB"),
        "{err}"
    );
    assert!(
        err.len() < 1024 && out.is_empty(),
        "{} bytes of stderr",
        err.len()
    );

    // A 50 KiB line with a syntax error at its end: the quoted part is cut
    // around the error and masked.
    let tags: Vec<String> = (0..3500).map(|i| format!("k{i}: v{i}")).collect();
    let f = write(
        t.path(),
        "long.yaml",
        &format!(
            "#cloud-config\nstylus: {{site: {{edgeHostToken: {tok}, tags: {{{}}}, name: x: y}}}}\n",
            tags.join(", ")
        ),
    );
    let (code, out, err) = edgeforge_bounded(
        &["user-data", "validate", f.to_str().unwrap()],
        t.path(),
        guard,
    );
    assert_eq!(code, Some(3), "{err}");
    let quoted = err.lines().nth(1).expect("the line is quoted");
    assert!(
        quoted.trim_start().starts_with("...") && quoted.contains("name: ****: ****"),
        "{quoted}"
    );
    assert!(
        quoted.chars().count() <= 130,
        "{} characters quoted",
        quoted.len()
    );
    assert_absent("stderr", &err, &[&tok]);
    assert_absent("stdout", &out, &[&tok]);
}

/// Documents in every style the masking must see through; each holds its
/// secret and `name: edge-mask` (which must stay visible).
fn styled_documents(s: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "flow style",
            format!("#cloud-config\nstylus:\n  site: {{paletteEndpoint: api.example.com, edgeHostToken: {s}, name: edge-mask}}\n"),
        ),
        (
            "one-line JSON",
            format!("#cloud-config\n{{\"stylus\": {{\"site\": {{\"paletteEndpoint\": \"api.example.com\", \"edgeHostToken\": \"{s}\", \"name\": \"edge-mask\"}}}}}}\n"),
        ),
        (
            "folded block scalar",
            format!("#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.example.com\n    edgeHostToken: >-\n      {s}\n    name: edge-mask\n"),
        ),
        (
            "value on the next line",
            format!("#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.example.com\n    edgeHostToken:\n      {s}\n    name: edge-mask\n"),
        ),
        (
            "registry password",
            format!("#cloud-config\nstylus:\n  site: {{name: edge-mask}}\n  registryCredentials: {{domain: registry.example.com, username: bob, password: {s}}}\n"),
        ),
        (
            "proxy password",
            format!("#cloud-config\nstylus:\n  site:\n    name: edge-mask\n    network:\n      httpProxy: http://bob:{s}@proxy:3128\n"),
        ),
    ]
}

#[test]
fn iso_show_and_the_build_manifest_mask_every_form() {
    let t = tempfile::tempdir().unwrap();
    let proxy_pw = random_secret("dp");
    // A golden ISO from a definition with a scheme-less proxy password.
    let def = write_definition(
        t.path(),
        "golden",
        &demo_base(),
        &format!("iso:\n  timeout: 0\nproxy:\n  http_proxy: bob:{proxy_pw}@proxy:3128\n"),
    );
    let out = t.path().join("build");
    let o = edgeforge(&[
        "--output",
        "json",
        "build",
        def.to_str().unwrap(),
        "--golden",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert_output_clean(&o, &[&proxy_pw]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["definition"]["proxy"]["http_proxy"], "bob:****@proxy:3128",
        "manifest.json masks a scheme-less proxy password"
    );
    let golden = out.join("palette-edge-installer.iso");

    let mut secrets = vec![proxy_pw.clone()];
    let mut site_isos = vec![];
    for (form, doc) in styled_documents("SECRET") {
        let s = random_secret("is");
        let ud = write(t.path(), "user-data.yaml", &doc.replace("SECRET", &s));
        let iso = t.path().join(format!("site-{}.iso", site_isos.len()));
        let o = edgeforge(&[
            "iso",
            "embed",
            golden.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "-o",
            iso.to_str().unwrap(),
        ]);
        assert_ok(&o);
        assert_output_clean(&o, &[&s]);
        fs::remove_file(&ud).unwrap();

        let shown = edgeforge(&["iso", "show", iso.to_str().unwrap()]);
        assert_ok(&shown);
        assert_output_clean(&shown, &[&s]);
        let text = stdout(&shown);
        assert!(
            text.contains("edge-mask") && text.contains("****"),
            "{form}: the rest of the document stays visible:\n{text}"
        );
        let json = edgeforge(&["--output", "json", "iso", "show", iso.to_str().unwrap()]);
        assert_ok(&json);
        assert_output_clean(&json, &[&s]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
        assert!(
            v["user_data"]["content"]
                .as_str()
                .unwrap()
                .contains("edge-mask"),
            "{form}"
        );

        let revealed = edgeforge(&["iso", "show", "--reveal", iso.to_str().unwrap()]);
        assert!(
            stdout(&revealed).contains(&s),
            "{form}: --reveal shows the secret"
        );
        secrets.push(s);
        site_isos.push(iso);
    }
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // The user-data secrets live in their ISO only; the proxy password in
    // the definition, not in the provider image, the ISOs or the manifest.
    let mut allowed = site_isos;
    allowed.push(def);
    assert_files_clean(t.path(), &allowed, &refs);
}

#[test]
fn user_data_render_masks_proxy_passwords_from_site_values() {
    let t = tempfile::tempdir().unwrap();
    let tok = random_secret("rt");
    let pw = random_secret("rp");
    let render = |proxy: &str| {
        edgeforge_env(
            &[
                "user-data",
                "render",
                "images/demo-busybox.yaml",
                "--site-value",
                "name=edge-mask",
                "--site-value",
                &format!("network.http_proxy={proxy}"),
                "--token-env",
                "MASK_TOKEN",
            ],
            &[("MASK_TOKEN", tok.as_str())],
        )
    };
    let o = render(&format!("http://bob:{pw}@proxy:3128"));
    assert_ok(&o);
    assert!(
        stdout(&o).contains("httpProxy: \"http://bob:****@proxy:3128\"")
            && stdout(&o).contains("name: \"edge-mask\""),
        "{}",
        stdout(&o)
    );
    assert_output_clean(&o, &[&tok, &pw]);

    // Without a scheme the document is invalid; the error masks it too.
    let o = render(&format!("bob:{pw}@proxy:3128"));
    assert_fails(&o, 3, &["bob:****@proxy:3128"]);
    assert_output_clean(&o, &[&tok, &pw]);
    assert_files_clean(t.path(), &[], &[&tok, &pw]);
}

#[test]
fn render_context_and_set_errors_mask_a_scheme_less_proxy_password() {
    let t = tempfile::tempdir().unwrap();
    let pw = random_secret("cx");
    let set = format!("proxy.http_proxy=bob:{pw}@proxy:3128");
    let out = t.path().join("rendered");
    let o = edgeforge(&[
        "render",
        "images/demo-busybox.yaml",
        "--set",
        &set,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert_output_clean(&o, &[&pw]);
    let ctx = fs::read_to_string(out.join("ubuntu-k3s-1.30.5-v4.5.0-demo/context.json")).unwrap();
    assert!(ctx.contains("bob:****@proxy:3128"), "{ctx}");
    assert_files_clean(t.path(), &[], &[&pw]);

    // An error naming the overrides names this one masked.
    let o = edgeforge(&[
        "render",
        "images/demo-busybox.yaml",
        "--set",
        &set,
        "--set",
        "fips=maybe",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails(&o, 3, &["--set proxy.http_proxy=bob:****@proxy:3128"]);
    assert_output_clean(&o, &[&pw]);
}
