//! Mini-batches: [`Loader`] turns shared [`Samples`] (a [`Dataset`] in memory, image files
//! decoded from disk, or the rows of a [`Table`]) into batches of normalised f32 values (flat
//! rows for dense networks, images for convolutional ones) and i64 labels, in a seeded new
//! order each epoch (or in order, for evaluation), optionally augmented, prepared on
//! background threads a few batches ahead of the training loop.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use ferrograd_core::{Rng, Tensor};

use crate::augment::Augment;
use crate::dataset::Dataset;
use crate::error::{DataError, Result};
use crate::folder::ImageFiles;
use crate::table::Table;

/// Pixel normalisation: a pixel `p` becomes `(p / max_value - mean) / std`, as torchvision's
/// `ToTensor()` followed by `Normalize(mean, std)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    /// Subtracted from the scaled pixel.
    pub mean: f32,
    /// The scaled, centred pixel is divided by this; must be positive.
    pub std: f32,
}

impl Normalize {
    /// No normalisation beyond scaling to `[0, 1]` (mean 0, std 1).
    pub const IDENTITY: Normalize = Normalize {
        mean: 0.0,
        std: 1.0,
    };

    /// The mean and standard deviation of `data`'s scaled pixels
    /// ([`Dataset::pixel_mean_std`]); a zero spread gives std 1.
    pub fn from_dataset(data: &Dataset) -> Normalize {
        Normalize::fitted(data.pixel_mean_std())
    }

    /// One normalisation per channel, from each channel's mean and standard deviation
    /// ([`Dataset::channel_mean_std`]); a zero spread gives std 1. For
    /// [`LoaderConfig::channel_normalize`].
    pub fn per_channel(data: &Dataset) -> Vec<Normalize> {
        data.channel_mean_std()
            .into_iter()
            .map(Normalize::fitted)
            .collect()
    }

    /// A normalisation from a mean and standard deviation; a zero (or not finite) spread
    /// gives std 1, so constant inputs pass through centred.
    pub fn fitted((mean, std): (f32, f32)) -> Normalize {
        let std = if std > f32::EPSILON && std.is_finite() {
            std
        } else {
            1.0
        };
        Normalize { mean, std }
    }

    /// The normalised value of pixel `p` of a data set whose largest value is `max_value`.
    pub fn apply(&self, p: u8, max_value: f32) -> f32 {
        (f32::from(p) / max_value - self.mean) / self.std
    }

    /// The normalised value of a feature `v` of a table: `(v - mean) / std`.
    pub fn apply_value(&self, v: f32) -> f32 {
        (v - self.mean) / self.std
    }
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize::IDENTITY
    }
}

/// How a [`Loader`] batches.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Samples per batch (at least 1).
    pub batch_size: usize,
    /// Base seed of the per-epoch shuffles.
    pub seed: u64,
    /// Whether [`Loader::epoch`] leaves out a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// The normalisation applied to every pixel (unless `channel_normalize` is given).
    pub normalize: Normalize,
    /// One normalisation per channel of the data set (torchvision's
    /// `Normalize(mean=[..], std=[..])`); when not empty, it replaces `normalize`.
    pub channel_normalize: Vec<Normalize>,
    /// Batches of images `[b, channels, height, width]` (for convolutional networks) rather
    /// than rows `[b, features]`.
    pub images: bool,
    /// Random augmentation of the samples of [`Loader::epoch`], drawn from the seed and the
    /// epoch (never applied to [`Loader::sequential`]).
    pub augment: Augment,
    /// Batches prepared ahead by each background thread (its channel's depth); 0 prepares
    /// each batch on the calling thread when it is asked for.
    pub prefetch: usize,
    /// Background threads preparing batches (at least 1), each taking every `workers`-th
    /// batch, so image files are decoded in parallel. Augmented epochs use one thread, as
    /// their random draws follow the sample order.
    pub workers: usize,
}

impl Default for LoaderConfig {
    /// Batches of 64 rows, seed 0, the last short batch kept, no normalisation, no
    /// augmentation, 2 batches ahead on one thread.
    fn default() -> Self {
        LoaderConfig {
            batch_size: 64,
            seed: 0,
            drop_last: false,
            normalize: Normalize::IDENTITY,
            channel_normalize: Vec::new(),
            images: false,
            augment: Augment::NONE,
            prefetch: 2,
            workers: 1,
        }
    }
}

