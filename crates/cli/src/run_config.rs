//! A trained model on disk: `config.json` (architecture, preprocessing, training settings and
//! progress) beside `model.safetensors` (parameters and buffers named like PyTorch's,
//! `layers.0.weight`, `layers.1.running_mean`) and `optimizer.safetensors` (optimizer state,
//! for `--resume`).

use std::path::Path;

use ferrograd_core::{DType, Rng};
use ferrograd_data::{Augment, DatasetKind, LoaderConfig, Normalize};
use ferrograd_nn::{
    Activation, CnnConfig, LeNetConfig, MlpConfig, Module, Sequential, checkpoint, cnn, lenet, mlp,
    named_state,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cli::{DEFAULT_CNN_CHANNELS, ModelKind, TrainArgs};
use crate::error::{CliError, Result};
use crate::output::write_atomic;
use crate::training_data::{DataInfo, TableColumns};

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The format written; format 1 (one normalisation for all channels, written as numbers,
/// and MLPs only) is still read.
const FORMAT: u32 = 2;
const READABLE_FORMATS: [u32; 2] = [1, 2];

/// Training settings and progress, kept so `--resume` continues the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingConfig {
    pub optimizer: String,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub schedule: String,
    pub warmup: usize,
    pub clip_grad: Option<f64>,
    pub label_smoothing: f64,
    pub batch_size: usize,
    pub epochs: usize,
    pub val_fraction: f64,
    /// Fraction held out for testing (own data without a test/ folder).
    #[serde(default)]
    pub test_fraction: f64,
    pub seed: u64,
    /// Random augmentation of the training images.
    #[serde(default)]
    pub augment: bool,
    /// Epochs completed so far.
    pub epochs_done: usize,
}

/// Everything needed to rebuild and use a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub format: u32,
    pub dataset: String,
    /// `mlp`, `logistic`, `lenet` or `cnn`.
    pub model: String,
    pub input: usize,
    pub hidden: Vec<usize>,
    pub output: usize,
    pub activation: String,
    pub dropout: f64,
    /// Output channels of the CNN's stages (cnn only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<usize>,
    /// Convolutions per CNN stage (cnn only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub convs_per_stage: usize,
    /// `[channels, height, width]` of the input images.
    pub image: [usize; 3],
    /// Largest pixel value of the data set (pixels are scaled by it).
    pub max_value: f32,
    /// Subtracted from the scaled pixels: one value for all channels, or one per channel.
    #[serde(deserialize_with = "one_or_many")]
    pub normalize_mean: Vec<f32>,
    /// The centred pixels are divided by this: one value, or one per channel.
    #[serde(deserialize_with = "one_or_many")]
    pub normalize_std: Vec<f32>,
    pub class_names: Vec<String>,
    /// The columns of the CSV table a model was trained on (`--dataset csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableColumns>,
    pub training: TrainingConfig,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A number or a list of numbers, as a list (format 1 wrote one number).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<f32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f32),
        Many(Vec<f32>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

impl RunConfig {
    /// The configuration of a new run of `args` on data described by `data` (its sample
    /// shape, classes and normalisation). Flags left out take the model's defaults.
    pub fn describe(args: &TrainArgs, data: &DataInfo) -> RunConfig {
        let conv = args.model.is_convolutional();
        let hidden = match args.model {
            ModelKind::Mlp => args.hidden.0.clone(),
            _ => Vec::new(),
        };
        let channels = match (args.model, &args.filters) {
            (ModelKind::Cnn, Some(c)) => c.0.clone(),
            (ModelKind::Cnn, None) => DEFAULT_CNN_CHANNELS.to_vec(),
            _ => Vec::new(),
        };
        let norms = &data.normalize;
        let (default_optimizer, momentum, weight_decay) = args.model.default_optimizer();
        let optimizer = args.optimizer.unwrap_or(default_optimizer);
        RunConfig {
            format: FORMAT,
            dataset: args.dataset.to_string(),
            model: args.model.name().to_string(),
            input: data.image.iter().product(),
            hidden,
            output: data.class_names.len(),
            // The convolutional models have their own layers: ReLU, no dropout.
            activation: if conv {
                Activation::Relu.to_string()
            } else {
                args.activation.to_string()
            },
            dropout: if conv { 0.0 } else { args.dropout },
            convs_per_stage: if args.model == ModelKind::Cnn { 1 } else { 0 },
            channels,
            image: data.image,
            max_value: data.max_value,
            normalize_mean: norms.iter().map(|n| n.mean).collect(),
            normalize_std: norms.iter().map(|n| n.std).collect(),
            class_names: data.class_names.clone(),
            table: data.table.clone(),
            training: TrainingConfig {
                optimizer: optimizer.name().to_string(),
                lr: args.lr.unwrap_or(optimizer.default_lr()),
                momentum: args.momentum.unwrap_or(momentum),
                nesterov: args.nesterov,
                weight_decay: args.weight_decay.unwrap_or(weight_decay),
                schedule: args.schedule.to_string(),
                warmup: args.warmup,
                clip_grad: args.clip_grad,
                label_smoothing: args.label_smoothing,
                batch_size: args.batch_size,
                epochs: args.epochs,
                val_fraction: args.val_fraction,
                test_fraction: args.own.test_fraction,
                seed: args.seed,
                augment: args.augment,
                epochs_done: 0,
            },
        }
    }

    /// The kind of model, `None` for a name this version does not know.
    pub fn model_kind(&self) -> Option<ModelKind> {
        <ModelKind as clap::ValueEnum>::from_str(&self.model, false).ok()
    }

    fn unknown_model(&self) -> String {
        format!(
            "unknown model {:?} (expected mlp, logistic, lenet or cnn)",
            self.model
        )
    }

    /// Whether the model takes images `[n, c, h, w]` rather than rows of features.
    pub fn takes_images(&self) -> bool {
        self.model_kind().is_some_and(ModelKind::is_convolutional)
    }

    /// The normalisation of channel `c`'s pixels.
    pub fn normalize(&self, c: usize) -> Normalize {
        let at = |v: &[f32]| v.get(c).or(v.first()).copied();
        Normalize {
            mean: at(&self.normalize_mean).unwrap_or(0.0),
            std: at(&self.normalize_std).unwrap_or(1.0),
        }
    }

    /// How a loader prepares this model's batches: each channel's normalisation, images for
    /// convolutional models; training loaders (`train`) augment when the run asked for it.
    pub fn loader_config(&self, batch_size: usize, seed: u64, train: bool) -> LoaderConfig {
        let augment = match self.dataset.parse::<DatasetKind>() {
            Ok(kind) if train && self.training.augment => Augment::standard(kind),
            _ => Augment::NONE,
        };
        LoaderConfig {
            batch_size,
            seed,
            channel_normalize: (0..self.image[0]).map(|c| self.normalize(c)).collect(),
            images: self.takes_images(),
            augment,
            ..Default::default()
        }
    }

    /// Builds the network with fresh weights (seeded).
    pub fn build(&self, rng: &mut Rng) -> Result<Sequential> {
        let [c, h, w] = self.image;
        let kind = self
            .model_kind()
            .ok_or_else(|| CliError::file(CONFIG_FILE, self.unknown_model()))?;
        Ok(match kind {
            ModelKind::Mlp | ModelKind::Logistic => {
                let activation: Activation = self.activation.parse()?;
                let cfg = MlpConfig {
                    input: self.input,
                    hidden: self.hidden.clone(),
                    output: self.output,
                    activation,
                    dropout: self.dropout,
                };
                mlp(&cfg, DType::F32, rng)?
            }
            ModelKind::Lenet => lenet(
                &LeNetConfig::for_image(c, h, w, self.output),
                DType::F32,
                rng,
            )?,
            ModelKind::Cnn => {
                let cfg = CnnConfig {
                    in_channels: c,
                    channels: self.channels.clone(),
                    convs_per_stage: self.convs_per_stage,
                    classes: self.output,
                };
                cnn(&cfg, DType::F32, rng)?
            }
        })
    }

    /// Reads `config.json` from a model folder.
    pub fn load(dir: &Path) -> Result<RunConfig> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CliError::file(
                &path,
                "not found: is this the --out folder of `ferrograd train`?",
            ),
            _ => CliError::io(&path, e),
        })?;
        let cfg: RunConfig = serde_json::from_str(&text)
            .map_err(|e| CliError::file(&path, format!("not a ferrograd model config: {e}")))?;
        if !READABLE_FORMATS.contains(&cfg.format) {
            return Err(CliError::file(
                &path,
                format!(
                    "config format {} is not supported (expected one of {READABLE_FORMATS:?})",
                    cfg.format
                ),
            ));
        }
        if cfg.model_kind().is_none() {
            return Err(CliError::file(&path, cfg.unknown_model()));
        }
        let channels = cfg.image[0];
        let norm_ok = |v: &[f32]| v.len() == 1 || v.len() == channels;
        if cfg.input != cfg.image.iter().product::<usize>()
            || cfg.output != cfg.class_names.len()
            || cfg
                .table
                .as_ref()
                .is_some_and(|t| t.features.len() != cfg.input)
            || !norm_ok(&cfg.normalize_mean)
            || !norm_ok(&cfg.normalize_std)
        {
            return Err(CliError::file(
                &path,
                "inconsistent config: input size, image shape, normalisation and classes disagree",
            ));
        }
        Ok(cfg)
    }

    /// Writes `config.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CliError::file(dir.join(CONFIG_FILE), e.to_string()))?;
        write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
    }

    /// Builds the network and loads its weights and buffers from `model.safetensors`.
    pub fn load_model(&self, dir: &Path) -> Result<Sequential> {
        let model = self
            .build(&mut Rng::new(0))
            .map_err(|e| CliError::file(dir.join(CONFIG_FILE), e.to_string()))?;
        let path = dir.join(MODEL_FILE);
        let loaded = read_tensors(&path)?;
        checkpoint::load_into(&named_state(&model), &loaded)
            .map_err(|e| CliError::file(&path, e.to_string()))?;
        model.set_training(false);
        Ok(model)
    }
}

