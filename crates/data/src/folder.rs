//! Image folders in torchvision's `ImageFolder` layout: one sub-folder per class
//! (`DIR/cat/1.png`), optionally below `train/`, `val/` and `test/` folders; otherwise a
//! seeded stratified split. PNG and JPEG files are decoded (the `image` crate, with only those
//! two formats), converted to grey or RGB and resized to one [`ImageFormat`]. Folders whose
//! decoded images fit the memory budget become a [`Dataset`]; larger ones an [`ImageFiles`]
//! list that the [`Loader`](crate::Loader) decodes from disk on worker threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader, Limits};
use indicatif::{ProgressBar, ProgressStyle};

use crate::dataset::{Dataset, stratified_parts};
use crate::error::{DataError, Result};
use crate::loader::Samples;

/// File name extensions read as images (case-insensitive); other files are ignored.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The most classes a folder may have (labels are stored as bytes).
pub const MAX_CLASSES: usize = 256;

/// Largest decoded source image accepted, in bytes (a guard against decompression bombs).
const MAX_DECODED_BYTES: u64 = 256 << 20;

/// The shape every image is converted to: grey (1 channel) or RGB (3), `height x width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFormat {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

/// An image decoded at its own size: u8 pixels, channel-major (`[channels, height, width]`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedImage {
    /// 1 (grey, also for grey images with alpha) or 3 (colour; alpha is dropped).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `channels * height * width` pixels.
    pub pixels: Vec<u8>,
}

/// Decodes a PNG or JPEG image (recognised by its content) at its own size.
///
/// # Errors
/// A message saying why the bytes are not a supported, intact image.
pub fn decode_image(bytes: &[u8]) -> std::result::Result<DecodedImage, String> {
    let img = decode_dynamic(bytes)?;
    let grey = !img.color().has_color();
    let (width, height) = (img.width() as usize, img.height() as usize);
    let (channels, interleaved) = if grey {
        (1, img.into_luma8().into_raw())
    } else {
        (3, img.into_rgb8().into_raw())
    };
    Ok(DecodedImage {
        channels,
        height,
        width,
        pixels: planar(&interleaved, channels),
    })
}

/// The `(width, height)` of a PNG or JPEG image, read from its header without decoding any
/// pixel (so that an oversized image can be refused first).
///
/// # Errors
/// A message saying why the bytes are not a PNG or JPEG image with a readable header.
pub fn image_dimensions(bytes: &[u8]) -> std::result::Result<(usize, usize), String> {
    let reader = png_or_jpeg(bytes)?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("cannot read image header: {e}"))?;
    Ok((w as usize, h as usize))
}

fn png_or_jpeg(bytes: &[u8]) -> std::result::Result<ImageReader<std::io::Cursor<&[u8]>>, String> {
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    if !matches!(
        reader.format(),
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg)
    ) {
        return Err("not a PNG or JPEG image".into());
    }
    Ok(reader)
}

fn decode_dynamic(bytes: &[u8]) -> std::result::Result<DynamicImage, String> {
    let mut reader = png_or_jpeg(bytes)?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| format!("cannot decode image: {e}"))
}

/// Interleaved `HWC` pixels to planar `CHW`.
fn planar(interleaved: &[u8], channels: usize) -> Vec<u8> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    (0..channels)
        .flat_map(|c| interleaved.iter().skip(c).step_by(channels).copied())
        .collect()
}

