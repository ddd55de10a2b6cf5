//! IDX reader and writer: round trips (raw and gzipped) and one test per kind of corrupt file,
//! each checking that the error names the file and the problem.

use std::fs;
use std::path::{Path, PathBuf};

use ferrograd_data::{
    DataError, DatasetKind, IdxImages, encode_idx_images, encode_idx_labels, read_idx_dataset,
    read_idx_images, read_idx_labels, write_idx_images, write_idx_labels,
};

fn images(count: usize, rows: usize, cols: usize) -> IdxImages {
    IdxImages {
        count,
        rows,
        cols,
        pixels: (0..count * rows * cols)
            .map(|v| (v * 7 % 256) as u8)
            .collect(),
    }
}

/// Writes a valid image/label pair and returns their paths.
fn write_pair(dir: &Path, labels: &[u8], gz: bool) -> (PathBuf, PathBuf) {
    let img = dir.join("images");
    let lab = dir.join("labels");
    write_idx_images(&img, &images(labels.len(), 3, 2), gz).unwrap();
    write_idx_labels(&lab, labels, gz).unwrap();
    (img, lab)
}

/// Asserts `err` is a format error naming `path` and containing `needle`.
fn assert_format_error(err: DataError, path: &Path, needle: &str) {
    let msg = err.to_string();
    assert!(
        matches!(err, DataError::Format { .. }),
        "not a format error: {msg}"
    );
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name {}: {msg}",
        path.display()
    );
    assert!(msg.contains(needle), "message lacks {needle:?}: {msg}");
}

#[test]
fn round_trip_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    for gz in [false, true] {
        let img = dir.path().join(format!("img-{gz}"));
        let lab = dir.path().join(format!("lab-{gz}"));
        let original = images(5, 4, 3);
        write_idx_images(&img, &original, gz).unwrap();
        write_idx_labels(&lab, &[0, 9, 3, 3, 1], gz).unwrap();
        let on_disk = fs::read(&img).unwrap();
        assert_eq!(on_disk.starts_with(&[0x1f, 0x8b]), gz);
        assert_eq!(read_idx_images(&img).unwrap(), original);
        assert_eq!(read_idx_labels(&lab).unwrap(), vec![0, 9, 3, 3, 1]);

        let ds = read_idx_dataset(&img, &lab, DatasetKind::Mnist, "toy").unwrap();
        assert_eq!((ds.len(), ds.channels, ds.height, ds.width), (5, 1, 4, 3));
        assert_eq!(ds.pixels, original.pixels);
        assert_eq!(ds.max_value, 255.0);
        ds.validate().unwrap();
    }
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // Gzipped content under a raw name, raw content under a .gz name.
    let img = dir.path().join("train-images-idx3-ubyte");
    let lab = dir.path().join("train-labels-idx1-ubyte.gz");
    write_idx_images(&img, &images(2, 2, 2), true).unwrap();
    write_idx_labels(&lab, &[1, 2], false).unwrap();
    assert_eq!(read_idx_images(&img).unwrap(), images(2, 2, 2));
    assert_eq!(read_idx_labels(&lab).unwrap(), vec![1, 2]);
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = write_pair(dir.path(), &[1, 2], false);
    // Labels given where images are expected, and vice versa.
    assert_format_error(read_idx_images(&lab).unwrap_err(), &lab, "magic");
    assert_format_error(read_idx_labels(&img).unwrap_err(), &img, "magic");
    let junk = dir.path().join("junk");
    fs::write(&junk, b"GIF89a not an idx file").unwrap();
    assert_format_error(read_idx_images(&junk).unwrap_err(), &junk, "wrong magic");
}

#[test]
fn truncated_payload() {
    let dir = tempfile::tempdir().unwrap();
    for gz in [false, true] {
        let mut bytes = encode_idx_images(&images(4, 3, 3)).unwrap();
        bytes.truncate(bytes.len() - 5);
        let path = dir.path().join(format!("short-{gz}"));
        let bytes = if gz { gzip(&bytes) } else { bytes };
        fs::write(&path, bytes).unwrap();
        assert_format_error(read_idx_images(&path).unwrap_err(), &path, "truncated");
    }
    let mut labels = encode_idx_labels(&[1, 2, 3]).unwrap();
    labels.pop();
    let path = dir.path().join("short-labels");
    fs::write(&path, labels).unwrap();
    assert_format_error(read_idx_labels(&path).unwrap_err(), &path, "truncated");
}

#[test]
fn trailing_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = encode_idx_images(&images(2, 2, 2)).unwrap();
    bytes.extend_from_slice(&[0, 0, 0]);
    let path = dir.path().join("long");
    fs::write(&path, bytes).unwrap();
    assert_format_error(
        read_idx_images(&path).unwrap_err(),
        &path,
        "3 bytes of trailing",
    );
}

#[test]
fn image_label_count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("images");
    let lab = dir.path().join("labels");
    write_idx_images(&img, &images(3, 2, 2), false).unwrap();
    write_idx_labels(&lab, &[0, 1], true).unwrap();
    let err = read_idx_dataset(&img, &lab, DatasetKind::Mnist, "toy").unwrap_err();
    let msg = err.to_string();
    assert_format_error(err, &img, "3 images");
    assert!(
        msg.contains(&lab.display().to_string()) && msg.contains("2 labels"),
        "{msg}"
    );
}

#[test]
fn label_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = write_pair(dir.path(), &[0, 9, 10], true);
    let err = read_idx_dataset(&img, &lab, DatasetKind::FashionMnist, "toy").unwrap_err();
    assert_format_error(err, &lab, "label 10 of sample 2");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    fs::write(&path, b"").unwrap();
    assert_format_error(read_idx_images(&path).unwrap_err(), &path, "empty file");
    assert_format_error(read_idx_labels(&path).unwrap_err(), &path, "empty file");
}

#[test]
fn corrupt_gzip_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gzip(&encode_idx_labels(&[1, 2, 3]).unwrap());
    let n = bytes.len();
    bytes.truncate(n - 6);
    let path = dir.path().join("broken.gz");
    fs::write(&path, bytes).unwrap();
    assert_format_error(read_idx_labels(&path).unwrap_err(), &path, "gzip");

    let missing = dir.path().join("nope");
    let err = read_idx_images(&missing).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("nope"));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
