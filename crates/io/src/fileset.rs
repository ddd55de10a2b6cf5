//! Named sets of files replaced as one: a checkpoint (model, optimizer state, config, metrics)
//! is either the previous complete set or the new complete one, whatever instant the process
//! dies at.
//!
//! Layout of the set `NAME` in a folder `DIR`:
//!
//! ```text
//! DIR/NAME/            the current set: its files and MANIFEST (sha256sum format, written last)
//! DIR/.NAME.new/       the next set while it is being written (never read)
//! DIR/.NAME.old/       the previous set during the switch (read while DIR/NAME is missing)
//! ```
//!
//! [`write_set`] writes every file into `.NAME.new/`, syncs each file, writes `MANIFEST` (the
//! SHA-256 of each file, so `sha256sum -c MANIFEST` checks the set by hand), syncs it and the
//! folder, then renames `NAME` to `.NAME.old`, `.NAME.new` to `NAME` (syncing `DIR` after each
//! rename) and removes `.NAME.old`. [`read_set`] reads `NAME`, or `.NAME.old` when the process
//! died between the two renames, and checks every file against the manifest. [`recover`]
//! (called by [`write_set`], and by a writer when it starts) puts an interrupted switch back
//! and removes what an interrupted write left behind.
//!
//! Crash tests: with the `fault-injection` feature, the process exits with code
//! [`FAULT_EXIT_CODE`] right after its N-th filesystem step (N from the environment variable
//! `FERROGRAD_FAULT_AFTER_FS_STEPS`), so a test can stop a save at every step.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The file listing a set's files and their SHA-256, written last.
pub const MANIFEST: &str = "MANIFEST";

/// The exit code of a process stopped by the fault-injection hook.
pub const FAULT_EXIT_CODE: i32 = 86;

/// The files of a set as read back, checked against its manifest.
#[derive(Debug, Clone)]
pub struct FileSet {
    /// The folder the files were read from (`DIR/NAME`, or `DIR/.NAME.old` mid-switch).
    pub dir: PathBuf,
    /// `(name, content)` in manifest order.
    pub files: Vec<(String, Vec<u8>)>,
}

impl FileSet {
    /// The content of the file `name`, if the set has it.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The path of the file `name` inside the set's folder (for messages).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn new_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.new"))
}

fn old_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.old"))
}

/// One filesystem step of a save; the fault-injection hook may end the process after it.
fn step<T>(result: std::io::Result<T>, path: &Path) -> Result<T> {
    let value = result.map_err(|e| Error::new(path, e))?;
    #[cfg(feature = "fault-injection")]
    fault::after_step();
    Ok(value)
}

#[cfg(feature = "fault-injection")]
mod fault {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static STEPS: AtomicU64 = AtomicU64::new(0);
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();

    /// Counts a filesystem step; exits after the configured one, as `kill -9` would (no
    /// destructors run, nothing is cleaned up).
    pub(super) fn after_step() {
        let limit = LIMIT.get_or_init(|| {
            std::env::var("FERROGRAD_FAULT_AFTER_FS_STEPS")
                .ok()
                .and_then(|v| v.parse().ok())
        });
        let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
        if *limit == Some(n) {
            std::process::exit(super::FAULT_EXIT_CODE);
        }
    }
}

/// Syncs a folder, so the names created or renamed in it are on disk (Unix; elsewhere a
/// folder cannot be opened for syncing and the rename itself is what the platform offers).
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    let synced = fs::File::open(dir).and_then(|d| d.sync_all());
    #[cfg(not(unix))]
    let synced = Ok(());
    step(synced, dir)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest's text: one `SHA256  NAME` line per file.
fn manifest_text(files: &[(&str, &[u8])]) -> String {
    files
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", hex(&Sha256::digest(bytes))))
        .collect()
}

fn check_name(dir: &Path, name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\n']);
    if plain {
        Ok(())
    } else {
        Err(Error::new(
            &dir.join(name),
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a set's files need plain names (no folders, not starting with '.')",
            ),
        ))
    }
}

