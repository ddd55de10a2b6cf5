//! The live terminal view of `ferrograd train` (ratatui on crossterm): loss and accuracy
//! curves drawn epoch by epoch, the current epoch's progress and running loss, the learning
//! rate, throughput, ETA, and the process's CPU and memory use. `q` or Ctrl-C asks training
//! to stop after saving a checkpoint. When training ends, the terminal is restored and the
//! epoch lines are printed as the plain view would have, so they stay in the scrollback.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, Gauge, GraphType, Paragraph};
use ratatui::{DefaultTerminal, Frame};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::error::{CliError, Result};
use crate::metrics::EpochMetrics;
use crate::progress::{EpochNote, StopFlag, View, epoch_line};

/// How often the screen is redrawn at most (and the keyboard read).
const FRAME: Duration = Duration::from_millis(100);
/// How often CPU and memory use are sampled.
const SAMPLE: Duration = Duration::from_millis(1000);

/// Whether the live view can run here: standard output and input are terminals.
pub fn available() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Everything the view draws.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// What is trained on what (the header line).
    pub title: String,
    pub history: Vec<EpochMetrics>,
    pub epoch: usize,
    pub epochs: usize,
    /// Epochs finished before this process started (a resumed run).
    pub first_epoch: usize,
    pub batch: usize,
    pub batches: usize,
    pub running_loss: f64,
    pub lr: f64,
    /// Samples per second of the current epoch so far.
    pub throughput: f64,
    /// Seconds until the last epoch ends, at the pace so far.
    pub eta: Option<f64>,
    pub elapsed: f64,
    /// The process's CPU use in percent of one core, and its resident memory in bytes.
    pub cpu: f32,
    pub memory: u64,
    pub cores: usize,
    pub best: Option<usize>,
    pub log: Vec<String>,
    pub stopping: bool,
}

/// The live view.
pub struct TuiView {
    terminal: Option<DefaultTerminal>,
    state: State,
    stop: StopFlag,
    started: Instant,
    epoch_started: Instant,
    last_frame: Option<Instant>,
    last_sample: Option<Instant>,
    system: System,
    pid: Option<Pid>,
    lines: Vec<String>,
}

impl TuiView {
    /// Takes over the terminal (raw mode, alternate screen).
    pub fn start(title: String, first_epoch: usize, stop: StopFlag) -> Result<TuiView> {
        let terminal = ratatui::try_init().map_err(|e| CliError::Flag {
            flag: "--tui",
            msg: format!("cannot set up the terminal: {e}"),
        })?;
        Ok(TuiView {
            terminal: Some(terminal),
            state: State {
                title,
                first_epoch,
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                ..State::default()
            },
            stop,
            started: Instant::now(),
            epoch_started: Instant::now(),
            last_frame: None,
            last_sample: None,
            system: System::new(),
            pid: sysinfo::get_current_pid().ok(),
            lines: Vec::new(),
        })
    }

    fn sample(&mut self) {
        if self.last_sample.is_some_and(|t| t.elapsed() < SAMPLE) {
            return;
        }
        self.last_sample = Some(Instant::now());
        if let Some(pid) = self.pid {
            self.system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            if let Some(p) = self.system.process(pid) {
                self.state.cpu = p.cpu_usage();
                self.state.memory = p.memory();
            }
        }
    }

    /// Reads pending keys: `q`, Esc or Ctrl-C raise the stop flag.
    fn keys(&mut self) {
        while event::poll(Duration::ZERO).unwrap_or(false) {
            let Ok(Event::Key(key)) = event::read() else {
                continue;
            };
            let ctrl_c =
                key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
            if key.kind == KeyEventKind::Press
                && (ctrl_c || key.code == KeyCode::Char('q') || key.code == KeyCode::Esc)
            {
                self.stop.raise();
            }
        }
        if self.stop.raised() && !self.state.stopping {
            self.state.stopping = true;
            self.state
                .log
                .push("stop requested: saving a checkpoint after this batch".into());
        }
    }

    fn update_times(&mut self) {
        let s = &mut self.state;
        s.elapsed = self.started.elapsed().as_secs_f64();
        // Batches done by this process, and those left, at this process's pace.
        let done_epochs = s.epoch.saturating_sub(1 + s.first_epoch);
        let done = done_epochs * s.batches + s.batch;
        let left = s.epochs.saturating_sub(s.epoch) * s.batches + s.batches.saturating_sub(s.batch);
        s.eta = (done > 0).then(|| s.elapsed / done as f64 * left as f64);
    }

