//! CIFAR-10 batches: a synthetic good set of six files (in a folder and in the
//! `cifar-10-batches-bin/` subfolder) and the bad cases.

use std::fs;
use std::path::Path;

use ferrograd_data::{
    CIFAR10_IMAGE_BYTES, CIFAR10_RECORD_BYTES, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, CifarBatch,
    DataError, DataSource, DatasetKind, encode_cifar_batch, load, load_cifar10, read_cifar_batch,
};

/// A batch of `n` records whose labels and pixels encode the batch number `b`.
fn batch(b: u8, n: usize) -> CifarBatch {
    CifarBatch {
        labels: (0..n).map(|i| ((usize::from(b) + i) % 10) as u8).collect(),
        pixels: (0..n * CIFAR10_IMAGE_BYTES)
            .map(|v| (v as u8).wrapping_add(b))
            .collect(),
    }
}

fn write_set(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    for (b, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        let bytes = encode_cifar_batch(&batch(b as u8, 3)).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    }
    let bytes = encode_cifar_batch(&batch(9, 2)).unwrap();
    fs::write(dir.join(CIFAR10_TEST_FILE), bytes).unwrap();
}

#[test]
fn loads_six_batches_from_folder_or_subfolder() {
    let dir = tempfile::tempdir().unwrap();
    write_set(&dir.path().join("cifar-10-batches-bin"));
    let (train, test) = load_cifar10(dir.path()).unwrap();
    assert_eq!((train.len(), test.len()), (15, 2));
    assert_eq!((train.channels, train.height, train.width), (3, 32, 32));
    assert_eq!(train.features(), CIFAR10_IMAGE_BYTES);
    assert_eq!(train.class_names[0], "airplane");
    // Batch 2's first record (sample 6) starts with pixel 0 + 2 and has label 2.
    assert_eq!(train.labels[6], 2);
    assert_eq!(train.image(6).unwrap()[0], 2);
    assert_eq!(test.labels, vec![9, 0]);
    train.validate().unwrap();

    // Through `load`, with the files directly in the data folder.
    let flat = tempfile::tempdir().unwrap();
    write_set(flat.path());
    let src = DataSource {
        data_dir: Some(flat.path().to_path_buf()),
        cache_dir: flat.path().join("cache"),
        download: false,
    };
    let (train2, _) = load(DatasetKind::Cifar10, &src).unwrap();
    assert_eq!(train2, train);
}

#[test]
fn size_not_a_multiple_of_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    let mut bytes = encode_cifar_batch(&batch(0, 2)).unwrap();
    bytes.truncate(CIFAR10_RECORD_BYTES + 100);
    fs::write(&path, bytes).unwrap();
    let err = read_cifar_batch(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Format { .. }), "{msg}");
    assert!(
        msg.contains("data_batch_1.bin") && msg.contains("multiple of the 3073"),
        "{msg}"
    );
}

#[test]
fn label_above_nine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test_batch.bin");
    let mut bytes = encode_cifar_batch(&batch(0, 3)).unwrap();
    bytes[2 * CIFAR10_RECORD_BYTES] = 10;
    fs::write(&path, bytes).unwrap();
    let msg = read_cifar_batch(&path).unwrap_err().to_string();
    assert!(
        msg.contains("test_batch.bin") && msg.contains("record 2 has label 10"),
        "{msg}"
    );
}

#[test]
fn empty_batch_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_3.bin");
    fs::write(&path, b"").unwrap();
    let msg = read_cifar_batch(&path).unwrap_err().to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("empty"),
        "{msg}"
    );
}

#[test]
fn a_bad_batch_in_a_set_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    fs::write(dir.path().join("data_batch_4.bin"), [0u8; 10]).unwrap();
    let msg = load_cifar10(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("data_batch_4.bin"), "{msg}");
}

#[test]
fn missing_files_list_what_is_expected_where() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    fs::remove_file(dir.path().join("data_batch_5.bin")).unwrap();
    let err = load_cifar10(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }), "{msg}");
    assert!(
        msg.contains("data_batch_5.bin") && msg.contains("test_batch.bin"),
        "{msg}"
    );
    assert!(msg.contains("cifar-10-batches-bin"), "{msg}");

    let src = DataSource {
        data_dir: None,
        cache_dir: dir.path().join("cache"),
        download: true,
    };
    let msg = load(DatasetKind::Cifar10, &src).unwrap_err().to_string();
    assert!(
        msg.contains("cifar10") && msg.contains("--data-dir"),
        "{msg}"
    );
}
