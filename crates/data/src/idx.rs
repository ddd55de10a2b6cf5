//! The IDX format of MNIST and Fashion-MNIST: a reader for unsigned-byte image files (magic
//! `0x00000803`) and label files (magic `0x00000801`), raw or gzipped, that checks every count
//! in the header against the payload; and a writer, so tests can build small and corrupt files.
//!
//! Layout (big-endian): 2 zero bytes, a type byte (`0x08` = u8), a rank byte, one u32 per
//! dimension, then the values.

use std::path::Path;

use crate::dataset::{Dataset, DatasetKind};
use crate::error::{DataError, Result};
use crate::files::{gzip, read_maybe_gzip};

/// Magic number of an IDX file of u8 images `[count, rows, cols]`.
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 labels `[count]`.
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// The content of an IDX image file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, row-major.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file, raw or gzipped (recognised by its first bytes, not its name).
///
/// # Errors
/// [`DataError::Io`] when the file cannot be read; [`DataError::Format`] naming the file for a
/// wrong magic number, zero-sized images, a payload shorter or longer than the header says, or
/// corrupt gzip data.
pub fn read_idx_images(path: &Path) -> Result<IdxImages> {
    parse_idx_images(&read_maybe_gzip(path)?, path)
}

/// Reads an IDX label file, raw or gzipped.
///
/// # Errors
/// As [`read_idx_images`].
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    parse_idx_labels(&read_maybe_gzip(path)?, path)
}

/// Parses the (decompressed) bytes of an IDX image file; `path` names it in errors.
///
/// # Errors
/// As [`read_idx_images`].
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    let (dims, payload) = parse_header(bytes, path, IDX_IMAGES_MAGIC, "image")?;
    let [count, rows, cols] = dims[..] else {
        return Err(DataError::format(
            path,
            "image header must have 3 dimensions",
        ));
    };
    if rows == 0 || cols == 0 {
        return Err(DataError::format(
            path,
            format!("images of {rows}x{cols} pixels are empty"),
        ));
    }
    let what = format!("{count} images of {rows}x{cols}");
    check_payload(payload, &[count, rows, cols], &what, path)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: payload.to_vec(),
    })
}

/// Parses the (decompressed) bytes of an IDX label file; `path` names it in errors.
///
/// # Errors
/// As [`read_idx_images`].
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let (dims, payload) = parse_header(bytes, path, IDX_LABELS_MAGIC, "label")?;
    let [count] = dims[..] else {
        return Err(DataError::format(
            path,
            "label header must have 1 dimension",
        ));
    };
    check_payload(payload, &[count], &format!("{count} labels"), path)?;
    Ok(payload.to_vec())
}

/// Reads a pair of IDX files into a [`Dataset`] of `kind` named `name`, checking that the two
/// files hold the same number of samples and that every label is a class of `kind`.
///
/// # Errors
/// As [`read_idx_images`], plus [`DataError::Format`] for disagreeing counts (naming both
/// files) or a label out of range (naming the label file and the sample).
pub fn read_idx_dataset(
    images_path: &Path,
    labels_path: &Path,
    kind: DatasetKind,
    name: &str,
) -> Result<Dataset> {
    let images = read_idx_images(images_path)?;
    let labels = read_idx_labels(labels_path)?;
    idx_dataset(kind, name, (images_path, images), (labels_path, labels))
}

/// Checks a parsed image/label pair against each other and `kind`, and makes a data set.
pub(crate) fn idx_dataset(
    kind: DatasetKind,
    name: &str,
    (images_path, images): (&Path, IdxImages),
    (labels_path, labels): (&Path, Vec<u8>),
) -> Result<Dataset> {
    if images.count != labels.len() {
        return Err(DataError::format(
            images_path,
            format!(
                "holds {} images but {} holds {} labels",
                images.count,
                labels_path.display(),
                labels.len()
            ),
        ));
    }
    let classes = kind.class_names().len();
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        return Err(DataError::format(
            labels_path,
            format!(
                "label {l} of sample {i} is out of range ({kind} has {classes} classes, 0..{})",
                classes.saturating_sub(1)
            ),
        ));
    }
    let mut ds = kind.empty_dataset(name.to_string());
    ds.channels = 1;
    ds.height = images.rows;
    ds.width = images.cols;
    ds.pixels = images.pixels;
    ds.labels = labels;
    Ok(ds)
}

fn parse_header<'a>(
    bytes: &'a [u8],
    path: &Path,
    magic: u32,
    what: &str,
) -> Result<(Vec<usize>, &'a [u8])> {
    if bytes.is_empty() {
        return Err(DataError::format(
            path,
            format!("empty file (expected an IDX {what} file)"),
        ));
    }
    let Some(head) = bytes.get(..4) else {
        return Err(DataError::format(
            path,
            format!("{} bytes is too short for an IDX header", bytes.len()),
        ));
    };
    let got = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if got != magic {
        let other = match got {
            IDX_IMAGES_MAGIC => " (this is an IDX image file)",
            IDX_LABELS_MAGIC => " (this is an IDX label file)",
            _ => "",
        };
        return Err(DataError::format(
            path,
            format!(
                "wrong magic number 0x{got:08x}{other}: expected 0x{magic:08x} for an IDX {what} file"
            ),
        ));
    }
    let rank = usize::from(head[3]);
    let header_len = 4 + 4 * rank;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(DataError::format(
            path,
            format!(
                "truncated header: {} bytes, {header_len} expected",
                bytes.len()
            ),
        ));
    };
    let dims = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    Ok((dims, &bytes[header_len..]))
}

