//! The mini-batch loader: coverage, seeded orders, shapes (rows and images), normalisation
//! (global and per channel), augmentation, drop_last, the sequential variant and clean early
//! exit of the background thread.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use ferrograd_core::DType;
use ferrograd_data::{
    Augment, Batch, CIFAR10_IMAGE_BYTES, CifarBatch, DataSource, Dataset, DatasetKind, Loader,
    LoaderConfig, Normalize, encode_cifar_batch, load,
};

/// `n` samples of 3 features; sample i has pixels [i%256, 0, 255] and label i % 4.
fn dataset(n: usize) -> Arc<Dataset> {
    Arc::new(Dataset {
        name: "toy".into(),
        pixels: (0..n).flat_map(|i| [(i % 256) as u8, 0, 255]).collect(),
        labels: (0..n).map(|i| (i % 4) as u8).collect(),
        channels: 1,
        height: 1,
        width: 3,
        max_value: 255.0,
        class_names: (0..4).map(|c| c.to_string()).collect(),
    })
}

fn loader(n: usize, config: LoaderConfig) -> Loader {
    Loader::new(dataset(n), config).unwrap()
}

fn config(batch_size: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        ..Default::default()
    }
}

fn collect(batches: impl Iterator<Item = ferrograd_data::Result<Batch>>) -> Vec<Batch> {
    batches.collect::<Result<_, _>>().unwrap()
}

fn order(batches: &[Batch]) -> Vec<usize> {
    batches
        .iter()
        .flat_map(|b| b.indices.iter().copied())
        .collect()
}

#[test]
fn every_index_exactly_once_per_epoch() {
    let l = loader(103, config(10));
    for epoch in 0..3 {
        let batches = collect(l.epoch(epoch));
        assert_eq!(batches.len(), 11);
        assert_eq!(batches.len(), l.num_batches());
        let mut seen = order(&batches);
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
    }
}

#[test]
fn epochs_differ_and_seeds_repeat() {
    let a = loader(200, config(16));
    let b = loader(200, config(16));
    let e0 = order(&collect(a.epoch(0)));
    let e1 = order(&collect(a.epoch(1)));
    assert_ne!(e0, e1);
    assert_ne!(e0, (0..200).collect::<Vec<_>>());
    assert_eq!(e0, order(&collect(b.epoch(0))));
    assert_eq!(e1, order(&collect(a.epoch(1))));
    assert_eq!(e0, a.epoch_order(0));
    let c = loader(
        200,
        LoaderConfig {
            seed: 1,
            ..config(16)
        },
    );
    assert_ne!(e0, order(&collect(c.epoch(0))));
}

#[test]
fn batch_shapes_labels_and_values() {
    let l = loader(10, config(4));
    let batches = collect(l.epoch(0));
    let sizes: Vec<usize> = batches.iter().map(|b| b.indices.len()).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    for b in &batches {
        let n = b.indices.len();
        assert_eq!(b.x.shape(), &[n, 3]);
        assert_eq!(b.x.dtype(), DType::F32);
        assert_eq!(b.y.shape(), &[n]);
        assert_eq!(b.y.dtype(), DType::I64);
        let x = b.x.to_vec::<f32>().unwrap();
        let y = b.y.to_vec::<i64>().unwrap();
        for (row, &i) in b.indices.iter().enumerate() {
            assert_eq!(y[row], (i % 4) as i64);
            assert_eq!(x[row * 3], i as f32 / 255.0);
            assert_eq!(x[row * 3 + 1], 0.0);
            assert_eq!(x[row * 3 + 2], 1.0);
        }
    }
}

#[test]
fn normalisation_is_applied() {
    let norm = Normalize {
        mean: 0.5,
        std: 0.25,
    };
    let l = loader(
        6,
        LoaderConfig {
            normalize: norm,
            ..config(6)
        },
    );
    let batch = collect(l.sequential()).remove(0);
    let x = batch.x.to_vec::<f32>().unwrap();
    assert_eq!(&x[..3], &[-2.0, -2.0, 2.0]);
    assert!((x[3] - (1.0 / 255.0 - 0.5) / 0.25).abs() < 1e-6);

    // Fitted statistics centre the data: mean about 0, std about 1.
    let ds = dataset(256);
    let fitted = Normalize::from_dataset(&ds);
    let l = Loader::new(
        ds,
        LoaderConfig {
            normalize: fitted,
            ..config(256)
        },
    )
    .unwrap();
    let x = collect(l.sequential()).remove(0).x.to_vec::<f32>().unwrap();
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!(
        mean.abs() < 1e-4 && (var.sqrt() - 1.0).abs() < 1e-4,
        "{mean} {var}"
    );
}

#[test]
fn drop_last_leaves_out_the_short_batch() {
    let l = loader(
        10,
        LoaderConfig {
            drop_last: true,
            ..config(4)
        },
    );
    assert_eq!(l.num_batches(), 2);
    let batches = collect(l.epoch(3));
    assert_eq!(batches.len(), 2);
    assert!(batches.iter().all(|b| b.indices.len() == 4));
    // The evaluation pass never drops samples.
    assert_eq!(order(&collect(l.sequential())).len(), 10);
}

