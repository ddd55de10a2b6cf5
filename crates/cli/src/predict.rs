//! `ferrograd predict`: classifies image files (or, for a model trained on a table, the rows
//! of CSV files) with a saved model and prints the top classes with their probabilities.

use ferrograd_core::{Tensor, no_grad};
use ferrograd_nn::Module;

use crate::cli::{Invert, PredictArgs};
use crate::error::Result;
use crate::image;
use crate::predict_data::{FOLDER_DATASET, folder_image, predict_rows};
use crate::run_config::RunConfig;

/// `ferrograd predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    let cfg = RunConfig::load(&args.model)?;
    let model = cfg.load_model(&args.model)?;
    let _guard = no_grad();
    if let Some(table) = &cfg.table {
        return predict_rows(&args.images, &cfg, &model, table, |p| {
            top_classes(&cfg, p, args.top)
        });
    }
    let [channels, height, width] = cfg.image;
    let norms: Vec<_> = (0..channels).map(|c| cfg.normalize(c)).collect();
    let shape = if cfg.takes_images() {
        vec![1, channels, height, width]
    } else {
        vec![1, channels * height * width]
    };
    for path in &args.images {
        let x = if cfg.dataset == FOLDER_DATASET {
            // Converted exactly as the training images, never inverted unless asked.
            folder_image(&cfg, path, args.invert == Invert::Yes)?
        } else {
            let img = image::read(path)?.with_channels(channels);
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
            img.data
                .chunks(plane)
                .zip(&norms)
                .flat_map(|(pixels, n)| pixels.iter().map(|v| (v - n.mean) / n.std))
                .collect()
        };
        let x = Tensor::from_vec(x, &shape)?;
        let probs = model.forward(&x)?.softmax(-1)?.to_vec::<f32>()?;
        println!(
            "{}: {}",
            path.display(),
            top_classes(&cfg, &probs, args.top)
        );
    }
    Ok(())
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