impl ImageFormat {
    /// Checks the channels (1 or 3) and that the size is not zero.
    ///
    /// # Errors
    /// [`DataError::Argument`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        if self.channels != 1 && self.channels != 3 {
            return Err(DataError::argument(
                "image format",
                format!("{} channels: expected 1 (grey) or 3 (RGB)", self.channels),
            ));
        }
        if self.height == 0 || self.width == 0 || self.height.saturating_mul(self.width) > 1 << 24 {
            return Err(DataError::argument(
                "image format",
                format!(
                    "size {}x{}: expected a height and width of at least 1 and at most 2^24 pixels in all",
                    self.height, self.width
                ),
            ));
        }
        Ok(())
    }

    /// Bytes per converted image: `channels * height * width`.
    pub fn features(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Decodes a PNG or JPEG image and converts it to this format: grey by luma (Rec. 709
    /// weights) or RGB by repeating grey, then resized with a triangle (bilinear) filter.
    /// Returns `[channels, height, width]` u8 pixels.
    ///
    /// # Errors
    /// A message saying why the bytes are not a supported, intact image.
    pub fn convert(&self, bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let img = decode_dynamic(bytes)?;
        let (w, h) = (self.width as u32, self.height as u32);
        let interleaved = if self.channels == 1 {
            let buf = img.into_luma8();
            if buf.dimensions() == (w, h) {
                buf.into_raw()
            } else {
                image::imageops::resize(&buf, w, h, FilterType::Triangle).into_raw()
            }
        } else {
            let buf = img.into_rgb8();
            if buf.dimensions() == (w, h) {
                buf.into_raw()
            } else {
                image::imageops::resize(&buf, w, h, FilterType::Triangle).into_raw()
            }
        };
        Ok(planar(&interleaved, self.channels))
    }

    /// Reads `path` and converts it ([`ImageFormat::convert`]).
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, [`DataError::Format`] naming the file
    /// when it is not an intact PNG or JPEG image.
    pub fn read(&self, path: &Path) -> Result<Vec<u8>> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        self.convert(&bytes)
            .map_err(|msg| DataError::format(path, msg))
    }
}

/// Image files on disk with their labels, decoded when a batch needs them.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFiles {
    /// A short name for messages, e.g. `folder-train`.
    pub name: String,
    /// The files, one per sample.
    pub paths: Vec<PathBuf>,
    /// One label per file.
    pub labels: Vec<u8>,
    /// What each file is converted to.
    pub format: ImageFormat,
    /// The class names, indexed by label.
    pub class_names: Vec<String>,
}

impl ImageFiles {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Checks that there is one path per label, every label is below the number of classes,
    /// and the format is valid.
    ///
    /// # Errors
    /// [`DataError::Argument`] naming the disagreement.
    pub fn validate(&self) -> Result<()> {
        self.format.validate()?;
        if self.paths.len() != self.labels.len() {
            return Err(DataError::argument(
                "image files",
                format!(
                    "{}: {} files for {} labels",
                    self.name,
                    self.paths.len(),
                    self.labels.len()
                ),
            ));
        }
        if let Some(&l) = self
            .labels
            .iter()
            .find(|&&l| usize::from(l) >= self.class_names.len())
        {
            return Err(DataError::argument(
                "image files",
                format!(
                    "{}: label {l}, but there are {} classes",
                    self.name,
                    self.class_names.len()
                ),
            ));
        }
        Ok(())
    }
}

/// How an image folder is read.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// The format every image is converted to.
    pub format: ImageFormat,
    /// Fraction of each class held out for validation (of all its images when the folder has
    /// no `val/`).
    pub val_fraction: f64,
    /// Fraction of each class held out for testing (when the folder has no `test/`).
    pub test_fraction: f64,
    /// Seed of the stratified split.
    pub seed: u64,
    /// Leave out files that cannot be read or decoded (and list them) instead of failing.
    pub skip_bad_files: bool,
    /// Threads decoding the images.
    pub workers: usize,
    /// The most bytes the decoded images may take in memory; larger folders are streamed
    /// from disk.
    pub max_memory: usize,
    /// Show a progress bar while decoding (on a terminal).
    pub progress: bool,
}

/// A file that was left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadFile {
    /// The file.
    pub path: PathBuf,
    /// Why it could not be used.
    pub reason: String,
}

/// An image folder, read and split.
#[derive(Debug, Clone)]
pub struct FolderData {
    /// The class names: the class folders' names, sorted.
    pub class_names: Vec<String>,
    /// Training images.
    pub train: Samples,
    /// Validation images.
    pub val: Samples,
    /// Test images.
    pub test: Samples,
    /// Mean and standard deviation of each channel of the training images, scaled to
    /// `[0, 1]`.
    pub train_mean_std: Vec<(f32, f32)>,
    /// Files left out with `skip_bad_files`.
    pub skipped: Vec<BadFile>,
    /// Whether the images are decoded from disk at every epoch (too large for the memory
    /// budget) rather than held in memory.
    pub streamed: bool,
}

