//! Files the command writes and their encodings. Single files (graphs) are written atomically
//! through `ferrograd-io` (a temporary file in the same folder, synced, then renamed over the
//! target); a run's checkpoint is a set of files replaced as one (`run_folder`), built from
//! the bytes these helpers produce.

use std::path::Path;

use serde::Serialize;

use crate::error::{CliError, Result};

/// Writes `bytes` to `path` atomically (temporary file, sync, rename), creating the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(ferrograd_io::write_atomic(path, bytes)?)
}

/// A value as pretty JSON (`file` names it in errors).
pub fn json(file: &str, value: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| CliError::file(file, e.to_string()))
}

/// Rows as JSON lines, one object per line (`file` names them in errors).
pub fn json_lines<T: Serialize>(file: &str, rows: &[T]) -> Result<String> {
    let mut text = String::new();
    for row in rows {
        let line = serde_json::to_string(row).map_err(|e| CliError::file(file, e.to_string()))?;
        text.push_str(&line);
        text.push('\n');
    }
    Ok(text)
}

/// Parses JSON lines written by [`json_lines`]; errors name `path` and the line.
pub fn parse_json_lines<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<Vec<T>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| CliError::file(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}
