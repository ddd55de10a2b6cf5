//! The in-memory data set ([`Dataset`]: u8 pixels and labels), its seeded splits and subsets,
//! and [`DatasetKind`], the names and class names of the data sets this crate knows.

use std::fmt;
use std::str::FromStr;

use ferrograd_core::Rng;

use crate::error::{DataError, Result};

/// An image-classification data set held in memory as bytes.
///
/// Sample `i` has the pixels `pixels[i * features() .. (i + 1) * features()]`, laid out
/// channel-major (`[channels, height, width]`, as PyTorch's `CHW`), and the label `labels[i]`
/// in `0..num_classes()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// A short name for messages, e.g. `mnist-train`.
    pub name: String,
    /// All samples' pixels, one after another.
    pub pixels: Vec<u8>,
    /// One label per sample.
    pub labels: Vec<u8>,
    /// Colour channels per image (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// The largest possible pixel value: 16 for the UCI digits, 255 otherwise. Pixels are
    /// scaled by it to `[0, 1]` before normalisation.
    pub max_value: f32,
    /// The class names, indexed by label.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample: `channels * height * width` (saturating, so absurd field values
    /// cannot overflow; [`Dataset::validate`] then rejects them).
    pub fn features(&self) -> usize {
        self.channels
            .saturating_mul(self.height)
            .saturating_mul(self.width)
    }

    /// The number of classes (the length of `class_names`).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Checks that the fields agree: as many pixels as samples times features, every label
    /// below `num_classes()`, a positive finite `max_value`.
    ///
    /// # Errors
    /// [`DataError::Argument`] naming the data set and the disagreement.
    pub fn validate(&self) -> Result<()> {
        let expected = self
            .len()
            .checked_mul(self.features())
            .ok_or_else(|| DataError::argument("dataset", format!("{}: too large", self.name)))?;
        if self.pixels.len() != expected {
            return Err(DataError::argument(
                "dataset",
                format!(
                    "{}: {} pixels for {} samples of {}x{}x{} ({} expected)",
                    self.name,
                    self.pixels.len(),
                    self.len(),
                    self.channels,
                    self.height,
                    self.width,
                    expected
                ),
            ));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, l)| usize::from(**l) >= self.num_classes())
        {
            return Err(DataError::argument(
                "dataset",
                format!(
                    "{}: sample {i} has label {l}, but there are {} classes",
                    self.name,
                    self.num_classes()
                ),
            ));
        }
        if !(self.max_value.is_finite() && self.max_value > 0.0) {
            return Err(DataError::argument(
                "dataset",
                format!(
                    "{}: max_value {} is not positive",
                    self.name, self.max_value
                ),
            ));
        }
        Ok(())
    }

    /// The pixels of sample `i`, or `None` when `i >= len()`.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let f = self.features();
        self.pixels
            .get(i.checked_mul(f)?..i.checked_add(1)?.checked_mul(f)?)
    }

    /// A new data set of the samples at `indices`, in that order (repeats allowed).
    ///
    /// # Errors
    /// [`DataError::Argument`] for an index `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let f = self.features();
        let mut pixels = Vec::with_capacity(indices.len().saturating_mul(f));
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (Some(image), Some(&label)) = (self.image(i), self.labels.get(i)) else {
                return Err(DataError::argument(
                    "subset",
                    format!(
                        "index {i} is out of range for {} ({} samples)",
                        self.name,
                        self.len()
                    ),
                ));
            };
            pixels.extend_from_slice(image);
            labels.push(label);
        }
        Ok(Dataset {
            pixels,
            labels,
            ..self.empty_like(self.name.clone())
        })
    }

    /// Splits off a held-out part: a seeded shuffle of the indices puts
    /// `round(len * val_fraction)` samples in the second data set and the rest in the first.
    /// Both keep the original order of their samples. The same seed gives the same split.
    ///
    /// ```
    /// # use ferrograd_data::{Dataset, DatasetKind};
    /// let ds = Dataset {
    ///     name: "toy".into(), pixels: (0..10).collect(), labels: vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    ///     channels: 1, height: 1, width: 1, max_value: 255.0,
    ///     class_names: vec!["a".into(), "b".into()],
    /// };
    /// let (train, val) = ds.split(0.2, 0)?;
    /// assert_eq!((train.len(), val.len()), (8, 2));
    /// assert_eq!(ds.split(0.2, 0)?, (train, val));
    /// # Ok::<(), ferrograd_data::DataError>(())
    /// ```
    ///
    /// # Errors
    /// [`DataError::Argument`] when `val_fraction` is not in `[0, 1]`.
    pub fn split(&self, val_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        check_fraction(val_fraction)?;
        let mut order: Vec<usize> = (0..self.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        let n_val = held_out_count(self.len(), val_fraction);
        let (val, train) = order.split_at(n_val);
        self.split_at_indices(train.to_vec(), val.to_vec())
    }

    /// Like [`Dataset::split`], but per class: each class gives `round(n_class * val_fraction)`
    /// of its samples, chosen by a seeded shuffle, so both parts keep the class proportions.
    ///
    /// # Errors
    /// [`DataError::Argument`] when `val_fraction` is not in `[0, 1]`.
    pub fn stratified_split(&self, val_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        let mut parts = stratified_parts(&self.labels, &[val_fraction], seed)?;
        let val = parts.pop().unwrap_or_default();
        let train = parts.pop().unwrap_or_default();
        self.split_at_indices(train, val)
    }

    fn split_at_indices(
        &self,
        mut train: Vec<usize>,
        mut val: Vec<usize>,
    ) -> Result<(Dataset, Dataset)> {
        train.sort_unstable();
        val.sort_unstable();
        let mut a = self.subset(&train)?;
        let mut b = self.subset(&val)?;
        a.name = format!("{}-train", self.name);
        b.name = format!("{}-val", self.name);
        Ok((a, b))
    }

    /// Mean and standard deviation of all pixels scaled by `max_value` (so in `[0, 1]`), for
    /// [`Normalize`](crate::Normalize). An empty data set gives `(0, 0)`.
    pub fn pixel_mean_std(&self) -> (f32, f32) {
        let mut counts = [0u64; 256];
        for &p in &self.pixels {
            counts[usize::from(p)] += 1;
        }
        self.histogram_mean_std(&counts)
    }

    /// Mean and standard deviation of each channel's pixels scaled by `max_value`, one pair
    /// per channel (torchvision's per-channel `Normalize` statistics). An empty data set
    /// gives `(0, 0)` for every channel.
    ///
    /// ```
    /// # use ferrograd_data::Dataset;
    /// let ds = Dataset {
    ///     name: "rgb".into(), pixels: vec![0, 10, 20, 20, 0, 0], labels: vec![0],
    ///     channels: 3, height: 1, width: 2, max_value: 10.0, class_names: vec!["a".into()],
    /// };
    /// assert_eq!(ds.channel_mean_std(), vec![(0.5, 0.5), (2.0, 0.0), (0.0, 0.0)]);
    /// ```
    pub fn channel_mean_std(&self) -> Vec<(f32, f32)> {
        let plane = self.height.saturating_mul(self.width);
        let mut counts = vec![[0u64; 256]; self.channels];
        if plane > 0 && self.channels > 0 {
            for (k, chunk) in self.pixels.chunks(plane).enumerate() {
                let c = &mut counts[k % self.channels];
                for &p in chunk {
                    c[usize::from(p)] += 1;
                }
            }
        }
        counts.iter().map(|c| self.histogram_mean_std(c)).collect()
    }

    /// Mean and standard deviation of scaled pixel values from their histogram.
    fn histogram_mean_std(&self, counts: &[u64; 256]) -> (f32, f32) {
        let n = counts.iter().sum::<u64>() as f64;
        if n == 0.0 || self.max_value <= 0.0 {
            return (0.0, 0.0);
        }
        let scale = f64::from(self.max_value);
        let mean = counts
            .iter()
            .enumerate()
            .map(|(v, &c)| c as f64 * v as f64 / scale)
            .sum::<f64>()
            / n;
        let var = counts
            .iter()
            .enumerate()
            .map(|(v, &c)| c as f64 * (v as f64 / scale - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean as f32, var.sqrt() as f32)
    }

    /// How many samples each class has, indexed by label (labels beyond `num_classes()` widen
    /// the histogram rather than being dropped).
    pub fn label_histogram(&self) -> Vec<usize> {
        let mut hist = vec![0; self.num_classes()];
        for &l in &self.labels {
            let l = usize::from(l);
            if l >= hist.len() {
                hist.resize(l + 1, 0);
            }
            hist[l] += 1;
        }
        hist
    }

    fn empty_like(&self, name: String) -> Dataset {
        Dataset {
            name,
            pixels: Vec::new(),
            labels: Vec::new(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            max_value: self.max_value,
            class_names: self.class_names.clone(),
        }
    }
}

/// A seeded stratified split of sample indices into `K + 1` parts: per class, a shuffle of
/// that class's samples (one generator across the classes, in label order) gives the first
/// `round(n_class * fractions[0])` to part 1, the next `round(n_class * fractions[1])` to
/// part 2, and so on; the rest go to part 0. Each part lists its indices in increasing order.
///
/// # Errors
/// [`DataError::Argument`] when a fraction is not in `[0, 1]` or the fractions add up to
/// more than 1.
pub(crate) fn stratified_parts(
    labels: &[u8],
    fractions: &[f64],
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    for &f in fractions {
        check_fraction(f)?;
    }
    if fractions.iter().sum::<f64>() > 1.0 + 1e-9 {
        return Err(DataError::argument(
            "split",
            format!("the held-out fractions {fractions:?} add up to more than 1"),
        ));
    }
    let mut rng = Rng::new(seed);
    let classes = labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0);
    let mut parts = vec![Vec::new(); fractions.len() + 1];
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len())
            .filter(|&i| usize::from(labels[i]) == class)
            .collect();
        rng.shuffle(&mut members);
        let mut start = 0;
        for (k, &f) in fractions.iter().enumerate() {
            let n = held_out_count(members.len(), f).min(members.len() - start);
            parts[k + 1].extend_from_slice(&members[start..start + n]);
            start += n;
        }
        parts[0].extend_from_slice(&members[start..]);
    }
    for part in &mut parts {
        part.sort_unstable();
    }
    Ok(parts)
}

