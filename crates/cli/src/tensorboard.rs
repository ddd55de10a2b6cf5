//! TensorBoard event files (`events.out.tfevents.*`), written with `--tensorboard` into the
//! run folder: each record is a protobuf `Event` (encoded by `prost` from the message
//! definitions below, field numbers as in TensorFlow's `event.proto`, `summary.proto` and
//! `histogram.proto`) in TFRecord framing: the length as a little-endian u64, its masked
//! CRC32C, the bytes, and their masked CRC32C (`crc32c`). Scalars, histograms and PNG images
//! are what TensorBoard's scalar, histogram and image dashboards read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrograd_core::Tensor;
use ferrograd_data::Batch;
use ferrograd_nn::{Sequential, classifier_step, named_params};

use crate::error::{CliError, Result};
use crate::metrics::EpochMetrics;

/// The messages of TensorFlow's protobuf files that ferrograd writes (a subset of each).
pub mod proto {
    /// `tensorflow.Event`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        #[prost(double, tag = "1")]
        pub wall_time: f64,
        #[prost(int64, tag = "2")]
        pub step: i64,
        #[prost(oneof = "event::What", tags = "3, 5")]
        pub what: Option<event::What>,
    }

    pub mod event {
        /// `Event.what`.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum What {
            /// The first record of a file: `brain.Event:2`.
            #[prost(string, tag = "3")]
            FileVersion(String),
            #[prost(message, tag = "5")]
            Summary(super::Summary),
        }
    }

    /// `tensorflow.Summary`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Summary {
        #[prost(message, repeated, tag = "1")]
        pub value: Vec<summary::Value>,
    }

    pub mod summary {
        /// `Summary.Value`.
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Value {
            #[prost(string, tag = "1")]
            pub tag: String,
            #[prost(oneof = "value::Kind", tags = "2, 4, 5")]
            pub kind: Option<value::Kind>,
        }

        pub mod value {
            /// `Summary.Value.value`.
            #[derive(Clone, PartialEq, prost::Oneof)]
            pub enum Kind {
                #[prost(float, tag = "2")]
                SimpleValue(f32),
                #[prost(message, tag = "4")]
                Image(super::Image),
                #[prost(message, tag = "5")]
                Histo(super::super::HistogramProto),
            }
        }

        /// `Summary.Image`: an encoded PNG.
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct Image {
            #[prost(int32, tag = "1")]
            pub height: i32,
            #[prost(int32, tag = "2")]
            pub width: i32,
            /// 1 grey, 3 RGB, 4 RGBA.
            #[prost(int32, tag = "3")]
            pub colorspace: i32,
            #[prost(bytes = "vec", tag = "4")]
            pub encoded_image_string: Vec<u8>,
        }
    }

    /// `tensorflow.HistogramProto`: bucket `i` counts the values in
    /// `(bucket_limit[i - 1], bucket_limit[i]]`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HistogramProto {
        #[prost(double, tag = "1")]
        pub min: f64,
        #[prost(double, tag = "2")]
        pub max: f64,
        #[prost(double, tag = "3")]
        pub num: f64,
        #[prost(double, tag = "4")]
        pub sum: f64,
        #[prost(double, tag = "5")]
        pub sum_squares: f64,
        #[prost(double, repeated, tag = "6")]
        pub bucket_limit: Vec<f64>,
        #[prost(double, repeated, tag = "7")]
        pub bucket: Vec<f64>,
    }
}

use proto::summary::{Image, Value, value::Kind};
use proto::{Event, HistogramProto, Summary, event::What};

/// Buckets of the histograms.
const BUCKETS: usize = 30;

/// The CRC TFRecord stores: CRC32C rotated right by 15 bits plus a constant, so that a CRC
/// of data that itself contains CRCs stays well distributed.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// A histogram of `values` over equal-width buckets from their minimum to their maximum.
pub fn histogram(values: &[f32]) -> HistogramProto {
    let finite: Vec<f64> = values
        .iter()
        .map(|&v| v as f64)
        .filter(|v| v.is_finite())
        .collect();
    let (min, max) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if finite.is_empty() {
        return HistogramProto::default();
    }
    let buckets = if max > min { BUCKETS } else { 1 };
    let width = (max - min) / buckets as f64;
    let mut limits: Vec<f64> = (1..buckets).map(|i| min + width * i as f64).collect();
    limits.push(max);
    let mut counts = vec![0.0; buckets];
    for &v in &finite {
        let i = limits.partition_point(|&limit| limit < v).min(buckets - 1);
        counts[i] += 1.0;
    }
    HistogramProto {
        min,
        max,
        num: finite.len() as f64,
        sum: finite.iter().sum(),
        sum_squares: finite.iter().map(|v| v * v).sum(),
        bucket_limit: limits,
        bucket: counts,
    }
}