/// One mini-batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Normalised pixels, f32 of shape `[b, features]`, or `[b, channels, height, width]`
    /// with [`LoaderConfig::images`].
    pub x: Tensor,
    /// Labels, i64 of shape `[b]`.
    pub y: Tensor,
    /// The data set indices of the `b` samples, in batch order.
    pub indices: Vec<usize>,
}

/// What a [`Loader`] batches: a data set's samples, shared.
#[derive(Debug, Clone)]
pub enum Samples {
    /// u8 images held in memory.
    Images(Arc<Dataset>),
    /// Image files decoded (and resized) when a batch needs them.
    Files(Arc<ImageFiles>),
    /// Rows of f32 features.
    Rows(Arc<Table>),
}

impl Samples {
    /// The number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::Images(d) => d.len(),
            Samples::Files(f) => f.len(),
            Samples::Rows(t) => t.len(),
        }
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        match self {
            Samples::Images(d) => &d.name,
            Samples::Files(f) => &f.name,
            Samples::Rows(t) => &t.name,
        }
    }

    /// The class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        match self {
            Samples::Images(d) => &d.class_names,
            Samples::Files(f) => &f.class_names,
            Samples::Rows(t) => &t.class_names,
        }
    }

    /// The labels, one per sample.
    pub fn labels(&self) -> &[u8] {
        match self {
            Samples::Images(d) => &d.labels,
            Samples::Files(f) => &f.labels,
            Samples::Rows(t) => &t.labels,
        }
    }

    /// The shape of one sample as `[channels, height, width]`; a table's row of `f`
    /// features is `[f, 1, 1]` (one normalisation per feature, like one per channel).
    pub fn shape(&self) -> [usize; 3] {
        match self {
            Samples::Images(d) => [d.channels, d.height, d.width],
            Samples::Files(f) => [f.format.channels, f.format.height, f.format.width],
            Samples::Rows(t) => [t.features(), 1, 1],
        }
    }

    /// Values per sample.
    pub fn features(&self) -> usize {
        self.shape().iter().product()
    }

    fn validate(&self) -> Result<()> {
        match self {
            Samples::Images(d) => d.validate(),
            Samples::Files(f) => f.validate(),
            Samples::Rows(t) => t.validate(),
        }
    }

    /// Appends sample `i`'s normalised values to `x` and returns its label.
    fn push_sample(
        &self,
        i: usize,
        tables: &[[f32; 256]],
        norms: &[Normalize],
        x: &mut Vec<f32>,
    ) -> Result<u8> {
        let out_of_range = || {
            DataError::argument(
                "loader",
                format!("index {i} is out of range for {}", self.name()),
            )
        };
        let label = *self.labels().get(i).ok_or_else(out_of_range)?;
        let plane = {
            let [_, h, w] = self.shape();
            (h * w).max(1)
        };
        let push_pixels = |pixels: &[u8], x: &mut Vec<f32>| {
            for (pixels, table) in pixels.chunks(plane).zip(tables) {
                x.extend(pixels.iter().map(|&p| table[usize::from(p)]));
            }
        };
        match self {
            Samples::Images(d) => push_pixels(d.image(i).ok_or_else(out_of_range)?, x),
            Samples::Files(f) => {
                let path = f.paths.get(i).ok_or_else(out_of_range)?;
                push_pixels(&f.format.read(path)?, x);
            }
            Samples::Rows(t) => {
                let row = t.row(i).ok_or_else(out_of_range)?;
                x.extend(row.iter().zip(norms).map(|(&v, n)| n.apply_value(v)));
            }
        }
        Ok(label)
    }
}

