//! What `ferrograd train` shows while it runs, behind one [`View`]: plain lines (a progress
//! bar per epoch and one line per finished epoch, for logs and pipes) or the live terminal view
//! of `tui`; and the stop request that Ctrl-C (or `q` in the live view) raises, which the
//! training loop checks between batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use indicatif::{ProgressBar, ProgressStyle};

use crate::console::say;
use crate::metrics::EpochMetrics;

/// A request to stop training, raised by Ctrl-C and read by the training loop.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// The process's flag, raised by Ctrl-C (SIGINT) and lowered by this call. A second
    /// Ctrl-C while the first is being honoured ends the process at once (exit code 130).
    pub fn on_ctrl_c() -> StopFlag {
        static FLAG: OnceLock<StopFlag> = OnceLock::new();
        let flag = FLAG.get_or_init(|| {
            let flag = StopFlag::default();
            let raised = flag.clone();
            // Without a handler (none can be installed), Ctrl-C ends the process as usual and
            // the checkpoint of the last finished epoch is what remains.
            let _ = ctrlc::set_handler(move || {
                if raised.0.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
            });
            flag
        });
        flag.0.store(false, Ordering::SeqCst);
        flag.clone()
    }

    /// Raises the flag.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a finished epoch is marked in the display.
#[derive(Debug, Clone, Default)]
pub struct EpochNote {
    /// The epoch improved the monitored quantity and its checkpoint was kept in best/.
    pub best: bool,
}

/// What training reports as it goes.
pub trait View {
    /// An epoch (from 1, of `epochs`) of `batches` batches starts.
    fn start_epoch(&mut self, epoch: usize, epochs: usize, batches: usize);
    /// A batch finished: batches done in this epoch, samples done in this epoch, the mean
    /// loss so far and the learning rate.
    fn batch(&mut self, done: usize, samples: usize, loss: f64, lr: f64);
    /// An epoch finished.
    fn end_epoch(&mut self, m: &EpochMetrics, epochs: usize, note: &EpochNote);
    /// A line of news (early stopping, interruption).
    fn message(&mut self, line: &str);
    /// Training is over; the view gives the terminal back.
    fn finish(&mut self);
}

/// The line printed for a finished epoch.
pub fn epoch_line(m: &EpochMetrics, epochs: usize, note: &EpochNote) -> String {
    format!(
        "epoch {:>3}/{}  train loss {:.4} acc {:6.2}%  val loss {:.4} acc {:6.2}%  {:>9.0} samples/s  {:.2} s{}",
        m.epoch,
        epochs,
        m.train_loss,
        m.train_accuracy * 100.0,
        m.val_loss,
        m.val_accuracy * 100.0,
        m.samples_per_s,
        m.seconds,
        if note.best { "  *best" } else { "" }
    )
}

/// Plain lines: a progress bar on standard error during an epoch, a line on standard output
/// after it.
#[derive(Default)]
pub struct PlainView {
    bar: Option<ProgressBar>,
}

impl View for PlainView {
    fn start_epoch(&mut self, epoch: usize, epochs: usize, batches: usize) {
        let bar = ProgressBar::new(batches as u64);
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} batches {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(format!("epoch {epoch:>3}/{epochs}"));
        self.bar = Some(bar);
    }

    fn batch(&mut self, done: usize, _samples: usize, loss: f64, _lr: f64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            bar.set_message(format!("loss {loss:.4}"));
        }
    }

    fn end_epoch(&mut self, m: &EpochMetrics, epochs: usize, note: &EpochNote) {
        self.finish();
        say!("{}", epoch_line(m, epochs, note));
    }

    fn message(&mut self, line: &str) {
        self.finish();
        say!("{line}");
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
