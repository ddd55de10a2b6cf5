//! The embedded UCI digits and the digits CSV parser.

use std::fs;
use std::path::Path;

use ferrograd_data::{
    DIGITS_CSV_GZ, DIGITS_CSV_GZ_SHA256, DIGITS_SAMPLES, DataError, DataSource, DatasetKind, load,
    parse_digits_csv, sha256_hex,
};

fn row(label: u8, value: u8) -> String {
    let mut fields: Vec<String> = vec![value.to_string(); 64];
    fields.push(label.to_string());
    fields.join(",")
}

fn offline() -> DataSource {
    DataSource {
        data_dir: None,
        cache_dir: "unused-cache".into(),
        download: false,
    }
}

#[test]
fn embedded_file_is_the_verified_one() {
    assert_eq!(sha256_hex(DIGITS_CSV_GZ), DIGITS_CSV_GZ_SHA256);
}

#[test]
fn embedded_digits_load_with_a_fixed_split() {
    let (train, test) = load(DatasetKind::Digits, &offline()).unwrap();
    assert_eq!(train.len() + test.len(), DIGITS_SAMPLES);
    for ds in [&train, &test] {
        assert_eq!((ds.channels, ds.height, ds.width), (1, 8, 8));
        assert_eq!(ds.max_value, 16.0);
        assert!(ds.labels.iter().all(|&l| l < 10));
        assert!(ds.pixels.iter().all(|&p| p <= 16));
        assert_eq!(ds.label_histogram().len(), 10);
        ds.validate().unwrap();
    }
    // Every class is in the test set, about a fifth of it.
    assert!(
        test.label_histogram()
            .iter()
            .all(|&c| (34..=38).contains(&c))
    );
    let (_, again) = load(DatasetKind::Digits, &offline()).unwrap();
    assert_eq!(again, test);
}

#[test]
fn malformed_rows_name_the_line() {
    let p = Path::new("my-digits.csv");
    let short: String = row(1, 0).rsplit_once(',').unwrap().0.to_string();
    let text = format!("{}\n{}\n{short}\n", row(0, 1), row(1, 2));
    let err = parse_digits_csv(text.as_bytes(), p, "d").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Format { .. }), "{msg}");
    assert!(
        msg.contains("my-digits.csv") && msg.contains("line 3") && msg.contains("found 64"),
        "{msg}"
    );

    let text = format!("{}\n\n{}\n", row(0, 1), row(1, 17));
    let msg = parse_digits_csv(text.as_bytes(), p, "d")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 3, column 1") && msg.contains("\"17\""),
        "{msg}"
    );

    let text = format!("{}\n", row(10, 1));
    let msg = parse_digits_csv(text.as_bytes(), p, "d")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 1, column 65") && msg.contains("label"),
        "{msg}"
    );

    let text = row(3, 4).replace(",4,", ",x,");
    let msg = parse_digits_csv(text.as_bytes(), p, "d")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("line 1") && msg.contains("\"x\""), "{msg}");

    let msg = parse_digits_csv(b"\n\n", p, "d").unwrap_err().to_string();
    assert!(msg.contains("no data rows"), "{msg}");
}

#[test]
fn a_digits_file_in_the_data_dir_replaces_the_embedded_one() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("digits");
    fs::create_dir_all(&sub).unwrap();
    let text: Vec<String> = (0..50)
        .map(|i| row((i % 10) as u8, (i % 17) as u8))
        .collect();
    fs::write(sub.join("digits.csv"), text.join("\r\n")).unwrap();
    let src = DataSource {
        data_dir: Some(dir.path().to_path_buf()),
        ..offline()
    };
    let (train, test) = load(DatasetKind::Digits, &src).unwrap();
    assert_eq!((train.len(), test.len()), (40, 10));
    assert_eq!(test.label_histogram(), vec![1; 10]);
}
