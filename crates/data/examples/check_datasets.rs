//! Loads MNIST and Fashion-MNIST from a data folder and prints their sizes and label
//! histograms: a quick check that real files are found and read.
//!
//! ```text
//! cargo run --release -p ferrograd-data --example check_datasets -- --data-dir /path/to/datasets
//! ```
//!
//! The folder may hold the IDX files directly or in `mnist/` and `fashion-mnist/` subfolders.
//! Nothing is downloaded unless `--download` is given.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use ferrograd_data::{
    DataSource, Dataset, DatasetKind, default_cache_dir, default_mirrors, load_with_mirrors,
};

/// Load data sets and print their counts and label histograms.
#[derive(Parser)]
struct Args {
    /// Folder holding the data set files (or one subfolder per data set).
    #[arg(long)]
    data_dir: PathBuf,
    /// Data sets to check.
    #[arg(long, value_delimiter = ',', default_values_t = [DatasetKind::Mnist, DatasetKind::FashionMnist])]
    datasets: Vec<DatasetKind>,
    /// Download missing files into the cache folder.
    #[arg(long)]
    download: bool,
    /// Where downloads are kept (default: the per-user cache folder).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Base URL of a mirror to download from instead of the public ones (repeatable).
    #[arg(long)]
    mirror: Vec<String>,
}

fn describe(ds: &Dataset) {
    let (mean, std) = ds.pixel_mean_std();
    println!(
        "  {:<20} {:>6} samples of {}x{}x{}, pixel mean {mean:.4} std {std:.4}",
        ds.name,
        ds.len(),
        ds.channels,
        ds.height,
        ds.width
    );
    for (class, count) in ds.label_histogram().iter().enumerate() {
        let name = ds.class_names.get(class).map_or("?", String::as_str);
        println!("    {class} {name:<12} {count:>6}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let src = DataSource {
        data_dir: Some(args.data_dir),
        cache_dir: args.cache_dir.unwrap_or_else(default_cache_dir),
        download: args.download,
    };
    let mut failed = false;
    for kind in args.datasets {
        let start = Instant::now();
        let mirrors: Vec<&str> = if args.mirror.is_empty() {
            default_mirrors(kind).to_vec()
        } else {
            args.mirror.iter().map(String::as_str).collect()
        };
        match load_with_mirrors(kind, &src, &mirrors) {
            Ok((train, test)) => {
                println!("{kind}: loaded in {:.2?}", start.elapsed());
                describe(&train);
                describe(&test);
            }
            Err(e) => {
                eprintln!("{kind}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
