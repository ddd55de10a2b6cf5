//! Small two-dimensional classification sets for lessons and tests: the four-point truth
//! tables of AND, OR and XOR, two interleaved moons and two concentric circles (both with
//! Gaussian noise, drawn from a seeded [`Rng`]), and a [`Grid`] of points covering a rectangle,
//! on which a trained model is evaluated to draw its decision regions.
//!
//! A set is a [`Toy`]: plain points and labels (`Vec<[f64; 2]>`, `Vec<usize>`), with
//! [`Toy::inputs`] and [`Toy::targets`] turning them into the tensors a classifier takes
//! (`[n, 2]` floats and `[n]` i64 labels, as `F.cross_entropy` expects).
//!
//! ```
//! use ferrograd_core::{DType, Rng};
//! use ferrograd_data::toy::{Gate, logic_gate, two_moons};
//! let xor = logic_gate(Gate::Xor);
//! assert_eq!(xor.labels, vec![0, 1, 1, 0]);
//! let moons = two_moons(200, 0.1, &mut Rng::new(0));
//! assert_eq!(moons.inputs(DType::F64)?.shape(), &[200, 2]);
//! assert_eq!(moons.targets()?.shape(), &[200]);
//! # Ok::<(), ferrograd_core::Error>(())
//! ```

use std::f64::consts::PI;
use std::ops::Range;

use ferrograd_core::{DType, Result, Rng, Tensor};

/// A two-dimensional classification set: `points[k]` has class `labels[k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Toy {
    /// The inputs, `[x1, x2]` each.
    pub points: Vec<[f64; 2]>,
    /// The class of each point (`0..classes`).
    pub labels: Vec<usize>,
}

impl Toy {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The points as a `[n, 2]` tensor of `dtype` (f32 or f64).
    ///
    /// # Errors
    /// [`ferrograd_core::Error::UnsupportedDType`] for i64.
    pub fn inputs(&self, dtype: DType) -> Result<Tensor> {
        points_tensor(&self.points, dtype)
    }

    /// The labels as a `[n]` i64 tensor.
    ///
    /// # Errors
    /// Never for a well-formed set (one label per point).
    pub fn targets(&self) -> Result<Tensor> {
        let y: Vec<i64> = self.labels.iter().map(|&c| c as i64).collect();
        Tensor::from_vec(y, &[self.labels.len()])
    }

    /// The points of class `class`, as `(x1, x2)` pairs (a plot series).
    pub fn class_points(&self, class: usize) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .zip(&self.labels)
            .filter(|&(_, &c)| c == class)
            .map(|(p, _)| (p[0], p[1]))
            .collect()
    }

    /// The bounding box of the points, widened by `margin` on every side: the ranges of a
    /// [`Grid`] that covers the set.
    pub fn bounds(&self, margin: f64) -> (Range<f64>, Range<f64>) {
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for p in &self.points {
            for d in 0..2 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        if self.points.is_empty() {
            return (-margin..1.0 + margin, -margin..1.0 + margin);
        }
        (
            lo[0] - margin..hi[0] + margin,
            lo[1] - margin..hi[1] + margin,
        )
    }

    /// The fraction of points whose label equals `predicted[k]` (0 for an empty set).
    pub fn accuracy(&self, predicted: &[usize]) -> f64 {
        let hits = self
            .labels
            .iter()
            .zip(predicted)
            .filter(|(a, b)| a == b)
            .count();
        hits as f64 / self.labels.len().max(1) as f64
    }
}

fn points_tensor(points: &[[f64; 2]], dtype: DType) -> Result<Tensor> {
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    Tensor::from_vec(flat, &[points.len(), 2])?.to_dtype(dtype)
}

/// A two-input logic gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// 1 when both inputs are 1.
    And,
    /// 1 when either input is 1.
    Or,
    /// 1 when exactly one input is 1: the set no single line separates.
    Xor,
}

impl Gate {
    /// The gate's output for inputs `a` and `b`.
    pub fn apply(self, a: bool, b: bool) -> bool {
        match self {
            Gate::And => a && b,
            Gate::Or => a || b,
            Gate::Xor => a != b,
        }
    }

    /// The gate's name in capitals (`"XOR"`).
    pub fn name(self) -> &'static str {
        match self {
            Gate::And => "AND",
            Gate::Or => "OR",
            Gate::Xor => "XOR",
        }
    }
}

