//! A real registry for tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on 127.0.0.1 with a random port, TLS from a CA
//! generated per registry, and htpasswd (bcrypt) logins; skopeo and
//! edgeforge get the CA through a test-private folder and the login through
//! an auth file (0600). Stopped by its process id when dropped.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

pub const USER: &str = "edge-ci";
pub const PASSWORD: &str = "Reg1stry-Pa55word!";

/// A running registry, stopped by its process id when dropped (also when a
/// test panics); the child dies with the test process too (PDEATHSIG).
pub struct Registry {
    pub dir: tempfile::TempDir,
    child: Child,
    pub host: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    run_tool("openssl", args, dir);
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=edgeforge test CA",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
        fs::create_dir(d.join("certs")).unwrap();
        fs::copy(d.join("ca.crt"), d.join("certs/ca.crt")).unwrap();
        let htpasswd = run_tool("htpasswd", &["-Bbn", USER, PASSWORD], d);
        fs::write(d.join("htpasswd"), htpasswd).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        // Valid credentials, the same user with a wrong password, and none.
        write_auth(&d.join("auth.json"), &host, PASSWORD);
        write_auth(&d.join("wrong-auth.json"), &host, "not-the-password");
        write_private(&d.join("no-auth.json"), "{\"auths\":{}}");
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: {host}\n  tls:\n    certificate: {d}/server.crt\n    key: {d}/server.key\nauth:\n  htpasswd:\n    realm: edgeforge-test\n    path: {d}/htpasswd\n",
            root = d.join("data").display(),
            d = d.display(),
        );
        fs::write(d.join("config.yml"), config).unwrap();
        let log = fs::File::create(d.join("registry.log")).unwrap();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; no allocation in the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect(
            "docker-registry (Debian package docker-registry; scripts/install-host-tools.sh)",
        );
        let reg = Registry { dir, child, host };
        let start = Instant::now();
        while TcpStream::connect(&reg.host).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the registry did not listen on {}:\n{}",
                reg.host,
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// Kills the registry and waits for it (again: a no-op).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("registry.log")).unwrap_or_default()
    }

    /// Blob uploads the registry started so far.
    pub fn blob_uploads(&self) -> usize {
        self.log().matches("\"POST /v2/").count()
    }

    /// skopeo with the test's CA and login.
    pub fn skopeo(&self, args: &[&str]) -> String {
        let mut full = vec![args[0]];
        let auth = self.path("auth.json");
        let certs = self.path("certs");
        let side: Vec<String> = match args[0] {
            "copy" => vec![
                "--dest-authfile".into(),
                auth.display().to_string(),
                "--dest-cert-dir".into(),
                certs.display().to_string(),
                "--src-authfile".into(),
                auth.display().to_string(),
                "--src-cert-dir".into(),
                certs.display().to_string(),
            ],
            _ => vec![
                "--authfile".into(),
                auth.display().to_string(),
                "--cert-dir".into(),
                certs.display().to_string(),
            ],
        };
        full.extend(side.iter().map(String::as_str));
        full.extend_from_slice(&args[1..]);
        run_tool("skopeo", &full, self.dir.path())
    }

    /// The demo base pushed as `repo:tag`; returns its manifest digest.
    pub fn push_demo_base(&self, repo_tag: &str) -> String {
        self.skopeo(&[
            "copy",
            "--quiet",
            "--preserve-digests",
            &format!("oci:{}:latest", demo_base().display()),
            &format!("docker://{}/{repo_tag}", self.host),
        ]);
        self.manifest_digest(repo_tag)
    }

    /// sha256 of the manifest the registry serves for `repo_ref`.
    pub fn manifest_digest(&self, repo_ref: &str) -> String {
        let raw = self.skopeo(&[
            "inspect",
            "--raw",
            &format!("docker://{}/{repo_ref}", self.host),
        ]);
        format!("sha256:{}", sha256_hex(raw.as_bytes()))
    }

    /// edgeforge with the registry's CA (environment) and login (REGISTRY_AUTH_FILE).
    pub fn edgeforge(&self, cache: &Path, args: &[&str]) -> Output {
        self.edgeforge_auth(cache, "auth.json", args)
    }

    pub fn edgeforge_auth(&self, cache: &Path, auth: &str, args: &[&str]) -> Output {
        self.edgeforge_with(cache, auth, &[], args)
    }

    /// Also with `extra` environment variables; neither output may show the login.
    pub fn edgeforge_with(
        &self,
        cache: &Path,
        auth: &str,
        extra: &[(&str, &str)],
        args: &[&str],
    ) -> Output {
        let (certs, auth, runtime) = (self.path("certs"), self.path(auth), self.path("no-runtime"));
        let mut env = vec![
            ("EDGEFORGE_CACHE_DIR", cache.to_str().unwrap()),
            ("EDGEFORGE_REGISTRY_CERT_DIR", certs.to_str().unwrap()),
            ("REGISTRY_AUTH_FILE", auth.to_str().unwrap()),
            // skopeo's other places to look for logins stay out of the test.
            ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
            ("HOME", self.dir.path().to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        let o = edgeforge_env(args, &env);
        assert_no_secret(
            &format!("{}{}", stdout(&o), stderr(&o)),
            &format!("edgeforge {args:?}"),
        );
        o
    }
}

/// An auth file (containers auth.json format, 0600) logging `USER` in to `host`.
pub fn write_auth(path: &Path, host: &str, password: &str) {
    let token = base64(format!("{USER}:{password}").as_bytes());
    write_private(
        path,
        &format!("{{\"auths\":{{\"{host}\":{{\"auth\":\"{token}\"}}}}}}"),
    );
}

pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Neither the password nor the auth file's token appears in `text`.
#[track_caller]
pub fn assert_no_secret(text: &str, what: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the registry password:\n{text}"
    );
    let token = base64(format!("{USER}:{PASSWORD}").as_bytes());
    assert!(
        !text.contains(&token),
        "{what} shows the registry token:\n{text}"
    );
}
