//! The charts of a training run: the loss and accuracy curves, and the confusion matrix as a
//! heat map, drawn with `ferrograd-plot` into PNG bytes (saved with the run's checkpoint).
//! Each chart's title names the data set and the model it shows.

use std::path::Path;

use ferrograd_plot::{err, plotters::prelude::*};

use crate::error::{CliError, Result};
use crate::metrics::EpochMetrics;

/// Renders with [`ferrograd_plot::render_png`] (embedded font); errors name `file`.
fn render(
    file: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&ferrograd_plot::Area<'_>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    ferrograd_plot::render_png(size, draw).map_err(|msg| CliError::file(file, msg))
}

/// A chart panel: title, y label, top of the y range, and (train, validation) values.
type Panel = (
    &'static str,
    &'static str,
    f64,
    fn(&EpochMetrics) -> (f64, f64),
);

/// Loss and accuracy per epoch, training and validation, side by side, under `title` (the
/// model and data set); `file` names the chart in errors.
pub fn curves(file: &Path, history: &[EpochMetrics], title: &str) -> Result<Vec<u8>> {
    render(file, (1000, 440), |root| {
        let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
        let panels = root.split_evenly((1, 2));
        let (epochs, ticks) = epoch_axis(history);
        let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
        let max_loss = history
            .iter()
            .flat_map(|m| [finite(m.train_loss), finite(m.val_loss)])
            .flatten()
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.05;
        let series: [Panel; 2] = [
            ("loss", "cross-entropy", max_loss, |m| {
                (m.train_loss, m.val_loss)
            }),
            ("accuracy", "accuracy (%)", 100.0, |m| {
                (m.train_accuracy * 100.0, m.val_accuracy * 100.0)
            }),
        ];
        for (panel, (title, ylabel, ymax, get)) in panels.iter().zip(series) {
            let ymin = if title == "accuracy" {
                history
                    .iter()
                    .flat_map(|m| {
                        let (a, b) = get(m);
                        [finite(a), finite(b)]
                    })
                    .flatten()
                    .fold(100.0f64, f64::min)
                    .min(90.0)
                    .floor()
            } else {
                0.0
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(epochs.clone(), ymin..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_labels(ticks)
                .x_desc("epoch")
                .y_desc(ylabel)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(err)?;
            for (name, color, pick) in [("train", BLUE, 0usize), ("validation", RED, 1usize)] {
                let points: Vec<(i64, f64)> = history
                    .iter()
                    .filter_map(|m| {
                        let (a, b) = get(m);
                        let v = if pick == 0 { a } else { b };
                        finite(v).map(|v| (m.epoch as i64, v))
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    })
}

/// The x axis of the curves: whole epochs from 1 to the last (at least 2, so one epoch still
/// has an axis), an integer range, so every tick is a whole epoch; and how many ticks.
fn epoch_axis(history: &[EpochMetrics]) -> (std::ops::Range<i64>, usize) {
    let last = history.iter().map(|m| m.epoch).max().unwrap_or(1).max(2) as i64;
    (1..last, last.clamp(2, 11) as usize)
}

/// The confusion matrix as a heat map with counts (rows: true class, columns: predicted),
/// under `title` (the model and data set); `file` names the chart in errors.
pub fn confusion(
    file: &Path,
    matrix: &[Vec<usize>],
    names: &[String],
    title: &str,
) -> Result<Vec<u8>> {
    let size = confusion_size(matrix.len());
    let cell = (size.0 - 200) / matrix.len().max(1) as u32;
    render(file, size, |root| {
        let max = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        let (x0, y0) = (160i32, 80i32);
        let c = cell as i32;
        root.draw(&Text::new(title.to_string(), (10, 8), ("sans-serif", 16)))
            .map_err(err)?;
        root.draw(&Text::new(
            "confusion matrix (rows: true, columns: predicted)",
            (10, 32),
            ("sans-serif", 18),
        ))
        .map_err(err)?;
        for (i, row) in matrix.iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or_else(|| i.to_string());
            let short: String = name.chars().take(16).collect();
            root.draw(&Text::new(
                short,
                (8, y0 + i as i32 * c + c / 2 - 7),
                ("sans-serif", 14),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                i.to_string(),
                (x0 + i as i32 * c + c / 2 - 4, y0 - 20),
                ("sans-serif", 14),
            ))
            .map_err(err)?;
            for (j, &v) in row.iter().enumerate() {
                let t = v as f64 / max;
                let shade = (255.0 * (1.0 - t)) as u8;
                let fill = RGBColor(shade, shade, 255);
                let (x, y) = (x0 + j as i32 * c, y0 + i as i32 * c);
                root.draw(&Rectangle::new([(x, y), (x + c, y + c)], fill.filled()))
                    .map_err(err)?;
                root.draw(&Rectangle::new([(x, y), (x + c, y + c)], BLACK.mix(0.2)))
                    .map_err(err)?;
                let text_color = if t > 0.5 { WHITE } else { BLACK };
                let label = v.to_string();
                let tx = x + c / 2 - 4 * label.len() as i32;
                root.draw(&Text::new(
                    label,
                    (tx, y + c / 2 - 7),
                    ("sans-serif", 13).into_font().color(&text_color),
                ))
                .map_err(err)?;
            }
        }
        Ok(())
    })
}

/// The width and height in pixels of the confusion chart of `classes` classes.
pub fn confusion_size(classes: usize) -> (u32, u32) {
    let n = classes.max(1) as u32;
    let cell = (560 / n).clamp(24, 64);
    (cell * n + 200, cell * n + 180)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(n: usize) -> Vec<EpochMetrics> {
        (1..=n)
            .map(|epoch| EpochMetrics {
                epoch,
                lr: 0.1,
                train_loss: 1.0 / epoch as f64,
                train_accuracy: 0.9,
                val_loss: f64::NAN,
                val_accuracy: f64::NAN,
                samples_per_s: 1.0,
                seconds: 1.0,
                data_wait_seconds: 0.0,
            })
            .collect()
    }

    #[test]
    fn epochs_are_an_integer_axis_and_charts_render() {
        assert_eq!(epoch_axis(&epochs(1)), (1..2, 2));
        assert_eq!(epoch_axis(&epochs(3)), (1..3, 3));
        assert_eq!(epoch_axis(&epochs(30)), (1..30, 11));
        for n in [1, 3, 30] {
            let png = curves(Path::new("curves.png"), &epochs(n), "MLP on digits").unwrap();
            assert!(png.starts_with(b"\x89PNG"));
        }
        let png = confusion(
            Path::new("confusion.png"),
            &[vec![2, 0], vec![1, 3]],
            &["a".into(), "b".into()],
            "MLP on digits",
        )
        .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
    }
}
