//! The digits CSV (64 pixel columns and a label per row).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrograd_data::parse_digits_csv(data, Path::new("optdigits.tra"), "train");
});
