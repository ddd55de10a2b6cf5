//! Command-line arguments (clap). Values are parsed into typed options here, so a bad flag is
//! reported by clap with the flag's name and the accepted values before anything runs.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use ferrograd_data::DatasetKind;
use ferrograd_nn::{Activation, Schedule, activation_curve};

/// Train, evaluate and use neural-network image classifiers on the CPU.
#[derive(Parser, Debug)]
#[command(name = "ferrograd", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments (exiting with clap's message on a usage error) and
    /// records which `train` flags were given on the command line (`TrainArgs::given`).
    pub fn parse_args() -> Cli {
        let matches = Cli::command().get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let (Command::Train(args), Some(("train", sub))) =
            (&mut cli.command, matches.subcommand())
        {
            let command = Cli::command();
            if let Some(train) = command.find_subcommand("train") {
                args.given = train
                    .get_arguments()
                    .filter(|a| {
                        sub.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine)
                    })
                    .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                    .collect();
            }
        }
        cli
    }
}

// Parsed once per process, so the size of the largest variant (train's many flags) costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a classifier (with no options: an MLP on the embedded 8x8 digits, in seconds).
    Train(Box<TrainArgs>),
    /// Score a saved model on a data set's test split.
    Eval(EvalArgs),
    /// Classify image files (PNG, JPEG or PGM, any size), or the rows of CSV files for a model
    /// trained on a table, with a saved model.
    Predict(PredictArgs),
    /// Write the computation graph of a training step as Graphviz DOT (and SVG where `dot` is
    /// installed): forward only, forward and backward, and after the optimisation passes.
    Graph(GraphArgs),
    /// Draw activation functions and their derivatives (by autodiff) into one PNG.
    PlotActivations(PlotActivationsArgs),
    /// Show a saved model layer by layer: output shape, parameters and multiply-accumulates
    /// per sample, and the totals (like Keras' model.summary()).
    Summary(SummaryArgs),
    /// Measure throughput (GEMM, MLP and CNN training steps, inference, MNIST epochs): runs
    /// the `ferrograd-bench` binary beside this one with the same arguments (see
    /// `ferrograd bench --help`).
    #[command(disable_help_flag = true)]
    Bench(BenchArgs),
}

/// The arguments of `ferrograd bench`, handed to `ferrograd-bench` as they are.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Arguments of ferrograd-bench (--workload, --batch, --threads, --mode, --json, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

/// Which network to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModelKind {
    /// A multilayer perceptron with the --hidden layers.
    Mlp,
    /// Logistic (softmax) regression: one linear layer, no hidden layers.
    Logistic,
    /// LeNet-5, modern form: conv 5x5 (6), ReLU, max pool, conv 5x5 (16), ReLU, max pool,
    /// 120, 84, classes (28x28 or 32x32 images).
    Lenet,
    /// A plain CNN: per stage of --filters, conv 3x3, batch norm, ReLU, max pool; then
    /// global average pooling and a linear layer.
    Cnn,
}

impl ModelKind {
    /// The name used in `config.json` and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Logistic => "logistic",
            ModelKind::Lenet => "lenet",
            ModelKind::Cnn => "cnn",
        }
    }

    /// Whether the model is convolutional (it takes images, not rows of features).
    pub fn is_convolutional(self) -> bool {
        matches!(self, ModelKind::Lenet | ModelKind::Cnn)
    }

    /// The optimizer settings a model trains with unless the flags say otherwise:
    /// (optimizer, momentum, weight decay). The learning rate defaults per optimizer
    /// ([`OptimizerKind::default_lr`]).
    pub fn default_optimizer(self) -> (OptimizerKind, f64, f64) {
        match self {
            ModelKind::Mlp | ModelKind::Logistic | ModelKind::Lenet => {
                (OptimizerKind::Adam, 0.0, 0.0)
            }
            ModelKind::Cnn => (OptimizerKind::Sgd, 0.9, 5e-4),
        }
    }
}

