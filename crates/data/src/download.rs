//! Downloading MNIST and Fashion-MNIST from their public mirrors: the mirror lists and the
//! SHA-256 of each file's decompressed content, and a downloader that tries the mirrors in
//! order, shows a progress bar (indicatif hides it when stderr is not a terminal), writes
//! atomically and verifies the checksum before a file takes its final name.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrograd_io::TempFile;
use indicatif::{ProgressBar, ProgressStyle};

use crate::dataset::DatasetKind;
use crate::error::{DataError, Result};
use crate::files::{decompress_if_gzip, is_gzip, sha256_hex};

/// A file of a data set as published: its name on the mirrors and the SHA-256 of its
/// *decompressed* content (so a re-gzipped copy still verifies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile<'a> {
    /// The file name on the mirrors, e.g. `train-images-idx3-ubyte.gz`.
    pub name: &'a str,
    /// Lowercase hex SHA-256 of the decompressed content.
    pub sha256: &'a str,
}

/// MNIST mirrors, tried in order.
pub const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Fashion-MNIST mirrors, tried in order.
pub const FASHION_MNIST_MIRRORS: [&str; 1] =
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// The four MNIST files (train images, train labels, test images, test labels).
pub const MNIST_FILES: [RemoteFile<'static>; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

/// The four Fashion-MNIST files, in the same order as [`MNIST_FILES`].
pub const FASHION_MNIST_FILES: [RemoteFile<'static>; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

/// The public mirrors of `kind` (empty for the data sets that are not downloaded: digits is
/// embedded, CIFAR-10 must be provided).
pub fn default_mirrors(kind: DatasetKind) -> &'static [&'static str] {
    match kind {
        DatasetKind::Mnist => &MNIST_MIRRORS,
        DatasetKind::FashionMnist => &FASHION_MNIST_MIRRORS,
        DatasetKind::Digits | DatasetKind::Cifar10 => &[],
    }
}

/// The published files of `kind` (empty for digits and CIFAR-10).
pub fn remote_files(kind: DatasetKind) -> &'static [RemoteFile<'static>] {
    match kind {
        DatasetKind::Mnist => &MNIST_FILES,
        DatasetKind::FashionMnist => &FASHION_MNIST_FILES,
        DatasetKind::Digits | DatasetKind::Cifar10 => &[],
    }
}

/// The name a downloaded file is stored under: the published name, without its `.gz` suffix
/// when the content that arrived is not gzip (a server may decompress in transit).
pub fn stored_name(file: &RemoteFile, gzipped: bool) -> String {
    match file.name.strip_suffix(".gz") {
        Some(stem) if !gzipped => stem.to_string(),
        _ => file.name.to_string(),
    }
}

/// Joins a mirror's base URL and a file name with exactly one `/`.
fn join_url(base: &str, name: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), name)
}

