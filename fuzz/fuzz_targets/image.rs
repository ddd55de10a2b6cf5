//! PNG and PGM images as `predict` reads them: decoded within the size limits, converted to
//! the model's channels and resized to its input. The first byte picks the model's input
//! (1 or 3 channels, 8x8 to 32x32); the rest is the file.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// One folder for the whole run: the file is rewritten for every input.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let channels = if pick & 1 == 0 { 1 } else { 3 };
    let side = 8 + usize::from(pick >> 1) % 25;
    let path = DIR.path().join("image");
    std::fs::write(&path, file).unwrap();
    if let Ok(pixels) = ferrograd_cli::fuzzing::read_image(&path, channels, [side, side]) {
        assert_eq!(pixels.len(), channels * side * side);
    }
});
