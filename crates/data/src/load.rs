//! Finding and loading a data set by kind: where each data set's files are looked for (the
//! data folder, its per-data-set subfolder, the cache), downloading into the cache when the
//! caller allows it, and the error that lists what was expected where.

use std::path::{Path, PathBuf};

use crate::cifar::{cifar10_candidate_dirs, cifar10_file_names, cifar10_hint, has_cifar10_files};
use crate::dataset::{Dataset, DatasetKind};
use crate::digits::{find_digits_file, load_digits};
use crate::download::{default_mirrors, download_file, remote_files};
use crate::error::{DataError, Result};
use crate::files::{read_maybe_gzip, sha256_hex};
use crate::idx::{idx_dataset, parse_idx_images, parse_idx_labels};

/// Where data sets are looked for, and whether they may be downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// A folder given by the user (`--data-dir`); searched first, together with its
    /// subfolder named after the data set (`mnist/`, `fashion-mnist/`, `cifar10/`).
    pub data_dir: Option<PathBuf>,
    /// Where downloads are stored, one subfolder per data set; also searched.
    pub cache_dir: PathBuf,
    /// Whether MNIST and Fashion-MNIST may be downloaded when no copy is found.
    pub download: bool,
}

impl DataSource {
    /// A source with `data_dir`, the [`default_cache_dir`] and downloading as given.
    pub fn new(data_dir: Option<PathBuf>, download: bool) -> DataSource {
        DataSource {
            data_dir,
            cache_dir: default_cache_dir(),
            download,
        }
    }
}

/// The conventional per-user cache folder: `$XDG_CACHE_HOME/ferrograd`, else
/// `$HOME/.cache/ferrograd`, else `.ferrograd-cache` in the current folder.
pub fn default_cache_dir() -> PathBuf {
    let from_env = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
    if let Some(xdg) = from_env("XDG_CACHE_HOME") {
        PathBuf::from(xdg).join("ferrograd")
    } else if let Some(home) = from_env("HOME") {
        PathBuf::from(home).join(".cache").join("ferrograd")
    } else {
        PathBuf::from(".ferrograd-cache")
    }
}

/// The standard IDX file names without `.gz`: train images, train labels, test images, test
/// labels. Each may be stored raw or gzipped.
pub const IDX_FILE_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Loads data set `kind` as `(train, test)`.
///
/// - Digits: from `digits.csv(.gz)` in `data_dir` or `data_dir/digits/` when there is one,
///   else the embedded copy; split by [`load_digits`]'s fixed split.
/// - MNIST, Fashion-MNIST: the four IDX files ([`IDX_FILE_NAMES`], raw or `.gz`) from
///   `data_dir/<kind>/`, `data_dir`, `data_dir/MNIST/raw` or `data_dir/FashionMNIST/raw`
///   (torchvision's layout), then `cache_dir/<kind>/`; then downloaded into
///   `cache_dir/<kind>/` from the public mirrors if `download` is set.
/// - CIFAR-10: the binary batches from `data_dir`, `data_dir/cifar10/` or
///   `cache_dir/cifar10/`, each also with a `cifar-10-batches-bin/` subfolder.
///
/// # Errors
/// [`DataError::Missing`] listing the files and the folders searched when no copy is found
/// (and downloading is off or not offered); [`DataError::Download`] or
/// [`DataError::Checksum`] when a download fails; [`DataError::Format`] or
/// [`DataError::Io`] naming the file that could not be read.
pub fn load(kind: DatasetKind, src: &DataSource) -> Result<(Dataset, Dataset)> {
    load_with_mirrors(kind, src, default_mirrors(kind))
}

/// [`load`], downloading from the given mirror base URLs instead of the public ones.
///
/// # Errors
/// As [`load`].
pub fn load_with_mirrors(
    kind: DatasetKind,
    src: &DataSource,
    mirrors: &[&str],
) -> Result<(Dataset, Dataset)> {
    match kind {
        DatasetKind::Digits => {
            let file = src.data_dir.as_deref().and_then(|d| {
                find_digits_file(d).or_else(|| find_digits_file(&d.join(kind.name())))
            });
            load_digits(file.as_deref())
        }
        DatasetKind::Mnist | DatasetKind::FashionMnist => load_idx_kind(kind, src, mirrors),
        DatasetKind::Cifar10 => load_cifar_kind(src),
    }
}

/// The folders searched for the files of `kind`, in order (the cache folder last).
pub fn search_dirs(kind: DatasetKind, src: &DataSource) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = &src.data_dir {
        dirs.push(d.join(kind.name()));
        dirs.push(d.clone());
        match kind {
            DatasetKind::Mnist => dirs.push(d.join("MNIST").join("raw")),
            DatasetKind::FashionMnist => dirs.push(d.join("FashionMNIST").join("raw")),
            _ => {}
        }
    }
    dirs.push(src.cache_dir.join(kind.name()));
    dirs
}

