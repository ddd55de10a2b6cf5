//! A trained model on disk: `config.json` (architecture, preprocessing, training settings and
//! progress) beside `model.safetensors` (parameters and buffers named like PyTorch's,
//! `layers.0.weight`, `layers.1.running_mean`) and `optimizer.safetensors` (optimizer state,
//! for `--resume`).

use std::path::{Path, PathBuf};

use ferrograd_core::{DType, Rng};
use ferrograd_data::{Augment, DatasetKind, LoaderConfig, Normalize};
use ferrograd_nn::{
    Activation, CnnConfig, LeNetConfig, MlpConfig, Module, Sequential, checkpoint, cnn, lenet, mlp,
    named_state,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::cli::{DEFAULT_CNN_CHANNELS, ModelKind, TrainArgs};
use crate::error::{CliError, Result};
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
    /// The folder the data set was read from (`--data-dir`), so `--resume` and `eval` find it
    /// again without the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
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
            data_dir: args
                .data
                .data_dir
                .as_ref()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
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
                // Resolved for this run's length, so a resumed run keeps the same schedule.
                schedule: args.schedule.with_epochs(args.epochs).to_string(),
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

    /// Whether every layer this config describes is small enough to be stored in a checkpoint
    /// of `stored` values: a checkpoint holds each weight whole, so a layer larger than it
    /// cannot load. Checked before building, so that a corrupt or hostile config cannot make
    /// the construction allocate without bound.
    fn fits_in(&self, stored: usize) -> bool {
        let fits = |n: Option<usize>| n.is_some_and(|n| n <= stored);
        let [c, h, w] = self.image;
        match self.model_kind() {
            Some(ModelKind::Mlp | ModelKind::Logistic) => {
                let pieces = match self.activation.parse() {
                    Ok(Activation::Maxout(k)) => k,
                    _ => 1,
                };
                let mut widths = vec![self.input];
                widths.extend(&self.hidden);
                widths.push(self.output);
                fits(Some(widths.len()))
                    && widths
                        .windows(2)
                        .all(|p| fits(p[0].checked_mul(p[1]).and_then(|n| n.checked_mul(pieces))))
            }
            // Fixed widths; the first dense layer grows with the image.
            Some(ModelKind::Lenet) => fits(h.checked_mul(w)) && fits(c.checked_mul(150)),
            Some(ModelKind::Cnn) => {
                let conv =
                    |a: usize, b: usize| fits(a.checked_mul(b).and_then(|n| n.checked_mul(9)));
                let mut widths = vec![c];
                widths.extend(&self.channels);
                let last = widths.last().copied().unwrap_or(c);
                fits(self.channels.len().checked_mul(self.convs_per_stage))
                    && widths.windows(2).all(|p| conv(p[0], p[1]))
                    && (self.convs_per_stage < 2 || self.channels.iter().all(|&k| conv(k, k)))
                    && fits(last.checked_mul(self.output))
            }
            None => false,
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

    /// Parses and checks a `config.json` (`path` names it in errors): a known format and
    /// model, sizes that agree, and a preprocessing that gives finite inputs (positive
    /// scales).
    pub fn from_json(path: &Path, text: &str) -> Result<RunConfig> {
        let cfg: RunConfig = serde_json::from_str(text)
            .map_err(|e| CliError::file(path, format!("not a ferrograd model config: {e}")))?;
        if !READABLE_FORMATS.contains(&cfg.format) {
            return Err(CliError::file(
                path,
                format!(
                    "config format {} is not supported (expected one of {READABLE_FORMATS:?})",
                    cfg.format
                ),
            ));
        }
        if cfg.model_kind().is_none() {
            return Err(CliError::file(path, cfg.unknown_model()));
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
                path,
                "inconsistent config: input size, image shape, normalisation and classes disagree",
            ));
        }
        let positive = |v: f32| v.is_finite() && v > 0.0;
        if !cfg.normalize_std.iter().all(|&v| positive(v))
            || !cfg.normalize_mean.iter().all(|v| v.is_finite())
            || !positive(cfg.max_value)
        {
            return Err(CliError::file(
                path,
                format!(
                    "invalid preprocessing: normalize_std {:?} and max_value {} must be positive and normalize_mean {:?} finite",
                    cfg.normalize_std, cfg.max_value, cfg.normalize_mean
                ),
            ));
        }
        Ok(cfg)
    }

    /// `config.json`'s text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| CliError::file(CONFIG_FILE, e.to_string()))
    }

    /// Builds the network and loads its weights and buffers (`file` names them in errors);
    /// every value must be finite and every running variance non-negative.
    pub fn load_model(
        &self,
        file: &Path,
        tensors: &[(String, ferrograd_core::Tensor)],
    ) -> Result<Sequential> {
        let stored = tensors.iter().map(|(_, t)| t.numel()).sum();
        if !self.fits_in(stored) {
            return Err(CliError::file(
                file,
                format!("holds {stored} values, fewer than the layers its {CONFIG_FILE} describes"),
            ));
        }
        let model = self
            .build(&mut Rng::new(0))
            .map_err(|e| CliError::file(file, e.to_string()))?;
        check_finite(file, tensors)?;
        check_variances(file, tensors)?;
        checkpoint::load_into(&named_state(&model), tensors)
            .map_err(|e| CliError::file(file, e.to_string()))?;
        model.set_training(false);
        Ok(model)
    }
}

