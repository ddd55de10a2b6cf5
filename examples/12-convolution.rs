//! # Lesson 12: convolution
//!
//! An MLP sees an image as a flat list of pixels: each unit of its first layer has one weight
//! per pixel, so it must learn separately what a stroke looks like at every place the stroke
//! could be, and its weight count grows with the image's area times the layer's width. A
//! *convolution* builds two facts about images into the layer instead:
//!
//! - **Local receptive fields.** Each output looks at a small window of the input only (3x3
//!   pixels here): edges, corners and stroke ends are local patterns.
//! - **Weight sharing.** The same small filter slides over every position, so a pattern is
//!   detected wherever it appears, with one set of weights. A filter's outputs over all
//!   positions form a *feature map*; a layer with 8 filters makes 8 maps.
//!
//! A convolution is therefore a dense layer whose matrix is mostly zeros (each row touches 9
//! of the 64 pixels) and whose non-zero entries are copies of a few weights. The lesson builds
//! that matrix from the trained first convolution and checks that it computes the same
//! outputs. As a free dense layer, the same map from a 1x8x8 image to 8 maps of 8x8 would
//! have 33,280 parameters; as a convolution it has 80 (8 filters of 3x3 and 8 biases), and
//! still 80 on 28x28 MNIST images, where the dense layer would need 4.9 million: a
//! convolution's size does not depend on the image's. Sharing weights also makes the layer
//! *translation equivariant*: moving the digit one pixel moves every feature map by one pixel,
//! exactly (wherever the window lies inside the image). *Max pooling* then keeps the largest
//! value of each 2x2 block: the maps shrink to 4x4, each output of the next 3x3 convolution
//! sees up to 8x8 pixels of the input, and a stroke that moves within a block gives the same
//! pooled value.
//!
//! Fewer parameters is not less work: each shared weight is used at every position, so the
//! small CNN below does 2.5 times the multiply-adds per image of the larger MLP, and takes
//! several times longer to train.
//!
//! Three models are trained the same way (Adam, mini-batches of 32, the same normalised pixels
//! in the same order) on the embedded 8x8 digits: an MLP 64-128-10 and an MLP 64-28-10 (about
//! the CNN's parameter count) on flat rows, and a CNN (conv 3x3 with 8 filters, ReLU, max pool
//! 2, conv 3x3 with 16 filters, ReLU, max pool 2, linear 64-10) on `[batch, 1, 8, 8]` images.
//! Each is scored on the test digits and on the test digits moved one pixel up, down, left and
//! right, blank pixels entering at the border. One pixel of these images is an eighth of their
//! width (four pixels of the 32x32 scans they were reduced from), so every model suffers.
//!
//! **Claim** (checked by the test on the quick setting, 12 epochs): the CNN's test accuracy
//! is within 3 points of the MLP 64-128-10's with at least 4 times fewer parameters (1,898
//! against 9,610), and on the moved digits it beats both MLPs by at least 5 points; the first
//! convolution equals its unrolled matrix, whose rows have 9 non-zero entries and whose 32,768
//! entries hold 72 distinct weights, and moving the digit moves its feature maps exactly.
//!
//! At 30 epochs the test accuracies are 98.3% (MLP 64-128-10), 98.1% (MLP 64-28-10) and 98.9%
//! (CNN); on the moved digits 48.6%, 45.3% and 63.0%. Over four other seeds the CNN stays
//! within 0.3 points of the large MLP or above it, but the small MLP is about as accurate on
//! the test digits (97.5% to 98.6%): digits this small and this well centred need no
//! convolution. The CNN's structure shows on the moved digits: 57% to 61% against 43% to 49%.
//!
//! **Figures:** `filters.png`, the 8 learned first-layer filters as 3x3 grey tiles (grey is 0,
//! white positive, black negative); `feature-maps.png`, one test digit and, per filter, the
//! filter, its 8x8 map after the convolution and ReLU, and that map after max pooling.
//!
//! Run: `cargo run --release --example 12-convolution [-- --out DIR] [--quick]`.