/// Yields a data set's mini-batches, shuffled per epoch or in order.
///
/// ```
/// use std::sync::Arc;
/// use ferrograd_data::{Dataset, Loader, LoaderConfig};
/// let ds = Dataset {
///     name: "toy".into(), pixels: vec![0, 255, 255, 0, 0, 0], labels: vec![1, 0, 1],
///     channels: 1, height: 1, width: 2, max_value: 255.0,
///     class_names: vec!["a".into(), "b".into()],
/// };
/// let loader = Loader::new(Arc::new(ds), LoaderConfig { batch_size: 2, ..Default::default() })?;
/// let batches: Vec<_> = loader.epoch(0).collect::<Result<_, _>>()?;
/// assert_eq!(batches.len(), 2);
/// assert_eq!(batches[0].x.shape(), &[2, 2]);
/// assert_eq!(batches[1].y.shape(), &[1]);
/// # Ok::<(), ferrograd_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Loader {
    data: Samples,
    config: LoaderConfig,
    /// Normalised value of each pixel value, one table per channel (images).
    tables: Arc<[[f32; 256]]>,
    /// The normalisation of each channel (a table's features).
    norms: Arc<[Normalize]>,
}

impl Loader {
    /// A loader over `data`.
    ///
    /// # Errors
    /// [`DataError::Argument`] for a batch size of 0, a non-positive or non-finite `std`, a
    /// non-finite `mean`, per-channel normalisations that are not one per channel, or a data
    /// set whose fields disagree ([`Dataset::validate`]).
    pub fn new(data: Arc<Dataset>, config: LoaderConfig) -> Result<Loader> {
        Loader::from_samples(Samples::Images(data), config)
    }

    /// A loader over any [`Samples`]. A table's features are normalised with
    /// `channel_normalize`, one per feature (or `normalize` for all).
    ///
    /// # Errors
    /// As [`Loader::new`]; also for `workers` of 0 and samples whose fields disagree.
    pub fn from_samples(data: Samples, config: LoaderConfig) -> Result<Loader> {
        if config.workers == 0 {
            return Err(DataError::argument(
                "loader",
                "at least 1 worker thread is needed",
            ));
        }
        if config.batch_size == 0 {
            return Err(DataError::argument(
                "loader",
                "batch size must be at least 1",
            ));
        }
        let per_channel = &config.channel_normalize;
        let channels = data.shape()[0];
        if !per_channel.is_empty() && per_channel.len() != channels {
            return Err(DataError::argument(
                "loader",
                format!(
                    "{} per-channel normalisations for {} with {} channels",
                    per_channel.len(),
                    data.name(),
                    channels
                ),
            ));
        }
        for &Normalize { mean, std } in per_channel.iter().chain([&config.normalize]) {
            if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                return Err(DataError::argument(
                    "loader",
                    format!("normalisation mean {mean}, std {std}: need a finite mean and std > 0"),
                ));
            }
        }
        data.validate()?;
        let max_value = match &data {
            Samples::Images(d) => d.max_value,
            _ => 255.0,
        };
        let norms: Arc<[Normalize]> = (0..channels.max(1))
            .map(|c| *per_channel.get(c).unwrap_or(&config.normalize))
            .collect();
        let tables = match data {
            Samples::Rows(_) => Arc::from(Vec::new()),
            _ => norms
                .iter()
                .map(|n| std::array::from_fn(|p| n.apply(p as u8, max_value)))
                .collect(),
        };
        Ok(Loader {
            data,
            config,
            tables,
            norms,
        })
    }

    /// The data set, when the samples are images in memory.
    pub fn dataset(&self) -> Option<&Arc<Dataset>> {
        match &self.data {
            Samples::Images(d) => Some(d),
            _ => None,
        }
    }

    /// The samples.
    pub fn samples(&self) -> &Samples {
        &self.data
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Batches per shuffled epoch (a short last batch counts unless `drop_last`).
    pub fn num_batches(&self) -> usize {
        let (n, b) = (self.data.len(), self.config.batch_size);
        if self.config.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The sample order of `epoch`: a permutation of `0..len` shuffled by a generator seeded
    /// from the base seed and the epoch number. The same (seed, epoch) gives the same order.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.data.len()).collect();
        Rng::new(epoch_seed(self.config.seed, epoch)).shuffle(&mut order);
        order
    }

    /// The batches of `epoch`, in [`Loader::epoch_order`], dropping a short last batch when
    /// `drop_last` is set, augmented as configured (the same seed and epoch give the same
    /// images). Dropping the iterator early stops its background thread.
    pub fn epoch(&self, epoch: u64) -> Batches {
        let augment = (!self.config.augment.is_none()).then(|| {
            // A stream of its own, so augmenting leaves the epoch's order unchanged.
            let seed = epoch_seed(self.config.seed ^ AUGMENT_SALT, epoch);
            (self.config.augment, Rng::new(seed))
        });
        self.batches(self.epoch_order(epoch), self.config.drop_last, augment)
    }

    /// Every sample once, in data set order, the last batch possibly short, never augmented
    /// (for evaluation).
    pub fn sequential(&self) -> Batches {
        self.batches((0..self.data.len()).collect(), false, None)
    }

    fn batches(
        &self,
        order: Vec<usize>,
        drop_last: bool,
        augment: Option<(Augment, Rng)>,
    ) -> Batches {
        let b = self.config.batch_size;
        let total = if drop_last {
            order.len() / b
        } else {
            order.len().div_ceil(b)
        };
        let data = &self.data;
        let sample_shape = if self.config.images {
            data.shape().to_vec()
        } else {
            vec![data.features()]
        };
        // Augmentation draws follow the sample order, so it keeps to one thread.
        let workers = if augment.is_some() {
            1
        } else {
            self.config.workers.clamp(1, total.max(1))
        };
        let plan = Plan {
            data: data.clone(),
            tables: Arc::clone(&self.tables),
            norms: Arc::clone(&self.norms),
            augment,
            order: Arc::new(order),
            batch_size: b,
            total,
            next: 0,
            stride: 1,
        };
        let source = if self.config.prefetch == 0 {
            Source::Inline(Box::new(plan))
        } else {
            spawn_workers(plan, workers, self.config.prefetch)
        };
        Batches {
            source,
            sample_shape,
            yielded: 0,
            total,
        }
    }
}

