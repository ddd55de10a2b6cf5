//! ferrograd's figures, written as PNG with plotters: panels of line and point series (with
//! optional log-scale y and a coloured background field such as decision regions or a loss
//! surface), grids of grey-scale images, and a raw `render` for custom drawings. Text uses an
//! embedded DejaVu Sans, so figures look the same on machines without system fonts, and every
//! file is written atomically.

#![forbid(unsafe_code)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

pub use plotters;

/// A figure could not be drawn or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct PlotError {
    /// The file being written.
    pub path: PathBuf,
    /// What went wrong.
    pub msg: String,
}

/// Results of drawing a figure.
pub type Result<T> = std::result::Result<T, PlotError>;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is valid; if registration failed, text would be missing, not wrong.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// The drawing area handed to [`render`]'s closure.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// Converts any displayable drawing error into the `String` that [`render`] closures return.
pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Renders `size` pixels with `draw` on a white background, encodes PNG, writes it atomically.
///
/// # Errors
/// When drawing fails or the file cannot be written; the error names the file.
pub fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> std::result::Result<(), String>,
) -> Result<()> {
    let fail = |msg: String| PlotError {
        path: path.to_path_buf(),
        msg,
    };
    let png = render_png(size, draw).map_err(fail)?;
    ferrograd_io::write_atomic(path, &png).map_err(|e| fail(e.to_string()))
}

/// Renders `size` pixels with `draw` on a white background and returns the PNG bytes (for
/// figures saved as part of a set of files, or embedded elsewhere such as TensorBoard's images).
///
/// # Errors
/// When drawing or encoding fails.
pub fn render_png(
    size: (u32, u32),
    draw: impl FnOnce(&Area<'_>) -> std::result::Result<(), String>,
) -> std::result::Result<Vec<u8>, String> {
    register_font();
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root).map_err(|e| format!("drawing failed: {e}"))?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png_rgb(&rgb, size.0, size.1)
}

/// Encodes 8-bit RGB pixels (row-major, 3 bytes each) as PNG.
///
/// # Errors
/// When the buffer's length is not `width * height * 3`.
pub fn encode_png_rgb(rgb: &[u8], width: u32, height: u32) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Ten distinguishable colours (the "tab10" palette); series and classes pick by index.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The palette colour with index `i` (wrapping).
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A line through the points.
    Line,
    /// A dashed line through the points.
    Dashed,
    /// A dot at each point.
    Points,
    /// A line with a dot at each point (paths of optimizers, for instance).
    LinePoints,
}

/// One named series of `(x, y)` points. Points with a non-finite coordinate are skipped.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    /// Index into [`PALETTE`].
    pub color: usize,
}

impl Series {
    /// A line series.
    pub fn line(name: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            style: Style::Line,
            color,
        }
    }

    /// A series drawn as dots.
    pub fn points(name: impl Into<String>, color: usize, points: Vec<(f64, f64)>) -> Self {
        Series {
            style: Style::Points,
            ..Series::line(name, color, points)
        }
    }

    /// The same series drawn in another style.
    pub fn with_style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
}

/// A field drawn behind a panel's series, on an `nx` by `ny` grid covering the panel's x and y
/// ranges (cell `(i, j)` is column `i` from the left, row `j` from the bottom, stored at
/// `j * nx + i`).
#[derive(Debug, Clone)]
pub enum Field {
    /// One class per cell, drawn in a light tint of the class's palette colour.
    Classes {
        nx: usize,
        ny: usize,
        classes: Vec<usize>,
    },
    /// One value per cell, mapped from its minimum (dark) to its maximum (light).
    Values {
        nx: usize,
        ny: usize,
        values: Vec<f64>,
    },
}

/// One chart of a figure.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The x range; from the data when `None`.
    pub x_range: Option<Range<f64>>,
    /// The y range; from the data when `None`.
    pub y_range: Option<Range<f64>>,
    /// Plot log10(y), with ticks labelled as powers of ten. Non-positive values are skipped.
    pub log_y: bool,
    /// Drawn under the series; needs both ranges set.
    pub field: Option<Field>,
    pub series: Vec<Series>,
    /// Draw the legend (only named series appear in it).
    pub legend: bool,
}

impl Panel {
    /// An empty panel with a title and axis labels, legend on.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            legend: true,
            ..Panel::default()
        }
    }

    /// Adds a series.
    pub fn with(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Sets both ranges.
    pub fn ranges(mut self, x: Range<f64>, y: Range<f64>) -> Self {
        self.x_range = Some(x);
        self.y_range = Some(y);
        self
    }
}

fn data_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9 * lo.abs().max(1.0));
    (lo - pad)..(hi + pad)
}

/// Writes `panels` as one PNG figure, `columns` panels per row, each `panel_size` pixels.
///
/// # Errors
/// When the file cannot be written, or a field's size does not match its grid.
pub fn figure(path: &Path, columns: usize, panel_size: (u32, u32), panels: &[Panel]) -> Result<()> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (panel_size.0 * columns as u32, panel_size.1 * rows as u32);
    render(path, size, |root| {
        let areas = root.split_evenly((rows, columns));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        Ok(())
    })
}