/// An open event file.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventWriter {
    /// Creates `events.out.tfevents.<seconds>.<host>.<pid>` in `dir` and writes its version
    /// record. A resumed run writes a new file beside the earlier ones; TensorBoard reads
    /// them in order as one run.
    pub fn create(dir: &Path) -> Result<EventWriter> {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or_else(|| "localhost".to_string());
        let name = format!(
            "events.out.tfevents.{}.{host}.{}",
            now() as u64,
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| CliError::io(&path, e))?;
        let mut writer = EventWriter {
            path,
            file: BufWriter::new(file),
        };
        writer.write(Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".to_string())),
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, event: Event) -> Result<()> {
        let bytes = prost::Message::encode_to_vec(&event);
        self.file
            .write_all(&frame(&bytes))
            .map_err(|e| CliError::io(&self.path, e))
    }

    fn summary(&mut self, step: usize, tag: &str, kind: Kind) -> Result<()> {
        self.write(Event {
            wall_time: now(),
            step: step as i64,
            what: Some(What::Summary(Summary {
                value: vec![Value {
                    tag: tag.to_string(),
                    kind: Some(kind),
                }],
            })),
        })
    }

    /// A scalar (TensorBoard's "Scalars" dashboard).
    pub fn scalar(&mut self, tag: &str, step: usize, value: f64) -> Result<()> {
        self.summary(step, tag, Kind::SimpleValue(value as f32))
    }

    /// A histogram of values ("Histograms" and "Distributions").
    pub fn histogram(&mut self, tag: &str, step: usize, values: &[f32]) -> Result<()> {
        self.summary(step, tag, Kind::Histo(histogram(values)))
    }

    /// A PNG image of `width` x `height` RGB pixels ("Images").
    pub fn png(&mut self, tag: &str, step: usize, png: Vec<u8>, size: (u32, u32)) -> Result<()> {
        let image = Image {
            height: size.1 as i32,
            width: size.0 as i32,
            colorspace: 3,
            encoded_image_string: png,
        };
        self.summary(step, tag, Kind::Image(image))
    }

    /// Writes what is buffered to the file (after each epoch, so TensorBoard sees it live).
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| CliError::io(&self.path, e))
    }
}

/// What one epoch adds to the event file: the scalars of `m`; a histogram of every parameter
/// and of its gradient (the gradient of the loss on `batch`, one fixed training batch, with the
/// model in evaluation mode so that batch norm's statistics stay untouched), tagged
/// `weights/<name>` and `gradients/<name>`; and the validation confusion matrix as an image.
pub fn log_epoch(
    w: &mut EventWriter,
    m: &EpochMetrics,
    model: &Sequential,
    batch: Option<&Batch>,
    confusion: Option<(&[Vec<usize>], &[String])>,
) -> Result<()> {
    let step = m.epoch;
    for (tag, value) in [
        ("loss/train", m.train_loss),
        ("loss/val", m.val_loss),
        ("accuracy/train", m.train_accuracy),
        ("accuracy/val", m.val_accuracy),
        ("learning_rate", m.lr),
        ("samples_per_s", m.samples_per_s),
    ] {
        if value.is_finite() {
            w.scalar(tag, step, value)?;
        }
    }
    let params = named_params(model);
    for (name, p) in &params {
        w.histogram(&format!("weights/{name}"), step, &p.to_vec::<f32>()?)?;
    }
    if let Some(batch) = batch {
        let tensors: Vec<Tensor> = params.iter().map(|(_, p)| p.clone()).collect();
        let out = classifier_step(model, &tensors, 0.0)(&[batch.x.clone(), batch.y.clone()])?;
        for ((name, _), g) in params.iter().zip(&out[2..]) {
            w.histogram(&format!("gradients/{name}"), step, &g.to_vec::<f32>()?)?;
        }
    }
    if let Some((matrix, names)) = confusion {
        let png = crate::plot::confusion(w.path(), matrix, names, "validation")?;
        let size = crate::plot::confusion_size(matrix.len());
        w.png("confusion/val", step, png, size)?;
    }
    w.flush()
}

/// Removes the event files a previous run left in `dir`, so a new run's curves do not mix
/// with another run's.
pub fn remove_stale(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("events.out.tfevents.") {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| CliError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_of_known_values() {
        // CRC32C("123456789") = 0xE3069283 (RFC 3720's check value); masked by hand:
        // rotate right 15 = 0x2507C60D, plus 0xA282EAD8 = 0xC78AB0E5.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn histogram_buckets_hold_every_value() {
        let values: Vec<f32> = (0..100).map(|i| i as f32 / 10.0).collect();
        let h = histogram(&values);
        assert_eq!((h.min, h.max, h.num), (0.0, 9.899999618530273, 100.0));
        assert_eq!(h.bucket.len(), BUCKETS);
        assert_eq!(h.bucket.iter().sum::<f64>(), 100.0);
        assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(*h.bucket_limit.last().unwrap(), h.max);
        let one = histogram(&[2.0, 2.0, f32::NAN]);
        assert_eq!((one.bucket.clone(), one.num), (vec![2.0], 2.0));
    }
}
