//! Tables of numbers from CSV files (the `csv` crate): a header row names the columns, one
//! column is the class label (text or numbers), every other column is a numeric feature.
//! [`read_csv_table`] reads and splits a table for training; [`read_csv_rows`] reads the
//! feature columns of new rows for prediction.

use std::collections::BTreeSet;
use std::path::Path;

use crate::dataset::stratified_parts;
use crate::error::{DataError, Result};
use crate::folder::MAX_CLASSES;

/// Rows of f32 features with class labels, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// A short name for messages, e.g. `csv-train`.
    pub name: String,
    /// The feature columns' names, in order.
    pub feature_names: Vec<String>,
    /// All rows' features, one row after another (`len() * features()` values).
    pub values: Vec<f32>,
    /// One label per row.
    pub labels: Vec<u8>,
    /// The class names, indexed by label.
    pub class_names: Vec<String>,
}

impl Table {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per row.
    pub fn features(&self) -> usize {
        self.feature_names.len()
    }

    /// The features of row `i`, or `None` when `i >= len()`.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let f = self.features();
        self.values
            .get(i.checked_mul(f)?..i.checked_add(1)?.checked_mul(f)?)
    }

    /// A new table of the rows at `indices`, in that order.
    ///
    /// # Errors
    /// [`DataError::Argument`] for an index `>= len()`.
    pub fn subset(&self, indices: &[usize], name: String) -> Result<Table> {
        let mut values = Vec::with_capacity(indices.len() * self.features());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (Some(row), Some(&label)) = (self.row(i), self.labels.get(i)) else {
                return Err(DataError::argument(
                    "subset",
                    format!("row {i} is out of range for {}", self.name),
                ));
            };
            values.extend_from_slice(row);
            labels.push(label);
        }
        Ok(Table {
            name,
            feature_names: self.feature_names.clone(),
            values,
            labels,
            class_names: self.class_names.clone(),
        })
    }

    /// Mean and (population) standard deviation of each feature column; `(0, 0)` for all
    /// columns of an empty table.
    ///
    /// ```
    /// # use ferrograd_data::Table;
    /// let t = Table {
    ///     name: "t".into(), feature_names: vec!["a".into(), "b".into()],
    ///     values: vec![1.0, 5.0, 3.0, 5.0], labels: vec![0, 1],
    ///     class_names: vec!["x".into(), "y".into()],
    /// };
    /// assert_eq!(t.feature_mean_std(), vec![(2.0, 1.0), (5.0, 0.0)]);
    /// ```
    pub fn feature_mean_std(&self) -> Vec<(f32, f32)> {
        let (n, f) = (self.len(), self.features());
        (0..f)
            .map(|j| {
                if n == 0 {
                    return (0.0, 0.0);
                }
                let col = || self.values.iter().skip(j).step_by(f).map(|&v| f64::from(v));
                let mean = col().sum::<f64>() / n as f64;
                let var = col().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                (mean as f32, var.sqrt() as f32)
            })
            .collect()
    }

    /// Checks that the values fill whole rows, every value is finite and every label is
    /// below the number of classes.
    ///
    /// # Errors
    /// [`DataError::Argument`] naming the table and the disagreement.
    pub fn validate(&self) -> Result<()> {
        if self.features() == 0 || self.values.len() != self.len() * self.features() {
            return Err(DataError::argument(
                "table",
                format!(
                    "{}: {} values for {} rows of {} features",
                    self.name,
                    self.values.len(),
                    self.len(),
                    self.features()
                ),
            ));
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err(DataError::argument(
                "table",
                format!("{}: a value is not finite", self.name),
            ));
        }
        if self
            .labels
            .iter()
            .any(|&l| usize::from(l) >= self.class_names.len())
        {
            return Err(DataError::argument(
                "table",
                format!("{}: a label is beyond the class names", self.name),
            ));
        }
        Ok(())
    }
}

/// How a CSV table is read for training.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The column holding the class labels.
    pub target: String,
    /// Fraction of each class held out for validation.
    pub val_fraction: f64,
    /// Fraction of each class held out for testing.
    pub test_fraction: f64,
    /// Seed of the stratified split.
    pub seed: u64,
    /// Leave out malformed rows (and count them) instead of failing.
    pub skip_bad_rows: bool,
}

/// A row that was left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRow {
    /// The row's line in the file (1 is the header).
    pub line: u64,
    /// Why it could not be used.
    pub reason: String,
}

/// A CSV table, read and split.
#[derive(Debug, Clone)]
pub struct TableData {
    /// Training rows.
    pub train: Table,
    /// Validation rows.
    pub val: Table,
    /// Test rows.
    pub test: Table,
    /// Rows left out with `skip_bad_rows`.
    pub skipped: Vec<BadRow>,
}

fn reader(path: &Path) -> Result<csv::Reader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok(csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file))
}

