//! The charts of a training run: the loss and accuracy curves, and the confusion matrix as a
//! heat map, drawn with `ferrograd-plot`.

use std::path::Path;

use ferrograd_plot::{err, plotters::prelude::*};

use crate::error::Result;
use crate::metrics::EpochMetrics;

/// Renders with [`ferrograd_plot::render`] (embedded font, atomic PNG write).
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&ferrograd_plot::Area<'_>) -> std::result::Result<(), String>,
) -> Result<()> {
    Ok(ferrograd_plot::render(path, size, draw)?)
}

/// A chart panel: title, y label, top of the y range, and (train, validation) values.
type Panel = (
    &'static str,
    &'static str,
    f64,
    fn(&EpochMetrics) -> (f64, f64),
);

/// Loss and accuracy per epoch, training and validation, side by side.
pub fn curves(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    render(path, (1000, 400), |root| {
        let panels = root.split_evenly((1, 2));
        let epochs = history.len().max(2) as f64;
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
                .build_cartesian_2d(1.0..epochs, ymin..ymax)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(ylabel)
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(err)?;
            for (name, color, pick) in [("train", BLUE, 0usize), ("validation", RED, 1usize)] {
                let points: Vec<(f64, f64)> = history
                    .iter()
                    .filter_map(|m| {
                        let (a, b) = get(m);
                        let v = if pick == 0 { a } else { b };
                        finite(v).map(|v| (m.epoch as f64, v))
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

/// The confusion matrix as a heat map with counts (rows: true class, columns: predicted).
pub fn confusion(path: &Path, matrix: &[Vec<usize>], names: &[String]) -> Result<()> {
    let (png, _, _) =
        confusion_png(matrix, names).map_err(|e| crate::error::CliError::file(path, e))?;
    crate::output::write_atomic(path, &png)
}

/// The heat map of [`confusion`] as PNG bytes, with its width and height.
pub fn confusion_png(
    matrix: &[Vec<usize>],
    names: &[String],
) -> std::result::Result<(Vec<u8>, u32, u32), String> {
    let n = matrix.len().max(1);
    let cell = (560 / n as u32).clamp(24, 64);
    let size = (cell * n as u32 + 200, cell * n as u32 + 160);
    ferrograd_plot::render_png(size, |root| {
        let max = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        let (x0, y0) = (160i32, 60i32);
        let c = cell as i32;
        root.draw(&Text::new(
            "confusion matrix (rows: true, columns: predicted)",
            (10, 12),
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
    .map(|png| (png, size.0, size.1))
}
