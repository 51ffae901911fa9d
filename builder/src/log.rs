//! Progress and diagnostic lines on stderr; stdout is kept for results.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(1);

/// 0 = quiet (warnings and errors only), 1 = normal, 2 = verbose.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

macro_rules! info {
    ($($arg:tt)*) => {
        if $crate::log::enabled(1) {
            eprintln!("edgeforge: {}", format_args!($($arg)*));
        }
    };
}

macro_rules! verbose {
    ($($arg:tt)*) => {
        if $crate::log::enabled(2) {
            eprintln!("edgeforge: {}", format_args!($($arg)*));
        }
    };
}

/// A warning: something the user should act on. Shown even with `-q`,
/// which hides progress and information only.
macro_rules! warning {
    ($($arg:tt)*) => {
        eprintln!("edgeforge: warning: {}", format_args!($($arg)*))
    };
}

pub(crate) use {info, verbose, warning};