/// Downloads `file` into `dest_dir`, trying each base URL in `mirrors` in order until one
/// delivers content with the expected checksum. The file is written to a temporary file in
/// `dest_dir`, synced and renamed, so `dest_dir` never holds a partial or unverified file.
/// Returns the path of the stored file (see [`stored_name`]).
///
/// # Errors
/// When every mirror fails: [`DataError::Checksum`] if one of them served wrong content,
/// else [`DataError::Download`] naming the URLs tried and why each failed;
/// [`DataError::Io`] when `dest_dir` cannot be written.
pub fn download_file(file: &RemoteFile, mirrors: &[&str], dest_dir: &Path) -> Result<PathBuf> {
    if mirrors.is_empty() {
        return Err(DataError::Download {
            url: file.name.to_string(),
            msg: "no mirror to download from".to_string(),
        });
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut failures: Vec<DataError> = Vec::new();
    for base in mirrors {
        let url = join_url(base, file.name);
        match fetch_verified(&agent, &url, file, dest_dir) {
            Ok(path) => return Ok(path),
            // A local disk problem will not be cured by another mirror.
            Err(e @ DataError::Io { .. }) => return Err(e),
            Err(e) => failures.push(e),
        }
    }
    Err(combine_failures(failures))
}

fn combine_failures(mut failures: Vec<DataError>) -> DataError {
    if let Some(i) = failures
        .iter()
        .position(|e| matches!(e, DataError::Checksum { .. }))
    {
        return failures.swap_remove(i);
    }
    let mut described: Vec<(String, String)> = failures
        .into_iter()
        .map(|e| match e {
            DataError::Download { url, msg } => (url, msg),
            other => (String::new(), other.to_string()),
        })
        .collect();
    let Some((url, msg)) = described.pop() else {
        return DataError::Download {
            url: String::new(),
            msg: "no mirror to download from".to_string(),
        };
    };
    if described.is_empty() {
        return DataError::Download { url, msg };
    }
    let earlier: Vec<String> = described
        .iter()
        .map(|(u, m)| format!("{u} ({m})"))
        .collect();
    DataError::Download {
        url,
        msg: format!("{msg}; also tried {}", earlier.join(", ")),
    }
}

fn describe_ureq_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP status {code}"),
        other => other.to_string(),
    }
}

/// Downloads one URL into a temporary file in `dest_dir`, verifies it and renames it.
fn fetch_verified(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    dest_dir: &Path,
) -> Result<PathBuf> {
    let download_err = |msg: String| DataError::Download {
        url: url.to_string(),
        msg,
    };
    let response = agent
        .get(url)
        .call()
        .map_err(|e| download_err(describe_ureq_error(&e)))?;
    let length = response.body().content_length();
    let mut reader = response.into_body().into_reader();

    let mut tmp = TempFile::create_beside(&dest_dir.join(file.name))?;
    let bar = progress_bar(length, file.name);
    let mut buf = vec![0u8; 64 * 1024];
    let mut received: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(download_err(format!(
                    "transfer broke off after {received} bytes: {e}"
                )));
            }
        };
        tmp.write_all(&buf[..n])?;
        received += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    if let Some(expected) = length
        && expected != received
    {
        return Err(download_err(format!(
            "received {received} bytes of the {expected} announced"
        )));
    }
    let raw = std::fs::read(tmp.path()).map_err(|e| DataError::io(tmp.path(), e))?;
    let gzipped = is_gzip(&raw);
    let content = decompress_if_gzip(raw, Path::new(url)).map_err(|e| match e {
        DataError::Format { msg, .. } => download_err(msg),
        other => other,
    })?;
    let got = sha256_hex(&content);
    if got != file.sha256 {
        return Err(DataError::Checksum {
            location: url.to_string(),
            expected: file.sha256.to_string(),
            got,
        });
    }
    let dest = dest_dir.join(stored_name(file, gzipped));
    tmp.persist(&dest)?;
    Ok(dest)
}

fn progress_bar(length: Option<u64>, name: &str) -> ProgressBar {
    let bar = match length {
        Some(len) => {
            let bar = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg:30} {bytes}") {
                bar.set_style(style);
            }
            bar
        }
    };
    bar.set_message(format!("downloading {name}"));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(join_url("http://h/a/", "f.gz"), "http://h/a/f.gz");
        assert_eq!(join_url("http://h/a", "f.gz"), "http://h/a/f.gz");
    }

    #[test]
    fn stored_name_drops_gz_for_plain_content() {
        let f = MNIST_FILES[0];
        assert_eq!(stored_name(&f, true), "train-images-idx3-ubyte.gz");
        assert_eq!(stored_name(&f, false), "train-images-idx3-ubyte");
    }

    #[test]
    fn every_download_kind_has_four_files_and_a_mirror() {
        for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
            assert_eq!(remote_files(kind).len(), 4);
            assert!(!default_mirrors(kind).is_empty());
            assert!(remote_files(kind).iter().all(|f| f.sha256.len() == 64));
        }
        assert!(remote_files(DatasetKind::Digits).is_empty());
    }
}
