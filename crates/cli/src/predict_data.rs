//! The inputs `predict` gives models trained on the user's own data: image files converted
//! exactly as the folder's training images were (decoder, channels, resize filter), and the
//! rows of CSV files, read by the training table's feature columns.

use std::path::Path;

use ferrograd_core::Tensor;
use ferrograd_data::{ImageFormat, read_csv_rows};
use ferrograd_nn::Module;

use crate::console::say;
use crate::error::{CliError, Result};
use crate::image;
use crate::run_config::RunConfig;
use crate::training_data::TableColumns;

/// The `dataset` a model trained on an image folder records in its config.
pub const FOLDER_DATASET: &str = "folder";

/// Rows per forward pass when classifying a table.
const ROWS_PER_BATCH: usize = 512;

/// `path` (at most `max_pixels` pixels, checked from its header) converted like the training
/// images of a folder model (pixels `p` become `255 - p` with `invert`) and normalised: the
/// model's `[channels, height, width]` values.
pub fn folder_image(
    cfg: &RunConfig,
    path: &Path,
    invert: bool,
    max_pixels: usize,
) -> Result<Vec<f32>> {
    let [channels, height, width] = cfg.image;
    let format = ImageFormat {
        channels,
        height,
        width,
    };
    let bytes = image::read_encoded(path, max_pixels)?;
    let pixels = format
        .convert(&bytes)
        .map_err(|e| CliError::file(path, e))?;
    let plane = (height * width).max(1);
    Ok(pixels
        .chunks(plane)
        .enumerate()
        .flat_map(|(c, values)| {
            let n = cfg.normalize(c);
            values.iter().map(move |&p| {
                let p = if invert { u8::MAX - p } else { p };
                n.apply(p, cfg.max_value)
            })
        })
        .collect())
}

/// Classifies every row of each CSV file in `files`, printing one line per row:
/// `FILE:LINE: class (p%), ...`.
pub fn predict_rows(
    files: &[std::path::PathBuf],
    cfg: &RunConfig,
    model: &dyn Module,
    table: &TableColumns,
    describe: impl Fn(&[f32]) -> String,
) -> Result<()> {
    let features = table.features.len();
    for path in files {
        let rows = read_csv_rows(path, &table.features)?;
        let values: Vec<f32> = rows
            .values
            .chunks(features.max(1))
            .flat_map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(j, &v)| cfg.normalize(j).apply_value(v))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (lines, chunk) in rows
            .lines
            .chunks(ROWS_PER_BATCH)
            .zip(values.chunks(ROWS_PER_BATCH * features.max(1)))
        {
            let x = Tensor::from_vec(chunk.to_vec(), &[lines.len(), features])?;
            let probs = model.forward(&x)?.softmax(-1)?.to_vec::<f32>()?;
            for (line, p) in lines.iter().zip(probs.chunks(cfg.output.max(1))) {
                say!("{}:{line}: {}", path.display(), describe(p));
            }
        }
    }
    Ok(())
}
