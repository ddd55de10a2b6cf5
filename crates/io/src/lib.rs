//! # ferrograd-io
//!
//! Crash-consistent file writing: atomic writes through a temporary file beside the
//! destination, fsync, rename. A reader of the destination sees either the old content or the
//! new one, never a half-written file, and a failed or interrupted write leaves nothing behind.
//!
//! - [`write_atomic`] writes a whole buffer;
//! - [`TempFile`] is the mechanism underneath, for content produced piece by piece (a
//!   download): write into it, then [`TempFile::persist`] it, or drop it to remove it;
//! - [`fileset`] replaces a named set of files (a checkpoint) as one, with a manifest of
//!   checksums, and recovers from an interrupted switch.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("runs/out.txt");
//! ferrograd_io::write_atomic(&path, b"done")?;
//! assert_eq!(std::fs::read(&path)?, b"done");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod fileset;

/// A file or folder could not be created, written, synced or renamed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct Error {
    /// The file or folder involved.
    pub path: PathBuf,
    /// What the operating system reported.
    #[source]
    pub source: std::io::Error,
}

impl Error {
    fn new(path: &Path, source: std::io::Error) -> Error {
        Error {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Writes `bytes` to `path` atomically: into a temporary file in the same folder, synced to
/// disk, then renamed over `path`. Creates the folder when needed. On failure nothing is left
/// behind.
///
/// # Errors
/// When the folder cannot be created or the file cannot be written, synced or renamed; the
/// error names the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = TempFile::create_beside(path)?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
}

/// A temporary file beside its final destination, removed on drop unless persisted.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: fs::File,
    keep: bool,
}

impl TempFile {
    /// Creates a new, uniquely named temporary file in the folder of `dest` (creating the
    /// folder when needed).
    ///
    /// # Errors
    /// When the folder cannot be created or no temporary file can be created in it.
    pub fn create_beside(dest: &Path) -> Result<TempFile> {
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::new(&dir, e))?;
        let base = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".to_string());
        let pid = std::process::id();
        let mut last_err = None;
        for attempt in 0..100u32 {
            let path = dir.join(format!(".{base}.{pid}.{attempt}.part"));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        keep: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(Error::new(&path, e)),
            }
        }
        Err(Error::new(
            &dir,
            last_err.unwrap_or_else(|| std::io::Error::other("no free temporary file name")),
        ))
    }

    /// Where the temporary file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `bytes` to the file.
    ///
    /// # Errors
    /// When the write fails; the error names the temporary file.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::new(&self.path, e))
    }

    /// Syncs the file to disk and renames it to `dest`.
    ///
    /// # Errors
    /// When syncing fails (naming the temporary file) or the rename fails (naming `dest`); the
    /// temporary file is then removed.
    pub fn persist(mut self, dest: &Path) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::new(&self.path, e))?;
        fs::rename(&self.path, dest).map_err(|e| Error::new(dest, e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: the file may already be gone.
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn atomic_write_leaves_only_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.bin");
        write_atomic(&dest, b"abc").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"abc");
        let names: Vec<_> = fs::read_dir(dest.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn atomic_write_replaces_existing_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        write_atomic(&dest, b"old, longer content").unwrap();
        write_atomic(&dest, b"new").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out.txt"]);
    }

    #[test]
    fn a_dropped_temporary_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.bin");
        let mut tmp = TempFile::create_beside(&dest).unwrap();
        tmp.write_all(b"partial").unwrap();
        let part = tmp.path().to_path_buf();
        assert!(part.starts_with(dir.path()) && part.exists());
        drop(tmp);
        assert!(!part.exists() && !dest.exists());
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the destination's folder should be: the folder cannot be created.
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("out.bin"), b"abc").unwrap_err();
        assert_eq!(err.path, blocker);
        assert!(
            err.to_string().starts_with(&blocker.display().to_string()),
            "{err}"
        );
        // A folder where the destination file should be: the rename fails, naming it.
        let taken = dir.path().join("taken");
        fs::create_dir(&taken).unwrap();
        fs::write(taken.join("inside"), b"x").unwrap();
        let err = write_atomic(&taken, b"abc").unwrap_err();
        assert_eq!(err.path, taken);
        assert_eq!(names(dir.path()), ["blocker", "taken"]);
    }
}
