//! The file readers of `predict`, `eval` and `train --resume`, exposed for the fuzz targets in
//! `fuzz/` (which cannot reach the private modules). Each reads a file the way its command
//! does; none of them is part of the command-line interface.

use std::path::Path;

use ferrograd_nn::named_params;

use crate::error::{CliError, Result};
use crate::run_config::OPTIMIZER_FILE;
use crate::run_folder::SavedRun;

/// The largest image `predict` accepts by default (`--max-megapixels 64`), in pixels.
const MAX_PIXELS: usize = 64_000_000;

/// Reads an image as `predict` does by default, converted to `channels` and resized to `size`.
///
/// # Errors
/// A file that is not a readable PNG or PGM within the size limits.
pub fn read_image(path: &Path, channels: usize, size: [usize; 2]) -> Result<Vec<f32>> {
    let img = crate::image::read(path, MAX_PIXELS)?.with_channels(channels);
    Ok(img.resize(size[0], size[1]).inverted().data)
}

/// Loads a run folder (or checkpoint set folder) as `eval`/`predict` (`config.json`,
/// `model.safetensors`) and `train --resume` (`optimizer.safetensors` too) do.
///
/// # Errors
/// Any missing, malformed or inconsistent file, naming it.
pub fn load_model_folder(dir: &Path) -> Result<()> {
    let saved = SavedRun::read(dir)?;
    let cfg = saved.config()?;
    let model = saved.model(&cfg)?;
    let mut optimizer = crate::train::build_optimizer(&cfg.training, named_params(&model))?;
    let path = saved.folder().join(OPTIMIZER_FILE);
    optimizer
        .load_state(&saved.tensors(OPTIMIZER_FILE)?)
        .map_err(|e| CliError::file(&path, e.to_string()))
}