/// The stage channels of `--model cnn` unless --filters is given.
pub const DEFAULT_CNN_CHANNELS: [usize; 3] = [32, 64, 128];

/// How the training step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Define-by-run: the graph is recorded anew at every step.
    Eager,
    /// The whole step (forward, loss, backward and the optimizer's update) is traced once per
    /// batch shape, optimised as one graph and replayed.
    Static,
}

/// Which optimizer updates the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerKind {
    /// Gradient descent / SGD, with --momentum and --nesterov.
    Sgd,
    /// Adam (L2 weight decay).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
    /// RMSprop (with --momentum).
    Rmsprop,
    /// Adagrad.
    Adagrad,
}

impl OptimizerKind {
    /// The name used on the command line and in `config.json`.
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adagrad => "adagrad",
        }
    }

    /// The default learning rate of each optimizer.
    pub fn default_lr(self) -> f64 {
        match self {
            OptimizerKind::Sgd => 0.1,
            OptimizerKind::Adam | OptimizerKind::Adamw => 1e-3,
            OptimizerKind::Rmsprop => 1e-3,
            OptimizerKind::Adagrad => 0.01,
        }
    }
}

fn parse_dataset(s: &str) -> Result<DatasetKind, String> {
    s.parse::<DatasetKind>().map_err(|e| e.to_string())
}

/// What `train --dataset` names: a known data set, or the user's own data in `--data-dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainData {
    /// digits, mnist, fashion-mnist or cifar10.
    Known(DatasetKind),
    /// A folder of class sub-folders of PNG and JPEG images.
    Folder,
    /// A CSV table with a label column.
    Csv,
}

impl std::fmt::Display for TrainData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainData::Known(kind) => kind.fmt(f),
            TrainData::Folder => f.write_str("folder"),
            TrainData::Csv => f.write_str("csv"),
        }
    }
}

pub(crate) fn parse_train_data(s: &str) -> Result<TrainData, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "folder" => Ok(TrainData::Folder),
        "csv" => Ok(TrainData::Csv),
        _ => s.parse::<DatasetKind>().map(TrainData::Known).map_err(|_| {
            format!(
                "unknown data set {s:?}; expected one of digits, mnist, fashion-mnist, cifar10, folder, csv"
            )
        }),
    }
}

/// An image size, parsed from `28x28` (height x width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize(pub [usize; 2]);

fn parse_image_size(s: &str) -> Result<ImageSize, String> {
    let dims: Option<Vec<usize>> = s
        .split('x')
        .map(|p| {
            p.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0 && n <= 4096)
        })
        .collect();
    match dims.as_deref() {
        Some(&[h, w]) => Ok(ImageSize([h, w])),
        _ => Err(format!(
            "{s:?} is not HEIGHTxWIDTH with sides of 1 to 4096 pixels (expected e.g. 28x28)"
        )),
    }
}

fn parse_colour_channels(s: &str) -> Result<usize, String> {
    match s.trim() {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err(format!(
            "{s:?} is not 1 (grey) or 3 (RGB); the CNN's stage widths are set with --filters"
        )),
    }
}

fn parse_activation(s: &str) -> Result<Activation, String> {
    s.parse::<Activation>().map_err(|e| e.to_string())
}

/// Parses an activation name and refuses those without a curve `f(x)`.
fn parse_elementwise(s: &str) -> Result<Activation, String> {
    let a = parse_activation(s)?;
    if activation_curve::is_elementwise(a) {
        Ok(a)
    } else {
        Err(format!(
            "{a} mixes the elements of its input, so it has no curve f(x)"
        ))
    }
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    s.parse::<Schedule>().map_err(|e| e.to_string())
}

/// Hidden layer widths, parsed from `256,128` (`none` for no hidden layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenSizes(pub Vec<usize>);

/// Channels of the CNN's stages, parsed from `32,64,128`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels(pub Vec<usize>);

fn parse_filters(s: &str) -> Result<Channels, String> {
    positive_list(s, "channel count", "32,64,128").map(Channels)
}