/// One split's files: (path, label).
type Listing = Vec<(PathBuf, u8)>;

/// The parts of a folder.
const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Reads and splits an image folder.
///
/// With sub-folders `train/` (and optionally `val/`, `test/`) each holding class folders,
/// those are the splits; a missing `val/` or `test/` is carved out of `train/` by the
/// fractions. Otherwise the class folders are directly in `dir` and a stratified split by the
/// fractions makes all three. Files are found recursively inside class folders, sorted by
/// path; names without a PNG or JPEG extension and hidden entries are ignored.
///
/// # Errors
/// [`DataError::Io`] for an unreadable folder; [`DataError::Format`] naming the folder when
/// it has no class folders, a class has no images, there are more than 256 classes or
/// no test images, or naming the file when an image cannot be read or decoded (unless
/// `skip_bad_files`); [`DataError::Argument`] for a bad format or fractions.
pub fn read_image_folder(dir: &Path, options: &FolderOptions) -> Result<FolderData> {
    options.format.validate()?;
    let (class_names, mut listings) = list_folder(dir)?;
    let fractions = [options.val_fraction, options.test_fraction];
    let [train, val, test] = &mut listings;
    let carve: Vec<f64> = [val.is_empty(), test.is_empty()]
        .iter()
        .zip(fractions)
        .map(|(&missing, f)| if missing { f } else { 0.0 })
        .collect();
    let labels: Vec<u8> = train.iter().map(|(_, l)| *l).collect();
    let parts = stratified_parts(&labels, &carve, options.seed)?;
    let take = |idx: &[usize]| -> Listing { idx.iter().map(|&i| train[i].clone()).collect() };
    if val.is_empty() {
        *val = take(&parts[1]);
    }
    if test.is_empty() {
        *test = take(&parts[2]);
    }
    *train = take(&parts[0]);
    if listings[2].is_empty() {
        return Err(DataError::format(
            dir,
            "no test images: add a test/ folder or hold some out with a test fraction above 0",
        ));
    }
    let total: usize = listings.iter().map(Vec::len).sum();
    let streamed = total.saturating_mul(options.format.features()) > options.max_memory;
    let decoded = decode_all(&listings, options, streamed)?;
    let mut histograms = vec![[0u64; 256]; options.format.channels];
    let mut skipped = Vec::new();
    let mut sets = Vec::with_capacity(3);
    for (k, (listing, results)) in listings.into_iter().zip(decoded).enumerate() {
        let name = format!("folder-{}", SPLITS[k]);
        let mut paths = Vec::new();
        let mut labels = Vec::new();
        let mut pixels = Vec::new();
        for ((path, label), result) in listing.into_iter().zip(results) {
            match result {
                Decoded::Bad(reason) => skipped.push(BadFile { path, reason }),
                Decoded::Ok {
                    pixels: p,
                    histogram,
                } => {
                    if k == 0 {
                        for (total, part) in histograms.iter_mut().zip(&histogram) {
                            for (t, v) in total.iter_mut().zip(part) {
                                *t += v;
                            }
                        }
                    }
                    pixels.extend_from_slice(&p);
                    paths.push(path);
                    labels.push(label);
                }
            }
        }
        let set = if streamed {
            Samples::Files(std::sync::Arc::new(ImageFiles {
                name,
                paths,
                labels,
                format: options.format,
                class_names: class_names.clone(),
            }))
        } else {
            Samples::Images(std::sync::Arc::new(Dataset {
                name,
                pixels,
                labels,
                channels: options.format.channels,
                height: options.format.height,
                width: options.format.width,
                max_value: 255.0,
                class_names: class_names.clone(),
            }))
        };
        sets.push(set);
    }
    if sets[0].is_empty() {
        return Err(DataError::format(dir, "no training images left"));
    }
    if sets[2].is_empty() {
        return Err(DataError::format(dir, "no test images left"));
    }
    let train_mean_std = histograms.iter().map(histogram_mean_std).collect();
    let mut sets = sets.into_iter();
    let (Some(train), Some(val), Some(test)) = (sets.next(), sets.next(), sets.next()) else {
        return Err(DataError::argument("image folder", "three splits expected"));
    };
    Ok(FolderData {
        class_names,
        train,
        val,
        test,
        train_mean_std,
        skipped,
        streamed,
    })
}

