//! Progress bars for long CLI work.

use indicatif::{ProgressBar, ProgressStyle};
use tailor_engine::import::Progress;

/// An indicatif bar that engine work reports to.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar on stderr (hidden when stderr is not a terminal).
    pub fn new() -> Bar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:>28} [{bar:40}] {human_pos}/{human_len} ({per_sec}, {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Bar(bar)
    }

    /// Sets the position.
    pub fn set(&self, n: u64) {
        self.0.set_position(n);
    }

    /// Completes the bar.
    pub fn finish(&self) {
        self.0.finish();
    }
}

impl Progress for Bar {
    fn total(&self, n: u64) {
        self.0.set_length(n);
        self.0.set_position(0);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn stage(&self, message: &str) {
        self.0.set_message(message.to_string());
    }
}