/// Mixed into the base seed for the augmentation stream.
const AUGMENT_SALT: u64 = 0x6175_676d_656e_7421;

/// Mixes the base seed and the epoch into one seed (SplitMix64 finaliser).
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A batch as plain vectors, built off the training thread.
struct RawBatch {
    x: Vec<f32>,
    y: Vec<i64>,
    indices: Vec<usize>,
}

/// What is left to produce of one pass over the data.
struct Plan {
    data: Samples,
    tables: Arc<[[f32; 256]]>,
    norms: Arc<[Normalize]>,
    /// The augmentation and the generator its draws come from, in sample order.
    augment: Option<(Augment, Rng)>,
    order: Arc<Vec<usize>>,
    batch_size: usize,
    total: usize,
    /// The next batch to make.
    next: usize,
    /// Batches between this plan's batches (the number of threads sharing the pass).
    stride: usize,
}

impl Plan {
    fn next_raw(&mut self) -> Option<Result<RawBatch>> {
        if self.next >= self.total {
            return None;
        }
        let start = self.next * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        self.next += self.stride;
        let indices = self.order.get(start..end)?.to_vec();
        let features = self.data.features();
        let mut x = Vec::with_capacity(indices.len() * features);
        let mut y = Vec::with_capacity(indices.len());
        for &i in &indices {
            let label = match (&mut self.augment, &self.data) {
                (Some((augment, rng)), Samples::Images(data)) => {
                    let (Some(image), Some(&label)) = (data.image(i), data.labels.get(i)) else {
                        return Some(Err(DataError::argument(
                            "loader",
                            format!("index {i} is out of range for {}", data.name),
                        )));
                    };
                    let hw = [data.height, data.width];
                    augment.draw(rng).apply(image, hw, &self.tables, &mut x);
                    label
                }
                _ => match self.data.push_sample(i, &self.tables, &self.norms, &mut x) {
                    Ok(label) => label,
                    Err(e) => return Some(Err(e)),
                },
            };
            y.push(i64::from(label));
        }
        Some(Ok(RawBatch { x, y, indices }))
    }
}

enum Source {
    /// Batches made on the calling thread (boxed: the plan holds a random generator).
    Inline(Box<Plan>),
    /// Batch `k` comes from thread `k % receivers.len()`.
    Threads {
        receivers: Vec<Receiver<Result<RawBatch>>>,
        handles: Vec<JoinHandle<()>>,
    },
    /// The worker could not be started; the error is yielded once.
    Failed(Option<DataError>),
}

