//! End-to-end tests of training on one's own data: generated folders of PNG and JPEG images
//! (grey with an MLP, colour with the CNN streamed from disk) and a generated CSV table train
//! to high accuracy through the `ferrograd` binary; `predict` prints their class names; a
//! corrupt image or row is an error naming it, or is skipped and counted with
//! `--skip-bad-files`.

mod support;

use std::path::Path;

use ferrograd_testkit::images::jpeg_header_only;
use image::{GrayImage, Luma, Rgb, RgbImage};
use support::{checkpoint, ferrograd, ok, read_json, text};

/// A small deterministic generator (xorshift) for noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 56) as u8
    }
}

const SHAPES: [&str; 3] = ["bars", "columns", "diagonal"];

/// A 20x20 grey image of class `c`: horizontal bars, vertical bars or a diagonal band, bright
/// on a noisy dark background.
fn grey_image(c: usize, noise: &mut Noise) -> GrayImage {
    GrayImage::from_fn(20, 20, |x, y| {
        let on = match c {
            0 => (y / 4) % 2 == 0,
            1 => (x / 4) % 2 == 0,
            _ => x.abs_diff(y) < 4,
        };
        let base: u8 = if on { 200 } else { 20 };
        Luma([base.saturating_add(noise.next() / 6)])
    })
}

/// Writes `n` images per class, alternately PNG and JPEG, into `dir/CLASS/`.
fn write_grey_folder(dir: &Path, n: usize) {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for (c, name) in SHAPES.iter().enumerate() {
        let class_dir = dir.join(name);
        std::fs::create_dir_all(&class_dir).unwrap();
        for i in 0..n {
            let img = grey_image(c, &mut noise);
            let ext = if i % 2 == 0 { "png" } else { "jpg" };
            img.save(class_dir.join(format!("{i}.{ext}"))).unwrap();
        }
    }
}

#[test]
fn an_image_folder_of_png_and_jpeg_trains_an_mlp_and_predict_names_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_grey_folder(&data, 30);
    // Files that are not images are ignored.
    std::fs::write(data.join("bars").join("notes.txt"), "not an image").unwrap();
    let out = dir.path().join("run");
    let o = ferrograd(&[
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        data.to_str().unwrap(),
        "--image-size",
        "10x10",
        "--channels",
        "1",
        "--hidden",
        "32",
        "--epochs",
        "12",
        "--lr",
        "0.01",
        // A constant rate, so the resumed run below can extend it by an epoch.
        "--schedule",
        "constant",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    // 30 per class: 6 test, 3 validation, 21 training images each.
    assert!(stdout.contains("63 train / 9 val / 18 test"), "{stdout}");
    let summary = read_json(&checkpoint(&out).join("summary.json"));
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "test accuracy {acc}\n{stdout}");
    assert_eq!(summary["skipped_files"], 0);
    let config = read_json(&checkpoint(&out).join("config.json"));
    assert_eq!(config["class_names"], serde_json::json!(SHAPES));
    assert_eq!(config["image"], serde_json::json!([1, 10, 10]));
    assert_eq!(config["dataset"], "folder");
    // The mean pixel of the training split, scaled to [0, 1]: between the background and
    // the strokes.
    let mean = config["normalize_mean"][0].as_f64().unwrap();
    assert!((0.1..0.8).contains(&mean), "{mean}");

    // A resumed run refuses another image format or split, naming the flags ...
    let o = ferrograd(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--image-size",
        "12x12",
        "--test-fraction",
        "0.3",
    ]);
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "{stdout}");
    assert!(
        stderr.contains("--image-size 12x12 (the run has 10x10)")
            && stderr.contains("--test-fraction 0.3 (the run has 0.2)"),
        "{stderr}"
    );
    // ... and converts the images as the checkpoint's config says; how they are decoded
    // (--workers, --max-memory) may change.
    let o = ferrograd(&[
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        data.to_str().unwrap(),
        "--image-size",
        "10x10",
        "--epochs",
        "13",
        "--threads",
        "1",
        "--workers",
        "2",
        "--max-memory",
        "0",
        "--resume",
        out.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    assert!(stdout.contains("epoch  13/13"), "{stdout}");
    assert!(!stdout.contains("epoch  12/13"), "{stdout}");

    // predict reads PNG and JPEG and prints the folder's class names.
    let mut noise = Noise(7);
    let probe_png = dir.path().join("probe.png");
    let probe_jpg = dir.path().join("probe.jpeg");
    grey_image(1, &mut noise).save(&probe_png).unwrap();
    grey_image(2, &mut noise).save(&probe_jpg).unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        "--top",
        "1",
        probe_png.to_str().unwrap(),
        probe_jpg.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("probe.png: columns"), "{stdout}");
    assert!(lines[1].contains("probe.jpeg: diagonal"), "{stdout}");
}