/// Writes `files` as the set `name` in `dir`, replacing the previous set in one switch: a
/// reader sees the previous complete set or the new complete one, never a mix. Creates `dir`
/// when needed.
///
/// ```
/// use ferrograd_io::fileset::{read_set, write_set};
/// let dir = tempfile::tempdir()?;
/// write_set(dir.path(), "checkpoint", &[("a.txt", b"one"), ("b.txt", b"two")])?;
/// write_set(dir.path(), "checkpoint", &[("a.txt", b"three")])?;
/// let set = read_set(dir.path(), "checkpoint")?.expect("a set");
/// assert_eq!(set.get("a.txt"), Some(&b"three"[..]));
/// assert_eq!(set.get("b.txt"), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// When a file or folder cannot be created, written, synced or renamed (the error names it),
/// or a file name is not plain; the previous set is then still the current one.
pub fn write_set(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> Result<()> {
    check_name(dir, name)?;
    for (file, _) in files {
        check_name(dir, file)?;
        if *file == MANIFEST {
            return Err(Error::new(
                &dir.join(name).join(file),
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "MANIFEST is the set's own file",
                ),
            ));
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::new(dir, e))?;
    recover(dir, name)?;
    let staging = new_dir(dir, name);
    step(fs::create_dir(&staging), &staging)?;
    for (file, bytes) in files {
        write_synced(&staging.join(file), bytes)?;
    }
    write_synced(&staging.join(MANIFEST), manifest_text(files).as_bytes())?;
    sync_dir(&staging)?;
    let current = dir.join(name);
    let old = old_dir(dir, name);
    if current.exists() {
        step(fs::rename(&current, &old), &current)?;
        sync_dir(dir)?;
    }
    step(fs::rename(&staging, &current), &current)?;
    sync_dir(dir)?;
    if old.exists() {
        step(fs::remove_dir_all(&old), &old)?;
    }
    Ok(())
}

/// Creates `path`, writes `bytes` and syncs it (two steps).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = step(
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes).map(|()| f)),
        path,
    )?;
    step(file.sync_all(), path)?;
    file.flush().map_err(|e| Error::new(path, e))
}

/// Puts an interrupted switch of the set `name` in `dir` back and removes what an interrupted
/// write left behind: afterwards `dir/name` is the last complete set (or absent when there was
/// none) and neither `.name.new` nor `.name.old` exists.
///
/// # Errors
/// When a leftover folder cannot be renamed or removed; the error names it.
pub fn recover(dir: &Path, name: &str) -> Result<()> {
    let current = dir.join(name);
    let staging = new_dir(dir, name);
    let old = old_dir(dir, name);
    if !current.exists() && old.exists() {
        // Died between the two renames: the previous set is complete, the new one is
        // discarded (a reader saw the previous one meanwhile).
        step(fs::rename(&old, &current), &old)?;
        sync_dir(dir)?;
    }
    for leftover in [&staging, &old] {
        if leftover.exists() {
            step(fs::remove_dir_all(leftover), leftover)?;
        }
    }
    Ok(())
}

/// Removes the temporary files that interrupted atomic writes ([`crate::write_atomic`]) left
/// in `dir` (`.NAME.PID.N.part`). Returns how many were removed.
///
/// # Errors
/// When `dir` cannot be listed or a temporary file cannot be removed.
pub fn remove_temporaries(dir: &Path) -> Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::new(dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::new(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".part") && entry.path().is_file() {
            fs::remove_file(entry.path()).map_err(|e| Error::new(&entry.path(), e))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the set `name` from `dir` (with any leftovers of an interrupted write).
///
/// # Errors
/// When a folder cannot be removed; the error names it.
pub fn remove_set(dir: &Path, name: &str) -> Result<()> {
    for path in [dir.join(name), new_dir(dir, name), old_dir(dir, name)] {
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| Error::new(&path, e))?;
        }
    }
    Ok(())
}

/// Whether `dir` holds the set `name` (complete, or mid-switch).
pub fn has_set(dir: &Path, name: &str) -> bool {
    dir.join(name).join(MANIFEST).is_file() || old_dir(dir, name).join(MANIFEST).is_file()
}

/// Reads the set `name` of `dir` without changing anything: `dir/name`, or the previous set
/// when the process died between the two renames of a switch. Every file is checked against
/// the manifest. `Ok(None)` when `dir` holds no such set.
///
/// # Errors
/// When a file cannot be read, the manifest is malformed, or a file is missing or does not
/// match its checksum; the error names the file.
pub fn read_set(dir: &Path, name: &str) -> Result<Option<FileSet>> {
    let current = dir.join(name);
    let folder = if current.join(MANIFEST).is_file() {
        current
    } else if old_dir(dir, name).join(MANIFEST).is_file() {
        old_dir(dir, name)
    } else {
        return Ok(None);
    };
    read_folder(&folder).map(Some)
}