/// The truth table of `gate`: the four points `(0,0), (0,1), (1,0), (1,1)`, in that order,
/// labelled with the gate's output.
pub fn logic_gate(gate: Gate) -> Toy {
    let corners = [(false, false), (false, true), (true, false), (true, true)];
    Toy {
        points: corners
            .iter()
            .map(|&(a, b)| [a as u8 as f64, b as u8 as f64])
            .collect(),
        labels: corners
            .iter()
            .map(|&(a, b)| gate.apply(a, b) as usize)
            .collect(),
    }
}

/// Two interleaving half circles (scikit-learn's `make_moons`): class 0 on the upper arc of
/// the unit circle, class 1 on the lower arc shifted to `(1, 0.5)`; `n / 2` points of class 0
/// and the rest of class 1, evenly spaced along the arcs, with Gaussian noise of standard
/// deviation `noise` added to each coordinate, in a shuffled order.
///
/// The same `rng` state gives the same set.
pub fn two_moons(n: usize, noise: f64, rng: &mut Rng) -> Toy {
    let n0 = n / 2;
    let n1 = n - n0;
    let arc = |k: usize, m: usize| PI * k as f64 / (m.max(2) - 1) as f64;
    let mut points = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for k in 0..n0 {
        let t = arc(k, n0);
        points.push([t.cos(), t.sin()]);
        labels.push(0);
    }
    for k in 0..n1 {
        let t = arc(k, n1);
        points.push([1.0 - t.cos(), 0.5 - t.sin()]);
        labels.push(1);
    }
    finish(points, labels, noise, rng)
}

/// Two concentric circles (scikit-learn's `make_circles`): class 0 on the unit circle,
/// class 1 on the circle of radius `factor` (between 0 and 1); `n / 2` points of class 0 and
/// the rest of class 1, evenly spaced by angle, with Gaussian noise of standard deviation
/// `noise` added to each coordinate, in a shuffled order.
///
/// The same `rng` state gives the same set.
pub fn circles(n: usize, factor: f64, noise: f64, rng: &mut Rng) -> Toy {
    let n0 = n / 2;
    let n1 = n - n0;
    let angle = |k: usize, m: usize| 2.0 * PI * k as f64 / m.max(1) as f64;
    let mut points = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for k in 0..n0 {
        let t = angle(k, n0);
        points.push([t.cos(), t.sin()]);
        labels.push(0);
    }
    for k in 0..n1 {
        let t = angle(k, n1);
        points.push([factor * t.cos(), factor * t.sin()]);
        labels.push(1);
    }
    finish(points, labels, noise, rng)
}

/// Adds noise to every coordinate and shuffles points and labels together.
fn finish(mut points: Vec<[f64; 2]>, labels: Vec<usize>, noise: f64, rng: &mut Rng) -> Toy {
    for p in &mut points {
        for v in p.iter_mut() {
            *v += noise * rng.normal();
        }
    }
    let mut order: Vec<usize> = (0..points.len()).collect();
    rng.shuffle(&mut order);
    Toy {
        points: order.iter().map(|&k| points[k]).collect(),
        labels: order.iter().map(|&k| labels[k]).collect(),
    }
}

/// An `nx` by `ny` grid of cells covering the rectangle `x` by `y`. Its points are the cell
/// centres, column `i` from the left and row `j` from the bottom stored at `j * nx + i`: the
/// order of a plot's background field (`ferrograd_plot::Field`), so a model's predictions on
/// [`Grid::inputs`] are its decision regions, ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Horizontal extent.
    pub x: Range<f64>,
    /// Vertical extent.
    pub y: Range<f64>,
    /// Cells across.
    pub nx: usize,
    /// Cells up.
    pub ny: usize,
}

impl Grid {
    /// A grid of `nx` by `ny` cells over `x` by `y`.
    pub fn new(x: Range<f64>, y: Range<f64>, nx: usize, ny: usize) -> Self {
        Grid { x, y, nx, ny }
    }

    /// The cell centres, row by row from the bottom.
    ///
    /// ```
    /// use ferrograd_data::toy::Grid;
    /// let g = Grid::new(0.0..2.0, 0.0..1.0, 2, 1);
    /// assert_eq!(g.points(), vec![[0.5, 0.5], [1.5, 0.5]]);
    /// ```
    pub fn points(&self) -> Vec<[f64; 2]> {
        let dx = (self.x.end - self.x.start) / self.nx.max(1) as f64;
        let dy = (self.y.end - self.y.start) / self.ny.max(1) as f64;
        (0..self.ny)
            .flat_map(|j| {
                (0..self.nx).map(move |i| {
                    [
                        self.x.start + (i as f64 + 0.5) * dx,
                        self.y.start + (j as f64 + 0.5) * dy,
                    ]
                })
            })
            .collect()
    }

