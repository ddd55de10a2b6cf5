//! # Lesson 11: image classification, start to finish
//!
//! Everything so far comes together in the standard recipe for training a classifier:
//!
//! 1. **Load** the images and labels, split into a training and a test set. The test set is
//!    touched only at the end: it estimates how the model does on images it has never seen.
//! 2. **Normalise** the pixels (subtract the training set's mean, divide by its standard
//!    deviation) so that the inputs are centred and of unit scale, which keeps the first
//!    layer's pre-activations in a good range.
//! 3. **Shuffle into mini-batches**, in a new order every epoch (the data crate's `Loader`), so
//!    each gradient step sees a fresh random sample of the data.
//! 4. **Train** an MLP with softmax cross-entropy and Adam, one `backward` per mini-batch.
//! 5. **Evaluate**: the accuracy, and the *confusion matrix* (row = true class, column =
//!    predicted class), which shows which classes are mistaken for which.
//! 6. **Look at the mistakes**, above all the confident ones: an image the model gets wrong
//!    with probability 0.97 is either a badly written digit, a wrong label, or a real weakness.
//! 7. **Save** the trained weights (safetensors, readable by PyTorch and others), **reload** them
//!    into a freshly built model, and check that it predicts exactly the same thing.
//!
//! By default the lesson uses the UCI 8x8 handwritten digits embedded in ferrograd (1797
//! images), so it runs offline in seconds; `--data-dir DIR` trains on MNIST (28x28, 60000
//! training images) from the IDX files in DIR. Claim checked by the test (digits, a few
//! epochs): test accuracy of at least 90%, reloaded predictions identical, the figure written.
//!
//! On MNIST (`--data-dir`, MLP 784-256-128-10, 5 epochs) the same code reaches about 97.8% test
//! accuracy in about 35 s of training on a 2-core machine; the digits take well under a second.
//!
//! The figure (`confidently-wrong.png`) shows the 16 test images the model got wrong with the
//! highest confidence, captioned `true→predicted p=probability`. On MNIST many of them are
//! digits a person would hesitate over too; the model is nonetheless almost certain, a reminder
//! that a softmax probability is not a calibrated measure of doubt.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferrograd::data::{DataSource, Dataset, DatasetKind, Loader, LoaderConfig, Normalize, load};
use ferrograd::lesson::LessonArgs;
use ferrograd::nn::checkpoint::{from_safetensors, load_into, to_safetensors};
use ferrograd::nn::{
    Activation, Adam, AdamConfig, MlpConfig, Module, Optimizer, Sequential, loss, mlp, named_params,
};
use ferrograd::plot::{Tile, image_grid};
use ferrograd::{DType, Rng, Tensor, no_grad};

/// What the lesson runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// MNIST's IDX files are read from here when set; the embedded digits are used otherwise.
    pub data_dir: Option<PathBuf>,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the weights and the shuffles.
    pub seed: u64,
    /// Where the figure and the checkpoint go.
    pub out: PathBuf,
}

impl Config {
    /// The digits, MLP 64-128-10, 30 epochs.
    pub fn full() -> Self {
        Config {
            data_dir: None,
            hidden: vec![128],
            epochs: 30,
            batch: 32,
            lr: 1e-3,
            seed: 11,
            out: PathBuf::from("runs/lessons/11-image-classification"),
        }
    }

    /// The digits, MLP 64-32-10, 8 epochs (the test's setting).
    pub fn quick() -> Self {
        Config {
            hidden: vec![32],
            epochs: 8,
            ..Config::full()
        }
    }

    /// MNIST from `dir`: MLP 784-256-128-10, 5 epochs, batches of 64.
    pub fn mnist(dir: PathBuf) -> Self {
        Config {
            data_dir: Some(dir),
            hidden: vec![256, 128],
            epochs: 5,
            batch: 64,
            ..Config::full()
        }
    }
}

/// One epoch of training.
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    /// Mean training loss.
    pub loss: f64,
    /// Test accuracy after the epoch.
    pub test_accuracy: f64,
}

/// A test image the model got wrong.
#[derive(Debug, Clone, Copy)]
pub struct Mistake {
    /// Index in the test set.
    pub index: usize,
    /// The true class.
    pub label: usize,
    /// The predicted class.
    pub predicted: usize,
    /// The predicted class's probability.
    pub confidence: f64,
}

