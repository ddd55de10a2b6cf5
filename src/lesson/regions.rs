//! Classifiers on two-dimensional toy sets and their decision regions, as lessons 01, 04 and 05
//! draw them: train with [`fit`], predict a class per point with [`classes`] (on the set, or on
//! every cell of a [`Grid`]), and draw the regions under the training points with [`panel`].

use crate::data::toy::{Grid, Toy};
use crate::nn::{Adam, AdamConfig, Module, Optimizer, loss, named_params};
use crate::plot::{Field, Panel, Series};
use crate::{DType, Result, Tensor, no_grad};

/// Trains `model` (2 inputs, one logit per class, `f64` weights) on the whole set at every step:
/// `steps` Adam steps with learning rate `lr` on the cross-entropy. Returns the loss of the
/// last step (NaN when `steps` is 0).
///
/// # Errors
/// Tensor errors, for instance a model whose input or output size does not fit the set.
pub fn fit(model: &dyn Module, data: &Toy, lr: f64, steps: usize) -> Result<f64> {
    let adam = AdamConfig {
        lr,
        ..AdamConfig::default()
    };
    let mut opt = Adam::new(named_params(model), adam)?;
    let (x, y) = (data.inputs(DType::F64)?, data.targets()?);
    let mut last = f64::NAN;
    for _ in 0..steps {
        let l = loss::cross_entropy(&model.forward(&x)?, &y, 0.0)?;
        last = l.item()?;
        opt.step(&l.backward()?)?;
    }
    Ok(last)
}

/// The predicted class of each row of `x` (`[n, 2]`): the index of the largest logit, computed
/// without recording a graph.
///
/// # Errors
/// Tensor errors of the model's forward pass.
pub fn classes(model: &dyn Module, x: &Tensor) -> Result<Vec<usize>> {
    let _g = no_grad();
    Ok(model
        .forward(x)?
        .argmax(-1, false)?
        .to_vec::<i64>()?
        .into_iter()
        .map(|c| c as usize)
        .collect())
}

/// A panel that tints each cell of `grid` by its class in `classes` (one per cell, in the order
/// of [`Grid::points`]) and draws the points of `data` on top, one colour per class.
pub fn panel(title: impl Into<String>, data: &Toy, grid: &Grid, classes: Vec<usize>) -> Panel {
    let n_classes = data.labels.iter().max().map_or(0, |&c| c + 1);
    let mut panel = Panel::new(title, "x1", "x2").ranges(grid.x.clone(), grid.y.clone());
    for c in 0..n_classes {
        panel = panel.with(Series::points(c.to_string(), c, data.class_points(c)));
    }
    Panel {
        field: Some(Field::Classes {
            nx: grid.nx,
            ny: grid.ny,
            classes,
        }),
        legend: false,
        ..panel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;
    use crate::data::toy::{Gate, logic_gate};
    use crate::nn::{Activation, MlpConfig, mlp};

    #[test]
    fn fit_separates_and_panel_covers_the_grid() {
        let data = logic_gate(Gate::Xor);
        let arch = MlpConfig {
            input: 2,
            hidden: vec![8],
            output: 2,
            activation: Activation::Tanh,
            dropout: 0.0,
        };
        let model = mlp(&arch, DType::F64, &mut Rng::new(0)).unwrap();
        let loss = fit(&model, &data, 0.05, 300).unwrap();
        assert!(loss < 0.1, "{loss}");
        let pred = classes(&model, &data.inputs(DType::F64).unwrap()).unwrap();
        assert_eq!(data.accuracy(&pred), 1.0);

        let grid = Grid::new(-0.5..1.5, -0.5..1.5, 4, 3);
        let cells = classes(&model, &grid.inputs(DType::F64).unwrap()).unwrap();
        assert_eq!(cells.len(), 12);
        let p = panel("XOR", &data, &grid, cells);
        assert_eq!(p.series.len(), 2);
        assert!(matches!(p.field, Some(Field::Classes { nx: 4, ny: 3, .. })));
    }
}