/// Comma-separated positive integers; `what` and `example` go into the error.
fn positive_list(s: &str, what: &str, example: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(|p| match p.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{p:?} is not a positive {what} (expected e.g. {example})"
            )),
        })
        .collect()
}

/// An image shape, parsed from `1x28x28` (channels x height x width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageShape(pub [usize; 3]);

fn parse_image_shape(s: &str) -> Result<ImageShape, String> {
    let dims: Vec<usize> = s
        .split('x')
        .map(|p| p.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{s:?} is not CHANNELSxHEIGHTxWIDTH (expected e.g. 1x28x28)"))?;
    match dims[..] {
        [c, h, w] => Ok(ImageShape([c, h, w])),
        _ => Err(format!(
            "{s:?} is not CHANNELSxHEIGHTxWIDTH (expected e.g. 1x28x28)"
        )),
    }
}
fn parse_hidden(s: &str) -> Result<HiddenSizes, String> {
    if s == "none" {
        return Ok(HiddenSizes(Vec::new()));
    }
    if s.trim().is_empty() {
        return Err(
            "an empty list; give layer widths such as 256,128 (or none, or --model logistic, for no hidden layer)"
                .into(),
        );
    }
    positive_list(s, "layer width", "256,128").map(HiddenSizes)
}

fn non_negative_usize(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .map_err(|_| format!("{s:?} is not a non-negative integer"))
}

fn non_negative_u64(s: &str) -> Result<u64, String> {
    s.parse::<u64>()
        .map_err(|_| format!("{s:?} is not a non-negative integer"))
}

/// A clap value parser: an integer above 0.
pub fn positive_usize(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a positive integer")),
    }
}

/// The most worker threads allowed per core: more only adds switching and waiting.
const THREADS_PER_CORE: usize = 4;

/// A clap value parser for `--threads`: a positive count, at most a few per core (far more
/// threads than cores makes every step wait for the scheduler).
pub fn thread_count(s: &str) -> Result<usize, String> {
    let n = positive_usize(s)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limit = cores * THREADS_PER_CORE;
    if n > limit {
        return Err(format!(
            "{n} threads is far more than this machine's {cores} cores (at most {limit} are allowed; {cores} is fastest)"
        ));
    }
    Ok(n)
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a non-negative number")),
    }
}

/// A clap value parser: a finite number above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number in [0, 1)")),
    }
}

/// The quantity early stopping watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Monitor {
    /// The validation loss (lower is better).
    #[value(name = "val_loss")]
    ValLoss,
    /// The validation accuracy (higher is better).
    #[value(name = "val_accuracy")]
    ValAccuracy,
}

impl Monitor {
    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
        }
    }
}

/// Which checkpoint of a run to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckpointChoice {
    /// The best epoch's (kept in best/ by --early-stopping), else the last.
    Best,
    /// The last epoch's.
    Last,
}