    fn draw(&mut self, force: bool) {
        self.keys();
        if !force && self.last_frame.is_some_and(|t| t.elapsed() < FRAME) {
            return;
        }
        self.last_frame = Some(Instant::now());
        self.sample();
        self.update_times();
        if let Some(terminal) = self.terminal.as_mut() {
            let state = &self.state;
            // A failed frame is not worth stopping training for; the next one may succeed.
            let _ = terminal.draw(|f| render(f, state));
        }
    }
}

impl View for TuiView {
    fn start_epoch(&mut self, epoch: usize, epochs: usize, batches: usize) {
        self.state.epoch = epoch;
        self.state.epochs = epochs;
        self.state.batches = batches;
        self.state.batch = 0;
        self.state.throughput = 0.0;
        self.epoch_started = Instant::now();
        self.draw(true);
    }

    fn batch(&mut self, done: usize, samples: usize, loss: f64, lr: f64) {
        self.state.batch = done;
        self.state.running_loss = loss;
        self.state.lr = lr;
        let t = self.epoch_started.elapsed().as_secs_f64();
        if t > 0.0 {
            self.state.throughput = samples as f64 / t;
        }
        self.draw(false);
    }

    fn end_epoch(&mut self, m: &EpochMetrics, epochs: usize, note: &EpochNote) {
        let line = epoch_line(m, epochs, note);
        self.lines.push(line.clone());
        self.state.log.push(line);
        self.state.history.push(m.clone());
        if note.best {
            self.state.best = Some(m.epoch);
        }
        self.draw(true);
    }

    fn message(&mut self, line: &str) {
        self.lines.push(line.to_string());
        self.state.log.push(line.to_string());
        self.draw(true);
    }

    fn finish(&mut self) {
        if self.terminal.take().is_some() {
            let _ = ratatui::try_restore();
            for line in self.lines.drain(..) {
                crate::console::say!("{line}");
            }
        }
    }
}

impl Drop for TuiView {
    fn drop(&mut self) {
        // An error that ends training early still gives the terminal back.
        self.finish();
    }
}

fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

fn bytes(n: u64) -> String {
    let mib = n as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

/// A chart of one quantity, training and validation, by epoch.
fn curve_chart<'a>(
    title: &'a str,
    train: &'a [(f64, f64)],
    val: &'a [(f64, f64)],
    epochs: usize,
    y: [f64; 2],
) -> Chart<'a> {
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Cyan))
            .data(train),
        Dataset::default()
            .name("validation")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Yellow))
            .data(val),
    ];
    let x_max = epochs.max(2) as f64;
    let label = |v: f64| Span::raw(format!("{v:.2}"));
    Chart::new(datasets)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .title("epoch")
                .bounds([1.0, x_max])
                .labels([Span::raw("1"), Span::raw(format!("{}", epochs.max(2)))]),
        )
        .y_axis(Axis::default().bounds(y).labels([
            label(y[0]),
            label((y[0] + y[1]) / 2.0),
            label(y[1]),
        ]))
}