/// A function and its derivative sampled on a grid, for [`function_figure`].
#[derive(Debug, Clone, Copy)]
pub struct FunctionCurve<'a> {
    /// The panel's title (the function's name).
    pub name: &'a str,
    /// The grid.
    pub xs: &'a [f64],
    /// `f(x)` at each grid point.
    pub values: &'a [f64],
    /// `f'(x)` at each grid point.
    pub derivatives: &'a [f64],
}

/// Writes one panel per function (the function solid, its derivative dashed), four per row;
/// the first panel carries the legend.
///
/// # Errors
/// When the figure cannot be drawn or written.
pub fn function_figure(path: &Path, curves: &[FunctionCurve<'_>]) -> Result<()> {
    let panels: Vec<Panel> = curves
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let pts = |ys: &[f64]| c.xs.iter().copied().zip(ys.iter().copied()).collect();
            let mut panel = Panel::new(c.name, "x", "")
                .with(Series::line("f(x)", 0, pts(c.values)))
                .with(Series::line("f'(x)", 3, pts(c.derivatives)).with_style(Style::Dashed));
            panel.legend = i == 0;
            panel
        })
        .collect();
    figure(path, 4, (330, 260), &panels)
}

/// A tick label: up to three decimals, trailing zeros dropped, no "-0".
fn tick(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

fn ylog(v: f64, log: bool) -> f64 {
    if !log {
        v
    } else if v > 0.0 {
        v.log10()
    } else {
        f64::NAN
    }
}

fn draw_panel(area: &Area<'_>, panel: &Panel) -> std::result::Result<(), String> {
    let x_range = panel.x_range.clone().unwrap_or_else(|| {
        data_range(
            panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0)),
        )
    });
    let y_range = match &panel.y_range {
        Some(r) if panel.log_y => ylog(r.start, true)..ylog(r.end, true),
        Some(r) => r.clone(),
        None => data_range(
            panel
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| ylog(p.1, panel.log_y))),
        ),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(58)
        .build_cartesian_2d(x_range.clone(), y_range.clone())
        .map_err(err)?;
    let log = panel.log_y;
    let y_fmt = move |v: &f64| {
        if !log {
            tick(*v)
        } else if (v - v.round()).abs() < 1e-9 {
            // Whole powers of ten as 1eN, other ticks as the value itself.
            format!("1e{}", v.round() as i64)
        } else {
            format!("{:.1e}", 10f64.powf(*v))
        }
    };
    let x_fmt = |v: &f64| tick(*v);
    if let Some(field) = &panel.field {
        draw_field(&mut chart, field, &x_range, &y_range)?;
    }
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    for s in &panel.series {
        let c = color(s.color);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|&(x, y)| (x, ylog(y, log)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let anno = match s.style {
            Style::Line => chart.draw_series(LineSeries::new(pts, c.stroke_width(2))),
            Style::Dashed => chart.draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2))),
            Style::Points => {
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            }
            Style::LinePoints => {
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(err)?;
                chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 2, c.filled())))
            }
        }
        .map_err(err)?;
        if !s.name.is_empty() {
            anno.label(s.name.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
            });
        }
    }
    if panel.legend && panel.series.iter().any(|s| !s.name.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

type Chart2d<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_field(
    chart: &mut Chart2d<'_, '_>,
    field: &Field,
    x: &Range<f64>,
    y: &Range<f64>,
) -> std::result::Result<(), String> {
    let (nx, ny, len) = match field {
        Field::Classes { nx, ny, classes } => (*nx, *ny, classes.len()),
        Field::Values { nx, ny, values } => (*nx, *ny, values.len()),
    };
    if nx == 0 || ny == 0 || len != nx * ny {
        return Err(format!(
            "field of {len} cells does not match a {nx} x {ny} grid"
        ));
    }
    let (lo, hi) = match field {
        Field::Values { values, .. } => values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            }),
        Field::Classes { .. } => (0.0, 1.0),
    };
    let (dx, dy) = ((x.end - x.start) / nx as f64, (y.end - y.start) / ny as f64);
    let cells = (0..ny).flat_map(|j| (0..nx).map(move |i| (i, j)));
    chart
        .draw_series(cells.map(|(i, j)| {
            let fill = match field {
                Field::Classes { classes, .. } => {
                    let RGBColor(r, g, b) = color(classes[j * nx + i]);
                    let tint = |c: u8| (c as f64 * 0.35 + 255.0 * 0.65) as u8;
                    RGBColor(tint(r), tint(g), tint(b))
                }
                Field::Values { values, .. } => {
                    let t = if hi > lo {
                        (values[j * nx + i] - lo) / (hi - lo)
                    } else {
                        0.5
                    };
                    ramp(if t.is_finite() { t } else { 1.0 })
                }
            };
            let x0 = x.start + i as f64 * dx;
            let y0 = y.start + j as f64 * dy;
            Rectangle::new([(x0, y0), (x0 + dx, y0 + dy)], fill.filled())
        }))
        .map_err(err)?;
    Ok(())
}

