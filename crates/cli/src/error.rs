//! The command's error type: every failure names the file, flag or data set involved.

use std::path::PathBuf;

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A tensor or model operation failed.
    #[error(transparent)]
    Core(#[from] ferrograd_core::Error),
    /// A data set could not be found, read or batched.
    #[error(transparent)]
    Data(#[from] ferrograd_data::DataError),
    /// A figure could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] ferrograd_plot::PlotError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file exists but its content is not what was expected.
    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },
    /// An option's value is invalid in combination with others.
    #[error("{flag}: {msg}")]
    Flag { flag: &'static str, msg: String },
}

/// Results of the command.
pub type Result<T> = std::result::Result<T, CliError>;

impl From<ferrograd_io::Error> for CliError {
    fn from(e: ferrograd_io::Error) -> Self {
        CliError::io(e.path, e.source)
    }
}

impl CliError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        CliError::File {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