#[test]
fn predict_checks_jpeg_sizes_from_the_header_for_every_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_grey_folder(&data, 10);
    let folder_model = dir.path().join("folder-run");
    let digits_model = dir.path().join("digits-run");
    for (model, extra) in [
        (
            &folder_model,
            vec!["--dataset", "folder", "--data-dir", data.to_str().unwrap()],
        ),
        (&digits_model, vec![]),
    ] {
        let mut args = vec![
            "train",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--out",
            model.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = ferrograd(&args);
        ok(&o);
    }
    let huge = dir.path().join("huge.jpg");
    std::fs::write(&huge, jpeg_header_only(30000, 30000)).unwrap();
    let good = dir.path().join("good.jpg");
    let mut noise = Noise(3);
    grey_image(0, &mut noise).save(&good).unwrap();
    for model in [&folder_model, &digits_model] {
        let o = ferrograd(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            huge.to_str().unwrap(),
            good.to_str().unwrap(),
        ]);
        let (stdout, stderr) = text(&o);
        assert!(!o.status.success(), "{stdout}");
        assert!(
            stderr.contains("huge.jpg")
                && stderr.contains("30000x30000")
                && stderr.contains("--max-megapixels")
                && stderr.contains("1 of 2 images"),
            "{stderr}"
        );
        assert!(stdout.contains("good.jpg: "), "{stdout}");
        // Within a raised limit the decoder is reached, and finds no image data.
        let o = ferrograd(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--max-megapixels",
            "1000",
            huge.to_str().unwrap(),
        ]);
        let (_, stderr) = text(&o);
        assert!(
            !o.status.success()
                && stderr.contains("huge.jpg")
                && !stderr.contains("--max-megapixels"),
            "{stderr}"
        );
    }
}

#[test]
fn corrupt_images_are_named_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    write_grey_folder(&data, 10);
    let bad = data.join("columns").join("broken.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n this is not a PNG body").unwrap();
    let truncated = data.join("bars").join("cut.jpg");
    let whole = std::fs::read(data.join("bars").join("1.jpg")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 3]).unwrap();
    let out = dir.path().join("run");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            data.to_str().unwrap(),
            "--image-size",
            "8x8",
            "--channels",
            "1",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| ferrograd(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&[]));
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("cut.jpg") && stderr.contains("1 more bad files"),
        "{stderr}"
    );
    assert!(stderr.contains("--skip-bad-files"), "{stderr}");

    let o = run(args(&["--skip-bad-files"]));
    ok(&o);
    let (_, stderr) = text(&o);
    assert!(
        stderr.contains("skipped 2") && stderr.contains("broken.png"),
        "{stderr}"
    );
    assert_eq!(
        read_json(&checkpoint(&out).join("summary.json"))["skipped_files"],
        2
    );

    // Not a folder of class folders.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = ferrograd(&[
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    let (_, stderr) = text(&o);
    assert!(
        !o.status.success() && stderr.contains("no class folders"),
        "{stderr}"
    );
    let o = ferrograd(&[
        "train",
        "--dataset",
        "folder",
        "--out",
        out.to_str().unwrap(),
        "--overwrite",
    ]);
    assert!(text(&o).1.contains("--data-dir"), "{}", text(&o).1);
    let o = ferrograd(&["train", "--dataset", "folder", "--channels", "2"]);
    assert!(text(&o).1.contains("--channels"), "{}", text(&o).1);
}

/// Red, green and blue dominated 12x12 images, in train/ and test/ sub-folders (no val/:
/// it is carved out of train/).
fn write_colour_splits(dir: &Path) {
    let mut noise = Noise(42);
    for (split, n) in [("train", 16), ("test", 4)] {
        for (c, name) in ["red", "green", "blue"].iter().enumerate() {
            let class_dir = dir.join(split).join(name);
            std::fs::create_dir_all(&class_dir).unwrap();
            for i in 0..n {
                let img = RgbImage::from_fn(12, 12, |_, _| {
                    let mut px = [0u8; 3];
                    for (k, v) in px.iter_mut().enumerate() {
                        let base: u8 = if k == c { 150 } else { 40 };
                        *v = base.saturating_add(noise.next() / 3);
                    }
                    Rgb(px)
                });
                let ext = if i % 2 == 0 { "png" } else { "jpg" };
                img.save(class_dir.join(format!("{i}.{ext}"))).unwrap();
            }
        }
    }
}