/// Where a data set comes from.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Folder holding the data set's standard files (e.g. train-images-idx3-ubyte.gz), or a
    /// parent of a folder named after the data set; with --dataset folder, the image folder;
    /// with --dataset csv, the CSV file.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Download MNIST / Fashion-MNIST into the cache folder when no local copy is found.
    #[arg(long)]
    pub download: bool,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Data set: digits (embedded), mnist, fashion-mnist, cifar10; or your own: folder (a
    /// --data-dir of class sub-folders of PNG/JPEG images) or csv (a --data-dir FILE.csv
    /// with a --target column).
    #[arg(long, default_value = "digits", value_parser = parse_train_data)]
    pub dataset: TrainData,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub own: OwnDataArgs,
    /// Network: mlp, logistic (softmax regression), lenet (LeNet-5) or cnn (conv, batch
    /// norm, ReLU, pool stages).
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelKind,
    /// Hidden layer widths of the MLP, comma separated.
    #[arg(long, default_value = "256,128", value_parser = parse_hidden)]
    pub hidden: HiddenSizes,
    /// Output channels (filters) of the CNN's stages, comma separated; each stage halves the
    /// image [default: 32,64,128].
    #[arg(long, value_parser = parse_filters)]
    pub filters: Option<Channels>,
    /// Random augmentation of the training images: crops padded by 4 pixels and horizontal
    /// flips for cifar10, shifts of up to 2 pixels for mnist and fashion-mnist (1 for
    /// digits); reproducible from --seed.
    #[arg(long)]
    pub augment: bool,
    /// Hidden activation of the MLP: relu, tanh, sigmoid, hard-sigmoid, hard-tanh,
    /// leaky-relu[:SLOPE], prelu, elu[:ALPHA], softplus, silu, gelu, gelu-tanh, maxout[:K].
    #[arg(long, default_value = "relu", value_parser = parse_activation)]
    pub activation: Activation,
    /// Dropout probability after each hidden activation of the MLP.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub dropout: f64,
    /// Optimizer [default: adam; sgd for cnn].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate [default: 0.1 for sgd, 1e-3 for adam/adamw/rmsprop, 0.01 for adagrad].
    #[arg(long, value_parser = positive)]
    pub lr: Option<f64>,
    /// Momentum (sgd, rmsprop) [default: 0; 0.9 for cnn].
    #[arg(long, value_parser = fraction)]
    pub momentum: Option<f64>,
    /// Nesterov momentum (sgd; needs --momentum > 0).
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay (L2 for sgd/adam/rmsprop/adagrad, decoupled for adamw) [default: 0;
    /// 5e-4 for cnn].
    #[arg(long, value_parser = non_negative)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule: constant, step:EPOCHS[:GAMMA], exponential[:GAMMA],
    /// cosine[:T_MAX[:ETA_MIN]] (cosine alone anneals to 0 over the run),
    /// plateau[:FACTOR[:PATIENCE[:THRESHOLD[:COOLDOWN[:MIN_LR]]]]] (reduce on a validation
    /// loss plateau; 0.1, 10, 1e-4, 0, 0), one-cycle[:PCT_START[:DIV[:FINAL_DIV]]] (per batch,
    /// --lr is the peak; 0.3, 25, 1e4).
    #[arg(long, default_value = "cosine", value_parser = parse_schedule)]
    pub schedule: Schedule,
    /// Epochs of linear learning-rate warm-up (fewer than --epochs).
    #[arg(long, default_value_t = 0, value_parser = non_negative_usize)]
    pub warmup: usize,
    /// Clip the gradients' global L2 norm to this value.
    #[arg(long, value_parser = positive)]
    pub clip_grad: Option<f64>,
    /// Label smoothing of the cross-entropy loss.
    #[arg(long, default_value_t = 0.0, value_parser = fraction)]
    pub label_smoothing: f64,
    /// Samples per mini-batch.
    #[arg(long, default_value_t = 32, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Total epochs (with --resume: the total to reach, counting the epochs already done;
    /// default: the total the run was started with).
    #[arg(long, default_value_t = 30, value_parser = positive_usize)]
    pub epochs: usize,
    /// Fraction of the training set held out for validation.
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    pub val_fraction: f64,
    /// Seed of initialisation, splits, shuffling and dropout.
    #[arg(long, default_value_t = 0, value_parser = non_negative_u64)]
    pub seed: u64,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, value_parser = thread_count)]
    pub threads: Option<usize>,
    /// Execution mode of the training step.
    #[arg(long, value_enum, default_value = "eager")]
    pub mode: Mode,
    /// Check every value of the forward and backward passes for NaN and infinity, and stop
    /// at the first op that produces one, naming the op, its input shapes and its layer (for
    /// debugging: each op then reads its output once more).
    #[arg(long)]
    pub detect_anomaly: bool,
    /// Output folder of the run (its checkpoint in DIR/checkpoint: model, optimizer state,
    /// config, metrics, summary, charts). A folder that holds another run is refused unless
    /// --overwrite; the default, runs/latest, is replaced by each new run.
    #[arg(long, default_value = "runs/latest", value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the run that --out already holds (its files are removed before training).
    #[arg(long)]
    pub overwrite: bool,
    /// Continue the run in this folder from its checkpoint (model, optimizer state, schedule,
    /// data set) and write into the same folder; --epochs may extend it. Flags that would
    /// change the run are refused.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// The flags given on the command line (filled by `Cli::parse_args`).
    #[arg(skip)]
    pub given: Vec<String>,
    /// Stop when --monitor has not improved by more than --min-delta for this many epochs;
    /// the best epoch's checkpoint is kept in DIR/best, which eval and predict then load.
    #[arg(long, value_name = "PATIENCE", value_parser = positive_usize)]
    pub early_stopping: Option<usize>,
    /// The quantity early stopping watches.
    #[arg(long, value_enum, default_value = "val_loss")]
    pub monitor: Monitor,
    /// The smallest change of --monitor that counts as an improvement.
    #[arg(long, default_value_t = 0.0, value_parser = non_negative)]
    pub min_delta: f64,
    /// Write TensorBoard event files into the output folder: scalars, weight and gradient
    /// histograms per layer, and the validation confusion matrix, every epoch (view with
    /// `tensorboard --logdir runs`).
    #[arg(long)]
    pub tensorboard: bool,
    /// Show the live terminal view (curves, learning rate, throughput, ETA, CPU and
    /// memory); the default when standard output is a terminal.
    #[arg(long, conflicts_with = "no_tui")]
    pub tui: bool,
    /// Print plain lines even in a terminal.
    #[arg(long)]
    pub no_tui: bool,
}

