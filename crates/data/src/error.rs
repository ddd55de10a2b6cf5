//! The one error type of the data crate. Every variant names the file, URL or folder involved
//! and what was wrong with it, so a message alone tells the user what to fix.

use std::path::{Path, PathBuf};

/// Errors from reading, downloading and batching data sets. Nothing read from a file, a server
/// or an argument makes this crate panic: it comes back as one of these.
// Fields are named for what they hold; each variant's doc and message explain them.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or folder could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file whose content is not what its format requires: wrong magic number, counts that
    /// disagree, truncated or trailing data, a label out of range, a malformed CSV row.
    #[error("{path}: {msg}")]
    Format { path: PathBuf, msg: String },
    /// Content whose SHA-256 differs from the published one. `location` is the file or URL.
    #[error("{location}: SHA-256 mismatch: expected {expected}, got {got}")]
    Checksum {
        location: String,
        expected: String,
        got: String,
    },
    /// A download that failed (no connection, HTTP error status, broken transfer).
    #[error(
        "download of {url} failed: {msg}\n(offline? put the files into the folder given as --data-dir instead)"
    )]
    Download { url: String, msg: String },
    /// A data set whose files were found in none of the folders searched.
    #[error(
        "{dataset}: data set not found. Expected the files {} in one of the folders {}. {hint}",
        .files.join(", "),
        display_dirs(.dirs)
    )]
    Missing {
        dataset: String,
        dirs: Vec<PathBuf>,
        files: Vec<String>,
        hint: String,
    },
    /// An argument out of its range (a split fraction, a batch size, an index, a name).
    #[error("{what}: {msg}")]
    Argument { what: &'static str, msg: String },
    /// A tensor could not be built from a batch.
    #[error(transparent)]
    Tensor(#[from] ferrograd_core::Error),
}

impl From<ferrograd_io::Error> for DataError {
    fn from(e: ferrograd_io::Error) -> DataError {
        DataError::Io {
            path: e.path,
            source: e.source,
        }
    }
}

fn display_dirs(dirs: &[PathBuf]) -> String {
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    names.join(", ")
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// An [`DataError::Io`] error for `path`.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A [`DataError::Format`] error for `path`.
    pub(crate) fn format(path: &Path, msg: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    /// A [`DataError::Argument`] error.
    pub(crate) fn argument(what: &'static str, msg: impl Into<String>) -> DataError {
        DataError::Argument {
            what,
            msg: msg.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_the_problem() {
        let e = DataError::format(Path::new("/d/x.idx"), "wrong magic");
        assert_eq!(e.to_string(), "/d/x.idx: wrong magic");
        let e = DataError::Missing {
            dataset: "mnist".into(),
            dirs: vec![PathBuf::from("/a"), PathBuf::from("/b")],
            files: vec!["f1".into(), "f2".into()],
            hint: "Pass --data-dir.".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("f1, f2") && msg.contains("/a, /b"), "{msg}");
        let e = DataError::Download {
            url: "http://h/f".into(),
            msg: "HTTP 404".into(),
        };
        assert!(e.to_string().contains("--data-dir"));
    }
}
