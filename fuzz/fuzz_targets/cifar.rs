//! CIFAR-10 binary batches (label byte + 3072 pixel bytes per record).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrograd_data::parse_cifar_batch(data, Path::new("data_batch_1.bin"));
});