/// How the user's own data (`--dataset folder` or `csv`) is read.
#[derive(Args, Debug, Clone)]
pub struct OwnDataArgs {
    /// Images are converted to this size, HEIGHTxWIDTH (--dataset folder).
    #[arg(long, default_value = "32x32", value_name = "HxW", value_parser = parse_image_size, help_heading = "Own data")]
    pub image_size: ImageSize,
    /// Images are converted to 1 (grey) or 3 (RGB) channels (--dataset folder).
    #[arg(long, default_value = "3", value_name = "1|3", value_parser = parse_colour_channels, help_heading = "Own data")]
    pub channels: usize,
    /// The column of a CSV table that holds the class labels (text or numbers); every other
    /// column must hold numbers (--dataset csv).
    #[arg(long, value_name = "COLUMN", help_heading = "Own data")]
    pub target: Option<String>,
    /// Fraction of each class held out for testing, when a folder has no test/ sub-folder
    /// (--dataset folder or csv).
    #[arg(long, default_value_t = 0.2, value_parser = fraction, help_heading = "Own data")]
    pub test_fraction: f64,
    /// Leave out image files that cannot be read or decoded, and CSV rows that are
    /// malformed, counting them in summary.json, instead of stopping at the first.
    #[arg(long, help_heading = "Own data")]
    pub skip_bad_files: bool,
    /// Threads decoding images: when scanning the folder, and at every epoch when the images
    /// are streamed from disk [default: all cores].
    #[arg(long, value_parser = positive_usize, help_heading = "Own data")]
    pub workers: Option<usize>,
    /// Decoded images up to this many MiB are held in memory; a larger folder is streamed
    /// from disk at every epoch (0 always streams).
    #[arg(
        long,
        default_value_t = 2048,
        value_name = "MIB",
        help_heading = "Own data"
    )]
    pub max_memory: usize,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct EvalArgs {
    /// Folder of a trained model (the --out of `ferrograd train`, or a checkpoint folder in
    /// it).
    #[arg(long, default_value = "runs/latest", value_name = "DIR")]
    pub model: PathBuf,
    /// Data set to score on (default: the one the model was trained on, from the folder it
    /// was read from).
    #[arg(long, value_parser = parse_dataset)]
    pub dataset: Option<DatasetKind>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which checkpoint of the run to score.
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointChoice,
    /// The k of the reported top-k accuracy.
    #[arg(long, default_value_t = crate::evaluate::DEFAULT_TOP_K, value_parser = positive_usize)]
    pub top_k: usize,
    /// Samples per evaluation batch.
    #[arg(long, default_value_t = 512, value_parser = positive_usize)]
    pub batch_size: usize,
    /// Worker threads (default: all cores; at most 4 per core).
    #[arg(long, value_parser = thread_count)]
    pub threads: Option<usize>,
}