use std::collections::HashSet;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferrograd::data::{DataSource, Dataset, DatasetKind, Loader, LoaderConfig, Normalize, load};
use ferrograd::lesson::LessonArgs;
use ferrograd::nn::{
    Activation, Adam, AdamConfig, Conv2d, Conv2dConfig, Flatten, Linear, LinearConfig, MaxPool2d,
    MlpConfig, Module, Optimizer, Sequential, accuracy, loss, mlp, named_params,
};
use ferrograd::op::Pool2dParams;
use ferrograd::plot::plotters::prelude::*;
use ferrograd::plot::{Tile, err, image_grid, render};
use ferrograd::{DType, Rng, Tensor, no_grad};

/// The lesson's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the figures are written.
    pub out: PathBuf,
    /// Hidden layer widths of each MLP compared with the CNN: the first is the reference for
    /// accuracy and parameters, the others are cut to about the CNN's parameter count.
    pub hidden: Vec<Vec<usize>>,
    /// Filters of the CNN's first and second convolutions.
    pub channels: [usize; 2],
    /// Side of the (square, odd) convolution kernels; padded to keep the image size.
    pub kernel: usize,
    /// Passes over the training set, for every model.
    pub epochs: usize,
    /// Samples per mini-batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the weights and the shuffles.
    pub seed: u64,
    /// Test image whose feature maps are drawn.
    pub digit: usize,
}

impl Config {
    /// The setting of `cargo run`: MLPs 64-128-10 and 64-28-10 against a CNN with 8 and 16
    /// filters, 30 epochs.
    pub fn full() -> Self {
        Config {
            out: PathBuf::from("runs/lessons/12-convolution"),
            hidden: vec![vec![128], vec![28]],
            channels: [8, 16],
            kernel: 3,
            epochs: 30,
            batch: 32,
            lr: 3e-3,
            seed: 12,
            digit: 0,
        }
    }

    /// The small setting of `--quick` and the test: the same models, 12 epochs.
    pub fn quick() -> Self {
        Config {
            epochs: 12,
            ..Config::full()
        }
    }
}

/// One trained model and its measurements.
#[derive(Debug, Clone)]
pub struct Trained {
    /// The architecture, in words.
    pub name: String,
    /// Trainable numbers (weights and biases).
    pub parameters: usize,
    /// Multiply-adds of one image's forward pass.
    pub mult_adds: usize,
    /// Mean training loss of the last epoch.
    pub final_loss: f64,
    /// Accuracy on the test set.
    pub test_accuracy: f64,
    /// Mean accuracy on the test set shifted one pixel up, down, left and right.
    pub shifted_accuracy: f64,
    /// Seconds spent training.
    pub train_seconds: f64,
}

/// The first convolution written out as the dense matrix it is.
#[derive(Debug, Clone)]
pub struct Unrolled {
    /// Rows (outputs: filters x height x width) and columns (input pixels) of the matrix.
    pub shape: [usize; 2],
    /// The most non-zero entries in one row: the pixels one output sees.
    pub max_row_nonzeros: usize,
    /// Distinct non-zero values in the whole matrix: the shared weights.
    pub distinct_weights: usize,
    /// Largest difference between the matrix product and the convolution on the test images.
    pub max_difference: f64,
    /// Parameters of a free dense layer of that shape (weights and biases).
    pub dense_parameters: usize,
    /// Parameters of the convolution (weights and biases).
    pub conv_parameters: usize,
}

/// What the lesson measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Training and test set sizes.
    pub sizes: (usize, usize),
    /// Channels, height and width of the images.
    pub image: [usize; 3],
    /// The MLPs, in the order of [`Config::hidden`].
    pub mlps: Vec<Trained>,
    /// The CNN.
    pub cnn: Trained,
    /// The CNN's layers, in words.
    pub cnn_layers: String,
    /// The CNN's first convolution as a dense matrix.
    pub unrolled: Unrolled,
    /// Largest difference between the first convolution's maps of the digit shifted one pixel
    /// to the right and its unshifted maps moved one pixel to the right, wherever the
    /// convolution's window lies inside the image in both.
    pub shift_difference: f64,
    /// The class of the digit whose feature maps are drawn.
    pub digit_label: usize,
    /// The filters figure.
    pub filters_figure: PathBuf,
    /// The feature-maps figure.
    pub maps_figure: PathBuf,
}