/// What the lesson measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The data set's name.
    pub dataset: String,
    /// Training and test set sizes.
    pub sizes: (usize, usize),
    /// Per-epoch loss and test accuracy.
    pub epochs: Vec<Epoch>,
    /// Final test accuracy.
    pub test_accuracy: f64,
    /// `confusion[t][p]`: test images of class t predicted as p.
    pub confusion: Vec<Vec<usize>>,
    /// The wrongly classified test images, most confident first.
    pub mistakes: Vec<Mistake>,
    /// Seconds spent training.
    pub train_seconds: f64,
    /// The saved checkpoint.
    pub checkpoint: PathBuf,
    /// Whether the reloaded model's logits equal the trained model's, bit for bit.
    pub reload_identical: bool,
    /// The PNG figure.
    pub figure: PathBuf,
}

fn build(
    cfg: &Config,
    features: usize,
    classes: usize,
    seed: u64,
) -> ferrograd::Result<Sequential> {
    mlp(
        &MlpConfig {
            input: features,
            hidden: cfg.hidden.clone(),
            output: classes,
            activation: Activation::Relu,
            dropout: 0.0,
        },
        DType::F32,
        &mut Rng::new(seed),
    )
}

/// The logits of every test image, in data set order.
fn logits(model: &dyn Module, test: &Loader) -> Result<Tensor, Box<dyn std::error::Error>> {
    let _guard = no_grad();
    let mut parts = Vec::new();
    for batch in test.sequential() {
        parts.push(model.forward(&batch?.x)?);
    }
    let parts: Vec<&Tensor> = parts.iter().collect();
    Ok(Tensor::cat(&parts, 0)?)
}

/// Runs the lesson: load, train, evaluate, show the worst mistakes, save and reload.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let kind = if cfg.data_dir.is_some() {
        DatasetKind::Mnist
    } else {
        DatasetKind::Digits
    };
    let (train, test) = load(kind, &DataSource::new(cfg.data_dir.clone(), false))?;
    let normalize = Normalize::from_dataset(&train);
    let (features, classes) = (train.features(), train.num_classes());
    let sizes = (train.len(), test.len());
    let loader = |data: Dataset| {
        Loader::new(
            Arc::new(data),
            LoaderConfig {
                batch_size: cfg.batch,
                seed: cfg.seed,
                normalize,
                ..Default::default()
            },
        )
    };
    let train = loader(train)?;
    let test = loader(test)?;

    let model = build(cfg, features, classes, cfg.seed)?;
    let mut opt = Adam::new(
        named_params(&model),
        AdamConfig {
            lr: cfg.lr,
            ..Default::default()
        },
    )?;
    let labels = {
        let ds = test.samples();
        Tensor::from_vec(ds.labels().iter().map(|&l| l as i64).collect(), &[ds.len()])?
    };
    let mut epochs = Vec::new();
    let start = Instant::now();
    for epoch in 0..cfg.epochs {
        let (mut sum, mut seen) = (0.0, 0usize);
        for batch in train.epoch(epoch as u64) {
            let batch = batch?;
            let l = loss::cross_entropy(&model.forward(&batch.x)?, &batch.y, 0.0)?;
            opt.step(&l.backward()?)?;
            sum += l.item()? * batch.indices.len() as f64;
            seen += batch.indices.len();
        }
        let test_accuracy = ferrograd::nn::accuracy(&logits(&model, &test)?, &labels)?;
        epochs.push(Epoch {
            loss: sum / seen.max(1) as f64,
            test_accuracy,
        });
    }
    let train_seconds = start.elapsed().as_secs_f64();

    // Evaluate: predictions, confidences, confusion matrix, mistakes.
    let out = logits(&model, &test)?;
    let probs = {
        let _guard = no_grad();
        out.softmax(-1)?.to_vec_f64()
    };
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut mistakes = Vec::new();
    for (index, row) in probs.chunks(classes).enumerate() {
        let (predicted, confidence) =
            row.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f64::MIN),
                    |best, (k, p)| if p > best.1 { (k, p) } else { best },
                );
        let label = test.samples().labels()[index] as usize;
        confusion[label][predicted] += 1;
        if label != predicted {
            mistakes.push(Mistake {
                index,
                label,
                predicted,
                confidence,
            });
        }
    }
    mistakes.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    let correct: usize = (0..classes).map(|k| confusion[k][k]).sum();
    let test_accuracy = correct as f64 / sizes.1.max(1) as f64;

    // Save, reload into a model built from another seed, compare predictions.
    let checkpoint = cfg.out.join("model.safetensors");
    std::fs::write(&checkpoint, to_safetensors(&named_params(&model), None)?)?;
    let fresh = build(cfg, features, classes, cfg.seed + 1)?;
    load_into(
        &named_params(&fresh),
        &from_safetensors(&std::fs::read(&checkpoint)?)?,
    )?;
    let reload_identical = logits(&fresh, &test)?.to_vec::<f32>()? == out.to_vec::<f32>()?;

    let figure = cfg.out.join("confidently-wrong.png");
    let images = test.dataset().ok_or("the test images are held in memory")?;
    draw(&figure, kind.name(), images, &mistakes)?;
    Ok(Outcome {
        dataset: kind.name().to_string(),
        sizes,
        epochs,
        test_accuracy,
        confusion,
        mistakes,
        train_seconds,
        checkpoint,
        reload_identical,
        figure,
    })
}

