//! The data of a training run: a known data set split into training, validation and test
//! samples, or the user's own image folder or CSV table (`--dataset folder|csv`); and what the
//! run's config records about it (sample shape, classes, normalisation fitted on the training
//! split, a table's columns).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrograd_data::{
    CsvOptions, DataSource, Dataset, FolderOptions, ImageFormat, Normalize, Samples, load,
    read_csv_table, read_image_folder,
};
use serde::{Deserialize, Serialize};

use crate::cli::{TrainArgs, TrainData};
use crate::error::{CliError, Result};

/// The columns of a model trained on a CSV table, so `predict` reads new rows the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableColumns {
    /// The feature columns, in the model's input order.
    pub features: Vec<String>,
    /// The label column.
    pub target: String,
}

/// What a run's config records about its data.
#[derive(Debug, Clone, PartialEq)]
pub struct DataInfo {
    /// `[channels, height, width]` of a sample; `[features, 1, 1]` for a table.
    pub image: [usize; 3],
    /// Largest pixel value (1 for a table, whose values are not scaled).
    pub max_value: f32,
    /// One normalisation for all values, or one per channel (per feature for a table).
    pub normalize: Vec<Normalize>,
    /// The class names, indexed by label.
    pub class_names: Vec<String>,
    /// The columns of a CSV table.
    pub table: Option<TableColumns>,
}

/// A run's samples, split, and their description.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pub train: Samples,
    pub val: Samples,
    pub test: Samples,
    pub info: DataInfo,
    /// Files or rows left out with `--skip-bad-files`, each as `what: why`.
    pub skipped: Vec<String>,
    /// Whether image files are decoded from disk at every epoch.
    pub streamed: bool,
}

/// How the samples are split and shaped: the flags of a new run, or what a resumed run was
/// trained with.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub val_fraction: f64,
    pub test_fraction: f64,
    pub seed: u64,
    /// The `[channels, height, width]` a resumed run's images were converted to (instead of
    /// --channels and --image-size).
    pub image: Option<[usize; 3]>,
}

/// Reads the data `args` name and splits it.
pub fn prepare(args: &TrainArgs, split: Split, threads: usize) -> Result<TrainingData> {
    match args.dataset {
        TrainData::Known(kind) => {
            let source = DataSource::new(args.data.data_dir.clone(), args.data.download);
            let (train_full, test) = load(kind, &source)?;
            let (train, val) = if split.val_fraction > 0.0 {
                train_full.stratified_split(split.val_fraction, split.seed)?
            } else {
                let empty = train_full.subset(&[])?;
                (train_full, empty)
            };
            let info = known_info(&train, args.model.is_convolutional());
            Ok(TrainingData {
                train: Samples::Images(Arc::new(train)),
                val: Samples::Images(Arc::new(val)),
                test: Samples::Images(Arc::new(test)),
                info,
                skipped: Vec::new(),
                streamed: false,
            })
        }
        TrainData::Folder => folder(args, split, threads),
        TrainData::Csv => csv(args, split),
    }
}

/// The known data sets: convolutional models normalise each channel with its own
/// statistics, the others all pixels with one.
fn known_info(train: &Dataset, per_channel: bool) -> DataInfo {
    DataInfo {
        image: [train.channels, train.height, train.width],
        max_value: train.max_value,
        normalize: if per_channel {
            Normalize::per_channel(train)
        } else {
            vec![Normalize::from_dataset(train)]
        },
        class_names: train.class_names.clone(),
        table: None,
    }
}

fn data_dir<'a>(args: &'a TrainArgs, what: &str) -> Result<&'a Path> {
    args.data.data_dir.as_deref().ok_or_else(|| CliError::Flag {
        flag: "--data-dir",
        msg: format!("--dataset {} needs --data-dir {what}", args.dataset),
    })
}

fn folder(args: &TrainArgs, split: Split, threads: usize) -> Result<TrainingData> {
    let dir = data_dir(
        args,
        "DIR, a folder with one sub-folder of images per class",
    )?;
    if !dir.is_dir() {
        return Err(CliError::file(dir, "not a folder"));
    }
    let [channels, height, width] = split.image.unwrap_or({
        let [h, w] = args.own.image_size.0;
        [args.own.channels, h, w]
    });
    let options = FolderOptions {
        format: ImageFormat {
            channels,
            height,
            width,
        },
        val_fraction: split.val_fraction,
        test_fraction: split.test_fraction,
        seed: split.seed,
        skip_bad_files: args.own.skip_bad_files,
        workers: args.own.workers.unwrap_or(threads),
        max_memory: args.own.max_memory.saturating_mul(1 << 20),
        progress: true,
    };
    let data = read_image_folder(dir, &options)?;
    let skipped = data
        .skipped
        .iter()
        .map(|b| format!("{}: {}", b.path.display(), b.reason))
        .collect();
    Ok(TrainingData {
        info: DataInfo {
            image: [options.format.channels, height, width],
            max_value: 255.0,
            normalize: data
                .train_mean_std
                .iter()
                .map(|&ms| Normalize::fitted(ms))
                .collect(),
            class_names: data.class_names,
            table: None,
        },
        train: data.train,
        val: data.val,
        test: data.test,
        skipped,
        streamed: data.streamed,
    })
}

fn csv(args: &TrainArgs, split: Split) -> Result<TrainingData> {
    let path: PathBuf = data_dir(args, "FILE.csv")?.to_path_buf();
    if args.model.is_convolutional() {
        return Err(CliError::Flag {
            flag: "--model",
            msg: format!(
                "{} takes images; a CSV table trains --model logistic or mlp",
                args.model.name()
            ),
        });
    }
    let target = args.own.target.clone().ok_or_else(|| CliError::Flag {
        flag: "--target",
        msg: "--dataset csv needs --target COLUMN, the column holding the class labels".into(),
    })?;
    let data = read_csv_table(
        &path,
        &CsvOptions {
            target: target.clone(),
            val_fraction: split.val_fraction,
            test_fraction: split.test_fraction,
            seed: split.seed,
            skip_bad_rows: args.own.skip_bad_files,
        },
    )?;
    let features = data.train.features();
    let skipped = data
        .skipped
        .iter()
        .map(|b| format!("{} line {}: {}", path.display(), b.line, b.reason))
        .collect();
    Ok(TrainingData {
        info: DataInfo {
            image: [features, 1, 1],
            max_value: 1.0,
            normalize: data
                .train
                .feature_mean_std()
                .into_iter()
                .map(Normalize::fitted)
                .collect(),
            class_names: data.train.class_names.clone(),
            table: Some(TableColumns {
                features: data.train.feature_names.clone(),
                target,
            }),
        },
        train: Samples::Rows(Arc::new(data.train)),
        val: Samples::Rows(Arc::new(data.val)),
        test: Samples::Rows(Arc::new(data.test)),
        skipped,
        streamed: false,
    })
}

/// Refuses flags that do not apply to the data: augmentation of one's own data (its
/// transforms are tuned per known data set).
pub fn check_flags(args: &TrainArgs) -> Result<()> {
    if args.augment && !matches!(args.dataset, TrainData::Known(_)) {
        return Err(CliError::Flag {
            flag: "--augment",
            msg: format!(
                "only for the known data sets (digits, mnist, fashion-mnist, cifar10), not --dataset {}",
                args.dataset
            ),
        });
    }
    Ok(())
}