/// The CNN: two stages of convolution (padded to keep the size), ReLU and 2x2 max pooling,
/// then a linear layer on the flattened maps.
fn build_cnn(cfg: &Config, image: [usize; 3], classes: usize) -> ferrograd::Result<Sequential> {
    let [c, h, w] = image;
    let [c1, c2] = cfg.channels;
    let rng = &mut Rng::new(cfg.seed);
    let conv = Conv2dConfig::new(cfg.kernel).padding(cfg.kernel / 2);
    let pool = || MaxPool2d::new(Pool2dParams::new(2));
    Ok(Sequential::new()
        .with_layer(Conv2d::new(c, c1, conv, DType::F32, rng)?)
        .with_layer(Activation::Relu)
        .with_layer(pool()?)
        .with_layer(Conv2d::new(c1, c2, conv, DType::F32, rng)?)
        .with_layer(Activation::Relu)
        .with_layer(pool()?)
        .with_layer(Flatten)
        .with_layer(Linear::new(
            c2 * (h / 4) * (w / 4),
            classes,
            LinearConfig::default(),
            DType::F32,
            rng,
        )?))
}

fn build_mlp(
    cfg: &Config,
    hidden: &[usize],
    features: usize,
    classes: usize,
) -> ferrograd::Result<Sequential> {
    let arch = MlpConfig {
        input: features,
        hidden: hidden.to_vec(),
        output: classes,
        activation: Activation::Relu,
        dropout: 0.0,
    };
    mlp(&arch, DType::F32, &mut Rng::new(cfg.seed))
}

/// Layer sizes of an MLP, input to output.
fn mlp_sizes(hidden: &[usize], features: usize, classes: usize) -> Vec<usize> {
    let mut sizes = vec![features];
    sizes.extend(hidden);
    sizes.push(classes);
    sizes
}

/// Multiply-adds of one image through the CNN: each convolution weight once per output
/// position, then the linear layer.
fn cnn_mult_adds(cfg: &Config, [c, h, w]: [usize; 3], classes: usize) -> usize {
    let [c1, c2] = cfg.channels;
    let k2 = cfg.kernel * cfg.kernel;
    let conv1 = h * w * c1 * c * k2;
    let conv2 = (h / 2) * (w / 2) * c2 * c1 * k2;
    conv1 + conv2 + c2 * (h / 4) * (w / 4) * classes
}

fn count_parameters(model: &dyn Module) -> usize {
    named_params(model).iter().map(|(_, t)| t.numel()).sum()
}

/// Every sample's `x` of a loader, in data set order, as one tensor.
fn all_inputs(loader: &Loader) -> Result<Tensor, Box<dyn Error>> {
    let mut parts = Vec::new();
    for batch in loader.sequential() {
        parts.push(batch?.x);
    }
    let parts: Vec<&Tensor> = parts.iter().collect();
    Ok(Tensor::cat(&parts, 0)?)
}

/// The accuracy of `model` on a loader's samples.
fn score(model: &dyn Module, data: &Loader) -> Result<f64, Box<dyn Error>> {
    let _guard = no_grad();
    let ds = data.samples();
    let labels = Tensor::from_vec(
        ds.labels().iter().map(|&l| i64::from(l)).collect(),
        &[ds.len()],
    )?;
    Ok(accuracy(&model.forward(&all_inputs(data)?)?, &labels)?)
}

/// `data` with every image moved by `(dy, dx)` pixels, blank pixels entering at the border.
fn shifted(data: &Dataset, (dy, dx): (isize, isize)) -> Dataset {
    let (h, w) = (data.height as isize, data.width as isize);
    let rows = data.pixels.len() / data.width.max(1);
    let pixels = (0..rows as isize)
        .flat_map(|r| {
            // Row `y` of plane `plane` (one plane per channel of each image).
            let (plane, y) = (r / h, r % h);
            (0..w).map(move |x| {
                let (sy, sx) = (y - dy, x - dx);
                if (0..h).contains(&sy) && (0..w).contains(&sx) {
                    data.pixels[((plane * h + sy) * w + sx) as usize]
                } else {
                    0
                }
            })
        })
        .collect();
    Dataset {
        pixels,
        ..data.clone()
    }
}