fn headers(path: &Path, reader: &mut csv::Reader<std::fs::File>) -> Result<Vec<String>> {
    let h = reader
        .headers()
        .map_err(|e| DataError::format(path, format!("cannot read the header row: {e}")))?;
    let names: Vec<String> = h.iter().map(str::to_string).collect();
    if names.iter().all(String::is_empty) {
        return Err(DataError::format(
            path,
            "empty file: expected a header row naming the columns",
        ));
    }
    Ok(names)
}

/// Parses one field as a finite number.
fn number(field: &str, column: &str) -> std::result::Result<f32, String> {
    match field.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "column {column:?}: {field:?} is not a finite number"
        )),
    }
}

/// Reads a CSV file with a header row for training: the `target` column's values (text or
/// numbers) are the classes, sorted (numerically when they are all numbers), and every other
/// column must hold numbers. The rows are split per class into train, validation and test
/// parts by the seeded fractions.
///
/// # Errors
/// [`DataError::Io`] for an unreadable file; [`DataError::Format`] naming the file and the
/// line of a malformed row (wrong number of fields, a feature that is not a number, an empty
/// label) unless `skip_bad_rows`, a missing target column (listing the columns), no feature
/// columns, fewer than 2 or more than 256 classes, or no rows.
pub fn read_csv_table(path: &Path, options: &CsvOptions) -> Result<TableData> {
    let mut rdr = reader(path)?;
    let names = headers(path, &mut rdr)?;
    let target = names
        .iter()
        .position(|n| *n == options.target)
        .ok_or_else(|| {
            DataError::format(
                path,
                format!(
                    "no column named {:?}; the columns are {}",
                    options.target,
                    names.join(", ")
                ),
            )
        })?;
    let feature_names: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != target)
        .map(|(_, n)| n.clone())
        .collect();
    if feature_names.is_empty() {
        return Err(DataError::format(
            path,
            "no feature columns beside the target column",
        ));
    }
    let mut values = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    for (k, record) in rdr.records().enumerate() {
        // Line numbers count the header as line 1.
        let fallback_line = k as u64 + 2;
        let parsed = match record {
            Err(e) => Err((
                e.position().map_or(fallback_line, |p| p.line()),
                e.to_string(),
            )),
            Ok(rec) => {
                let line = rec.position().map_or(fallback_line, |p| p.line());
                let mut row = Vec::with_capacity(feature_names.len());
                let mut label = None;
                let mut problem = None;
                for (i, field) in rec.iter().enumerate() {
                    if i == target {
                        label = Some(field.to_string());
                    } else {
                        match number(field, &names[i]) {
                            Ok(v) => row.push(v),
                            Err(msg) => {
                                problem = Some(msg);
                                break;
                            }
                        }
                    }
                }
                match (problem, label) {
                    (Some(msg), _) => Err((line, msg)),
                    (None, Some(l)) if l.is_empty() => {
                        Err((line, format!("column {:?} is empty", options.target)))
                    }
                    (None, Some(l)) => Ok((row, l)),
                    (None, None) => Err((line, "too few fields".to_string())),
                }
            }
        };
        match parsed {
            Ok((row, label)) => {
                values.extend(row);
                targets.push(label);
            }
            Err((line, reason)) if options.skip_bad_rows => skipped.push(BadRow { line, reason }),
            Err((line, reason)) => {
                return Err(DataError::format(
                    path,
                    format!("line {line}: {reason}; pass --skip-bad-files to leave such rows out"),
                ));
            }
        }
    }
    if targets.is_empty() {
        return Err(DataError::format(path, "no data rows"));
    }
    let class_names = sorted_classes(&targets);
    if class_names.len() < 2 || class_names.len() > MAX_CLASSES {
        return Err(DataError::format(
            path,
            format!(
                "column {:?} has {} distinct values: expected between 2 and {MAX_CLASSES} classes",
                options.target,
                class_names.len()
            ),
        ));
    }
    let labels: Vec<u8> = targets
        .iter()
        .map(|t| class_names.iter().position(|c| c == t).unwrap_or(0) as u8)
        .collect();
    let name = path
        .file_stem()
        .map_or_else(|| "csv".to_string(), |s| s.to_string_lossy().into_owned());
    let all = Table {
        name: name.clone(),
        feature_names,
        values,
        labels,
        class_names,
    };
    let parts = stratified_parts(
        &all.labels,
        &[options.val_fraction, options.test_fraction],
        options.seed,
    )?;
    let part = |k: usize, split: &str| all.subset(&parts[k], format!("{name}-{split}"));
    let (train, val, test) = (part(0, "train")?, part(1, "val")?, part(2, "test")?);
    if train.is_empty() || test.is_empty() {
        return Err(DataError::format(
            path,
            format!(
                "{} rows make {} training and {} test rows: need some of each (check the test fraction)",
                all.len(),
                train.len(),
                test.len()
            ),
        ));
    }
    Ok(TableData {
        train,
        val,
        test,
        skipped,
    })
}

