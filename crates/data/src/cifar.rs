//! The CIFAR-10 binary format: batch files of 3,073-byte records (one label byte, then 3,072
//! pixel bytes: the red, green and blue 32x32 planes), `data_batch_1.bin` ..
//! `data_batch_5.bin` for training and `test_batch.bin` for testing.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, DatasetKind};
use crate::error::{DataError, Result};
use crate::files::read_maybe_gzip;

/// Pixel bytes of one CIFAR-10 image (3 x 32 x 32).
pub const CIFAR10_IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one CIFAR-10 record: the label, then the image.
pub const CIFAR10_RECORD_BYTES: usize = 1 + CIFAR10_IMAGE_BYTES;
/// The training batch files, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// The folder the official archive unpacks to; searched inside a given folder.
pub const CIFAR10_SUBFOLDER: &str = "cifar-10-batches-bin";

/// The records of one batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarBatch {
    /// `labels.len() * 3072` pixels, record after record, channel-major.
    pub pixels: Vec<u8>,
    /// One label in `0..10` per record.
    pub labels: Vec<u8>,
}

/// Reads one CIFAR-10 batch file (raw, or gzipped as recognised by its first bytes).
///
/// # Errors
/// [`DataError::Io`] when it cannot be read; [`DataError::Format`] naming the file when it is
/// empty, its size is not a multiple of 3,073 bytes, or a label is above 9.
pub fn read_cifar_batch(path: &Path) -> Result<CifarBatch> {
    parse_cifar_batch(&read_maybe_gzip(path)?, path)
}

/// Parses the bytes of a CIFAR-10 batch file; `path` names it in errors.
///
/// # Errors
/// As [`read_cifar_batch`].
pub fn parse_cifar_batch(bytes: &[u8], path: &Path) -> Result<CifarBatch> {
    if bytes.is_empty() {
        return Err(DataError::format(
            path,
            "empty file (expected CIFAR-10 records)",
        ));
    }
    if !bytes.len().is_multiple_of(CIFAR10_RECORD_BYTES) {
        return Err(DataError::format(
            path,
            format!(
                "size {} bytes is not a multiple of the {CIFAR10_RECORD_BYTES}-byte CIFAR-10 record \
                 ({} whole records and {} bytes left over: truncated or not a CIFAR-10 binary batch)",
                bytes.len(),
                bytes.len() / CIFAR10_RECORD_BYTES,
                bytes.len() % CIFAR10_RECORD_BYTES
            ),
        ));
    }
    let n = bytes.len() / CIFAR10_RECORD_BYTES;
    let mut pixels = Vec::with_capacity(n * CIFAR10_IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(CIFAR10_RECORD_BYTES).enumerate() {
        let label = record[0];
        if label > 9 {
            return Err(DataError::format(
                path,
                format!("record {i} has label {label}; CIFAR-10 labels are 0..9"),
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&record[1..]);
    }
    Ok(CifarBatch { pixels, labels })
}

/// Encodes records as the bytes of a CIFAR-10 batch file (for tests and tools).
///
/// # Errors
/// [`DataError::Argument`] when `pixels` does not hold 3,072 bytes per label.
pub fn encode_cifar_batch(batch: &CifarBatch) -> Result<Vec<u8>> {
    if Some(batch.pixels.len()) != batch.labels.len().checked_mul(CIFAR10_IMAGE_BYTES) {
        return Err(DataError::argument(
            "cifar",
            format!(
                "{} pixels are not {} images of {CIFAR10_IMAGE_BYTES} bytes",
                batch.pixels.len(),
                batch.labels.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(batch.labels.len() * CIFAR10_RECORD_BYTES);
    for (label, image) in batch
        .labels
        .iter()
        .zip(batch.pixels.chunks_exact(CIFAR10_IMAGE_BYTES))
    {
        out.push(*label);
        out.extend_from_slice(image);
    }
    Ok(out)
}

/// The folders where CIFAR-10 batch files are looked for under `dir`: `dir` itself and
/// `dir/cifar-10-batches-bin`.
pub fn cifar10_candidate_dirs(dir: &Path) -> [PathBuf; 2] {
    [dir.to_path_buf(), dir.join(CIFAR10_SUBFOLDER)]
}

/// Whether `dir` holds all six CIFAR-10 batch files.
pub fn has_cifar10_files(dir: &Path) -> bool {
    CIFAR10_TRAIN_FILES
        .iter()
        .chain(std::iter::once(&CIFAR10_TEST_FILE))
        .all(|f| dir.join(f).is_file())
}

/// All six CIFAR-10 file names.
pub(crate) fn cifar10_file_names() -> Vec<String> {
    CIFAR10_TRAIN_FILES
        .iter()
        .chain(std::iter::once(&CIFAR10_TEST_FILE))
        .map(|s| s.to_string())
        .collect()
}

/// Loads CIFAR-10 (train, test) from `dir` or its `cifar-10-batches-bin/` subfolder.
///
/// # Errors
/// [`DataError::Missing`] when neither folder holds all six batch files; otherwise as
/// [`read_cifar_batch`].
pub fn load_cifar10(dir: &Path) -> Result<(Dataset, Dataset)> {
    let dirs = cifar10_candidate_dirs(dir);
    match dirs.iter().find(|d| has_cifar10_files(d)) {
        Some(found) => read_cifar10_folder(found),
        None => Err(DataError::Missing {
            dataset: DatasetKind::Cifar10.name().to_string(),
            dirs: dirs.to_vec(),
            files: cifar10_file_names(),
            hint: cifar10_hint(),
        }),
    }
}

/// The advice given when CIFAR-10 is not found.
pub(crate) fn cifar10_hint() -> String {
    "CIFAR-10 is not downloaded automatically: get the binary version (cifar-10-binary.tar.gz) \
     from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass the folder as \
     --data-dir."
        .to_string()
}

/// Loads CIFAR-10 (train, test) from the six batch files in exactly `dir`.
///
/// # Errors
/// As [`read_cifar_batch`], for the first file that fails.
pub fn read_cifar10_folder(dir: &Path) -> Result<(Dataset, Dataset)> {
    let mut train = DatasetKind::Cifar10.empty_dataset("cifar10-train".to_string());
    for name in CIFAR10_TRAIN_FILES {
        let batch = read_cifar_batch(&dir.join(name))?;
        train.pixels.extend_from_slice(&batch.pixels);
        train.labels.extend_from_slice(&batch.labels);
    }
    let batch = read_cifar_batch(&dir.join(CIFAR10_TEST_FILE))?;
    let mut test = DatasetKind::Cifar10.empty_dataset("cifar10-test".to_string());
    test.pixels = batch.pixels;
    test.labels = batch.labels;
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_parse_round_trip() {
        let batch = CifarBatch {
            pixels: (0..2 * CIFAR10_IMAGE_BYTES)
                .map(|v| (v % 251) as u8)
                .collect(),
            labels: vec![3, 9],
        };
        let bytes = encode_cifar_batch(&batch).unwrap();
        assert_eq!(bytes.len(), 2 * CIFAR10_RECORD_BYTES);
        assert_eq!(parse_cifar_batch(&bytes, Path::new("b")).unwrap(), batch);
    }
}
