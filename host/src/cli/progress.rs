//! Progress on stderr: bars on a terminal (indicatif), a plain line every few
//! seconds otherwise (logs, CI), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain (non-terminal) mode prints.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A progress display for one phase.
pub struct Progress {
    mode: Mode,
    what: &'static str,
    started: Instant,
    last_plain: Mutex<Instant>,
}

enum Mode {
    Quiet,
    Bar(ProgressBar),
    Plain,
}

impl Progress {
    /// A display for `what` ("normalizing", "loading"); `total` is the
    /// expected amount (bytes or rows) if known.
    pub fn new(what: &'static str, quiet: bool, total: Option<u64>, bytes: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            let template = if bytes {
                "{prefix:>11} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
            } else {
                "{prefix:>11} [{bar:30}] {pos}/{len} rows {per_sec} ETA {eta} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            Mode::Bar(bar)
        } else {
            Mode::Plain
        };
        Progress { mode, what, started: Instant::now(), last_plain: Mutex::new(Instant::now()) }
    }

    /// Reports the amount done so far and a short message.
    pub fn update(&self, done: u64, message: impl FnOnce() -> String) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bar(bar) => {
                bar.set_position(done);
                bar.set_message(message());
            }
            Mode::Plain => {
                let Ok(mut last) = self.last_plain.lock() else { return };
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("{}: {} ({:.0}s)", self.what, message(), self.started.elapsed().as_secs_f64());
                }
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}