/// Whether to invert image brightness before classifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Invert {
    /// Invert when the image is mostly bright (dark ink on white paper), since the data sets
    /// have bright strokes on a dark background.
    Auto,
    /// Always invert (never done automatically for models trained on --dataset folder).
    Yes,
    /// Never invert.
    No,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct PredictArgs {
    /// Folder of a trained model (the --out of `ferrograd train`).
    #[arg(long, default_value = "runs/latest", value_name = "DIR")]
    pub model: PathBuf,
    /// Which checkpoint of the run to use.
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointChoice,
    /// Image files (PNG, JPEG or PGM); for a model trained on --dataset csv, CSV files of
    /// rows with the training table's feature columns (one prediction per row).
    #[arg(required = true, value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3, value_parser = positive_usize)]
    pub top: usize,
    /// Brightness inversion.
    #[arg(long, value_enum, default_value = "auto")]
    pub invert: Invert,
    /// Largest image accepted, in megapixels (checked from the file's header before decoding).
    #[arg(long, default_value_t = crate::image::DEFAULT_MAX_MEGAPIXELS, value_name = "MP", value_parser = positive)]
    pub max_megapixels: f64,
}

#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// Folder of a trained model (the --out of `ferrograd train`).
    #[arg(long, default_value = "runs/latest", value_name = "DIR")]
    pub model: PathBuf,
    /// Which checkpoint of the run to describe (they share one architecture).
    #[arg(long, value_enum, default_value = "best")]
    pub checkpoint: CheckpointChoice,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct GraphArgs {
    /// Network: logistic (softmax) regression, an MLP with --hidden layers, lenet, or cnn
    /// with --filters.
    #[arg(long, value_enum, default_value = "logistic")]
    pub model: ModelKind,
    /// Hidden layer widths of the MLP.
    #[arg(long, default_value = "8", value_parser = parse_hidden)]
    pub hidden: HiddenSizes,
    /// Hidden activation of the MLP.
    #[arg(long, default_value = "relu", value_parser = parse_activation)]
    pub activation: Activation,
    /// Input features (mlp, logistic).
    #[arg(long, default_value_t = 4, value_parser = positive_usize)]
    pub features: usize,
    /// Input image shape CHANNELSxHEIGHTxWIDTH (lenet: 28x28 or 32x32; cnn: any size of at
    /// least 2^stages).
    #[arg(long, default_value = "1x28x28", value_parser = parse_image_shape)]
    pub image: ImageShape,
    /// Output channels (filters) of the CNN's stages.
    #[arg(long, default_value = "4,8", value_parser = parse_filters)]
    pub filters: Channels,
    /// Classes.
    #[arg(long, default_value_t = 3, value_parser = positive_usize)]
    pub classes: usize,
    /// Samples per batch (1: the graph of one sample; m: of a mini-batch).
    #[arg(long, default_value_t = 1, value_parser = positive_usize)]
    pub batch: usize,
    /// Output folder for the .dot (and .svg) files.
    #[arg(long, default_value = "runs/graph", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Args, Debug, Clone)]
#[command(allow_negative_numbers = true)]
pub struct PlotActivationsArgs {
    /// The PNG file to write.
    #[arg(long, default_value = "runs/activations.png", value_name = "FILE.png")]
    pub out: PathBuf,
    /// Activations, comma separated (default: sigmoid, tanh, hard-sigmoid, hard-tanh, relu,
    /// leaky-relu:0.1, prelu, elu, softplus, silu, gelu); parameters after a colon, as in
    /// `train --activation`.
    #[arg(long, value_delimiter = ',', value_parser = parse_elementwise)]
    pub activations: Vec<Activation>,
    /// The x axis runs from -X to X.
    #[arg(long, default_value_t = 5.0, value_name = "X", value_parser = positive)]
    pub range: f64,
}
