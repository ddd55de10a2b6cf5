//! The UCI optical handwritten digits (1,797 grey 8x8 images, values 0..16), embedded in the
//! crate as `assets/digits.csv.gz`, and the CSV parser for that file (65 integers a row: 64
//! pixels, then the label; no header). The default train/test split is fixed.

use std::path::{Path, PathBuf};

use crate::dataset::{Dataset, DatasetKind};
use crate::error::{DataError, Result};
use crate::files::{decompress_if_gzip, read_maybe_gzip};

/// The embedded `digits.csv.gz` (see `assets/README.md` for its origin and license).
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../assets/digits.csv.gz");
/// SHA-256 of [`DIGITS_CSV_GZ`].
pub const DIGITS_CSV_GZ_SHA256: &str =
    "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";
/// Samples in the full data set.
pub const DIGITS_SAMPLES: usize = 1797;
/// The fraction of samples in the default test set.
pub const DIGITS_TEST_FRACTION: f64 = 0.2;
/// The seed of the default (stratified) train/test split.
pub const DIGITS_SPLIT_SEED: u64 = 0;
/// File names looked for in a data folder, in order, before the embedded copy is used.
pub const DIGITS_FILE_NAMES: [&str; 2] = ["digits.csv.gz", "digits.csv"];

const PIXELS: usize = 64;
const COLUMNS: usize = PIXELS + 1;
const MAX_VALUE: u8 = 16;

/// Parses the digits CSV (raw, or gzipped as recognised by its first bytes) into one
/// [`Dataset`] named `name`; `path` names the source in errors. Blank lines are skipped.
///
/// # Errors
/// [`DataError::Format`] naming `path` and the 1-based line number for a row without 65
/// values, a value that is not an integer in 0..16, or a label outside 0..9; and for a file
/// with no rows.
pub fn parse_digits_csv(bytes: &[u8], path: &Path, name: &str) -> Result<Dataset> {
    let bytes = decompress_if_gzip(bytes.to_vec(), path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| DataError::format(path, format!("not UTF-8 text: {e}")))?;
    let mut ds = DatasetKind::Digits.empty_dataset(name.to_string());
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != COLUMNS {
            return Err(DataError::format(
                path,
                format!(
                    "line {line_no}: expected {COLUMNS} comma-separated values (64 pixels and a label), found {}",
                    fields.len()
                ),
            ));
        }
        for (col, field) in fields[..PIXELS].iter().enumerate() {
            ds.pixels.push(parse_value(
                field,
                MAX_VALUE,
                path,
                line_no,
                col + 1,
                "pixel",
            )?);
        }
        ds.labels.push(parse_value(
            fields[PIXELS],
            9,
            path,
            line_no,
            COLUMNS,
            "label",
        )?);
    }
    if ds.is_empty() {
        return Err(DataError::format(path, "no data rows"));
    }
    Ok(ds)
}

/// Parses an integer in `0..=max`, also accepting an integral float such as `16.0`.
fn parse_value(
    field: &str,
    max: u8,
    path: &Path,
    line_no: usize,
    column: usize,
    what: &str,
) -> Result<u8> {
    let value = field
        .parse::<u8>()
        .ok()
        .or_else(|| {
            let v = field.parse::<f64>().ok()?;
            (v.fract() == 0.0 && (0.0..=255.0).contains(&v)).then_some(v as u8)
        })
        .filter(|&v| v <= max);
    value.ok_or_else(|| {
        DataError::format(
            path,
            format!(
                "line {line_no}, column {column}: {what} {field:?} is not an integer in 0..{max}"
            ),
        )
    })
}

/// All 1,797 embedded samples as one data set named `digits`.
///
/// # Errors
/// Only if the embedded file were corrupt ([`DataError::Format`]).
pub fn embedded_digits() -> Result<Dataset> {
    parse_digits_csv(
        DIGITS_CSV_GZ,
        Path::new("<embedded assets/digits.csv.gz>"),
        "digits",
    )
}

/// The digits CSV in `dir`, if it holds one (see [`DIGITS_FILE_NAMES`]).
pub fn find_digits_file(dir: &Path) -> Option<PathBuf> {
    DIGITS_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// The default digits split, `(train, test)`: a stratified split with
/// [`DIGITS_TEST_FRACTION`] and [`DIGITS_SPLIT_SEED`], the same on every run. Reads
/// `file` when given, else the embedded copy.
///
/// # Errors
/// As [`parse_digits_csv`], and [`DataError::Io`] when `file` cannot be read.
pub fn load_digits(file: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let all = match file {
        Some(path) => parse_digits_csv(&read_maybe_gzip(path)?, path, "digits")?,
        None => embedded_digits()?,
    };
    let (mut train, mut test) = all.stratified_split(DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)?;
    train.name = "digits-train".to_string();
    test.name = "digits-test".to_string();
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::sha256_hex;

    #[test]
    fn embedded_file_has_the_published_checksum() {
        assert_eq!(sha256_hex(DIGITS_CSV_GZ), DIGITS_CSV_GZ_SHA256);
    }

    #[test]
    fn embedded_digits_parse() {
        let ds = embedded_digits().unwrap();
        assert_eq!(ds.len(), DIGITS_SAMPLES);
        assert_eq!(ds.pixels.len(), DIGITS_SAMPLES * 64);
        assert!(ds.pixels.iter().all(|&p| p <= 16));
        assert!(ds.pixels.contains(&16));
        let hist = ds.label_histogram();
        assert_eq!(hist.len(), 10);
        assert!(hist.iter().all(|&c| (170..=190).contains(&c)), "{hist:?}");
        assert_eq!(hist.iter().sum::<usize>(), DIGITS_SAMPLES);
        // The first rows of the file are a 0, a 1 and a 2.
        assert_eq!(&ds.labels[..3], &[0, 1, 2]);
        ds.validate().unwrap();
    }

    #[test]
    fn default_split_is_fixed() {
        let (train, test) = load_digits(None).unwrap();
        assert_eq!(train.len() + test.len(), DIGITS_SAMPLES);
        assert!((355..=365).contains(&test.len()), "{}", test.len());
        assert_eq!(load_digits(None).unwrap().1, test);
        assert_eq!(test.name, "digits-test");
    }

    #[test]
    fn values_accept_integral_floats_only() {
        let p = Path::new("x");
        assert_eq!(parse_value("16.0", 16, p, 1, 1, "pixel").unwrap(), 16);
        assert!(parse_value("17", 16, p, 1, 1, "pixel").is_err());
        assert!(parse_value("1.5", 16, p, 1, 1, "pixel").is_err());
        assert!(parse_value("-1", 16, p, 1, 1, "pixel").is_err());
        assert!(parse_value("nan", 16, p, 1, 1, "pixel").is_err());
    }
}
