//! The process-wide stop request: set by the first Ctrl-C or SIGTERM (the
//! CLI installs the handlers), read by every phase that can stop cleanly.
//!
//! It sits below every other module so that each layer (input, extract,
//! load) can ask "should I stop?" without depending on the layers above.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// Set by the first Ctrl-C or SIGTERM: read no more input, hand out no
/// more batches, let calls in flight finish, commit the ledger and stop.
pub static STOP: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// True once a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}
