//! A trained model on disk: `config.json` (architecture, preprocessing, training settings and
//! progress) beside `model.safetensors` (parameters named like PyTorch's, `layers.0.weight`)
//! and `optimizer.safetensors` (optimizer state, for `--resume`).

use std::path::Path;

use ferrograd_core::{DType, Rng};
use ferrograd_data::{Dataset, Normalize};
use ferrograd_nn::{Activation, MlpConfig, Module, Sequential, checkpoint, mlp, named_params};
use serde::{Deserialize, Serialize};

use crate::cli::{ModelKind, TrainArgs};
use crate::error::{CliError, Result};
use crate::output::write_atomic;

pub const CONFIG_FILE: &str = "config.json";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const FORMAT: u32 = 1;

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
    pub seed: u64,
    /// Epochs completed so far.
    pub epochs_done: usize,
}

/// Everything needed to rebuild and use a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub format: u32,
    pub dataset: String,
    /// `mlp` or `logistic`.
    pub model: String,
    pub input: usize,
    pub hidden: Vec<usize>,
    pub output: usize,
    pub activation: String,
    pub dropout: f64,
    /// `[channels, height, width]` of the input images.
    pub image: [usize; 3],
    /// Largest pixel value of the data set (pixels are scaled by it).
    pub max_value: f32,
    pub normalize_mean: f32,
    pub normalize_std: f32,
    pub class_names: Vec<String>,
    pub training: TrainingConfig,
}

impl RunConfig {
    /// The configuration of a new run of `args` on `data` (its images and classes).
    pub fn describe(args: &TrainArgs, data: &Dataset, normalize: Normalize) -> RunConfig {
        let (model, hidden) = match args.model {
            ModelKind::Mlp => ("mlp", args.hidden.0.clone()),
            ModelKind::Logistic => ("logistic", Vec::new()),
        };
        RunConfig {
            format: FORMAT,
            dataset: args.dataset.to_string(),
            model: model.to_string(),
            input: data.features(),
            hidden,
            output: data.num_classes(),
            activation: args.activation.to_string(),
            dropout: args.dropout,
            image: [data.channels, data.height, data.width],
            max_value: data.max_value,
            normalize_mean: normalize.mean,
            normalize_std: normalize.std,
            class_names: data.class_names.clone(),
            training: TrainingConfig {
                optimizer: format!("{:?}", args.optimizer).to_lowercase(),
                lr: args.lr.unwrap_or(args.optimizer.default_lr()),
                momentum: args.momentum,
                nesterov: args.nesterov,
                weight_decay: args.weight_decay,
                schedule: args.schedule.to_string(),
                warmup: args.warmup,
                clip_grad: args.clip_grad,
                label_smoothing: args.label_smoothing,
                batch_size: args.batch_size,
                epochs: args.epochs,
                val_fraction: args.val_fraction,
                seed: args.seed,
                epochs_done: 0,
            },
        }
    }

    pub fn normalize(&self) -> Normalize {
        Normalize {
            mean: self.normalize_mean,
            std: self.normalize_std,
        }
    }

    /// Builds the network with fresh weights (seeded).
    pub fn build(&self, rng: &mut Rng) -> Result<Sequential> {
        let activation: Activation = self.activation.parse()?;
        let cfg = MlpConfig {
            input: self.input,
            hidden: self.hidden.clone(),
            output: self.output,
            activation,
            dropout: self.dropout,
        };
        Ok(mlp(&cfg, DType::F32, rng)?)
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
        if cfg.format != FORMAT {
            return Err(CliError::file(
                &path,
                format!(
                    "config format {} is not supported (expected {FORMAT})",
                    cfg.format
                ),
            ));
        }
        if cfg.input != cfg.image.iter().product::<usize>() || cfg.output != cfg.class_names.len() {
            return Err(CliError::file(
                &path,
                "inconsistent config: input size, image shape and classes disagree",
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

    /// Builds the network and loads its weights from `model.safetensors`.
    pub fn load_model(&self, dir: &Path) -> Result<Sequential> {
        let model = self.build(&mut Rng::new(0))?;
        let path = dir.join(MODEL_FILE);
        let loaded = read_tensors(&path)?;
        checkpoint::load_into(&named_params(&model), &loaded)
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
