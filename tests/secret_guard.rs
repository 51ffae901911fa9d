//! The secret guard against syntax: a registration token reaches no provider
//! image through a next-line value, an escaped or explicit YAML key, a gzip
//! or UTF-16 file, a bare value the run knows (the user-data's token), or an
//! overlay template reading the environment. Each run gets a fresh random
//! token, and each refusal leaves it nowhere: not in stdout/stderr, not in the
//! output folder, not in the run's layer cache (gzip files read back
//! decompressed).

mod support;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

/// A token nobody else uses: 32 hex digits from the kernel's random source.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("tok{hex}")
}

/// A test's folders: `ov` (the rootfs overlay), `out`, `cache`.
struct Case {
    t: tempfile::TempDir,
    token: String,
}

impl Case {
    fn new() -> Case {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("ov/etc")).unwrap();
        Case {
            t,
            token: random_token(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.t.path().join(rel)
    }

    /// Writes `rel` under the overlay and returns its path.
    fn overlay_file(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path("ov").join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        p
    }

    fn definition(&self) -> PathBuf {
        write_definition(
            self.t.path(),
            "guard",
            &demo_base(),
            &format!("overlays:\n  rootfs: [{}]\n", self.path("ov").display()),
        )
    }

    /// Runs edgeforge with this case's cache folder and `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let cache = self.path("cache");
        let mut all = vec!["--cache-dir", cache.to_str().unwrap()];
        all.extend_from_slice(args);
        edgeforge_env(&all, env)
    }

