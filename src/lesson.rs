//! What the numbered lessons in `examples/` share: where each writes its figures, from the
//! command line (`--out DIR`, default `runs/lessons/<lesson>`), and the `--quick` switch that
//! runs a lesson on its small test setting. [`regions`] trains a classifier on a
//! two-dimensional toy set and draws its decision regions (lessons 01, 04 and 05).
//!
//! A lesson's `main` starts with
//!
//! ```no_run
//! # use std::path::PathBuf;
//! # use ferrograd::lesson::LessonArgs;
//! # #[derive(Clone)] struct Config { out: PathBuf, steps: usize }
//! # impl Config {
//! #     fn quick() -> Self { Config { out: PathBuf::new(), steps: 10 } }
//! #     fn full() -> Self { Config { out: PathBuf::new(), steps: 1000 } }
//! # }
//! let args = LessonArgs::from_env_or_exit("01-perceptron");
//! let cfg = Config {
//!     out: args.out.clone(),
//!     ..args.pick(Config::quick, Config::full)
//! };
//! ```

use std::path::PathBuf;

pub mod regions;

/// The command-line options every lesson takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonArgs {
    /// The folder figures are written into (created when missing).
    pub out: PathBuf,
    /// Run the small, fast setting the lesson's test uses.
    pub quick: bool,
}

impl LessonArgs {
    /// Parses `--out DIR` and `--quick` from the process arguments.
    ///
    /// # Errors
    /// An unknown argument, or `--out` without a folder, gives a message naming it.
    pub fn from_env(lesson: &str) -> Result<Self, String> {
        Self::parse(lesson, std::env::args().skip(1))
    }

    /// Parses `--out DIR` and `--quick` from the process arguments; on a bad argument (or
    /// `--help`) prints the message to stderr and exits with status 2. For a lesson's `main`.
    pub fn from_env_or_exit(lesson: &str) -> Self {
        Self::from_env(lesson).unwrap_or_else(|msg| {
            eprintln!("{msg}");
            std::process::exit(2)
        })
    }

    /// The lesson's setting: `quick()` when `--quick` was given, `full()` otherwise.
    pub fn pick<C>(&self, quick: impl FnOnce() -> C, full: impl FnOnce() -> C) -> C {
        if self.quick { quick() } else { full() }
    }

    /// Parses `--out DIR` and `--quick` from `args` (without the program name).
    ///
    /// # Errors
    /// An unknown argument, or `--out` without a folder, gives a message naming it.
    pub fn parse(lesson: &str, args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut out = PathBuf::from("runs/lessons").join(lesson);
        let mut quick = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--out" => {
                    out = args
                        .next()
                        .map(PathBuf::from)
                        .ok_or("--out: expected a folder after it")?;
                }
                "--quick" => quick = true,
                "-h" | "--help" => {
                    return Err(format!(
                        "usage: cargo run --release --example {lesson} -- [--out DIR] [--quick]"
                    ));
                }
                other => {
                    return Err(format!(
                        "{other}: unknown argument (expected --out DIR or --quick)"
                    ));
                }
            }
        }
        Ok(LessonArgs { out, quick })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LessonArgs, String> {
        LessonArgs::parse("01-x", args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.out, PathBuf::from("runs/lessons/01-x"));
        assert!(!a.quick);
        let a = parse(&["--quick", "--out", "/tmp/o"]).unwrap();
        assert_eq!((a.out, a.quick), (PathBuf::from("/tmp/o"), true));
        assert!(parse(&["--out"]).unwrap_err().contains("--out"));
        assert!(parse(&["--fast"]).unwrap_err().contains("--fast"));
    }

    #[test]
    fn pick_follows_quick() {
        let setting = |args: &[&str]| parse(args).unwrap().pick(|| "quick", || "full");
        assert_eq!(setting(&["--quick"]), "quick");
        assert_eq!(setting(&["--out", "/tmp/o"]), "full");
    }
}