/// Mean and standard deviation of pixel values scaled by 255.
fn histogram_mean_std(counts: &[u64; 256]) -> (f32, f32) {
    let n = counts.iter().sum::<u64>() as f64;
    if n == 0.0 {
        return (0.0, 0.0);
    }
    let mean = counts
        .iter()
        .enumerate()
        .map(|(v, &c)| c as f64 * v as f64 / 255.0)
        .sum::<f64>()
        / n;
    let var = counts
        .iter()
        .enumerate()
        .map(|(v, &c)| c as f64 * (v as f64 / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, var.sqrt() as f32)
}

/// The class names and the (train, val, test) listings of a folder; val and test are empty
/// unless the folder has those splits.
fn list_folder(dir: &Path) -> Result<(Vec<String>, [Listing; 3])> {
    let split_dirs: Vec<Option<PathBuf>> = SPLITS
        .iter()
        .map(|s| {
            let d = dir.join(s);
            (d.is_dir() && !sub_folders(&d).ok()?.is_empty()).then_some(d)
        })
        .collect();
    let roots: Vec<Option<PathBuf>> = if split_dirs[0].is_some() {
        split_dirs
    } else if split_dirs.iter().any(Option::is_some) {
        return Err(DataError::format(
            dir,
            "has val/ or test/ class folders but no train/ folder",
        ));
    } else {
        vec![Some(dir.to_path_buf()), None, None]
    };
    let mut class_names: Vec<String> = Vec::new();
    for root in roots.iter().flatten() {
        for name in sub_folders(root)? {
            if !class_names.contains(&name) {
                class_names.push(name);
            }
        }
    }
    class_names.sort();
    if class_names.is_empty() {
        return Err(DataError::format(
            dir,
            "no class folders: expected one sub-folder of images per class (DIR/CLASS/IMAGE.png), optionally below train/, val/ and test/",
        ));
    }
    if class_names.len() > MAX_CLASSES {
        return Err(DataError::format(
            dir,
            format!(
                "{} class folders: at most {MAX_CLASSES} are supported",
                class_names.len()
            ),
        ));
    }
    let mut listings: [Listing; 3] = Default::default();
    for (listing, root) in listings.iter_mut().zip(&roots) {
        let Some(root) = root else { continue };
        for (label, class) in class_names.iter().enumerate() {
            let class_dir = root.join(class);
            if !class_dir.is_dir() {
                continue;
            }
            let mut files = Vec::new();
            image_files(&class_dir, &mut files)?;
            files.sort();
            listing.extend(files.into_iter().map(|p| (p, label as u8)));
        }
    }
    for (label, class) in class_names.iter().enumerate() {
        if !listings
            .iter()
            .flatten()
            .any(|(_, l)| usize::from(*l) == label)
        {
            return Err(DataError::format(
                dir,
                format!("class folder {class:?} holds no PNG or JPEG images (.png, .jpg, .jpeg)"),
            ));
        }
    }
    Ok((class_names, listings))
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// The names of the visible sub-folders of `dir`, unsorted.
fn sub_folders(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_hidden(&name) && entry.path().is_dir() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Appends the image files below `dir` (recursively) to `out`.
fn image_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_hidden(&name) {
            continue;
        }
        if path.is_dir() {
            image_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// One file's outcome: its pixels (empty when streamed) and per-channel histogram, or why it
/// failed.
enum Decoded {
    Ok {
        pixels: Vec<u8>,
        histogram: Vec<[u64; 256]>,
    },
    Bad(String),
}

/// Decodes every file of the listings on `options.workers` threads, with a progress bar.
/// Fails on the first bad file (in listing order) unless `skip_bad_files`.
fn decode_all(
    listings: &[Listing; 3],
    options: &FolderOptions,
    streamed: bool,
) -> Result<Vec<Vec<Decoded>>> {
    let files: Vec<&Path> = listings
        .iter()
        .flat_map(|l| l.iter().map(|(p, _)| p.as_path()))
        .collect();
    let bar = if options.progress {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) =
        ProgressStyle::with_template("decoding images [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Decoded>>> = Mutex::new((0..files.len()).map(|_| None).collect());
    let format = options.format;
    let plane = format.height * format.width;
    std::thread::scope(|scope| {
        for _ in 0..options.workers.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let outcome = match format.read(path) {
                        Ok(pixels) => {
                            let histogram = pixels
                                .chunks(plane.max(1))
                                .map(|channel| {
                                    let mut h = [0u64; 256];
                                    for &p in channel {
                                        h[usize::from(p)] += 1;
                                    }
                                    h
                                })
                                .collect();
                            Decoded::Ok {
                                pixels: if streamed { Vec::new() } else { pixels },
                                histogram,
                            }
                        }
                        Err(e) => Decoded::Bad(match e {
                            DataError::Format { msg, .. } => msg,
                            DataError::Io { source, .. } => source.to_string(),
                            other => other.to_string(),
                        }),
                    };
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(outcome);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let results: Vec<Decoded> = results
        .into_inner()
        .map_err(|_| DataError::argument("image folder", "a decoding thread failed"))?
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Decoded::Bad("not decoded".into())))
        .collect();
    let mut bad = files.iter().zip(&results).filter_map(|(p, r)| match r {
        Decoded::Bad(reason) => Some((p, reason)),
        Decoded::Ok { .. } => None,
    });
    if !options.skip_bad_files
        && let Some((path, reason)) = bad.next()
    {
        let more = bad.count();
        let and_more = if more > 0 {
            format!(" (and {more} more bad files)")
        } else {
            String::new()
        };
        return Err(DataError::format(
            path,
            format!("{reason}{and_more}; pass --skip-bad-files to leave such files out"),
        ));
    }
    let mut results = results.into_iter();
    let out = listings
        .iter()
        .map(|listing| results.by_ref().take(listing.len()).collect())
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ferrograd_testkit::images::jpeg_header_only;

    use super::*;

    #[test]
    fn dimensions_come_from_the_header_alone() {
        let jpeg = jpeg_header_only(30000, 20000);
        assert_eq!(image_dimensions(&jpeg), Ok((30000, 20000)));
        assert!(decode_image(&jpeg).is_err());
        let mut png = Vec::new();
        image::GrayImage::new(3, 2)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(image_dimensions(&png), Ok((3, 2)));
        let err = image_dimensions(b"GIF89a").unwrap_err();
        assert!(err.contains("not a PNG or JPEG"), "{err}");
    }

    fn options(max_memory: usize) -> FolderOptions {
        FolderOptions {
            format: ImageFormat {
                channels: 1,
                height: 2,
                width: 2,
            },
            val_fraction: 0.25,
            test_fraction: 0.25,
            seed: 0,
            skip_bad_files: false,
            workers: 2,
            max_memory,
            progress: false,
        }
    }

    /// `n` constant grey 4x4 images of value `v` per class, alternately PNG and JPEG.
    fn write_class(dir: &Path, class: &str, n: usize, v: u8) {
        let d = dir.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..n {
            let img = image::GrayImage::from_pixel(4, 4, image::Luma([v]));
            let ext = if i % 2 == 0 { "png" } else { "JPG" };
            img.save(d.join(format!("{i:02}.{ext}"))).unwrap();
        }
    }

    #[test]
    fn convert_resizes_and_changes_channels() {
        let mut png = Vec::new();
        let img = image::RgbImage::from_fn(4, 2, |x, _| {
            if x < 2 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let rgb = ImageFormat {
            channels: 3,
            height: 1,
            width: 2,
        };
        // Planar: the red plane, then green, then blue; the bilinear filter blends a little
        // across the red/blue edge.
        let c = rgb.convert(&png).unwrap();
        assert_eq!(c.len(), 6);
        assert!(c[0] > 200 && c[1] < 55 && c[4] < 55 && c[5] > 200, "{c:?}");
        assert_eq!(&c[2..4], &[0, 0]);
        let grey = ImageFormat { channels: 1, ..rgb };
        let g = grey.convert(&png).unwrap();
        assert_eq!(g.len(), 2);
        assert!(g[0] > g[1], "red is brighter than blue in luma: {g:?}");
        let decoded = decode_image(&png).unwrap();
        assert_eq!((decoded.channels, decoded.height, decoded.width), (3, 2, 4));
        assert!(
            grey.convert(b"GIF89a...")
                .unwrap_err()
                .contains("PNG or JPEG")
        );
        assert!(grey.convert(b"\x89PNG\r\n\x1a\nbroken").is_err());
        assert!(ImageFormat { channels: 2, ..rgb }.validate().is_err());
    }

    #[test]
    fn flat_folders_split_per_class_in_memory_or_streamed() {
        let dir = tempfile::tempdir().unwrap();
        write_class(dir.path(), "b", 8, 200);
        write_class(dir.path(), "a", 8, 100);
        std::fs::create_dir(dir.path().join(".hidden")).unwrap();
        let data = read_image_folder(dir.path(), &options(usize::MAX)).unwrap();
        assert_eq!(data.class_names, vec!["a", "b"]);
        assert!(!data.streamed);
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (8, 4, 4)
        );
        assert_eq!(data.val.labels(), &[0, 0, 1, 1]);
        let Samples::Images(train) = &data.train else {
            panic!("in memory")
        };
        assert_eq!(train.pixels.len(), 8 * 4);
        // Training pixels are 100 and 200 (JPEG may be off by a little), half each.
        let (mean, std) = data.train_mean_std[0];
        assert!((mean - 150.0 / 255.0).abs() < 0.01, "{mean}");
        assert!((std - 50.0 / 255.0).abs() < 0.01, "{std}");

        let streamed = read_image_folder(dir.path(), &options(0)).unwrap();
        assert!(streamed.streamed);
        let Samples::Files(files) = &streamed.test else {
            panic!("streamed")
        };
        assert_eq!(files.len(), 4);
        assert_eq!(streamed.train_mean_std, data.train_mean_std);
        assert_eq!(streamed.val.labels(), data.val.labels());
    }

    #[test]
    fn split_folders_are_used_and_bad_files_named_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write_class(&dir.path().join("train"), "x", 4, 10);
        write_class(&dir.path().join("train"), "y", 4, 90);
        write_class(&dir.path().join("test"), "x", 2, 10);
        write_class(&dir.path().join("test"), "y", 1, 90);
        let data = read_image_folder(dir.path(), &options(usize::MAX)).unwrap();
        assert_eq!(
            (data.train.len(), data.val.len(), data.test.len()),
            (6, 2, 3)
        );
        let bad = dir.path().join("test").join("y").join("z.png");
        std::fs::write(&bad, b"nonsense").unwrap();
        let err = read_image_folder(dir.path(), &options(usize::MAX))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("z.png") && err.contains("not a PNG or JPEG"),
            "{err}"
        );
        let skipping = FolderOptions {
            skip_bad_files: true,
            ..options(usize::MAX)
        };
        let data = read_image_folder(dir.path(), &skipping).unwrap();
        assert_eq!(data.skipped.len(), 1);
        assert_eq!(data.skipped[0].path, bad);
        assert_eq!(data.test.len(), 3);

        let empty_class = dir.path().join("train").join("w");
        std::fs::create_dir(&empty_class).unwrap();
        let err = read_image_folder(dir.path(), &options(usize::MAX))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"w\""), "{err}");
    }
}