/// The 16 most confident mistakes as a grid of images.
fn draw(
    path: &Path,
    title: &str,
    test: &Dataset,
    mistakes: &[Mistake],
) -> Result<(), Box<dyn std::error::Error>> {
    let name = |k: usize| {
        test.class_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    };
    let tiles: Vec<Tile> = mistakes
        .iter()
        .take(16)
        .filter_map(|m| {
            let pixels = test.image(m.index)?;
            Some(Tile {
                width: test.width,
                height: test.height,
                pixels: pixels.iter().map(|&p| p as f32 / test.max_value).collect(),
                caption: format!(
                    "{}→{} p={:.2}",
                    name(m.label),
                    name(m.predicted),
                    m.confidence
                ),
            })
        })
        .collect();
    let scale = (112 / test.width.max(1)).max(1) as u32;
    image_grid(
        path,
        &format!(
            "{}: the {} most confidently wrong test images (true→predicted)",
            title,
            tiles.len()
        ),
        &tiles,
        8,
        scale,
    )?;
    Ok(())
}

/// Takes `--data-dir DIR` out of the arguments; the rest go to [`LessonArgs`].
fn split_data_dir(args: Vec<String>) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let mut rest = Vec::new();
    let mut dir = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--data-dir" {
            let d = it.next().ok_or("--data-dir: expected a folder after it")?;
            dir = Some(PathBuf::from(d));
        } else {
            rest.push(a);
        }
    }
    Ok((dir, rest))
}

fn main() {
    let parsed = split_data_dir(std::env::args().skip(1).collect())
        .and_then(|(dir, rest)| Ok((dir, LessonArgs::parse("11-image-classification", rest)?)));
    let (data_dir, args) = match parsed {
        Ok(p) => p,
        Err(msg) => {
            eprintln!(
                "{msg} (this lesson also takes --data-dir DIR, a folder with MNIST's IDX files)"
            );
            std::process::exit(2);
        }
    };
    let base = match (data_dir, args.quick) {
        (Some(dir), _) => Config::mnist(dir),
        (None, true) => Config::quick(),
        (None, false) => Config::full(),
    };
    let cfg = Config {
        out: args.out.clone(),
        ..base
    };
    let o = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{}: {} training and {} test images; MLP with hidden layers {:?}, Adam lr {}, batch {}",
        o.dataset, o.sizes.0, o.sizes.1, cfg.hidden, cfg.lr, cfg.batch
    );
    // About six lines of progress, whatever the number of epochs.
    let every = o.epochs.len().div_ceil(6).max(1);
    for (k, e) in o.epochs.iter().enumerate() {
        if (k + 1) % every != 0 && k + 1 != o.epochs.len() && k != 0 {
            continue;
        }
        println!(
            "epoch {:>2}: train loss {:.4}, test accuracy {:.2}%",
            k + 1,
            e.loss,
            100.0 * e.test_accuracy
        );
    }
    println!(
        "test accuracy {:.2}% ({} mistakes) after {:.1} s of training",
        100.0 * o.test_accuracy,
        o.mistakes.len(),
        o.train_seconds
    );
    println!("confusion matrix (rows: true class, columns: predicted):");
    let classes = o.confusion.len();
    println!(
        "      {}",
        (0..classes).map(|k| format!("{k:>5}")).collect::<String>()
    );
    for (t, row) in o.confusion.iter().enumerate() {
        println!(
            "  {t:>3} {}",
            row.iter().map(|c| format!("{c:>5}")).collect::<String>()
        );
    }
    if let Some(m) = o.mistakes.first() {
        println!(
            "most confident mistake: test image {} is a {}, predicted {} with p = {:.3}",
            m.index, m.label, m.predicted, m.confidence
        );
    }
    println!(
        "saved {}; reloaded into a fresh model: predictions identical: {}",
        o.checkpoint.display(),
        o.reload_identical
    );
    println!("wrote {}", o.figure.display());
}
