//! `ferrograd predict`: classifies image files with a saved model (its best checkpoint unless
//! told otherwise) and prints the top classes with their probabilities.

use ferrograd_core::{Tensor, no_grad};
use ferrograd_nn::Module;

use crate::cli::{Invert, PredictArgs};
use crate::early_stopping::resolve_checkpoint;
use crate::error::Result;
use crate::image;
use crate::run_config::RunConfig;

/// `ferrograd predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    let (dir, loaded) = resolve_checkpoint(&args.model, args.checkpoint)?;
    let cfg = RunConfig::load(&dir)?;
    let model = cfg.load_model(&dir)?;
    // Standard output carries one line per image; which checkpoint goes to standard error.
    eprintln!("{loaded}");
    let [channels, height, width] = cfg.image;
    let norms: Vec<_> = (0..channels).map(|c| cfg.normalize(c)).collect();
    let shape = if cfg.takes_images() {
        vec![1, channels, height, width]
    } else {
        vec![1, channels * height * width]
    };
    let _guard = no_grad();
    for path in &args.images {
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
        println!("{}: {}", path.display(), shown.join(", "));
    }
    Ok(())
}