/// Reads a set's folder and checks each file against its manifest.
///
/// # Errors
/// As [`read_set`].
pub fn read_folder(folder: &Path) -> Result<FileSet> {
    let invalid = |path: &Path, msg: String| {
        Error::new(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, msg),
        )
    };
    let manifest_path = folder.join(MANIFEST);
    let text = fs::read_to_string(&manifest_path).map_err(|e| Error::new(&manifest_path, e))?;
    let mut files = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let (sum, file) = line.split_once("  ").ok_or_else(|| {
            invalid(
                &manifest_path,
                format!("line {}: expected `SHA256  NAME`", i + 1),
            )
        })?;
        let path = folder.join(file);
        let bytes = fs::read(&path).map_err(|e| Error::new(&path, e))?;
        if hex(&Sha256::digest(&bytes)) != sum {
            return Err(invalid(
                &path,
                "does not match the checksum in its MANIFEST: the file was changed or damaged"
                    .into(),
            ));
        }
        files.push((file.to_string(), bytes));
    }
    Ok(FileSet {
        dir: folder.to_path_buf(),
        files,
    })
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
    fn a_set_replaces_the_previous_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), "ck", &[("a", b"1"), ("b", b"2")]).unwrap();
        write_set(dir.path(), "ck", &[("a", b"3")]).unwrap();
        assert_eq!(names(dir.path()), ["ck"]);
        assert_eq!(names(&dir.path().join("ck")), [MANIFEST, "a"]);
        let set = read_set(dir.path(), "ck").unwrap().unwrap();
        assert_eq!(set.files, [("a".to_string(), b"3".to_vec())]);
        assert!(read_set(dir.path(), "other").unwrap().is_none());
    }

    #[test]
    fn an_interrupted_switch_reads_and_recovers_the_previous_set() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), "ck", &[("a", b"old")]).unwrap();
        // The state after the first rename of a switch: the new set complete in .ck.new,
        // the previous one moved to .ck.old.
        fs::rename(dir.path().join("ck"), dir.path().join(".ck.old")).unwrap();
        fs::create_dir(dir.path().join(".ck.new")).unwrap();
        fs::write(dir.path().join(".ck.new/a"), b"half").unwrap();
        let set = read_set(dir.path(), "ck").unwrap().unwrap();
        assert_eq!(set.get("a"), Some(&b"old"[..]));
        assert!(has_set(dir.path(), "ck"));
        recover(dir.path(), "ck").unwrap();
        assert_eq!(names(dir.path()), ["ck"]);
        write_set(dir.path(), "ck", &[("a", b"new")]).unwrap();
        let set = read_set(dir.path(), "ck").unwrap().unwrap();
        assert_eq!(set.get("a"), Some(&b"new"[..]));
    }

    #[test]
    fn a_changed_file_fails_its_checksum_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_set(dir.path(), "ck", &[("a", b"1")]).unwrap();
        fs::write(dir.path().join("ck/a"), b"2").unwrap();
        let err = read_set(dir.path(), "ck").unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(err.path.ends_with("ck/a"));
        fs::remove_file(dir.path().join("ck/a")).unwrap();
        assert!(read_set(dir.path(), "ck").is_err());
        for bad in ["", "../x", ".hidden", "a/b", MANIFEST] {
            assert!(write_set(dir.path(), "ck", &[(bad, b"")]).is_err(), "{bad}");
        }
        assert!(write_set(dir.path(), ".ck", &[("a", b"")]).is_err());
    }

    #[test]
    fn temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".model.safetensors.12.0.part"), b"x").unwrap();
        fs::write(dir.path().join("keep.part"), b"x").unwrap();
        assert_eq!(remove_temporaries(dir.path()).unwrap(), 1);
        assert_eq!(names(dir.path()), ["keep.part"]);
        assert_eq!(remove_temporaries(&dir.path().join("missing")).unwrap(), 0);
        remove_set(dir.path(), "none").unwrap();
    }
}
