//! `ferrograd predict`: classifies image files (or, for a model trained on a table, the rows
//! of CSV files) with a saved model (its best checkpoint unless told otherwise) and prints
//! the top classes with their probabilities. Every file is tried; each one that cannot be
//! read is reported, and the command fails at the end when any did.

use std::path::Path;

use ferrograd_core::{Tensor, no_grad};
use ferrograd_nn::{Module, Sequential};

use crate::cli::{Invert, PredictArgs};
use crate::console::{note, say};
use crate::early_stopping::resolve_checkpoint;
use crate::error::{CliError, Result};
use crate::image;
use crate::predict_data::{FOLDER_DATASET, folder_image, predict_rows};
use crate::run_config::RunConfig;

/// `ferrograd predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    let (saved, loaded) = resolve_checkpoint(&args.model, args.checkpoint)?;
    // Standard output carries one line per image; which checkpoint goes to standard error.
    note!("{loaded}");
    let cfg = saved.config()?;
    let model = saved.model(&cfg)?;
    let max_pixels = (args.max_megapixels * 1e6).min(usize::MAX as f64) as usize;
    let _guard = no_grad();
    let mut failed = 0usize;
    for path in &args.images {
        let result = match &cfg.table {
            Some(table) => predict_rows(std::slice::from_ref(path), &cfg, &model, table, |p| {
                top_classes(&cfg, p, args.top)
            }),
            None => classify(&cfg, &model, args, path, max_pixels)
                .map(|shown| say!("{}: {shown}", path.display())),
        };
        if let Err(e) = result {
            failed += 1;
            note!("error: {e}");
        }
    }
    if failed > 0 {
        let what = if cfg.table.is_some() {
            "files"
        } else {
            "images"
        };
        return Err(CliError::file(
            &args.model,
            format!(
                "{failed} of {} {what} could not be classified (see the errors above)",
                args.images.len()
            ),
        ));
    }
    Ok(())
}

/// The top classes of one image, as `name (p%), ...`.
fn classify(
    cfg: &RunConfig,
    model: &Sequential,
    args: &PredictArgs,
    path: &Path,
    max_pixels: usize,
) -> Result<String> {
    let [channels, height, width] = cfg.image;
    let shape = if cfg.takes_images() {
        vec![1, channels, height, width]
    } else {
        vec![1, channels * height * width]
    };
    let x = if cfg.dataset == FOLDER_DATASET {
        // Converted exactly as the training images, never inverted unless asked.
        folder_image(cfg, path, args.invert == Invert::Yes, max_pixels)?
    } else {
        let img = image::read(path, max_pixels)?.with_channels(channels);
        let img = img.resize(height, width);
        let invert = match args.invert {
            Invert::Yes => true,
            Invert::No => false,
            Invert::Auto => img.mean() > 0.5,
        };
        let img = if invert { img.inverted() } else { img };
        // Pixels in [0, 1] correspond to p / max_value of the training data; the image is
        // channel-major, one plane per channel.
        let plane = (height * width).max(1);
        let norms: Vec<_> = (0..channels).map(|c| cfg.normalize(c)).collect();
        img.data
            .chunks(plane)
            .zip(&norms)
            .flat_map(|(pixels, n)| pixels.iter().map(|v| (v - n.mean) / n.std))
            .collect()
    };
    let x = Tensor::from_vec(x, &shape)?;
    let probs = model.forward(&x)?.softmax(-1)?.to_vec::<f32>()?;
    Ok(top_classes(cfg, &probs, args.top))
}

/// The `top` most probable classes as `name (p%), ...`.
fn top_classes(cfg: &RunConfig, probs: &[f32], top: usize) -> String {
    let mut ranked: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shown: Vec<String> = ranked
        .iter()
        .take(top)
        .map(|(c, p)| {
            let name = cfg
                .class_names
                .get(*c)
                .cloned()
                .unwrap_or_else(|| c.to_string());
            format!("{name} ({:.1}%)", p * 100.0)
        })
        .collect();
    shown.join(", ")
}