    fn provider_image(&self) -> Output {
        let def = self.definition();
        let out = self.path("out");
        self.run(
            &[
                "provider-image",
                def.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        )
    }

    /// A user-data file carrying this case's token.
    fn user_data(&self) -> PathBuf {
        let p = self.path("user-data.yaml");
        fs::write(
            &p,
            format!(
                "#cloud-config\nstylus:\n  site:\n    paletteEndpoint: api.spectrocloud.com\n    edgeHostToken: {}\n    name: edge-guard-1\ninstall:\n  poweroff: true\n",
                self.token
            ),
        )
        .unwrap();
        p
    }

    /// Asserts a refusal with `code` naming `file`, and that the token (and
    /// any of `forms`, the encoded shapes it was planted in) is in neither
    /// output stream, nor any file under the output and cache folders, and
    /// that no provider image was written.
    #[track_caller]
    fn assert_refused(&self, o: &Output, code: i32, file: &Path, forms: &[&[u8]]) {
        assert_fails(o, code, &[&file.display().to_string()]);
        let mut needles: Vec<&[u8]> = vec![self.token.as_bytes()];
        needles.extend_from_slice(forms);
        for n in &needles {
            assert!(
                !contains(&o.stdout, n) && !contains(&o.stderr, n),
                "the secret is printed:\n{}",
                stderr(o)
            );
        }
        let archives: Vec<String> = entries(&self.path("out"))
            .into_iter()
            .filter(|e| e.ends_with(".oci.tar") || e.ends_with(".iso"))
            .collect();
        assert!(archives.is_empty(), "artifacts written: {archives:?}");
        for dir in [self.path("out"), self.path("cache")] {
            assert_nowhere_in(&dir, &needles);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, read raw and, when it is gzip, decompressed.
#[track_caller]
fn assert_nowhere_in(dir: &Path, needles: &[&[u8]]) {
    for e in walk(dir) {
        let raw = fs::read(&e).unwrap();
        let mut views = vec![raw.clone()];
        if raw.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut plain)
                .unwrap();
            views.push(plain);
        }
        for v in &views {
            for n in needles {
                assert!(!contains(v, n), "{} holds the secret", e.display());
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return files;
    };
    for e in rd {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            files.extend(walk(&e.path()));
        } else if ft.is_file() {
            files.push(e.path());
        }
    }
    files
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut v = vec![0xff, 0xfe];
    v.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    v
}

#[test]
fn a_token_on_the_line_after_its_key_is_refused() {
    let c = Case::new();
    let f = c.overlay_file(
        "etc/stylus.yaml",
        format!("stylus:\n  site:\n    edgeHostToken:\n      {}\n", c.token).as_bytes(),
    );
    c.assert_refused(&c.provider_image(), 8, &f, &[]);
}

#[test]
fn a_token_under_an_escaped_key_is_refused() {
    let c = Case::new();
    let f = c.overlay_file(
        "etc/stylus.yaml",
        format!("stylus:\n  site:\n    \"edge\\x48ostToken\": {}\n", c.token).as_bytes(),
    );
    c.assert_refused(&c.provider_image(), 8, &f, &[]);
}

#[test]
fn a_token_under_an_explicit_key_is_refused() {
    let c = Case::new();
    let f = c.overlay_file(
        "etc/stylus.yaml",
        format!("stylus:\n  site:\n    ? edgeHostToken\n    : {}\n", c.token).as_bytes(),
    );
    c.assert_refused(&c.provider_image(), 8, &f, &[]);
}

#[test]
fn a_token_in_a_gzip_file_is_refused() {
    let c = Case::new();
    let gz = gzip(format!("stylus:\n  site:\n    edgeHostToken: {}\n", c.token).as_bytes());
    let f = c.overlay_file("etc/stylus.yaml.gz", &gz);
    c.assert_refused(&c.provider_image(), 8, &f, &[&gz]);
}

#[test]
fn a_token_in_a_utf16_file_is_refused() {
    let c = Case::new();
    let utf16 = utf16le_with_bom(&format!(
        "stylus:\n  site:\n    edgeHostToken: {}\n",
        c.token
    ));
    let f = c.overlay_file("etc/stylus.yaml", &utf16);
    let token16: Vec<u8> = c.token.encode_utf16().flat_map(u16::to_le_bytes).collect();
    c.assert_refused(&c.provider_image(), 8, &f, &[&token16]);
}

#[test]
fn the_bare_token_of_the_runs_user_data_is_refused_even_from_a_cached_layer() {
    let c = Case::new();
    let f = c.overlay_file("etc/notes.txt", format!("{}\n", c.token).as_bytes());
    let def = c.definition();
    let ud = c.user_data();
    let out = c.path("out");
    let o = c.run(
        &[
            "build",
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    c.assert_refused(&o, 8, &f, &[]);
    assert!(
        stderr(&o).contains("stylus.site.edgeHostToken"),
        "says which secret: {}",
        stderr(&o)
    );

    // `provider-image` knows no token, so its layer (cached) carries it; a
    // `build` that knows the token must not take that layer unscanned.
    assert_ok(&c.provider_image());
    let out2 = c.path("out2");
    let o = c.run(
        &[
            "build",
            def.to_str().unwrap(),
            "--user-data",
            ud.to_str().unwrap(),
            "--out",
            out2.to_str().unwrap(),
        ],
        &[],
    );
    assert_fails(&o, 8, &[&f.display().to_string()]);
    assert!(!contains(&o.stdout, c.token.as_bytes()) && !contains(&o.stderr, c.token.as_bytes()));
    assert!(
        entries(&out2)
            .iter()
            .all(|e| !e.ends_with(".oci.tar") && !e.ends_with(".iso")),
        "{:?}",
        entries(&out2)
    );
}

#[test]
fn a_site_token_from_the_environment_is_refused_in_base64_and_utf16() {
    for form in ["base64", "utf16"] {
        let c = Case::new();
        let encoded = match form {
            "base64" => base64(format!("t={}", c.token).as_bytes()).into_bytes(),
            _ => c.token.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        };
        let f = c.overlay_file("etc/blob", &encoded);
        let def = c.definition();
        let out = c.path("out");
        let o = c.run(
            &[
                "build",
                def.to_str().unwrap(),
                "--site-value",
                "name=store-1",
                "--site-value",
                "palette_endpoint=api.spectrocloud.com",
                "--token-env",
                "EF_GUARD_TOKEN",
                "--out",
                out.to_str().unwrap(),
            ],
            &[("EF_GUARD_TOKEN", &c.token)],
        );
        c.assert_refused(&o, 8, &f, &[&encoded]);
    }
}

#[test]
fn get_env_in_an_overlay_template_is_a_template_error() {
    let c = Case::new();
    let f = c.overlay_file(
        "etc/leak.tera",
        b"token={{ get_env(name=\"EF_GUARD_TOKEN\") }}\n",
    );
    let def = c.definition();
    let out = c.path("out");
    let o = c.run(
        &[
            "provider-image",
            def.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[("EF_GUARD_TOKEN", &c.token)],
    );
    c.assert_refused(&o, 6, &f, &[]);
    assert!(stderr(&o).contains("get_env"), "{}", stderr(&o));
}

#[test]
fn mentions_of_edge_host_token_without_a_value_still_build() {
    let c = Case::new();
    c.overlay_file(
        "etc/README",
        b"Set edgeHostToken in the site's user-data (stylus.site.edgeHostToken), never here.\n",
    );
    c.overlay_file(
        "etc/stylus.yaml",
        b"# edgeHostToken comes from the ISO's user-data\nstylus:\n  site:\n    edgeHostToken:\n    name: \"edge\\x2d1\"\n",
    );
    c.overlay_file("etc/empty.json", b"{\"edgeHostToken\": \"\"}\n");
    c.overlay_file("etc/docs.yaml.gz", &gzip(b"# set edgeHostToken per site\n"));
    let o = c.provider_image();
    assert_ok(&o);
    assert!(c
        .path("out")
        .join("ubuntu-k3s-1.30.5-v4.5.0-test.oci.tar")
        .is_file());
}

/// Standard base64 without line breaks (no crate needed for a test).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