/// Reads a safetensors file, naming it in errors.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, ferrograd_core::Tensor)>> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    checkpoint::from_safetensors(&bytes).map_err(|e| CliError::file(path, e.to_string()))
}

/// Writes named tensors as a safetensors file, atomically.
pub fn write_tensors(path: &Path, tensors: &[(String, ferrograd_core::Tensor)]) -> Result<()> {
    let bytes = checkpoint::to_safetensors(tensors, None)
        .map_err(|e| CliError::file(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config written by format 1: one normalisation as numbers, no CNN fields.
    const FORMAT_1: &str = r#"{
        "format": 1, "dataset": "digits", "model": "mlp", "input": 64, "hidden": [32],
        "output": 10, "activation": "relu", "dropout": 0.0, "image": [1, 8, 8],
        "max_value": 16.0, "normalize_mean": 0.3, "normalize_std": 0.4,
        "class_names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "training": {"optimizer": "adam", "lr": 0.001, "momentum": 0.0, "nesterov": false,
            "weight_decay": 0.0, "schedule": "cosine", "warmup": 0, "clip_grad": null,
            "label_smoothing": 0.0, "batch_size": 32, "epochs": 3, "val_fraction": 0.1,
            "seed": 0, "epochs_done": 3}
    }"#;

    #[test]
    fn format_1_configs_still_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), FORMAT_1).unwrap();
        let cfg = RunConfig::load(dir.path()).unwrap();
        assert_eq!(
            (cfg.normalize_mean.clone(), cfg.normalize_std.clone()),
            (vec![0.3], vec![0.4])
        );
        assert!(!cfg.takes_images() && !cfg.training.augment);
        let loader = cfg.loader_config(8, 0, true);
        assert!(!loader.images);
        assert_eq!(
            loader.channel_normalize,
            [Normalize {
                mean: 0.3,
                std: 0.4
            }]
        );
        assert!(loader.augment.is_none());

        let unknown = FORMAT_1.replace(r#""model": "mlp""#, r#""model": "vgg""#);
        std::fs::write(dir.path().join(CONFIG_FILE), unknown).unwrap();
        let err = RunConfig::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("unknown model"),
            "{err}"
        );
        let bad = FORMAT_1.replace(
            r#""normalize_mean": 0.3"#,
            r#""normalize_mean": [0.1, 0.2]"#,
        );
        std::fs::write(dir.path().join(CONFIG_FILE), bad).unwrap();
        let err = RunConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("inconsistent"), "{err}");
    }
}