/// A dark-blue to yellow colour ramp for `t` in `[0, 1]` (approximately viridis).
pub fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - k as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A grey-scale image tile for [`image_grid`]: `pixels` row-major in `[0, 1]` (0 is black).
#[derive(Debug, Clone)]
pub struct Tile {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<f32>,
    pub caption: String,
}

/// Writes tiles as a grid, `columns` per row, each scaled by `scale` with its caption below.
///
/// # Errors
/// When a tile's pixel count does not match its size, or the file cannot be written.
pub fn image_grid(
    path: &Path,
    title: &str,
    tiles: &[Tile],
    columns: usize,
    scale: u32,
) -> Result<()> {
    let columns = columns.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(columns).max(1);
    let tw = tiles.iter().map(|t| t.width).max().unwrap_or(1) as u32 * scale;
    let th = tiles.iter().map(|t| t.height).max().unwrap_or(1) as u32 * scale;
    let (cw, ch) = ((tw + 16).max(120), th + 40);
    let size = (cw * columns as u32 + 20, ch * rows as u32 + 50);
    render(path, size, |root| {
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 20)))
            .map_err(err)?;
        for (k, tile) in tiles.iter().enumerate() {
            if tile.pixels.len() != tile.width * tile.height {
                return Err(format!(
                    "tile {k} has {} pixels, expected {} x {}",
                    tile.pixels.len(),
                    tile.width,
                    tile.height
                ));
            }
            let x0 = 10 + (k % columns) as i32 * cw as i32;
            let y0 = 45 + (k / columns) as i32 * ch as i32;
            let s = scale as i32;
            for (p, &v) in tile.pixels.iter().enumerate() {
                let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
                let (px, py) = (
                    x0 + (p % tile.width) as i32 * s,
                    y0 + (p / tile.width) as i32 * s,
                );
                root.draw(&Rectangle::new(
                    [(px, py), (px + s, py + s)],
                    RGBColor(g, g, g).filled(),
                ))
                .map_err(err)?;
            }
            root.draw(&Text::new(
                tile.caption.clone(),
                (x0, y0 + th as i32 + 4),
                ("sans-serif", 13),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let be = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
        (be(16), be(20))
    }

    #[test]
    fn figure_writes_a_png_of_the_grid_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.png");
        let line = Panel::new("sin", "x", "y").with(Series::line(
            "sin",
            0,
            (0..50)
                .map(|i| (i as f64 / 10.0, (i as f64 / 10.0).sin()))
                .collect(),
        ));
        let log = Panel {
            log_y: true,
            ..Panel::new("loss", "step", "loss").with(Series::points(
                "l",
                1,
                vec![(0.0, 1.0), (1.0, 1e-3), (2.0, 0.0)],
            ))
        };
        let field = Panel {
            field: Some(Field::Classes {
                nx: 2,
                ny: 2,
                classes: vec![0, 1, 1, 0],
            }),
            ..Panel::new("regions", "x1", "x2").ranges(-1.0..1.0, -1.0..1.0)
        };
        figure(&path, 2, (300, 200), &[line, log, field]).unwrap();
        assert_eq!(png_size(&path), (600, 400));
    }

    #[test]
    fn function_figure_puts_four_panels_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fns.png");
        let xs: Vec<f64> = (0..21).map(|i| i as f64 / 10.0 - 1.0).collect();
        let squares: Vec<f64> = xs.iter().map(|x| x * x).collect();
        let slopes: Vec<f64> = xs.iter().map(|x| 2.0 * x).collect();
        let curve = FunctionCurve {
            name: "square",
            xs: &xs,
            values: &squares,
            derivatives: &slopes,
        };
        function_figure(&path, &[curve; 5]).unwrap();
        assert_eq!(png_size(&path), (4 * 330, 2 * 260));
    }

    #[test]
    fn mismatched_field_and_tile_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let bad = Panel {
            field: Some(Field::Values {
                nx: 3,
                ny: 3,
                values: vec![0.0; 8],
            }),
            ..Panel::new("bad", "x", "y").ranges(0.0..1.0, 0.0..1.0)
        };
        let e = figure(&path, 1, (200, 200), &[bad]).unwrap_err();
        assert!(e.to_string().contains("3 x 3"), "{e}");
        assert!(!path.exists());
        let tile = Tile {
            width: 2,
            height: 2,
            pixels: vec![0.5; 3],
            caption: "x".into(),
        };
        assert!(image_grid(&path, "t", &[tile], 1, 4).is_err());
    }

    #[test]
    fn image_grid_writes_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        let tile = Tile {
            width: 8,
            height: 8,
            pixels: (0..64).map(|i| i as f32 / 63.0).collect(),
            caption: "7 (p=0.9)".into(),
        };
        image_grid(&path, "tiles", &[tile.clone(), tile], 2, 4).unwrap();
        assert!(png_size(&path).0 > 200);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(-0.0001), "0");
        assert_eq!(tick(0.25), "0.25");
    }

    #[test]
    fn ramp_ends() {
        assert_eq!(ramp(0.0), RGBColor(68, 1, 84));
        assert_eq!(ramp(1.0), RGBColor(253, 231, 37));
    }
}