fn check_payload(payload: &[u8], dims: &[usize], what: &str, path: &Path) -> Result<()> {
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            DataError::format(path, format!("header says {what}, which is too large"))
        })?;
    if payload.len() < expected {
        return Err(DataError::format(
            path,
            format!(
                "truncated: the header says {what} ({expected} bytes of data) but the file holds {} bytes of data",
                payload.len()
            ),
        ));
    }
    if payload.len() > expected {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes of trailing data after the {what} ({expected} bytes) the header announces",
                payload.len() - expected
            ),
        ));
    }
    Ok(())
}

fn dim_u32(value: usize, what: &str) -> Result<[u8; 4]> {
    u32::try_from(value)
        .map(u32::to_be_bytes)
        .map_err(|_| DataError::argument("idx", format!("{what} {value} does not fit in u32")))
}

/// Encodes images as the bytes of an (uncompressed) IDX image file.
///
/// # Errors
/// [`DataError::Argument`] when `pixels` does not hold `count * rows * cols` values or a
/// dimension does not fit in 32 bits.
pub fn encode_idx_images(images: &IdxImages) -> Result<Vec<u8>> {
    let expected = images
        .count
        .checked_mul(images.rows)
        .and_then(|v| v.checked_mul(images.cols));
    if expected != Some(images.pixels.len()) {
        return Err(DataError::argument(
            "idx",
            format!(
                "{} pixels cannot be {} images of {}x{}",
                images.pixels.len(),
                images.count,
                images.rows,
                images.cols
            ),
        ));
    }
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    out.extend_from_slice(&IDX_IMAGES_MAGIC.to_be_bytes());
    out.extend_from_slice(&dim_u32(images.count, "count")?);
    out.extend_from_slice(&dim_u32(images.rows, "rows")?);
    out.extend_from_slice(&dim_u32(images.cols, "cols")?);
    out.extend_from_slice(&images.pixels);
    Ok(out)
}

/// Encodes labels as the bytes of an (uncompressed) IDX label file.
///
/// # Errors
/// [`DataError::Argument`] when there are more than `u32::MAX` labels.
pub fn encode_idx_labels(labels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&IDX_LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&dim_u32(labels.len(), "count")?);
    out.extend_from_slice(labels);
    Ok(out)
}

/// Writes an IDX image file (atomically), gzipped when `gzipped` is true.
///
/// ```
/// use ferrograd_data::{IdxImages, read_idx_images, write_idx_images};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("train-images-idx3-ubyte.gz");
/// let images = IdxImages { count: 2, rows: 2, cols: 3, pixels: (0..12).collect() };
/// write_idx_images(&path, &images, true)?;
/// assert_eq!(read_idx_images(&path)?, images);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`encode_idx_images`], plus [`DataError::Io`] when the file cannot be written.
pub fn write_idx_images(path: &Path, images: &IdxImages, gzipped: bool) -> Result<()> {
    write_encoded(path, encode_idx_images(images)?, gzipped)
}

/// Writes an IDX label file (atomically), gzipped when `gzipped` is true.
///
/// # Errors
/// As [`encode_idx_labels`], plus [`DataError::Io`] when the file cannot be written.
pub fn write_idx_labels(path: &Path, labels: &[u8], gzipped: bool) -> Result<()> {
    write_encoded(path, encode_idx_labels(labels)?, gzipped)
}

fn write_encoded(path: &Path, bytes: Vec<u8>, gzipped: bool) -> Result<()> {
    let bytes = if gzipped { gzip(&bytes, path)? } else { bytes };
    Ok(ferrograd_io::write_atomic(path, &bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_errors_are_specific() {
        let p = Path::new("f");
        let msg = |bytes: &[u8]| parse_idx_images(bytes, p).unwrap_err().to_string();
        assert!(msg(&[]).contains("empty file"));
        assert!(msg(&[0, 0]).contains("too short"));
        assert!(msg(&[0, 0, 8, 3, 0, 0]).contains("truncated header"));
        assert!(msg(&[0, 0, 8, 1, 0, 0, 0, 0]).contains("label file"));
        assert!(msg(&[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]).contains("are empty"));
        // A header whose sizes overflow usize on multiplication.
        let mut huge = vec![0, 0, 8, 3];
        huge.extend_from_slice(&[0xff; 12]);
        let m = msg(&huge);
        assert!(m.contains("truncated") || m.contains("too large"), "{m}");
    }

    #[test]
    fn encode_rejects_inconsistent_sizes() {
        let bad = IdxImages {
            count: 2,
            rows: 2,
            cols: 2,
            pixels: vec![0; 7],
        };
        assert!(encode_idx_images(&bad).is_err());
    }
}
