//! File helpers shared by the readers and the downloader: reading a file whole, transparently
//! gunzipping content that starts with the gzip magic bytes, and hashing. Atomic writes come
//! from `ferrograd-io`.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// The two bytes every gzip stream starts with.
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `bytes` starts with the gzip magic bytes.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads `path` whole, gunzipping it when its content (not its name) is gzip.
pub(crate) fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| DataError::io(path, e))?;
    decompress_if_gzip(bytes, path)
}

/// Returns `bytes` gunzipped when they start with the gzip magic bytes, else unchanged;
/// `path` names the source in errors.
pub(crate) fn decompress_if_gzip(bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4));
    MultiGzDecoder::new(bytes.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, format!("corrupt gzip data: {e}")))?;
    Ok(out)
}

/// Gzips `bytes` (default compression).
pub(crate) fn gzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).map_err(|e| DataError::io(path, e))?;
    enc.finish().map_err(|e| DataError::io(path, e))
}

/// The SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_detected_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("a.gz");
        fs::write(&raw, b"plain").unwrap();
        assert_eq!(read_maybe_gzip(&raw).unwrap(), b"plain");
        let gz = dir.path().join("b");
        fs::write(&gz, gzip(b"zipped", &gz).unwrap()).unwrap();
        assert_eq!(read_maybe_gzip(&gz).unwrap(), b"zipped");
        let bad = dir.path().join("c");
        fs::write(&bad, [0x1f, 0x8b, 0, 0]).unwrap();
        let err = read_maybe_gzip(&bad).unwrap_err().to_string();
        assert!(err.contains("corrupt gzip") && err.contains("c"), "{err}");
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