#[test]
fn a_colour_folder_with_splits_streams_from_disk_into_the_cnn() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("colours");
    write_colour_splits(&data);
    let out = dir.path().join("run");
    let o = ferrograd(&[
        "train",
        "--dataset",
        "folder",
        "--data-dir",
        data.to_str().unwrap(),
        "--image-size",
        "8x8",
        "--channels",
        "3",
        "--model",
        "cnn",
        "--filters",
        "4,4",
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--batch-size",
        "8",
        "--epochs",
        "6",
        "--max-memory",
        "0",
        "--workers",
        "2",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    assert!(
        stdout.contains("streaming them from disk with 2 worker threads"),
        "{stdout}"
    );
    // train/ gives 16 per class, 10% (2 each) of it held out for validation; test/ 4 each.
    assert!(stdout.contains("42 train / 6 val / 12 test"), "{stdout}");
    let summary = read_json(&checkpoint(&out).join("summary.json"));
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "test accuracy {acc}\n{stdout}");
    assert!(summary["data_wait_seconds"].as_f64().unwrap() >= 0.0);
    let config = read_json(&checkpoint(&out).join("config.json"));
    assert_eq!(
        config["class_names"],
        serde_json::json!(["blue", "green", "red"])
    );
    // One normalisation per channel, from the training images: the red channel's mean lies
    // between the dim (40) and bright (150) levels.
    let means = config["normalize_mean"].as_array().unwrap();
    assert_eq!(means.len(), 3);
    let red = means[0].as_f64().unwrap();
    assert!((0.2..0.6).contains(&red), "{red}");
}

/// `n` rows per species around well separated centres, with a text label column in the
/// middle.
fn write_table(path: &Path, n: usize) {
    let mut noise = Noise(3);
    let mut text = String::from("length,species,width,depth\n");
    for (k, name) in ["setosa", "versicolor", "virginica"].iter().enumerate() {
        for _ in 0..n {
            let mut v = || 3.0 * k as f64 + (f64::from(noise.next()) / 255.0 - 0.5) * 2.0;
            let (a, b, c) = (v(), v(), v());
            text.push_str(&format!("{a:.3},{name},{b:.3},{c:.3}\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_csv_table_trains_and_predict_reads_rows() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("flowers.csv");
    write_table(&table, 50);
    let out = dir.path().join("run");
    let o = ferrograd(&[
        "train",
        "--dataset",
        "csv",
        "--data-dir",
        table.to_str().unwrap(),
        "--target",
        "species",
        "--hidden",
        "16",
        "--lr",
        "0.02",
        "--epochs",
        "20",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    assert!(stdout.contains("3 features, 3 classes"), "{stdout}");
    let summary = read_json(&checkpoint(&out).join("summary.json"));
    let acc = summary["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "test accuracy {acc}\n{stdout}");
    let config = read_json(&checkpoint(&out).join("config.json"));
    assert_eq!(
        config["table"]["features"],
        serde_json::json!(["length", "width", "depth"])
    );
    assert_eq!(config["table"]["target"], "species");
    // Each feature is standardised with the training split's statistics: means near 3.
    for m in config["normalize_mean"].as_array().unwrap() {
        assert!((m.as_f64().unwrap() - 3.0).abs() < 0.5, "{m}");
    }

    // predict: rows in another column order, without the label column.
    let rows = dir.path().join("new.csv");
    std::fs::write(&rows, "depth,width,length\n0.1,-0.2,0.0\n6.1,5.8,6.2\n").unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        "--top",
        "1",
        rows.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].contains("new.csv:2: setosa"), "{stdout}");
    assert!(lines[1].contains("new.csv:3: virginica"), "{stdout}");
    // eval scores the known data sets and says where this model's score is.
    let o = ferrograd(&["eval", "--model", out.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert!(
        !o.status.success() && stderr.contains("summary.json"),
        "{stderr}"
    );
    // A column the model needs is missing.
    std::fs::write(&rows, "depth,width\n0.1,-0.2\n").unwrap();
    let o = ferrograd(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        rows.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&o);
    assert!(
        !o.status.success() && stderr.contains("\"length\""),
        "{stderr}"
    );
}

#[test]
fn bad_csv_rows_are_named_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    write_table(&table, 10);
    let mut text_rows = std::fs::read_to_string(&table).unwrap();
    text_rows.push_str("1.0,setosa,n/a,2.0\n");
    std::fs::write(&table, text_rows).unwrap();
    let out = dir.path().join("run");
    let base = [
        "train",
        "--dataset",
        "csv",
        "--data-dir",
        table.to_str().unwrap(),
        "--target",
        "species",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
        // Every run below may replace the previous one.
        "--overwrite",
    ];
    let o = ferrograd(&base);
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("t.csv") && stderr.contains("line 32") && stderr.contains("\"n/a\""),
        "{stderr}"
    );
    let mut skip = base.to_vec();
    skip.push("--skip-bad-files");
    let o = ferrograd(&skip);
    ok(&o);
    assert_eq!(
        read_json(&checkpoint(&out).join("summary.json"))["skipped_files"],
        1
    );

    let mut no_target = base.to_vec();
    no_target.drain(5..7);
    let o = ferrograd(&no_target);
    assert!(text(&o).1.contains("--target"), "{}", text(&o).1);
    let mut wrong = base.to_vec();
    wrong[6] = "colour";
    let o = ferrograd(&wrong);
    let (_, stderr) = text(&o);
    assert!(
        stderr.contains("\"colour\"") && stderr.contains("length, species"),
        "{stderr}"
    );
    let mut conv = base.to_vec();
    conv.extend_from_slice(&["--model", "lenet"]);
    let o = ferrograd(&conv);
    assert!(text(&o).1.contains("--model"), "{}", text(&o).1);
}