/// Trains `model` for `cfg.epochs` with Adam and scores it on the test set and on its shifted
/// copies.
fn train(
    name: String,
    model: &dyn Module,
    train: &Loader,
    test: &Loader,
    shifted_tests: &[Loader],
    mult_adds: usize,
    cfg: &Config,
) -> Result<Trained, Box<dyn Error>> {
    let adam = AdamConfig {
        lr: cfg.lr,
        ..Default::default()
    };
    let mut opt = Adam::new(named_params(model), adam)?;
    let start = Instant::now();
    let mut final_loss = f64::NAN;
    for epoch in 0..cfg.epochs {
        let (mut sum, mut seen) = (0.0, 0usize);
        for batch in train.epoch(epoch as u64) {
            let batch = batch?;
            let l = loss::cross_entropy(&model.forward(&batch.x)?, &batch.y, 0.0)?;
            opt.step(&l.backward()?)?;
            sum += l.item()? * batch.indices.len() as f64;
            seen += batch.indices.len();
        }
        final_loss = sum / seen.max(1) as f64;
    }
    let train_seconds = start.elapsed().as_secs_f64();
    let test_accuracy = score(model, test)?;
    let mut shifted = 0.0;
    for loader in shifted_tests {
        shifted += score(model, loader)? / shifted_tests.len() as f64;
    }
    Ok(Trained {
        name,
        parameters: count_parameters(model),
        mult_adds,
        final_loss,
        test_accuracy,
        shifted_accuracy: shifted,
        train_seconds,
    })
}

/// The dense matrix `[filters * h * w, h * w]` of a convolution of one input channel with
/// `weight` (`[filters, 1, k, k]`, row-major), padding `k / 2`, stride 1: row `(f, i, j)` holds
/// filter `f`'s weights at the pixels of the window centred on `(i, j)`, zeros elsewhere.
fn unroll(weight: &[f32], filters: usize, k: usize, h: usize, w: usize) -> Vec<f32> {
    let pad = k / 2;
    let mut m = vec![0.0f32; filters * h * w * h * w];
    for f in 0..filters {
        for i in 0..h {
            for j in 0..w {
                let row = (f * h + i) * w + j;
                for a in 0..k {
                    for b in 0..k {
                        let (p, q) = (i + a, j + b);
                        if p < pad || q < pad || p - pad >= h || q - pad >= w {
                            continue;
                        }
                        let col = (p - pad) * w + (q - pad);
                        m[row * h * w + col] = weight[(f * k + a) * k + b];
                    }
                }
            }
        }
    }
    m
}

/// Builds the first convolution's dense matrix and compares it with the convolution on `x`
/// (`[n, 1, h, w]`, the CNN's input).
fn check_unrolled(cnn: &Sequential, cfg: &Config, x: &Tensor) -> Result<Unrolled, Box<dyn Error>> {
    let _guard = no_grad();
    let params = named_params(cnn);
    let (weight, bias) = (&params[0].1, &params[1].1);
    let [n, c, h, w] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    if c != 1 {
        return Err(
            format!("the unrolled matrix is written for one input channel, not {c}").into(),
        );
    }
    let (filters, k, pixels) = (cfg.channels[0], cfg.kernel, h * w);
    let m = unroll(&weight.to_vec::<f32>()?, filters, k, h, w);
    let rows = filters * pixels;
    let max_row_nonzeros = m
        .chunks(pixels)
        .map(|row| row.iter().filter(|&&v| v != 0.0).count())
        .max()
        .unwrap_or(0);
    let distinct_weights = m
        .iter()
        .filter(|&&v| v != 0.0)
        .map(|v| v.to_bits())
        .collect::<HashSet<_>>()
        .len();
    // Bias of each row: its filter's.
    let b = bias.to_vec::<f32>()?;
    let row_bias: Vec<f32> = (0..rows).map(|r| b[r / pixels]).collect();
    let dense = x
        .reshape(&[n, pixels])?
        .matmul(&Tensor::from_vec(m, &[rows, pixels])?.t()?)?
        .add(&Tensor::from_vec(row_bias, &[rows])?)?;
    let conv = cnn.forward_all(x)?[0].reshape(&[n, rows])?;
    let max_difference = dense
        .to_vec::<f32>()?
        .iter()
        .zip(conv.to_vec::<f32>()?)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    Ok(Unrolled {
        shape: [rows, pixels],
        max_row_nonzeros,
        distinct_weights,
        max_difference,
        dense_parameters: rows * pixels + rows,
        conv_parameters: weight.numel() + bias.numel(),
    })
}