/// The four IDX files in `dir`, each raw or gzipped, when all are there.
pub fn find_idx_files(dir: &Path) -> Option<[PathBuf; 4]> {
    let mut found = IDX_FILE_NAMES.map(|_| PathBuf::new());
    for (slot, name) in found.iter_mut().zip(IDX_FILE_NAMES) {
        *slot = find_raw_or_gz(dir, name)?;
    }
    Some(found)
}

fn find_raw_or_gz(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(name), dir.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

fn load_idx_kind(
    kind: DatasetKind,
    src: &DataSource,
    mirrors: &[&str],
) -> Result<(Dataset, Dataset)> {
    let dirs = search_dirs(kind, src);
    if let Some(files) = dirs.iter().find_map(|d| find_idx_files(d)) {
        return read_idx_split(kind, &files);
    }
    let cache = src.cache_dir.join(kind.name());
    if src.download && !mirrors.is_empty() {
        for file in remote_files(kind) {
            let stem = file.name.strip_suffix(".gz").unwrap_or(file.name);
            if find_raw_or_gz(&cache, stem).is_none() {
                download_file(file, mirrors, &cache)?;
            }
        }
        if let Some(files) = find_idx_files(&cache) {
            return read_idx_split(kind, &files);
        }
    }
    let hint = if src.download {
        "Downloading was allowed but found no mirror for it.".to_string()
    } else {
        "Point --data-dir at a folder holding them (or a parent with a subfolder named after \
         the data set), or allow downloading."
            .to_string()
    };
    Err(DataError::Missing {
        dataset: kind.name().to_string(),
        dirs,
        files: IDX_FILE_NAMES.iter().map(|n| format!("{n}[.gz]")).collect(),
        hint,
    })
}

/// Reads the four IDX files of `kind` into (train, test), checking that they agree and that
/// they are not the files of the other MNIST-like data set.
fn read_idx_split(kind: DatasetKind, files: &[PathBuf; 4]) -> Result<(Dataset, Dataset)> {
    let [train_images, train_labels, test_images, test_labels] = files;
    let train_label_bytes = read_maybe_gzip(train_labels)?;
    check_not_other_kind(kind, &train_label_bytes, train_labels)?;
    let train = assemble(
        kind,
        "train",
        (train_images, &read_maybe_gzip(train_images)?),
        (train_labels, &train_label_bytes),
    )?;
    let test = assemble(
        kind,
        "test",
        (test_images, &read_maybe_gzip(test_images)?),
        (test_labels, &read_maybe_gzip(test_labels)?),
    )?;
    if (test.height, test.width) != (train.height, train.width) {
        return Err(DataError::format(
            test_images,
            format!(
                "images are {}x{} but the training images ({}) are {}x{}",
                test.height,
                test.width,
                train_images.display(),
                train.height,
                train.width
            ),
        ));
    }
    Ok((train, test))
}

/// MNIST and Fashion-MNIST share file names; a folder of one given for the other is caught
/// by the checksum of its training labels.
fn check_not_other_kind(kind: DatasetKind, label_bytes: &[u8], path: &Path) -> Result<()> {
    let other = match kind {
        DatasetKind::Mnist => DatasetKind::FashionMnist,
        DatasetKind::FashionMnist => DatasetKind::Mnist,
        _ => return Ok(()),
    };
    let Some(other_labels) = remote_files(other).get(1) else {
        return Ok(());
    };
    if sha256_hex(label_bytes) == other_labels.sha256 {
        return Err(DataError::format(
            path,
            format!(
                "these are the {other} training labels, not {kind}: point --data-dir at the \
                 {kind} files (or at a parent folder with a {kind}/ subfolder)"
            ),
        ));
    }
    Ok(())
}

fn assemble(
    kind: DatasetKind,
    part: &str,
    (images_path, images_bytes): (&Path, &[u8]),
    (labels_path, labels_bytes): (&Path, &[u8]),
) -> Result<Dataset> {
    let images = parse_idx_images(images_bytes, images_path)?;
    let labels = parse_idx_labels(labels_bytes, labels_path)?;
    idx_dataset(
        kind,
        &format!("{kind}-{part}"),
        (images_path, images),
        (labels_path, labels),
    )
}

fn load_cifar_kind(src: &DataSource) -> Result<(Dataset, Dataset)> {
    let kind = DatasetKind::Cifar10;
    let mut roots = Vec::new();
    if let Some(d) = &src.data_dir {
        roots.push(d.clone());
        roots.push(d.join(kind.name()));
    }
    roots.push(src.cache_dir.join(kind.name()));
    let dirs: Vec<PathBuf> = roots
        .iter()
        .flat_map(|r| cifar10_candidate_dirs(r))
        .collect();
    match dirs.iter().find(|d| has_cifar10_files(d)) {
        Some(found) => crate::cifar::read_cifar10_folder(found),
        None => Err(DataError::Missing {
            dataset: kind.name().to_string(),
            dirs,
            files: cifar10_file_names(),
            hint: cifar10_hint(),
        }),
    }
}