    /// The cell centres as a `[nx * ny, 2]` tensor of `dtype`.
    ///
    /// # Errors
    /// [`ferrograd_core::Error::UnsupportedDType`] for i64.
    pub fn inputs(&self, dtype: DType) -> Result<Tensor> {
        points_tensor(&self.points(), dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(t: &Toy, class: usize) -> usize {
        t.labels.iter().filter(|&&c| c == class).count()
    }

    #[test]
    fn gates_are_truth_tables() {
        let pts = vec![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
        for (gate, labels) in [
            (Gate::And, vec![0, 0, 0, 1]),
            (Gate::Or, vec![0, 1, 1, 1]),
            (Gate::Xor, vec![0, 1, 1, 0]),
        ] {
            let t = logic_gate(gate);
            assert_eq!(t.points, pts, "{}", gate.name());
            assert_eq!(t.labels, labels, "{}", gate.name());
        }
    }

    #[test]
    fn moons_and_circles_have_balanced_classes_and_shapes() {
        let mut rng = Rng::new(3);
        for t in [
            two_moons(101, 0.1, &mut rng),
            circles(101, 0.5, 0.05, &mut rng),
        ] {
            assert_eq!(t.len(), 101);
            assert_eq!(t.labels.len(), 101);
            assert_eq!((count(&t, 0), count(&t, 1)), (50, 51));
            assert_eq!(t.inputs(DType::F32).unwrap().shape(), &[101, 2]);
            assert_eq!(t.targets().unwrap().to_vec::<i64>().unwrap().len(), 101);
            // Shuffled: the first half is not all one class.
            assert!(t.labels[..50].contains(&0) && t.labels[..50].contains(&1));
        }
    }

    #[test]
    fn noiseless_sets_lie_on_their_curves() {
        let mut rng = Rng::new(0);
        let c = circles(40, 0.3, 0.0, &mut rng);
        for (p, &l) in c.points.iter().zip(&c.labels) {
            let r = p[0].hypot(p[1]);
            let want = if l == 0 { 1.0 } else { 0.3 };
            assert!((r - want).abs() < 1e-12, "{p:?} {l}");
        }
        let m = two_moons(40, 0.0, &mut rng);
        for (p, &l) in m.points.iter().zip(&m.labels) {
            let (cx, cy) = if l == 0 { (0.0, 0.0) } else { (1.0, 0.5) };
            assert!(((p[0] - cx).hypot(p[1] - cy) - 1.0).abs() < 1e-12);
            assert!(if l == 0 {
                p[1] >= -1e-12
            } else {
                p[1] <= 0.5 + 1e-12
            });
        }
    }

    #[test]
    fn same_seed_same_set_other_seed_other_set() {
        let a = two_moons(64, 0.2, &mut Rng::new(7));
        let b = two_moons(64, 0.2, &mut Rng::new(7));
        let c = two_moons(64, 0.2, &mut Rng::new(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let a = circles(64, 0.5, 0.1, &mut Rng::new(7));
        assert_eq!(a, circles(64, 0.5, 0.1, &mut Rng::new(7)));
    }

    #[test]
    fn grid_order_bounds_and_accuracy() {
        let g = Grid::new(-1.0..1.0, 0.0..4.0, 2, 4);
        let p = g.points();
        assert_eq!(p.len(), 8);
        assert_eq!(p[0], [-0.5, 0.5]);
        assert_eq!(p[1], [0.5, 0.5]);
        assert_eq!(p[2], [-0.5, 1.5]);
        assert_eq!(g.inputs(DType::F64).unwrap().shape(), &[8, 2]);
        let xor = logic_gate(Gate::Xor);
        let (x, y) = xor.bounds(0.5);
        assert_eq!((x, y), (-0.5..1.5, -0.5..1.5));
        assert_eq!(xor.accuracy(&[0, 1, 1, 1]), 0.75);
        assert_eq!(xor.class_points(1), vec![(0.0, 1.0), (1.0, 0.0)]);
    }
}
