//! IDX image and label files, raw or gzipped, read from disk as `train --dataset mnist` reads
//! them (gzip recognised by its first bytes).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// One folder for the whole run: the file is rewritten for every input.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());

fuzz_target!(|data: &[u8]| {
    let path = DIR.path().join("train-images-idx3-ubyte");
    std::fs::write(&path, data).unwrap();
    let _ = ferrograd_data::read_idx_images(&path);
    let _ = ferrograd_data::read_idx_labels(&path);
});