fn check_fraction(val_fraction: f64) -> Result<()> {
    if (0.0..=1.0).contains(&val_fraction) {
        Ok(())
    } else {
        Err(DataError::argument(
            "split",
            format!("validation fraction {val_fraction} is not in [0, 1]"),
        ))
    }
}

fn held_out_count(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).min(n)
}

/// The data sets this crate can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// The UCI optical handwritten digits: 1,797 grey 8x8 images, values 0..16, embedded in
    /// the crate.
    Digits,
    /// MNIST handwritten digits: 60,000 + 10,000 grey 28x28 images.
    Mnist,
    /// Zalando's Fashion-MNIST: 60,000 + 10,000 grey 28x28 images of clothing.
    FashionMnist,
    /// CIFAR-10: 50,000 + 10,000 RGB 32x32 images.
    Cifar10,
}

const DIGIT_NAMES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const CIFAR10_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

impl DatasetKind {
    /// Every kind, in a fixed order.
    pub const ALL: [DatasetKind; 4] = [
        DatasetKind::Digits,
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
    ];

    /// The name used on command lines and as a folder name: `digits`, `mnist`,
    /// `fashion-mnist`, `cifar10`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Digits => "digits",
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }

    /// The class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Digits | DatasetKind::Mnist => &DIGIT_NAMES,
            DatasetKind::FashionMnist => &FASHION_NAMES,
            DatasetKind::Cifar10 => &CIFAR10_NAMES,
        }
    }

    /// The image shape `(channels, height, width)`.
    pub fn image_shape(self) -> (usize, usize, usize) {
        match self {
            DatasetKind::Digits => (1, 8, 8),
            DatasetKind::Mnist | DatasetKind::FashionMnist => (1, 28, 28),
            DatasetKind::Cifar10 => (3, 32, 32),
        }
    }

    /// The largest pixel value: 16 for the digits, 255 for the others.
    pub fn max_value(self) -> f32 {
        match self {
            DatasetKind::Digits => 16.0,
            _ => 255.0,
        }
    }

    /// The class names as owned strings, for [`Dataset::class_names`].
    pub(crate) fn class_name_strings(self) -> Vec<String> {
        self.class_names().iter().map(|s| s.to_string()).collect()
    }

    /// An empty data set of this kind named `name`, to fill with pixels and labels.
    pub(crate) fn empty_dataset(self, name: String) -> Dataset {
        let (channels, height, width) = self.image_shape();
        Dataset {
            name,
            pixels: Vec::new(),
            labels: Vec::new(),
            channels,
            height,
            width,
            max_value: self.max_value(),
            class_names: self.class_name_strings(),
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    /// Parses `digits`, `mnist`, `fashion-mnist` (or `fashion_mnist`, `fashionmnist`) and
    /// `cifar10` (or `cifar-10`), ignoring case.
    fn from_str(s: &str) -> Result<DatasetKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "digits" => Ok(DatasetKind::Digits),
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashionmnist" => Ok(DatasetKind::FashionMnist),
            "cifar10" | "cifar-10" => Ok(DatasetKind::Cifar10),
            _ => Err(DataError::argument(
                "dataset",
                format!(
                    "unknown data set {s:?}; expected one of digits, mnist, fashion-mnist, cifar10"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> Dataset {
        Dataset {
            name: "toy".into(),
            pixels: (0..n * 2).map(|v| (v % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 3) as u8).collect(),
            channels: 1,
            height: 1,
            width: 2,
            max_value: 255.0,
            class_names: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn subset_copies_the_chosen_samples_and_rejects_bad_indices() {
        let ds = toy(5);
        let s = ds.subset(&[4, 0, 4]).unwrap();
        assert_eq!(s.labels, vec![1, 0, 1]);
        assert_eq!(s.pixels, vec![8, 9, 0, 1, 8, 9]);
        let err = ds.subset(&[5]).unwrap_err().to_string();
        assert!(err.contains("index 5") && err.contains("toy"), "{err}");
    }

    #[test]
    fn split_is_deterministic_disjoint_and_complete() {
        let mut ds = toy(100);
        // Make every sample distinguishable by its first pixel.
        for i in 0..100 {
            ds.pixels[2 * i] = i as u8;
        }
        let (a, b) = ds.split(0.25, 7).unwrap();
        assert_eq!((a.len(), b.len()), (75, 25));
        assert_eq!(ds.split(0.25, 7).unwrap(), (a.clone(), b.clone()));
        assert_ne!(ds.split(0.25, 8).unwrap().1, b);
        let mut seen: Vec<u8> = a
            .pixels
            .iter()
            .chain(&b.pixels)
            .step_by(2)
            .copied()
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
        assert!(ds.split(1.5, 0).is_err());
        assert!(ds.split(f64::NAN, 0).is_err());
    }

    #[test]
    fn stratified_split_keeps_class_proportions() {
        let ds = toy(90);
        let (a, b) = ds.stratified_split(0.2, 0).unwrap();
        assert_eq!(b.label_histogram(), vec![6, 6, 6]);
        assert_eq!(a.label_histogram(), vec![24, 24, 24]);
        assert_eq!(ds.stratified_split(0.2, 0).unwrap().1, b);
    }

    #[test]
    fn mean_std_of_scaled_pixels() {
        let ds = Dataset {
            pixels: vec![0, 16, 0, 16],
            max_value: 16.0,
            ..toy(2)
        };
        let (m, s) = ds.pixel_mean_std();
        assert!((m - 0.5).abs() < 1e-6 && (s - 0.5).abs() < 1e-6, "{m} {s}");
        assert_eq!(toy(0).pixel_mean_std(), (0.0, 0.0));
    }

    #[test]
    fn validate_catches_disagreeing_fields() {
        assert!(toy(4).validate().is_ok());
        let mut ds = toy(4);
        ds.pixels.pop();
        assert!(ds.validate().is_err());
        let mut ds = toy(4);
        ds.labels[2] = 3;
        assert!(ds.validate().unwrap_err().to_string().contains("sample 2"));
    }

    #[test]
    fn kinds_parse_and_display() {
        for kind in DatasetKind::ALL {
            assert_eq!(kind.to_string().parse::<DatasetKind>().unwrap(), kind);
            assert_eq!(kind.class_names().len(), 10);
        }
        assert_eq!(
            "Fashion_MNIST".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        assert!("imagenet".parse::<DatasetKind>().is_err());
        assert_eq!(DatasetKind::FashionMnist.class_names()[9], "Ankle boot");
        assert_eq!(DatasetKind::Cifar10.class_names()[0], "airplane");
        assert_eq!(DatasetKind::Cifar10.class_names()[9], "truck");
    }
}
