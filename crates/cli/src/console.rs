//! Printing the command's report without panicking: when stdout or stderr is closed
//! (`ferrograd train | head -1`), lines are dropped and the command goes on (training still
//! saves its checkpoint), where `println!` would panic.

use std::fmt;
use std::io::Write;

/// Writes one line to stdout; a closed or failing stdout is ignored.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n"));
}

/// Writes text as it is (no newline added) to stdout; a closed stdout is ignored.
pub fn text(s: &str) {
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

/// Writes one line to stderr (warnings, errors); a closed stderr is ignored.
pub fn warn_line(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// `println!` that never panics (see [`line`]).
macro_rules! say {
    ($($arg:tt)*) => { $crate::console::line(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics (see [`warn_line`]): warnings and errors.
macro_rules! note {
    ($($arg:tt)*) => { $crate::console::warn_line(format_args!($($arg)*)) };
}

pub(crate) use {note, say};