/// Compares the first convolution's maps of `digit` and of `moved`, the same digit moved one
/// pixel to the right (`[1, 1, h, w]` both): the moved maps at column `j` against the
/// original maps at column `j - 1`, wherever the window lies inside the image in both.
fn shift_difference(
    cnn: &Sequential,
    cfg: &Config,
    digit: &Tensor,
    moved: &Tensor,
) -> Result<f64, Box<dyn Error>> {
    let _guard = no_grad();
    let w = digit.shape()[3];
    let a = cnn.forward_all(digit)?[0].to_vec::<f32>()?;
    let b = cnn.forward_all(moved)?[0].to_vec::<f32>()?;
    let pad = cfg.kernel / 2;
    Ok((0..b.len())
        .filter(|p| (pad + 1..w.saturating_sub(pad)).contains(&(p % w)))
        .map(|p| f64::from((b[p] - a[p - 1]).abs()))
        .fold(0.0, f64::max))
}

/// Trains the models, checks the first convolution against its dense matrix and a shift,
/// and draws the figures.
///
/// # Errors
/// Data, tensor or figure errors.
pub fn run(cfg: &Config) -> Result<Outcome, Box<dyn Error>> {
    std::fs::create_dir_all(&cfg.out)?;
    let (train_set, test_set) = load(DatasetKind::Digits, &DataSource::new(None, false))?;
    let normalize = Normalize::from_dataset(&train_set);
    let image = [train_set.channels, train_set.height, train_set.width];
    let (features, classes) = (train_set.features(), train_set.num_classes());
    let sizes = (train_set.len(), test_set.len());
    let (train_set, test_set) = (Arc::new(train_set), Arc::new(test_set));
    // The same pixels, the same shuffles: rows for the MLP, images for the CNN.
    let loader = |data: &Arc<Dataset>, images: bool| {
        Loader::new(
            Arc::clone(data),
            LoaderConfig {
                batch_size: cfg.batch,
                seed: cfg.seed,
                normalize,
                images,
                ..Default::default()
            },
        )
    };

    // The test digits moved one pixel right, left, down and up.
    let shifts: Vec<Arc<Dataset>> = [(0, 1), (0, -1), (1, 0), (-1, 0)]
        .into_iter()
        .map(|d| Arc::new(shifted(&test_set, d)))
        .collect();
    let shifted_loaders = |images: bool| {
        shifts
            .iter()
            .map(|d| loader(d, images))
            .collect::<Result<Vec<_>, _>>()
    };

    let mut mlps = Vec::new();
    for hidden in &cfg.hidden {
        let sizes = mlp_sizes(hidden, features, classes);
        let name = sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join("-");
        mlps.push(train(
            format!("MLP {name}"),
            &build_mlp(cfg, hidden, features, classes)?,
            &loader(&train_set, false)?,
            &loader(&test_set, false)?,
            &shifted_loaders(false)?,
            // One multiply-add per weight.
            sizes.windows(2).map(|p| p[0] * p[1]).sum(),
            cfg,
        )?);
    }

    let cnn = build_cnn(cfg, image, classes)?;
    let cnn_layers = {
        let ([c, h, w], [c1, c2], k) = (image, cfg.channels, cfg.kernel);
        format!(
            "conv {k}x{k} {c}->{c1}, ReLU, max pool 2, conv {k}x{k} {c1}->{c2}, ReLU, max pool 2, \
             flatten, linear {}->{classes}",
            c2 * (h / 4) * (w / 4)
        )
    };
    let test_images = loader(&test_set, true)?;
    let shifted_images = shifted_loaders(true)?;
    let cnn_trained = train(
        format!("CNN {}x{} filters", cfg.channels[0], cfg.channels[1]),
        &cnn,
        &loader(&train_set, true)?,
        &test_images,
        &shifted_images,
        cnn_mult_adds(cfg, image, classes),
        cfg,
    )?;

    let x = all_inputs(&test_images)?;
    let unrolled = check_unrolled(&cnn, cfg, &x)?;
    let index = cfg.digit.min(sizes.1.saturating_sub(1));
    let digit = x.narrow(0, index, 1)?;
    let moved = all_inputs(&shifted_images[0])?.narrow(0, index, 1)?;
    let shift_difference = shift_difference(&cnn, cfg, &digit, &moved)?;

    let filters_figure = cfg.out.join("filters.png");
    draw_filters(&filters_figure, &cnn, cfg)?;
    let maps_figure = cfg.out.join("feature-maps.png");
    let digit_label = usize::from(test_set.labels[index]);
    draw_maps(&maps_figure, &cnn, cfg, &test_set, index, &digit)?;
    Ok(Outcome {
        sizes,
        image,
        mlps,
        cnn: cnn_trained,
        cnn_layers,
        unrolled,
        shift_difference,
        digit_label,
        filters_figure,
        maps_figure,
    })
}

