//! Mini-batches: [`Loader`] turns a shared [`Dataset`] into batches of normalised f32 pixels
//! (flat rows for dense networks, images for convolutional ones) and i64 labels, in a seeded
//! new order each epoch (or in order, for evaluation), optionally augmented, prepared on a
//! background thread a few batches ahead of the training loop.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use ferrograd_core::{Rng, Tensor};

use crate::augment::Augment;
use crate::dataset::Dataset;
use crate::error::{DataError, Result};

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

    fn fitted((mean, std): (f32, f32)) -> Normalize {
        let std = if std > f32::EPSILON { std } else { 1.0 };
        Normalize { mean, std }
    }

    /// The normalised value of pixel `p` of a data set whose largest value is `max_value`.
    pub fn apply(&self, p: u8, max_value: f32) -> f32 {
        (f32::from(p) / max_value - self.mean) / self.std
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
    /// Batches prepared ahead on the background thread (the channel's depth); 0 prepares
    /// each batch on the calling thread when it is asked for.
    pub prefetch: usize,
}

impl Default for LoaderConfig {
    /// Batches of 64 rows, seed 0, the last short batch kept, no normalisation, no
    /// augmentation, 2 batches ahead.
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
    data: Arc<Dataset>,
    config: LoaderConfig,
    /// Normalised value of each pixel value, one table per channel.
    tables: Arc<[[f32; 256]]>,
}

impl Loader {
    /// A loader over `data`.
    ///
    /// # Errors
    /// [`DataError::Argument`] for a batch size of 0, a non-positive or non-finite `std`, a
    /// non-finite `mean`, per-channel normalisations that are not one per channel, or a data
    /// set whose fields disagree ([`Dataset::validate`]).
    pub fn new(data: Arc<Dataset>, config: LoaderConfig) -> Result<Loader> {
        if config.batch_size == 0 {
            return Err(DataError::argument(
                "loader",
                "batch size must be at least 1",
            ));
        }
        let per_channel = &config.channel_normalize;
        if !per_channel.is_empty() && per_channel.len() != data.channels {
            return Err(DataError::argument(
                "loader",
                format!(
                    "{} per-channel normalisations for {} with {} channels",
                    per_channel.len(),
                    data.name,
                    data.channels
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
        let tables = (0..data.channels.max(1))
            .map(|c| {
                let n = per_channel.get(c).unwrap_or(&config.normalize);
                std::array::from_fn(|p| n.apply(p as u8, data.max_value))
            })
            .collect();
        Ok(Loader {
            data,
            config,
            tables,
        })
    }

    /// The data set.
    pub fn dataset(&self) -> &Arc<Dataset> {
        &self.data
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
            vec![data.channels, data.height, data.width]
        } else {
            vec![data.features()]
        };
        let plan = Plan {
            data: Arc::clone(data),
            tables: Arc::clone(&self.tables),
            augment,
            order,
            batch_size: b,
            total,
            next: 0,
        };
        let source = if self.config.prefetch == 0 {
            Source::Inline(Box::new(plan))
        } else {
            spawn_worker(plan, self.config.prefetch)
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
    data: Arc<Dataset>,
    tables: Arc<[[f32; 256]]>,
    /// The augmentation and the generator its draws come from, in sample order.
    augment: Option<(Augment, Rng)>,
    order: Vec<usize>,
    batch_size: usize,
    total: usize,
    next: usize,
}

impl Plan {
    fn next_raw(&mut self) -> Option<Result<RawBatch>> {
        if self.next >= self.total {
            return None;
        }
        let start = self.next * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        self.next += 1;
        let indices = self.order.get(start..end)?.to_vec();
        let features = self.data.features();
        let mut x = Vec::with_capacity(indices.len() * features);
        let mut y = Vec::with_capacity(indices.len());
        for &i in &indices {
            let (Some(image), Some(&label)) = (self.data.image(i), self.data.labels.get(i)) else {
                return Some(Err(DataError::argument(
                    "loader",
                    format!("index {i} is out of range for {}", self.data.name),
                )));
            };
            match &mut self.augment {
                Some((augment, rng)) => {
                    let hw = [self.data.height, self.data.width];
                    augment.draw(rng).apply(image, hw, &self.tables, &mut x);
                }
                None => {
                    let plane = (self.data.height * self.data.width).max(1);
                    for (pixels, table) in image.chunks(plane).zip(self.tables.iter()) {
                        x.extend(pixels.iter().map(|&p| table[usize::from(p)]));
                    }
                }
            }
            y.push(i64::from(label));
        }
        Some(Ok(RawBatch { x, y, indices }))
    }
}

enum Source {
    /// Batches made on the calling thread (boxed: the plan holds a random generator).
    Inline(Box<Plan>),
    Thread {
        rx: Option<Receiver<Result<RawBatch>>>,
        handle: Option<JoinHandle<()>>,
    },
    /// The worker could not be started; the error is yielded once.
    Failed(Option<DataError>),
}

fn spawn_worker(mut plan: Plan, depth: usize) -> Source {
    let (tx, rx) = sync_channel(depth);
    let spawned = std::thread::Builder::new()
        .name("ferrograd-loader".to_string())
        .spawn(move || {
            while let Some(batch) = plan.next_raw() {
                // The receiver is gone: the epoch was abandoned, so stop.
                if tx.send(batch).is_err() {
                    return;
                }
            }
        });
    match spawned {
        Ok(handle) => Source::Thread {
            rx: Some(rx),
            handle: Some(handle),
        },
        Err(e) => Source::Failed(Some(DataError::argument(
            "loader",
            format!("cannot start the batch-preparing thread: {e}"),
        ))),
    }
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
            Source::Thread { rx, .. } => {
                let received = rx.as_ref()?.recv();
                match received {
                    Ok(batch) => Some(batch),
                    // Disconnected: the worker is done. Early means it died.
                    Err(_) => {
                        *rx = None;
                        (self.yielded < self.total).then(|| {
                            Err(DataError::argument(
                                "loader",
                                format!(
                                    "the batch-preparing thread stopped after {} of {} batches",
                                    self.yielded, self.total
                                ),
                            ))
                        })
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
        if let Source::Thread { rx, handle } = &mut self.source {
            // Closing the channel first wakes a worker blocked on a full channel.
            drop(rx.take());
            if let Some(h) = handle.take() {
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
