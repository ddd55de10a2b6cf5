//! The file readers of `predict`, `eval` and `train --resume`, exposed for the fuzz targets in
//! `fuzz/` (which cannot reach the private modules). Each reads a file the way its command
//! does; none of them is part of the command-line interface.

use std::path::Path;

use crate::error::Result;
use crate::image::DEFAULT_MAX_MEGAPIXELS;
use crate::run_folder::SavedRun;

/// Reads an image as `predict` does (with its default size limit), converted to `channels` and
/// resized to `size`.
///
/// # Errors
/// A file that is not a readable PNG, JPEG or PGM within the size limits.
pub fn read_image(path: &Path, channels: usize, size: [usize; 2]) -> Result<Vec<f32>> {
    let max_pixels = (DEFAULT_MAX_MEGAPIXELS * 1e6) as usize;
    let img = crate::image::read(path, max_pixels)?.with_channels(channels);
    Ok(img.resize(size[0], size[1]).inverted().data)
}

/// Loads a run folder (or checkpoint set folder) as `eval`/`predict` (`config.json`,
/// `model.safetensors`) and `train --resume` (`optimizer.safetensors` and the metrics too) do.
///
/// # Errors
/// Any missing, malformed or inconsistent file, naming it.
pub fn load_model_folder(dir: &Path) -> Result<()> {
    let saved = SavedRun::read(dir)?;
    crate::train::resume_run(saved.config()?, &saved).map(drop)
}
