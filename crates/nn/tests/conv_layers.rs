//! The convolutional layers and models: shapes, PyTorch's parameter and buffer names and
//! initialisation ranges, gradients through each layer, batch norm's training and evaluation
//! modes and running statistics (eagerly and in a compiled step), checkpoint round trips with
//! buffers, and errors that name the layer and the expected shape.

use std::cell::RefCell;

use ferrograd_core::op::{Conv2dParams, Pool2dParams};
use ferrograd_core::{DType, GradcheckOptions, Result, Rng, Tensor, gradcheck};
use ferrograd_nn::checkpoint::{from_safetensors, load_into, to_safetensors};
use ferrograd_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, BatchNormConfig, CnnConfig, Conv2d,
    Conv2dConfig, Flatten, LayerNorm, LayerNormConfig, LeNetConfig, MaxPool2d, Module, Sgd,
    SgdConfig, TrainStep, cnn, lenet, named_buffers, named_params, named_state,
};

fn names(pairs: &[(String, Tensor)]) -> Vec<String> {
    pairs.iter().map(|(n, _)| n.clone()).collect()
}

fn max_abs(t: &Tensor) -> f64 {
    t.to_vec_f64().iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

fn tiny_cnn(rng: &mut Rng, dtype: DType) -> ferrograd_nn::Sequential {
    let cfg = CnnConfig {
        in_channels: 2,
        channels: vec![4, 6],
        convs_per_stage: 1,
        classes: 3,
    };
    cnn(&cfg, dtype, rng).unwrap()
}

#[test]
fn conv2d_shapes_names_and_pytorch_init_ranges() {
    let mut rng = Rng::new(1);
    let cfg = Conv2dConfig::new(5).padding(2).stride(2);
    let conv = Conv2d::new(6, 16, cfg, DType::F64, &mut rng).unwrap();
    assert_eq!(conv.weight.shape(), &[16, 6, 5, 5]);
    assert_eq!((conv.in_channels(), conv.out_channels()), (6, 16));
    assert_eq!(names(&named_params(&conv)), ["weight", "bias"]);
    assert!(named_buffers(&conv).is_empty());
    // PyTorch: kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the bias
    // with the same bound; fan_in = 6 * 5 * 5.
    let bound = 1.0 / 150f64.sqrt();
    let w = max_abs(&conv.weight);
    assert!(w <= bound && w > 0.95 * bound, "{w} vs {bound}");
    let b = max_abs(conv.bias.as_ref().unwrap());
    assert!(b <= bound && b > 0.3 * bound, "{b} vs {bound}");
    let y = conv
        .forward(&Tensor::ones(&[3, 6, 11, 9], DType::F64).unwrap())
        .unwrap();
    assert_eq!(y.shape(), &[3, 16, 6, 5]);

    let grouped = Conv2dConfig::new(3).groups(2).bias(false);
    let conv = Conv2d::new(4, 6, grouped, DType::F32, &mut rng).unwrap();
    assert_eq!(conv.weight.shape(), &[6, 2, 3, 3]);
    assert_eq!(names(&named_params(&conv)), ["weight"]);
    assert!(max_abs(&conv.weight) <= 1.0 / 18f64.sqrt());
}

#[test]
fn conv2d_forward_matches_the_core_op_with_bias() {
    let mut rng = Rng::new(2);
    let conv = Conv2d::new(2, 3, Conv2dConfig::new(3).padding(1), DType::F64, &mut rng).unwrap();
    let x = Tensor::randn(&[2, 2, 4, 4], 0.0, 1.0, DType::F64, &mut rng).unwrap();
    let want = x
        .conv2d(&conv.weight, None, Conv2dParams::default().padding(1))
        .unwrap()
        .add(&conv.bias.as_ref().unwrap().reshape(&[1, 3, 1, 1]).unwrap())
        .unwrap();
    let got = conv.forward(&x).unwrap();
    assert_eq!(got.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
}

#[test]
fn pooling_and_flatten_shapes() {
    let x = Tensor::ones(&[2, 3, 9, 8], DType::F32).unwrap();
    let max = MaxPool2d::new(Pool2dParams::new(2)).unwrap();
    assert_eq!(max.forward(&x).unwrap().shape(), &[2, 3, 4, 4]);
    let avg = AvgPool2d::new(Pool2dParams::new(3).stride(2).padding(1)).unwrap();
    assert_eq!(avg.forward(&x).unwrap().shape(), &[2, 3, 5, 4]);
    let gap = AdaptiveAvgPool2d::new([1, 1]).unwrap();
    let pooled = gap.forward(&x).unwrap();
    assert_eq!(pooled.shape(), &[2, 3, 1, 1]);
    assert_eq!(Flatten.forward(&pooled).unwrap().shape(), &[2, 3]);
    assert_eq!(
        AdaptiveAvgPool2d::new([2, 3])
            .unwrap()
            .forward(&x)
            .unwrap()
            .shape(),
        &[2, 3, 2, 3]
    );
    for layer in [&max as &dyn Module, &avg, &gap, &Flatten] {
        assert!(named_params(layer).is_empty() && named_buffers(layer).is_empty());
    }
}

#[test]
fn layers_pass_gradcheck() {
    type F = fn(&[Tensor]) -> Result<Tensor>;
    let cases: [(&str, Vec<&[usize]>, F); 7] = [
        ("conv2d", vec![&[2, 3, 5, 5], &[4, 3, 3, 3], &[4]], |x| {
            let p = Conv2dParams::default().padding(1).stride(2);
            Conv2d::from_tensors(x[1].clone(), Some(x[2].clone()), p)?.forward(&x[0])
        }),
        ("max_pool2d", vec![&[2, 2, 4, 5]], |x| {
            MaxPool2d::new(Pool2dParams::new(2))?.forward(&x[0])
        }),
        ("avg_pool2d", vec![&[2, 2, 5, 5]], |x| {
            AvgPool2d::new(Pool2dParams::new(3).stride(2).padding(1))?.forward(&x[0])
        }),
        ("adaptive_avg_pool2d", vec![&[2, 2, 5, 4]], |x| {
            AdaptiveAvgPool2d::new([2, 3])?.forward(&x[0])
        }),
        ("batch_norm2d", vec![&[3, 2, 3, 3]], |x| {
            BatchNorm2d::new(2, BatchNormConfig::default(), DType::F64)?.forward(&x[0])
        }),
        ("batch_norm1d", vec![&[5, 3]], |x| {
            BatchNorm1d::new(3, BatchNormConfig::default(), DType::F64)?.forward(&x[0])
        }),
        ("layer_norm", vec![&[3, 2, 4]], |x| {
            LayerNorm::new(&[2, 4], LayerNormConfig::default(), DType::F64)?.forward(&x[0])
        }),
    ];
    for (i, (name, shapes, f)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(100 + i as u64);
        let inputs: Vec<Tensor> = shapes
            .iter()
            .map(|s| Tensor::rand_uniform(s, -2.0, 2.0, DType::F64, &mut rng).unwrap())
            .collect();
        let report = gradcheck(f, &inputs, &GradcheckOptions::default()).unwrap();
        assert!(report.passed() && report.checked > 0, "{name}: {report}");
    }
}

#[test]
fn batch_norm_names_init_and_buffers_are_not_parameters() {
    let bn = BatchNorm2d::new(3, BatchNormConfig::default(), DType::F32).unwrap();
    assert_eq!(names(&named_params(&bn)), ["weight", "bias"]);
    assert_eq!(
        names(&named_buffers(&bn)),
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    let state = named_state(&bn);
    let values: Vec<Vec<f64>> = state.iter().map(|(_, t)| t.to_vec_f64()).collect();
    assert_eq!(
        values,
        [
            vec![1.0; 3],
            vec![0.0; 3],
            vec![0.0; 3],
            vec![1.0; 3],
            vec![0.0]
        ]
    );
    let nbt = bn.num_batches_tracked.as_ref().unwrap();
    assert_eq!((nbt.dtype(), nbt.shape()), (DType::I64, &[][..]));
    assert!(named_params(&bn).iter().all(|(_, p)| p.requires_grad()));
    assert!(named_buffers(&bn).iter().all(|(_, b)| !b.requires_grad()));

    let plain = BatchNormConfig {
        affine: false,
        track_running_stats: false,
        ..Default::default()
    };
    let bn = BatchNorm2d::new(3, plain, DType::F32).unwrap();
    assert!(named_state(&bn).is_empty());
    // Without running statistics, evaluation normalises with the batch's own.
    bn.set_training(false);
    let x = Tensor::randn(&[4, 3, 2, 2], 5.0, 2.0, DType::F32, &mut Rng::new(0)).unwrap();
    let y = bn.forward(&x).unwrap();
    assert!(y.mean(&[0, 2, 3], false).unwrap().to_vec_f64()[0].abs() < 1e-5);

    assert!(BatchNorm2d::new(0, BatchNormConfig::default(), DType::F32).is_err());
    let bad = BatchNormConfig {
        momentum: 1.5,
        ..Default::default()
    };
    assert!(BatchNorm1d::new(3, bad, DType::F32).is_err());
}

/// Batch norm in training mode normalises with the batch's statistics and moves the running
/// ones by `momentum` (unbiased variance); in evaluation mode it uses the running ones and
/// changes nothing.
#[test]
fn batch_norm_training_and_evaluation_modes() {
    let bn = BatchNorm2d::new(2, BatchNormConfig::default(), DType::F64).unwrap();
    let mut rng = Rng::new(3);
    let (mut mean, mut var) = (vec![0.0f64; 2], vec![1.0f64; 2]);
    let mut last = None;
    for step in 1..=5 {
        let x = Tensor::randn(&[4, 2, 3, 3], 2.0, 3.0, DType::F64, &mut rng).unwrap();
        let y = bn.forward(&x).unwrap();
        // Batch statistics: each channel of the output has mean 0 and biased variance 1.
        let ym = y.mean(&[0, 2, 3], false).unwrap().to_vec_f64();
        let yv = y
            .square()
            .unwrap()
            .mean(&[0, 2, 3], false)
            .unwrap()
            .to_vec_f64();
        for c in 0..2 {
            assert!(
                ym[c].abs() < 1e-12 && (yv[c] - 1.0).abs() < 1e-4,
                "{ym:?} {yv:?}"
            );
        }
        // The expected running statistics, from the values.
        let v = x.to_vec::<f64>().unwrap();
        for c in 0..2 {
            let xs: Vec<f64> = (0..4)
                .flat_map(|n| v[(n * 2 + c) * 9..(n * 2 + c + 1) * 9].to_vec())
                .collect();
            let m = xs.iter().sum::<f64>() / 36.0;
            let unbiased = xs.iter().map(|a| (a - m).powi(2)).sum::<f64>() / 35.0;
            mean[c] = 0.9 * mean[c] + 0.1 * m;
            var[c] = 0.9 * var[c] + 0.1 * unbiased;
        }
        let nbt = bn
            .num_batches_tracked
            .as_ref()
            .unwrap()
            .to_vec::<i64>()
            .unwrap();
        assert_eq!(nbt, vec![step]);
        last = Some(x);
    }
    let rm = bn.running_mean.as_ref().unwrap().to_vec::<f64>().unwrap();
    let rv = bn.running_var.as_ref().unwrap().to_vec::<f64>().unwrap();
    for c in 0..2 {
        assert!((rm[c] - mean[c]).abs() < 1e-12, "{rm:?} {mean:?}");
        assert!((rv[c] - var[c]).abs() < 1e-12, "{rv:?} {var:?}");
    }

    bn.set_training(false);
    assert!(!bn.is_training());
    let x = last.unwrap();
    let y = bn.forward(&x).unwrap().to_vec::<f64>().unwrap();
    let v = x.to_vec::<f64>().unwrap();
    for (i, (&yi, &xi)) in y.iter().zip(&v).enumerate() {
        let c = (i / 9) % 2;
        let want = (xi - rm[c]) / (rv[c] + 1e-5).sqrt();
        assert!((yi - want).abs() < 1e-12, "{yi} vs {want}");
    }
    assert_eq!(
        bn.running_mean.as_ref().unwrap().to_vec::<f64>().unwrap(),
        rm
    );
    let nbt = bn.num_batches_tracked.as_ref().unwrap().item().unwrap();
    assert_eq!(nbt, 5.0);
    // One value per channel is fine in evaluation, not in training.
    let one = Tensor::ones(&[1, 2, 1, 1], DType::F64).unwrap();
    assert!(bn.forward(&one).is_ok());
    bn.set_training(true);
    let err = bn.forward(&one).unwrap_err().to_string();
    assert!(
        err.contains("BatchNorm2d") && err.contains("more than one value"),
        "{err}"
    );
}

#[test]
fn batch_norm1d_accepts_rows_and_sequences() {
    let bn = BatchNorm1d::new(3, BatchNormConfig::default(), DType::F32).unwrap();
    let mut rng = Rng::new(4);
    for shape in [&[4, 3][..], &[2, 3, 5]] {
        let x = Tensor::randn(shape, 0.0, 1.0, DType::F32, &mut rng).unwrap();
        assert_eq!(bn.forward(&x).unwrap().shape(), shape);
    }
    let err = bn
        .forward(&Tensor::ones(&[4, 3, 2, 2], DType::F32).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BatchNorm1d") && err.contains("[batch, 3]"),
        "{err}"
    );
}

#[test]
fn layer_norm_is_the_same_in_both_modes() {
    let ln = LayerNorm::new(&[4], LayerNormConfig::default(), DType::F64).unwrap();
    assert_eq!(names(&named_params(&ln)), ["weight", "bias"]);
    let x = Tensor::randn(&[3, 4], 1.0, 2.0, DType::F64, &mut Rng::new(5)).unwrap();
    let a = ln.forward(&x).unwrap().to_vec::<f64>().unwrap();
    ln.set_training(false);
    assert_eq!(ln.forward(&x).unwrap().to_vec::<f64>().unwrap(), a);
    let row: f64 = a[..4].iter().sum();
    assert!(row.abs() < 1e-12);
}

#[test]
fn wrong_input_shapes_are_errors_naming_the_layer_and_expected_shape() {
    let mut rng = Rng::new(6);
    let conv = Conv2d::new(3, 4, Conv2dConfig::new(5), DType::F32, &mut rng).unwrap();
    let bn = BatchNorm2d::new(3, BatchNormConfig::default(), DType::F32).unwrap();
    let ln = LayerNorm::new(&[5], LayerNormConfig::default(), DType::F32).unwrap();
    let max = MaxPool2d::new(Pool2dParams::new(2)).unwrap();
    let gap = AdaptiveAvgPool2d::new([1, 1]).unwrap();
    let x = |s: &[usize]| Tensor::ones(s, DType::F32).unwrap();
    let cases: [(&dyn Module, Tensor, &str, &str); 8] = [
        (
            &conv,
            x(&[2, 1, 8, 8]),
            "Conv2d",
            "[batch, 3, height, width]",
        ),
        (&conv, x(&[3, 8, 8]), "Conv2d", "[batch, 3, height, width]"),
        (
            &conv,
            x(&[2, 3, 4, 8]),
            "Conv2d",
            "large enough for the kernel [5, 5]",
        ),
        (
            &bn,
            x(&[2, 4, 3, 3]),
            "BatchNorm2d",
            "[batch, 3, height, width]",
        ),
        (&ln, x(&[2, 4]), "LayerNorm", "[..., 5]"),
        (&max, x(&[2, 3, 1, 4]), "MaxPool2d", "window [2, 2]"),
        (
            &gap,
            x(&[2, 3]),
            "AdaptiveAvgPool2d",
            "[batch, channels, height, width]",
        ),
        (&Flatten, x(&[3]), "Flatten", "[batch, ...]"),
    ];
    for (layer, input, name, expected) in cases {
        let err = layer.forward(&input).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains(expected), "{err}");
    }
    assert!(Conv2d::new(3, 4, Conv2dConfig::new(0), DType::F32, &mut rng).is_err());
    let grouped = Conv2dConfig::new(3).groups(2);
    assert!(Conv2d::new(3, 4, grouped, DType::F32, &mut rng).is_err());
    assert!(MaxPool2d::new(Pool2dParams::new(2).padding(2)).is_err());
    assert!(AdaptiveAvgPool2d::new([0, 1]).is_err());
    assert!(LayerNorm::new(&[], LayerNormConfig::default(), DType::F32).is_err());
}

#[test]
fn lenet_fits_28_and_32_pixel_images_and_names_its_layers_like_pytorch() {
    let mut rng = Rng::new(7);
    for (c, size, padding) in [(1, 28, 2), (3, 32, 0)] {
        let cfg = LeNetConfig::for_image(c, size, size, 10);
        assert_eq!((cfg.padding, cfg.feature_size()), (padding, Some([5, 5])));
        let m = lenet(&cfg, DType::F32, &mut rng).unwrap();
        let x = Tensor::randn(&[2, c, size, size], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        assert_eq!(m.forward(&x).unwrap().shape(), &[2, 10]);
        let params = named_params(&m);
        let shapes: Vec<(String, Vec<usize>)> = params
            .iter()
            .map(|(n, p)| (n.clone(), p.shape().to_vec()))
            .collect();
        let want: Vec<(&str, Vec<usize>)> = vec![
            ("layers.0.weight", vec![6, c, 5, 5]),
            ("layers.0.bias", vec![6]),
            ("layers.3.weight", vec![16, 6, 5, 5]),
            ("layers.3.bias", vec![16]),
            ("layers.7.weight", vec![120, 400]),
            ("layers.7.bias", vec![120]),
            ("layers.9.weight", vec![84, 120]),
            ("layers.9.bias", vec![84]),
            ("layers.11.weight", vec![10, 84]),
            ("layers.11.bias", vec![10]),
        ];
        let want: Vec<(String, Vec<usize>)> =
            want.into_iter().map(|(n, s)| (n.to_string(), s)).collect();
        assert_eq!(shapes, want);
        assert!(named_buffers(&m).is_empty());
        let err = m
            .forward(&Tensor::ones(&[2, c, 20, 20], DType::F32).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Linear"), "{err}");
    }
    let err = lenet(&LeNetConfig::for_image(1, 8, 8, 10), DType::F32, &mut rng)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("too small"), "{err}");
}

#[test]
fn cnn_stages_names_and_buffers() {
    let mut rng = Rng::new(8);
    let cfg = CnnConfig {
        in_channels: 1,
        channels: vec![4, 8],
        convs_per_stage: 2,
        classes: 5,
    };
    let m = cnn(&cfg, DType::F32, &mut rng).unwrap();
    // Per stage: (conv, bn, relu) x 2, pool; then gap, flatten, linear.
    let params = names(&named_params(&m));
    assert_eq!(
        params,
        [
            "layers.0.weight",
            "layers.1.weight",
            "layers.1.bias",
            "layers.3.weight",
            "layers.4.weight",
            "layers.4.bias",
            "layers.7.weight",
            "layers.8.weight",
            "layers.8.bias",
            "layers.10.weight",
            "layers.11.weight",
            "layers.11.bias",
            "layers.16.weight",
            "layers.16.bias",
        ]
    );
    assert_eq!(named_buffers(&m).len(), 4 * 3);
    assert_eq!(named_buffers(&m)[2].0, "layers.1.num_batches_tracked");
    for size in [4, 9, 28] {
        let x = Tensor::randn(&[2, 1, size, size], 0.0, 1.0, DType::F32, &mut rng).unwrap();
        assert_eq!(m.forward(&x).unwrap().shape(), &[2, 5]);
    }
    let empty = CnnConfig {
        channels: vec![],
        ..cfg
    };
    assert!(cnn(&empty, DType::F32, &mut rng).is_err());
}

/// Saving a trained model's state (parameters and buffers) and loading it into a fresh one
/// gives the same outputs in evaluation mode; buffers are never optimizer parameters.
#[test]
fn checkpoints_round_trip_parameters_and_buffers() {
    let mut rng = Rng::new(9);
    let model = tiny_cnn(&mut rng, DType::F32);
    let opt = RefCell::new(
        Sgd::new(
            named_params(&model),
            SgdConfig {
                lr: 0.05,
                momentum: 0.9,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    use ferrograd_nn::Optimizer;
    assert!(
        opt.borrow()
            .params()
            .iter()
            .all(|(n, _)| !n.contains("running") && !n.contains("num_batches"))
    );
    let x = Tensor::randn(&[6, 2, 8, 8], 0.5, 1.0, DType::F32, &mut rng).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 2, 0, 1, 2], &[6]).unwrap();
    let mut step = TrainStep::new(&model, &opt, 0.0, None, false);
    for _ in 0..3 {
        step.run(&x, &y).unwrap();
    }
    model.set_training(false);
    let want = model.forward(&x).unwrap().to_vec::<f32>().unwrap();

    let bytes = to_safetensors(&named_state(&model), None).unwrap();
    let loaded = from_safetensors(&bytes).unwrap();
    let fresh = tiny_cnn(&mut Rng::new(99), DType::F32);
    assert!(
        load_into(&named_params(&fresh), &loaded).is_err(),
        "buffers are extra"
    );
    load_into(&named_state(&fresh), &loaded).unwrap();
    fresh.set_training(false);
    assert_eq!(fresh.forward(&x).unwrap().to_vec::<f32>().unwrap(), want);
    let nbt = named_buffers(&fresh)
        .into_iter()
        .find(|(n, _)| n == "layers.1.num_batches_tracked")
        .unwrap()
        .1;
    assert_eq!(nbt.to_vec::<i64>().unwrap(), vec![3]);
}

fn train_cnn(compile: bool) -> (Vec<f64>, Vec<(String, Vec<f64>)>) {
    let mut rng = Rng::new(10);
    let model = tiny_cnn(&mut rng, DType::F64);
    let opt = RefCell::new(
        Sgd::new(
            named_params(&model),
            SgdConfig {
                lr: 0.1,
                momentum: 0.9,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let batches: Vec<(Tensor, Tensor)> = (0..3)
        .map(|_| {
            let x = Tensor::randn(&[4, 2, 6, 6], 0.0, 1.0, DType::F64, &mut rng).unwrap();
            let y = Tensor::from_vec(vec![0i64, 1, 2, 1], &[4]).unwrap();
            (x, y)
        })
        .collect();
    let mut step = TrainStep::new(&model, &opt, 0.0, None, compile);
    let losses = (0..6)
        .map(|s| {
            let (x, y) = &batches[s % 3];
            step.run(x, y).unwrap()[0].item().unwrap()
        })
        .collect();
    if compile {
        assert_eq!(step.traces(), 1);
    }
    let state = named_state(&model)
        .into_iter()
        .map(|(n, t)| (n, t.to_vec_f64()))
        .collect();
    (losses, state)
}

/// A compiled training step replays batch norm's running-statistic stores and the step
/// count: the same losses, weights and buffers as eager mode.
#[test]
fn compiled_steps_update_running_statistics_like_eager_ones() {
    let (eager_losses, eager_state) = train_cnn(false);
    let (static_losses, static_state) = train_cnn(true);
    for (a, b) in eager_losses.iter().zip(&static_losses) {
        assert!(
            (a - b).abs() < 1e-9,
            "{eager_losses:?} vs {static_losses:?}"
        );
    }
    for ((name, a), (_, b)) in eager_state.iter().zip(&static_state) {
        let diff = a
            .iter()
            .zip(b)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff < 1e-9, "{name}: {diff}");
    }
    let nbt = eager_state
        .iter()
        .find(|(n, _)| n == "layers.5.num_batches_tracked")
        .unwrap();
    assert_eq!(nbt.1, vec![6.0]);
}
