//! A whole model folder as `eval`, `predict` and `train --resume` load it: `config.json`,
//! `model.safetensors` and `optimizer.safetensors`. The input is the three files, each
//! preceded by its length as a little-endian u32 (a missing tail leaves a file short or empty).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// One folder for the whole run: the files are rewritten for every input.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());

fn split(mut data: &[u8]) -> [&[u8]; 3] {
    let mut parts = [&[][..]; 3];
    for part in &mut parts {
        if data.len() < 4 {
            break;
        }
        let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let rest = &data[4..];
        let n = n.min(rest.len());
        *part = &rest[..n];
        data = &rest[n..];
    }
    parts
}

fuzz_target!(|data: &[u8]| {
    let [config, model, optimizer] = split(data);
    let dir = &*DIR;
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), model).unwrap();
    std::fs::write(dir.path().join("optimizer.safetensors"), optimizer).unwrap();
    let _ = ferrograd_cli::fuzzing::load_model_folder(dir.path());
});
