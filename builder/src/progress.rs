//! Progress for the long steps: an indicatif bar (bytes, rate) on a terminal,
//! one plain line at the start and end otherwise, so CI logs stay readable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::log::info;

pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    started: Instant,
}

impl Progress {
    /// A step that moves bytes (`inc` as they pass).
    pub fn bytes(label: impl Into<String>) -> Progress {
        Self::start(
            label.into(),
            "{spinner} {msg} {bytes} ({bytes_per_sec}, {elapsed})",
        )
    }

    /// A step whose amount is not known (a host tool running).
    pub fn spinner(label: impl Into<String>) -> Progress {
        Self::start(label.into(), "{spinner} {msg} ({elapsed})")
    }

    fn start(label: String, template: &str) -> Progress {
        let on_terminal = crate::log::enabled(1) && std::io::stderr().is_terminal();
        let bar = on_terminal.then(|| {
            let bar = ProgressBar::new_spinner().with_message(label.clone());
            bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            info!("{label} ...");
        }
        Progress {
            bar,
            label,
            started: Instant::now(),
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        info!(
            "{} done in {:.1}s",
            self.label,
            self.started.elapsed().as_secs_f64()
        );
    }
}