/// The distinct values, sorted numerically when all are numbers, else as text.
fn sorted_classes(targets: &[String]) -> Vec<String> {
    let distinct: BTreeSet<&String> = targets.iter().collect();
    let mut names: Vec<String> = distinct.into_iter().cloned().collect();
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>(), b.parse::<f64>());
            match (x, y) {
                (Ok(x), Ok(y)) => x.total_cmp(&y),
                _ => a.cmp(b),
            }
        });
    }
    names
}

/// Rows of a CSV file read for prediction: the columns named in `features`, found by their
/// header, in that order (other columns, such as the label, are ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRows {
    /// Each row's line in the file.
    pub lines: Vec<u64>,
    /// The features, one row after another.
    pub values: Vec<f32>,
}

/// Reads the `features` columns of every row of a CSV file with a header row.
///
/// # Errors
/// [`DataError::Io`] for an unreadable file; [`DataError::Format`] naming the file for a
/// missing column or naming the line of a malformed row.
pub fn read_csv_rows(path: &Path, features: &[String]) -> Result<CsvRows> {
    let mut rdr = reader(path)?;
    let names = headers(path, &mut rdr)?;
    let columns: Vec<usize> = features
        .iter()
        .map(|f| {
            names.iter().position(|n| n == f).ok_or_else(|| {
                DataError::format(
                    path,
                    format!(
                        "no column named {f:?}; the model needs the columns {}",
                        features.join(", ")
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    let mut rows = CsvRows {
        lines: Vec::new(),
        values: Vec::new(),
    };
    for (k, record) in rdr.records().enumerate() {
        let fallback = k as u64 + 2;
        let rec = record.map_err(|e| {
            let line = e.position().map_or(fallback, |p| p.line());
            DataError::format(path, format!("line {line}: {e}"))
        })?;
        let line = rec.position().map_or(fallback, |p| p.line());
        for (&c, name) in columns.iter().zip(features) {
            let field = rec.get(c).unwrap_or("");
            let v = number(field, name)
                .map_err(|msg| DataError::format(path, format!("line {line}: {msg}")))?;
            rows.values.push(v);
        }
        rows.lines.push(line);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("t.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn options(skip: bool) -> CsvOptions {
        CsvOptions {
            target: "kind".into(),
            val_fraction: 0.0,
            test_fraction: 0.5,
            seed: 0,
            skip_bad_rows: skip,
        }
    }

    #[test]
    fn text_labels_become_sorted_classes_and_rows_split_per_class() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "a, kind ,b\n1,dog,2\n3,cat,4\n5,dog,6\n7,cat,8\n",
        );
        let t = read_csv_table(&path, &options(false)).unwrap();
        assert_eq!(t.train.class_names, vec!["cat", "dog"]);
        assert_eq!(t.train.feature_names, vec!["a", "b"]);
        assert_eq!((t.train.len(), t.test.len()), (2, 2));
        assert_eq!(t.train.labels.iter().filter(|&&l| l == 0).count(), 1);
        let mut all: Vec<f32> = t
            .train
            .values
            .iter()
            .chain(&t.test.values)
            .copied()
            .collect();
        all.sort_by(f32::total_cmp);
        assert_eq!(all, (1..=8).map(|v| v as f32).collect::<Vec<_>>());
        t.train.validate().unwrap();
    }

    #[test]
    fn numeric_labels_sort_as_numbers() {
        let targets: Vec<String> = ["10", "2", "1", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(sorted_classes(&targets), vec!["1", "2", "10"]);
    }

    #[test]
    fn bad_rows_name_the_line_or_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let text = "a,kind\n1,x\noops,y\n2,y\n3\n4,x\n5,y\n";
        let path = write(dir.path(), text);
        let err = read_csv_table(&path, &options(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.csv") && err.contains("line 3"), "{err}");
        assert!(err.contains("\"oops\""), "{err}");
        let t = read_csv_table(&path, &options(true)).unwrap();
        let lines: Vec<u64> = t.skipped.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 5]);
        assert_eq!(t.train.len() + t.test.len(), 4);
    }

    #[test]
    fn missing_target_lists_the_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a,b\n1,2\n");
        let err = read_csv_table(&path, &options(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"kind\"") && err.contains("a, b"), "{err}");
        let one_class = write(dir.path(), "a,kind\n1,x\n2,x\n");
        let err = read_csv_table(&one_class, &options(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 distinct"), "{err}");
    }

    #[test]
    fn prediction_rows_follow_the_model_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "b,kind,a\n2,x,1\n4,y,3\n");
        let rows = read_csv_rows(&path, &["a".into(), "b".into()]).unwrap();
        assert_eq!(rows.values, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(rows.lines, vec![2, 3]);
        let err = read_csv_rows(&path, &["c".into()]).unwrap_err().to_string();
        assert!(err.contains("\"c\""), "{err}");
    }
}