/// Fails, naming the first tensor, when a tensor holds a NaN or an infinity.
pub fn check_finite(file: &Path, tensors: &[(String, ferrograd_core::Tensor)]) -> Result<()> {
    for (name, t) in tensors {
        let finite = match t.dtype() {
            DType::F32 => t.to_vec::<f32>()?.iter().all(|v| v.is_finite()),
            DType::F64 => t.to_vec::<f64>()?.iter().all(|v| v.is_finite()),
            _ => true,
        };
        if !finite {
            return Err(CliError::file(
                file,
                format!("tensor {name:?} holds NaN or infinite values"),
            ));
        }
    }
    Ok(())
}

/// Fails, naming the tensor, when a batch norm's running variance (`*.running_var`) is
/// negative: normalising by its square root would give NaN.
pub fn check_variances(file: &Path, tensors: &[(String, ferrograd_core::Tensor)]) -> Result<()> {
    for (name, t) in tensors.iter().filter(|(n, _)| n.ends_with("running_var")) {
        let negative = match t.dtype() {
            DType::F32 => t.to_vec::<f32>()?.iter().any(|v| *v < 0.0),
            DType::F64 => t.to_vec::<f64>()?.iter().any(|v| *v < 0.0),
            _ => false,
        };
        if negative {
            return Err(CliError::file(
                file,
                format!("tensor {name:?} holds negative variances"),
            ));
        }
    }
    Ok(())
}

/// Parses safetensors bytes, naming `file` in errors.
pub fn parse_tensors(file: &Path, bytes: &[u8]) -> Result<Vec<(String, ferrograd_core::Tensor)>> {
    checkpoint::from_safetensors(bytes).map_err(|e| CliError::file(file, e.to_string()))
}

/// Named tensors as safetensors bytes (`file` names them in errors).
pub fn tensor_bytes(file: &str, tensors: &[(String, ferrograd_core::Tensor)]) -> Result<Vec<u8>> {
    checkpoint::to_safetensors(tensors, None).map_err(|e| CliError::file(file, e.to_string()))
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
    fn a_config_larger_than_its_checkpoint_is_refused_before_building() {
        // A width of billions would make building the model abort on allocation.
        let huge = FORMAT_1.replace(r#""hidden": [32]"#, r#""hidden": [4000000000]"#);
        let cfg = RunConfig::from_json(Path::new(CONFIG_FILE), &huge).unwrap();
        let tiny = ferrograd_core::Tensor::from_vec(vec![0.5f32; 8], &[8]).unwrap();
        let Err(err) = cfg.load_model(Path::new(MODEL_FILE), &[("x".into(), tiny)]) else {
            panic!("a config larger than its checkpoint was built");
        };
        let err = err.to_string();
        assert!(
            err.contains("model.safetensors") && err.contains("fewer than the layers"),
            "{err}"
        );
    }

    #[test]
    fn weights_must_be_finite_and_variances_non_negative() {
        let file = Path::new(MODEL_FILE);
        let t = |v: Vec<f32>| ferrograd_core::Tensor::from_vec(v, &[2]).unwrap();
        let good = vec![
            ("layers.0.weight".to_string(), t(vec![-1.0, 2.0])),
            ("layers.1.running_var".to_string(), t(vec![0.0, 2.0])),
        ];
        check_finite(file, &good).unwrap();
        check_variances(file, &good).unwrap();
        let nan = vec![("layers.0.weight".to_string(), t(vec![f32::NAN, 2.0]))];
        let err = check_finite(file, &nan).unwrap_err().to_string();
        assert!(
            err.contains("layers.0.weight") && err.contains("NaN"),
            "{err}"
        );
        let var = vec![("layers.1.running_var".to_string(), t(vec![-1.0, 2.0]))];
        let err = check_variances(file, &var).unwrap_err().to_string();
        assert!(
            err.contains("running_var") && err.contains("negative"),
            "{err}"
        );
    }

    #[test]
    fn format_1_configs_still_load() {
        let path = Path::new(CONFIG_FILE);
        let cfg = RunConfig::from_json(path, FORMAT_1).unwrap();
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
        let err = RunConfig::from_json(path, &unknown)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains("unknown model"),
            "{err}"
        );
        let bad = FORMAT_1.replace(
            r#""normalize_mean": 0.3"#,
            r#""normalize_mean": [0.1, 0.2]"#,
        );
        let err = RunConfig::from_json(path, &bad).unwrap_err().to_string();
        assert!(err.contains("inconsistent"), "{err}");
        // A zero scale would divide every pixel by zero.
        let zero = FORMAT_1.replace(r#""normalize_std": 0.4"#, r#""normalize_std": 0"#);
        let err = RunConfig::from_json(path, &zero).unwrap_err().to_string();
        assert!(err.contains("normalize_std"), "{err}");
    }
}