#[test]
fn sequential_is_in_order() {
    let l = loader(9, config(4));
    let it = l.sequential();
    assert_eq!(it.size_hint(), (3, Some(3)));
    assert_eq!(order(&collect(it)), (0..9).collect::<Vec<_>>());
}

#[test]
fn inline_and_threaded_give_the_same_batches() {
    let threaded = loader(50, config(7));
    let inline = loader(
        50,
        LoaderConfig {
            prefetch: 0,
            ..config(7)
        },
    );
    let a = collect(threaded.epoch(2));
    let b = collect(inline.epoch(2));
    assert_eq!(order(&a), order(&b));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.x.to_vec::<f32>().unwrap(), y.x.to_vec::<f32>().unwrap());
    }
}

#[test]
fn dropping_an_epoch_early_stops_the_thread() {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let l = loader(
            20_000,
            LoaderConfig {
                prefetch: 2,
                ..config(8)
            },
        );
        for epoch in 0..20 {
            let mut it = l.epoch(epoch);
            let first = it.next().unwrap().unwrap();
            assert_eq!(first.indices.len(), 8);
            drop(it); // The worker is blocked on a full channel here.
        }
        // Not even one batch taken.
        drop(l.epoch(99));
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("dropping a half-read epoch hung or panicked");
}

#[test]
fn bad_arguments_are_errors() {
    assert!(Loader::new(dataset(4), config(0)).is_err());
    let bad_std = LoaderConfig {
        normalize: Normalize {
            mean: 0.0,
            std: 0.0,
        },
        ..config(2)
    };
    assert!(Loader::new(dataset(4), bad_std).is_err());
    let mut ds = (*dataset(4)).clone();
    ds.pixels.pop();
    let err = Loader::new(Arc::new(ds), config(2)).unwrap_err();
    assert!(err.to_string().contains("toy"), "{err}");
}

#[test]
fn empty_dataset_gives_no_batches() {
    let l = loader(0, config(4));
    assert_eq!(collect(l.epoch(0)).len(), 0);
    assert_eq!(collect(l.sequential()).len(), 0);
}

/// `n` RGB images of 2x3 pixels: channel c of sample i holds `10 c + i` at every pixel.
fn rgb(n: usize) -> Arc<Dataset> {
    Arc::new(Dataset {
        name: "rgb".into(),
        pixels: (0..n)
            .flat_map(|i| (0..3).flat_map(move |c| [(10 * c + i) as u8; 6]))
            .collect(),
        labels: vec![0; n],
        channels: 3,
        height: 2,
        width: 3,
        max_value: 255.0,
        class_names: vec!["a".into()],
    })
}

#[test]
fn image_batches_keep_the_channels_and_normalise_each() {
    let data = rgb(4);
    let stats = Normalize::per_channel(&data);
    assert_eq!(stats.len(), 3);
    // Channel c holds 10 c + {0, 1, 2, 3}: mean (10 c + 1.5) / 255.
    for (c, n) in stats.iter().enumerate() {
        assert!(
            (n.mean - (10.0 * c as f32 + 1.5) / 255.0).abs() < 1e-6,
            "{n:?}"
        );
        assert!((n.std - 1.118_034 / 255.0).abs() < 1e-6, "{n:?}");
    }
    let l = Loader::new(
        Arc::clone(&data),
        LoaderConfig {
            images: true,
            channel_normalize: stats.clone(),
            ..config(4)
        },
    )
    .unwrap();
    let b = collect(l.sequential()).remove(0);
    assert_eq!(b.x.shape(), &[4, 3, 2, 3]);
    // Every channel is centred and scaled with its own statistics.
    let m = b.x.mean(&[0, 2, 3], false).unwrap().to_vec_f64();
    let v =
        b.x.square()
            .unwrap()
            .mean(&[0, 2, 3], false)
            .unwrap()
            .to_vec_f64();
    for c in 0..3 {
        assert!(
            m[c].abs() < 1e-4 && (v[c] - 1.0).abs() < 1e-3,
            "{m:?} {v:?}"
        );
    }
    let x = b.x.to_vec::<f32>().unwrap();
    let want = |i: usize, c: usize| stats[c].apply((10 * c + i) as u8, 255.0);
    assert_eq!(x[(2 * 3 + 1) * 6 + 4], want(2, 1));

    // One normalisation for a data set of three channels is an error.
    let wrong = LoaderConfig {
        channel_normalize: vec![stats[0]],
        ..config(4)
    };
    let err = Loader::new(data, wrong).unwrap_err().to_string();
    assert!(err.contains("3 channels"), "{err}");
}

