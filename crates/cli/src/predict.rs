//! `ferrograd predict`: classifies image files with a saved model (its best checkpoint unless
//! told otherwise) and prints the top classes with their probabilities. Every file is tried;
//! each one that cannot be read is reported, and the command fails at the end when any did.

use std::path::Path;

use ferrograd_core::{Tensor, no_grad};
use ferrograd_nn::{Module, Sequential};

use crate::cli::{Invert, PredictArgs};
use crate::console::{note, say};
use crate::early_stopping::resolve_checkpoint;
use crate::error::{CliError, Result};
use crate::image;
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
        match classify(&cfg, &model, args, path, max_pixels) {
            Ok(shown) => say!("{}: {shown}", path.display()),
            Err(e) => {
                failed += 1;
                note!("error: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(CliError::file(
            &args.model,
            format!(
                "{failed} of {} images could not be classified (see the errors above)",
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
    let x: Vec<f32> = img
        .data
        .chunks(plane)
        .zip(&norms)
        .flat_map(|(pixels, n)| pixels.iter().map(|v| (v - n.mean) / n.std))
        .collect();
    let x = Tensor::from_vec(x, &shape)?;
    let probs = model.forward(&x)?.softmax(-1)?.to_vec::<f32>()?;
    let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shown: Vec<String> = ranked
        .iter()
        .take(args.top)
        .map(|(c, p)| {
            let name = cfg
                .class_names
                .get(*c)
                .cloned()
                .unwrap_or_else(|| c.to_string());
            format!("{name} ({:.1}%)", p * 100.0)
        })
        .collect();
    Ok(shown.join(", "))
}