/// Grey levels for `values` on a shared scale: `0.5 + v / (2 max |v|)`, so 0 is mid grey.
fn signed_grey(values: &[f32]) -> Vec<f32> {
    let top = values.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    values.iter().map(|v| 0.5 + 0.5 * v / top).collect()
}

/// The first convolution's filters as a grid of grey tiles.
fn draw_filters(path: &Path, cnn: &Sequential, cfg: &Config) -> Result<(), Box<dyn Error>> {
    let weight = named_params(cnn)[0].1.to_vec::<f32>()?;
    let k = cfg.kernel;
    let grey = signed_grey(&weight);
    let tiles: Vec<Tile> = grey
        .chunks(k * k)
        .enumerate()
        .map(|(f, pixels)| Tile {
            width: k,
            height: k,
            pixels: pixels.to_vec(),
            caption: format!("filter {}", f + 1),
        })
        .collect();
    image_grid(
        path,
        &format!(
            "the {} learned {k}x{k} filters of the first convolution (grey 0, white +, black -)",
            tiles.len()
        ),
        &tiles,
        8,
        (96 / k.max(1)) as u32,
    )?;
    Ok(())
}

/// One grey tile of `values` (`w` wide, in `[0, 1]`) at `(x0, y0)`, each value `s` pixels
/// square, with a thin frame.
fn tile(
    area: &ferrograd::plot::Area<'_>,
    (x0, y0): (i32, i32),
    w: usize,
    values: &[f32],
    s: i32,
) -> Result<(), String> {
    for (p, &v) in values.iter().enumerate() {
        let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
        let (px, py) = (x0 + (p % w) as i32 * s, y0 + (p / w) as i32 * s);
        area.draw(&Rectangle::new(
            [(px, py), (px + s, py + s)],
            RGBColor(g, g, g).filled(),
        ))
        .map_err(err)?;
    }
    let h = values.len().div_ceil(w.max(1)) as i32;
    area.draw(&Rectangle::new(
        [(x0 - 1, y0 - 1), (x0 + w as i32 * s, y0 + h * s)],
        RGBColor(170, 170, 170),
    ))
    .map_err(err)?;
    Ok(())
}