/// Shifts move whole images with a zero border, flips mirror them; the same seed and
/// epoch give the same images, the evaluation pass is never augmented, and the order of
/// the samples does not depend on augmentation.
#[test]
fn augmentation_is_reproducible_and_only_for_training_epochs() {
    let n = 64;
    // 1 channel, 4x4: sample i has pixel values 1 + 16 (i % 2) + position (never 0).
    let data = Arc::new(Dataset {
        name: "grid".into(),
        pixels: (0..n)
            .flat_map(|i| (0..16).map(move |p| (1 + 16 * (i % 2) + p) as u8))
            .collect(),
        labels: vec![0; n],
        channels: 1,
        height: 4,
        width: 4,
        max_value: 255.0,
        class_names: vec!["a".into()],
    });
    let augment = Augment {
        max_shift: 1,
        flip: true,
    };
    let cfg = LoaderConfig {
        images: true,
        augment,
        seed: 5,
        ..config(16)
    };
    let plain = Loader::new(
        Arc::clone(&data),
        LoaderConfig {
            images: true,
            seed: 5,
            ..config(16)
        },
    )
    .unwrap();
    let a = Loader::new(Arc::clone(&data), cfg.clone()).unwrap();
    let b = Loader::new(Arc::clone(&data), LoaderConfig { prefetch: 0, ..cfg }).unwrap();
    let values = |batches: &[Batch]| -> Vec<f32> {
        batches
            .iter()
            .flat_map(|b| b.x.to_vec::<f32>().unwrap())
            .collect()
    };
    let e0 = collect(a.epoch(0));
    assert_eq!(order(&e0), order(&collect(plain.epoch(0))));
    assert_eq!(values(&e0), values(&collect(b.epoch(0))));
    assert_eq!(values(&e0), values(&collect(a.epoch(0))));
    assert_ne!(values(&e0), values(&collect(a.epoch(1))));
    assert_ne!(values(&e0), values(&collect(plain.epoch(0))));
    assert_eq!(
        values(&collect(a.sequential())),
        values(&collect(plain.sequential()))
    );

    // Each augmented image is its original shifted by at most one pixel (zeros coming in)
    // and possibly mirrored.
    let mut shifted = 0;
    for batch in &e0 {
        let x = batch.x.to_vec::<f32>().unwrap();
        for (row, &i) in batch.indices.iter().enumerate() {
            let got: Vec<u8> = x[row * 16..(row + 1) * 16]
                .iter()
                .map(|v| (v * 255.0).round() as u8)
                .collect();
            let original = data.image(i).unwrap();
            let candidates = (-1..=1).flat_map(|dy| {
                (-1..=1).flat_map(move |dx| [false, true].map(|flip| (dy, dx, flip)))
            });
            let found = candidates.clone().find(|&(dy, dx, flip)| {
                (0..16).all(|p| {
                    let (y, xx) = (p / 4, p % 4);
                    let xx = if flip { 3 - xx } else { xx };
                    let (sy, sx) = (y as isize - dy, xx as isize - dx);
                    let want = if (0..4).contains(&sy) && (0..4).contains(&sx) {
                        original[(sy * 4 + sx) as usize]
                    } else {
                        0
                    };
                    got[p] == want
                })
            });
            let Some((dy, dx, _)) = found else {
                panic!("sample {i}: {got:?} is no shift or flip of {original:?}");
            };
            shifted += usize::from(dy != 0 || dx != 0);
        }
    }
    assert!(shifted > n / 2, "{shifted} of {n} shifted");
}

/// CIFAR-10 read from synthetic batch files goes through the loader as augmented images.
#[test]
fn synthetic_cifar10_batches_as_augmented_images() {
    let dir = tempfile::tempdir().unwrap();
    for (b, name) in ferrograd_data::CIFAR10_TRAIN_FILES
        .iter()
        .chain([&ferrograd_data::CIFAR10_TEST_FILE])
        .enumerate()
    {
        let batch = CifarBatch {
            labels: (0..4).map(|i| ((b + i) % 10) as u8).collect(),
            pixels: (0..4 * CIFAR10_IMAGE_BYTES)
                .map(|v| (v % 251) as u8)
                .collect(),
        };
        std::fs::write(dir.path().join(name), encode_cifar_batch(&batch).unwrap()).unwrap();
    }
    let src = DataSource {
        data_dir: Some(dir.path().to_path_buf()),
        cache_dir: dir.path().join("cache"),
        download: false,
    };
    let (train, _) = load(DatasetKind::Cifar10, &src).unwrap();
    let cfg = LoaderConfig {
        images: true,
        channel_normalize: Normalize::per_channel(&train),
        augment: Augment::standard(DatasetKind::Cifar10),
        ..config(8)
    };
    let l = Loader::new(Arc::new(train), cfg).unwrap();
    let batches = collect(l.epoch(0));
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].x.shape(), &[8, 3, 32, 32]);
    assert_eq!(batches[2].x.shape(), &[4, 3, 32, 32]);
    assert!(
        batches
            .iter()
            .all(|b| b.x.to_vec::<f32>().unwrap().iter().all(|v| v.is_finite()))
    );
}
