//! Running edgeforge on hostile inputs: a run that hangs is killed after a
//! generous timeout, and one that tries to eat the machine's memory hits
//! an address-space limit and dies, so the test fails instead of the
//! machine.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{repo_root, test_cache, EPOCH};

/// Far beyond any run on the test fixtures, even on a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(300);
/// Address space for the process: a debug build handling small fixtures
/// stays far below it.
const MEMORY: u64 = 2 << 30;

/// Runs edgeforge like `support::edgeforge_env`, killing it (and failing
/// the test) if it is still running after [`TIMEOUT`].
#[track_caller]
pub fn edgeforge_guarded(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgeforge"));
    c.args(args)
        .current_dir(repo_root())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env("EDGEFORGE_CACHE_DIR", test_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY,
                rlim_max: MEMORY,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.spawn().expect("running edgeforge");
    // Drained while it runs, so a full pipe never blocks it.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "edgeforge {args:?} still ran after {TIMEOUT:?} (hung); stderr:\n{}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
