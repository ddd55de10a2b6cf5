//! The loader over one's own data: image files decoded on worker threads give the same
//! batches as one thread and as decoding inline, a file that vanished is an error naming it,
//! and table rows are standardised per feature.

use std::path::Path;
use std::sync::Arc;

use ferrograd_data::{
    Batch, ImageFiles, ImageFormat, Loader, LoaderConfig, Normalize, Samples, Table,
};

/// `n` grey 6x6 PNG files whose pixels all equal their index times 10.
fn write_files(dir: &Path, n: usize) -> ImageFiles {
    let paths: Vec<_> = (0..n)
        .map(|i| {
            let path = dir.join(format!("{i}.png"));
            image::GrayImage::from_pixel(6, 6, image::Luma([(i * 10) as u8]))
                .save(&path)
                .unwrap();
            path
        })
        .collect();
    ImageFiles {
        name: "files".into(),
        paths,
        labels: (0..n).map(|i| (i % 2) as u8).collect(),
        format: ImageFormat {
            channels: 1,
            height: 3,
            width: 3,
        },
        class_names: vec!["even".into(), "odd".into()],
    }
}

fn batches(loader: &Loader) -> Vec<(Vec<f32>, Vec<i64>, Vec<usize>)> {
    loader
        .epoch(1)
        .chain(loader.sequential())
        .map(|b: ferrograd_data::Result<Batch>| {
            let b = b.unwrap();
            (
                b.x.to_vec::<f32>().unwrap(),
                b.y.to_vec::<i64>().unwrap(),
                b.indices,
            )
        })
        .collect()
}

#[test]
fn worker_threads_decode_the_same_batches_in_the_same_order() {
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(write_files(dir.path(), 23));
    let config = |workers, prefetch| LoaderConfig {
        batch_size: 4,
        seed: 3,
        images: true,
        workers,
        prefetch,
        ..Default::default()
    };
    let load = |workers, prefetch| {
        Loader::from_samples(
            Samples::Files(Arc::clone(&files)),
            config(workers, prefetch),
        )
        .unwrap()
    };
    let inline = batches(&load(1, 0));
    assert_eq!(inline.len(), 12);
    assert_eq!(batches(&load(1, 2)), inline);
    assert_eq!(batches(&load(3, 1)), inline);
    // Each sample's pixels are its index times 10, scaled to [0, 1].
    for (x, y, indices) in &inline {
        for (k, &i) in indices.iter().enumerate() {
            assert_eq!(x[k * 9], (i * 10) as f32 / 255.0);
            assert_eq!(y[k], (i % 2) as i64);
        }
    }

    std::fs::remove_file(&files.paths[5]).unwrap();
    let loader = load(2, 1);
    let err = loader
        .sequential()
        .find_map(Result::err)
        .expect("the missing file is reported")
        .to_string();
    assert!(err.contains("5.png"), "{err}");
    assert!(
        Loader::from_samples(Samples::Files(Arc::clone(&files)), config(0, 1)).is_err(),
        "0 workers"
    );
}

#[test]
fn table_rows_are_standardised_per_feature() {
    let table = Table {
        name: "t".into(),
        feature_names: vec!["a".into(), "b".into()],
        values: vec![1.0, 10.0, 3.0, 30.0],
        labels: vec![0, 1],
        class_names: vec!["x".into(), "y".into()],
    };
    let norms: Vec<Normalize> = table
        .feature_mean_std()
        .into_iter()
        .map(Normalize::fitted)
        .collect();
    let loader = Loader::from_samples(
        Samples::Rows(Arc::new(table)),
        LoaderConfig {
            batch_size: 2,
            channel_normalize: norms,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(loader.len(), 2);
    let b = loader.sequential().next().unwrap().unwrap();
    assert_eq!(b.x.shape(), &[2, 2]);
    assert_eq!(b.x.to_vec::<f32>().unwrap(), vec![-1.0, -1.0, 1.0, 1.0]);
    assert_eq!(b.y.to_vec::<i64>().unwrap(), vec![0, 1]);
}
