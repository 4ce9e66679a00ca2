//! A stop request: the handle a caller keeps to end a run cleanly, and
//! every phase that can stop cleanly reads (reading input, normalizing,
//! handing out batches, waiting for a call, sleeping before a retry).
//!
//! It sits below every other module so that each layer (input, extract,
//! runtime, load) can ask "should I stop?" without depending on the layers
//! above. There is no global: the CLI makes one handle per process and
//! connects it to Ctrl-C and SIGTERM; a library caller makes its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared stop request. Clones share it; the default is not stopped.
/// Once set it stays set: read no more input, hand out no more batches,
/// let calls in flight finish (or give up on them after a grace period),
/// commit the ledger and return.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A handle that is not stopped.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Requests the stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once the stop was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for a signal handler to set (`signal_hook`).
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_request() {
        let a = Cancel::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        a.cancel();
        assert!(b.is_cancelled() && !Cancel::new().flag().load(Ordering::Relaxed));
    }
}
