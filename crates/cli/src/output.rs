//! Files the command writes: every file is written atomically through `ferrograd-io` (a
//! temporary file in the same folder, synced, then renamed over the target), so an interrupted
//! run never leaves a half-written model or metrics file behind.

use std::path::Path;

use serde::Serialize;

use crate::error::{CliError, Result};

/// Writes `bytes` to `path` atomically (temporary file, sync, rename), creating the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(ferrograd_io::write_atomic(path, bytes)?)
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| CliError::file(path, e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// Writes rows as JSON lines (one object per line), atomically.
pub fn write_json_lines<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        let line = serde_json::to_string(row).map_err(|e| CliError::file(path, e.to_string()))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Reads JSON lines written by [`write_json_lines`].
pub fn read_json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| CliError::file(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}