/// The range of the finite values of a curve, padded a little; `floor` for accuracies.
fn range(points: &[&[(f64, f64)]], floor: Option<f64>) -> [f64; 2] {
    let values = points.iter().flat_map(|p| p.iter().map(|&(_, y)| y));
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return [0.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let lo = floor.map_or(lo - pad, |f| (lo - pad).max(f));
    [lo.max(0.0), hi + pad]
}

/// Draws the whole view.
pub fn render(f: &mut Frame, s: &State) {
    let [header, gauges, body, log] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(10),
        Constraint::Length(6),
    ])
    .areas(f.area());
    let bold = Style::default().add_modifier(Modifier::BOLD);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("ferrograd train ", bold),
            Span::raw(s.title.as_str()),
            Span::styled(
                "   q / Ctrl-C: stop and save",
                Style::default().fg(Color::DarkGray),
            ),
        ])),
        header,
    );
    let [epoch_gauge, run_gauge] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(gauges);
    let ratio = |a: usize, b: usize| (a as f64 / b.max(1) as f64).clamp(0.0, 1.0);
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Green))
            .ratio(ratio(s.batch, s.batches))
            .label(format!(
                "epoch {}/{}: batch {}/{}",
                s.epoch, s.epochs, s.batch, s.batches
            )),
        epoch_gauge,
    );
    let done = s.epoch.saturating_sub(1) as f64 + ratio(s.batch, s.batches);
    f.render_widget(
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Blue))
            .ratio((done / s.epochs.max(1) as f64).clamp(0.0, 1.0))
            .label(format!(
                "run: {:.0}%",
                100.0 * done / s.epochs.max(1) as f64
            )),
        run_gauge,
    );

    let [loss_area, acc_area, stats_area] = Layout::horizontal([
        Constraint::Percentage(38),
        Constraint::Percentage(38),
        Constraint::Percentage(24),
    ])
    .areas(body);
    let pick = |f: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        s.history
            .iter()
            .map(|m| (m.epoch as f64, f(m)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let (train_loss, val_loss) = (pick(|m| m.train_loss), pick(|m| m.val_loss));
    let (train_acc, val_acc) = (
        pick(|m| m.train_accuracy * 100.0),
        pick(|m| m.val_accuracy * 100.0),
    );
    let loss_range = range(&[&train_loss, &val_loss], None);
    let acc_range = range(&[&train_acc, &val_acc], Some(0.0));
    let acc_range = [acc_range[0], acc_range[1].min(100.0)];
    f.render_widget(
        curve_chart("loss", &train_loss, &val_loss, s.epochs, loss_range),
        loss_area,
    );
    f.render_widget(
        curve_chart("accuracy (%)", &train_acc, &val_acc, s.epochs, acc_range),
        acc_area,
    );

    let last = s.history.last();
    let field = |name: &'static str, value: String| {
        Line::from(vec![
            Span::styled(format!("{name:<12}"), Style::default().fg(Color::DarkGray)),
            Span::raw(value),
        ])
    };
    let or_dash = |v: Option<f64>, f: fn(f64) -> String| v.map_or("-".to_string(), f);
    let stats = vec![
        field("loss (now)", format!("{:.4}", s.running_loss)),
        field(
            "val loss",
            or_dash(last.map(|m| m.val_loss), |v| format!("{v:.4}")),
        ),
        field(
            "val acc",
            or_dash(last.map(|m| m.val_accuracy), |v| {
                format!("{:.2}%", v * 100.0)
            }),
        ),
        field("best epoch", s.best.map_or("-".into(), |e| e.to_string())),
        field("lr", format!("{:.3e}", s.lr)),
        field("throughput", format!("{:.0} samples/s", s.throughput)),
        field("elapsed", duration(s.elapsed)),
        field("ETA", or_dash(s.eta, duration)),
        field("CPU", format!("{:.0}% ({} cores)", s.cpu, s.cores)),
        field("memory", bytes(s.memory)),
    ];
    f.render_widget(
        Paragraph::new(stats).block(Block::bordered().title("now")),
        stats_area,
    );
    let shown = log.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = s
        .log
        .iter()
        .skip(s.log.len().saturating_sub(shown))
        .map(|l| Line::raw(l.as_str()))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("epochs")),
        log,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn metrics(epoch: usize, loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            lr: 1e-3,
            train_loss: loss,
            train_accuracy: 1.0 - loss / 4.0,
            val_loss: loss * 1.1,
            val_accuracy: 1.0 - loss / 3.0,
            samples_per_s: 5000.0,
            seconds: 0.5,
            data_wait_seconds: 0.0,
        }
    }

    #[test]
    fn the_view_shows_curves_and_figures() {
        let state = State {
            title: "MLP 64-32-10 on digits".into(),
            history: vec![metrics(1, 1.5), metrics(2, 0.8), metrics(3, 0.5)],
            epoch: 4,
            epochs: 10,
            batch: 20,
            batches: 51,
            running_loss: 0.4321,
            lr: 0.001,
            throughput: 12345.0,
            eta: Some(125.0),
            elapsed: 61.0,
            cpu: 180.0,
            memory: 64 * 1024 * 1024,
            cores: 2,
            best: Some(3),
            log: vec!["epoch   3/10 ...".into()],
            ..State::default()
        };
        let mut terminal = Terminal::new(TestBackend::new(120, 32)).unwrap();
        terminal.draw(|f| render(f, &state)).unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        for want in [
            "MLP 64-32-10 on digits",
            "epoch 4/10: batch 20/51",
            "loss",
            "accuracy (%)",
            "0.4321",
            "1.000e-3",
            "12345 samples/s",
            "2m05s",
            "1m01s",
            "180% (2 cores)",
            "64 MiB",
            "best epoch  3",
        ] {
            assert!(screen.contains(want), "{want:?} missing from the view");
        }
        // The curves are drawn: Braille cells appear in the charts.
        assert!(
            screen
                .chars()
                .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
        );
    }
}
