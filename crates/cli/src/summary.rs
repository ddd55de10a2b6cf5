//! `ferrograd summary` and the table `train` prints before its first epoch: the model layer by
//! layer (`ferrograd_nn::summary`), with output shapes, parameter counts and
//! multiply-accumulates per sample, and the totals, laid out like Keras' `model.summary()`.

use ferrograd_core::DType;
use ferrograd_nn::{ModelSummary, Sequential, summary};

use crate::cli::SummaryArgs;
use crate::console::{say, text};
use crate::early_stopping::resolve_checkpoint;
use crate::error::{CliError, Result};
use crate::run_config::RunConfig;

/// The summary of a run's model for the samples its config describes.
pub fn model_summary(cfg: &RunConfig, model: &Sequential) -> Result<ModelSummary> {
    let shape = if cfg.takes_images() {
        cfg.image.to_vec()
    } else {
        vec![cfg.input]
    };
    summary(model, &shape, DType::F32).map_err(|e| CliError::Flag {
        flag: "--model",
        msg: format!("cannot summarise the {} model: {e}", cfg.model),
    })
}

/// `n` with thousands separators: 1234567 -> "1,234,567".
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn shape(dims: &[usize]) -> String {
    let inner: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", inner.join(", "))
}

/// The summary as a table: one row per layer, then the totals.
pub fn table(s: &ModelSummary) -> String {
    let rows: Vec<[String; 4]> = s
        .layers
        .iter()
        .map(|l| {
            [
                format!("{} ({})", l.name, l.kind),
                shape(&l.output_shape),
                grouped(l.params as u64),
                grouped(l.macs),
            ]
        })
        .collect();
    let header = ["Layer (type)", "Output shape", "Param #", "MACs"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain(std::iter::once(header[i].len()))
            .max()
            .unwrap_or(0)
    };
    let w = [width(0), width(1), width(2), width(3)];
    let line = |r: &[String; 4]| {
        format!(
            "{:<a$}  {:<b$}  {:>c$}  {:>d$}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3]
        )
    };
    let rule = "-".repeat(w.iter().sum::<usize>() + 6) + "\n";
    let mut out = format!("input: {} per sample\n", shape(&s.input_shape));
    out.push_str(&line(&header.map(str::to_string)));
    out.push_str(&rule);
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&rule);
    out.push_str(&format!(
        "Total params: {} (trainable)\n",
        grouped(s.params() as u64)
    ));
    out.push_str(&format!(
        "Non-trainable buffers: {} (batch norm statistics)\n",
        grouped(s.buffers() as u64)
    ));
    out.push_str(&format!(
        "Multiply-accumulates per sample: {}\n",
        grouped(s.macs())
    ));
    out
}

/// `ferrograd summary`.
pub fn run(args: &SummaryArgs) -> Result<()> {
    let (saved, loaded) = resolve_checkpoint(&args.model, args.checkpoint)?;
    let cfg = saved.config()?;
    let model = saved.model(&cfg)?;
    say!("{loaded}");
    text(&table(&model_summary(&cfg, &model)?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
