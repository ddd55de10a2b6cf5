//! # ferrograd-data
//!
//! ferrograd's data sets and mini-batches: the UCI 8x8 digits (embedded, so the default job
//! runs offline), MNIST and Fashion-MNIST from IDX files (found in a data folder or a cache,
//! or downloaded when allowed), CIFAR-10 from its binary batches, and the user's own data:
//! folders of PNG and JPEG images, and CSV tables.
//!
//! Layout of the crate:
//! - `error`: [`DataError`], naming the file, URL or folder and the problem;
//! - `dataset`: [`Dataset`] (u8 pixels and labels in memory), splits, [`DatasetKind`];
//! - `idx`, `cifar`, `digits`: the three file formats, each checked against its header;
//! - `download`: mirrors, checksums and atomic, verified downloads;
//! - `load`: where each data set is looked for ([`load`], [`DataSource`]);
//! - `folder`: image folders in torchvision's layout, PNG and JPEG decoded and resized
//!   ([`read_image_folder`]), held in memory or streamed from disk ([`ImageFiles`]);
//! - `table`: CSV tables of numeric features and a label column ([`read_csv_table`]);
//! - `loader`: seeded, shuffled mini-batches of [`Samples`] prepared on background threads
//!   ([`Loader`]);
//! - `augment`: random shifts and flips of training images ([`Augment`]);
//! - [`toy`]: small seeded 2-D sets for lessons and tests (AND/OR/XOR, two moons, circles) and
//!   the grid a model is evaluated on to draw its decision regions.
//!
//! ```
//! use std::sync::Arc;
//! use ferrograd_data::{DataSource, DatasetKind, Loader, LoaderConfig, Normalize, load};
//! let src = DataSource { data_dir: None, cache_dir: "unused".into(), download: false };
//! let (train, test) = load(DatasetKind::Digits, &src)?;
//! assert_eq!(train.len() + test.len(), 1797);
//! let config = LoaderConfig {
//!     batch_size: 32,
//!     normalize: Normalize::from_dataset(&train),
//!     ..Default::default()
//! };
//! let loader = Loader::new(Arc::new(train), config)?;
//! for batch in loader.epoch(0).take(2) {
//!     let batch = batch?;
//!     assert_eq!(batch.x.shape(), &[32, 64]);
//! }
//! # Ok::<(), ferrograd_data::DataError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod augment;
mod cifar;
mod dataset;
mod digits;
mod download;
mod error;
mod files;
mod folder;
mod idx;
mod load;
mod loader;
mod table;
pub mod toy;

pub use augment::Augment;
pub use cifar::{
    CIFAR10_IMAGE_BYTES, CIFAR10_RECORD_BYTES, CIFAR10_SUBFOLDER, CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES, CifarBatch, cifar10_candidate_dirs, encode_cifar_batch, has_cifar10_files,
    load_cifar10, parse_cifar_batch, read_cifar_batch, read_cifar10_folder,
};
pub use dataset::{Dataset, DatasetKind};
pub use digits::{
    DIGITS_CSV_GZ, DIGITS_CSV_GZ_SHA256, DIGITS_FILE_NAMES, DIGITS_SAMPLES, DIGITS_SPLIT_SEED,
    DIGITS_TEST_FRACTION, embedded_digits, find_digits_file, load_digits, parse_digits_csv,
};
pub use download::{
    FASHION_MNIST_FILES, FASHION_MNIST_MIRRORS, MNIST_FILES, MNIST_MIRRORS, RemoteFile,
    default_mirrors, download_file, remote_files, stored_name,
};
pub use error::{DataError, Result};
pub use files::sha256_hex;
pub use folder::{
    BadFile, DecodedImage, FolderData, FolderOptions, IMAGE_EXTENSIONS, ImageFiles, ImageFormat,
    MAX_CLASSES, decode_image, image_dimensions, read_image_folder,
};
pub use idx::{
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxImages, encode_idx_images, encode_idx_labels,
    parse_idx_images, parse_idx_labels, read_idx_dataset, read_idx_images, read_idx_labels,
    write_idx_images, write_idx_labels,
};
pub use load::{
    DataSource, IDX_FILE_NAMES, default_cache_dir, find_idx_files, load, load_with_mirrors,
    search_dirs,
};
pub use loader::{Batch, Batches, Loader, LoaderConfig, Normalize, Samples};
pub use table::{BadRow, CsvOptions, CsvRows, Table, TableData, read_csv_rows, read_csv_table};