fn spawn_workers(plan: Plan, workers: usize, depth: usize) -> Source {
    let mut receivers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    let Plan {
        data,
        tables,
        norms,
        mut augment,
        order,
        batch_size,
        total,
        ..
    } = plan;
    for w in 0..workers {
        let mut plan = Plan {
            data: data.clone(),
            tables: Arc::clone(&tables),
            norms: Arc::clone(&norms),
            // Only ever one thread when augmenting.
            augment: augment.take(),
            order: Arc::clone(&order),
            batch_size,
            total,
            next: w,
            stride: workers,
        };
        let (tx, rx) = sync_channel(depth);
        let spawned = std::thread::Builder::new()
            .name(format!("ferrograd-loader-{w}"))
            .spawn(move || {
                while let Some(batch) = plan.next_raw() {
                    // The receiver is gone: the epoch was abandoned, so stop.
                    if tx.send(batch).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(handle) => {
                receivers.push(rx);
                handles.push(handle);
            }
            Err(e) => {
                // Dropping the receivers stops the threads already started.
                drop(receivers);
                for h in handles {
                    let _ = h.join();
                }
                return Source::Failed(Some(DataError::argument(
                    "loader",
                    format!("cannot start a batch-preparing thread: {e}"),
                )));
            }
        }
    }
    Source::Threads { receivers, handles }
}

/// The batches of one pass, from [`Loader::epoch`] or [`Loader::sequential`]. Each item is
/// a [`Batch`] or the error that stopped the pass.
pub struct Batches {
    source: Source,
    /// The shape of one sample in a batch.
    sample_shape: Vec<usize>,
    yielded: usize,
    total: usize,
}

impl Batches {
    fn next_raw(&mut self) -> Option<Result<RawBatch>> {
        match &mut self.source {
            Source::Inline(plan) => plan.next_raw(),
            Source::Failed(err) => err.take().map(Err),
            Source::Threads { receivers, .. } => {
                if self.yielded >= self.total || receivers.is_empty() {
                    return None;
                }
                let received = receivers[self.yielded % receivers.len()].recv();
                match received {
                    Ok(batch) => Some(batch),
                    // Disconnected before its last batch: the worker died.
                    Err(_) => {
                        receivers.clear();
                        Some(Err(DataError::argument(
                            "loader",
                            format!(
                                "a batch-preparing thread stopped after {} of {} batches",
                                self.yielded, self.total
                            ),
                        )))
                    }
                }
            }
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let raw = match self.next_raw()? {
            Ok(raw) => raw,
            Err(e) => return Some(Err(e)),
        };
        self.yielded += 1;
        let shape: Vec<usize> = std::iter::once(raw.indices.len())
            .chain(self.sample_shape.iter().copied())
            .collect();
        let batch = Tensor::from_vec(raw.x, &shape).and_then(|x| {
            Ok(Batch {
                x,
                y: Tensor::from_vec(raw.y, &shape[..1])?,
                indices: raw.indices,
            })
        });
        Some(batch.map_err(DataError::from))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total.saturating_sub(self.yielded);
        (left, Some(left))
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Source::Threads { receivers, handles } = &mut self.source {
            // Closing the channels first wakes workers blocked on a full channel.
            receivers.clear();
            for h in handles.drain(..) {
                // A worker that panicked has nothing left to clean up.
                let _ = h.join();
            }
        }
    }
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches")
            .field("yielded", &self.yielded)
            .field("total", &self.total)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seeds_differ_per_epoch_and_seed() {
        assert_ne!(epoch_seed(0, 0), epoch_seed(0, 1));
        assert_ne!(epoch_seed(0, 0), epoch_seed(1, 0));
        assert_eq!(epoch_seed(5, 9), epoch_seed(5, 9));
    }

    #[test]
    fn normalize_matches_formula() {
        let n = Normalize {
            mean: 0.5,
            std: 0.25,
        };
        assert_eq!(n.apply(255, 255.0), 2.0);
        assert_eq!(n.apply(0, 255.0), -2.0);
        assert_eq!(Normalize::default(), Normalize::IDENTITY);
    }
}