/// The digit, and per filter: the filter, its map after convolution and ReLU, and that map
/// after max pooling. Maps share one scale (black 0, white the largest value of any map).
fn draw_maps(
    path: &Path,
    cnn: &Sequential,
    cfg: &Config,
    test: &Dataset,
    index: usize,
    digit: &Tensor,
) -> Result<(), Box<dyn Error>> {
    let outs = {
        let _guard = no_grad();
        cnn.forward_all(digit)?
    };
    let (relu, pooled) = (&outs[1], &outs[2]);
    let (h, w) = (relu.shape()[2], relu.shape()[3]);
    let (ph, pw) = (pooled.shape()[2], pooled.shape()[3]);
    let relu = relu.to_vec::<f32>()?;
    let pooled = pooled.to_vec::<f32>()?;
    let top = relu.iter().fold(0.0f32, |m, &v| m.max(v)).max(1e-12);
    let scaled = |v: &[f32]| v.iter().map(|x| x / top).collect::<Vec<f32>>();
    let (relu, pooled) = (scaled(&relu), scaled(&pooled));
    let weight = signed_grey(&named_params(cnn)[0].1.to_vec::<f32>()?);
    let k = cfg.kernel;
    let filters = cfg.channels[0];
    let pixels: Vec<f32> = test
        .image(index)
        .unwrap_or_default()
        .iter()
        .map(|&p| f32::from(p) / test.max_value)
        .collect();
    let label = test.labels.get(index).copied().unwrap_or_default();

    let side = 96i32; // every tile is drawn this many pixels square
    let (left, col, row) = (190i32, side + 18, side + 48);
    let size = (
        (left + filters as i32 * col + 10) as u32,
        (60 + 3 * row) as u32,
    );
    let scale = |n: usize| side / n.max(1) as i32;
    render(path, size, |root| {
        let text = |s: String, at: (i32, i32), px: u32| {
            root.draw(&Text::new(s, at, ("sans-serif", px)))
                .map_err(err)
        };
        text(
            format!(
                "test image {index} (a {label}) through the first convolution, ReLU and 2x2 max pooling"
            ),
            (10, 10),
            20,
        )?;
        let rows = [
            format!("filters, {k}x{k} (grey 0)"),
            format!("conv + ReLU, {h}x{w}"),
            format!("max pool 2x2, {ph}x{pw}"),
        ];
        for (r, caption) in rows.iter().enumerate() {
            text(caption.clone(), (left, 50 + r as i32 * row), 15)?;
        }
        let y = |r: i32| 72 + r * row;
        text(
            format!("input {}x{}", test.height, test.width),
            (10, y(1) - 22),
            15,
        )?;
        tile(root, (10, y(1)), test.width, &pixels, scale(test.width))?;
        for f in 0..filters {
            let x0 = left + f as i32 * col;
            let kk = k * k;
            tile(root, (x0, y(0)), k, &weight[f * kk..(f + 1) * kk], scale(k))?;
            text(format!("filter {}", f + 1), (x0, y(0) + side + 4), 13)?;
            let (m, pm) = (h * w, ph * pw);
            tile(root, (x0, y(1)), w, &relu[f * m..(f + 1) * m], scale(w))?;
            tile(
                root,
                (x0, y(2)),
                pw,
                &pooled[f * pm..(f + 1) * pm],
                scale(pw),
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

fn main() {
    let args = LessonArgs::from_env_or_exit("12-convolution");
    let cfg = Config {
        out: args.out.clone(),
        ..args.pick(Config::quick, Config::full)
    };
    let o = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let [c, h, w] = o.image;
    println!(
        "digits: {} training and {} test images of {c}x{h}x{w}; Adam lr {}, batch {}, {} epochs",
        o.sizes.0, o.sizes.1, cfg.lr, cfg.batch, cfg.epochs
    );
    println!("CNN: {}", o.cnn_layers);
    println!(
        "{:<18} {:>10} {:>10} {:>9} {:>16} {:>10} {:>7}",
        "model", "parameters", "mult-adds", "test acc", "shifted 1 pixel", "train loss", "time"
    );
    for m in o.mlps.iter().chain([&o.cnn]) {
        println!(
            "{:<18} {:>10} {:>10} {:>8.2}% {:>15.2}% {:>10.4} {:>5.1} s",
            m.name,
            m.parameters,
            m.mult_adds,
            100.0 * m.test_accuracy,
            100.0 * m.shifted_accuracy,
            m.final_loss,
            m.train_seconds
        );
    }
    if let Some(mlp) = o.mlps.first() {
        println!(
            "the CNN against {}: {:.1}x fewer parameters, {:.1}x the multiply-adds, test accuracy \
             {:+.2} points, on shifted digits {:+.2} points",
            mlp.name,
            mlp.parameters as f64 / o.cnn.parameters as f64,
            o.cnn.mult_adds as f64 / mlp.mult_adds as f64,
            100.0 * (o.cnn.test_accuracy - mlp.test_accuracy),
            100.0 * (o.cnn.shifted_accuracy - mlp.shifted_accuracy)
        );
    }
    let u = &o.unrolled;
    println!(
        "conv 1 as a dense layer: a {}x{} matrix; each row sees at most {} of the {} pixels and \
         its {} entries hold {} distinct weights; largest difference from the convolution {:.1e}",
        u.shape[0],
        u.shape[1],
        u.max_row_nonzeros,
        u.shape[1],
        u.shape[0] * u.shape[1],
        u.distinct_weights,
        u.max_difference
    );
    println!(
        "  parameters: {} as a free dense layer, {} as a convolution ({:.0}x fewer)",
        u.dense_parameters,
        u.conv_parameters,
        u.dense_parameters as f64 / u.conv_parameters as f64
    );
    println!(
        "digit moved one pixel right: conv 1's maps move with it (largest difference {:.1e} \
         where the window lies inside the image)",
        o.shift_difference
    );
    println!("wrote {}", o.filters_figure.display());
    println!(
        "wrote {} (test image of a {})",
        o.maps_figure.display(),
        o.digit_label
    );
}
