//! Calls into a sink on a thread of their own, so that nothing a sink does
//! can hold its worker past the limits.
//!
//! Epoch interruption stops a call that spends its time in guest code, but
//! not one blocked inside a host call: a sleep on a `wasi:clocks` pollable,
//! a slow socket, a blocking read. A [`Guarded`] instance therefore runs
//! every call on its own thread and waits for the answer with a clock:
//! past `--call-timeout` (plus a little slack for the epoch to fire first)
//! the call is abandoned and reported as a timeout; once a stop is
//! requested (Ctrl-C, SIGTERM) the wait ends after [`STOP_GRACE`]. An
//! abandoned thread keeps its instance until its host call returns, then
//! traps at once (its epoch deadline has passed) and ends; the batch it
//! held was never recorded as delivered, so a later attempt or run sends
//! it again under the same idempotency key.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::bindings::{BatchContext, Items, SinkError, SinkSpec, TableSchema};
use super::{CallError, SinkInstance};

/// How long a stop request waits for calls in flight before abandoning
/// them (SIGTERM must end a run within seconds, whatever the sink does).
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Slack past the call timeout before the wall clock abandons a call, so
/// the epoch (which reports the same timeout and keeps the instance's
/// thread tidy) fires first for calls busy in guest code.
const SLACK: Duration = Duration::from_millis(500);

/// How often a wait looks at the clock and the stop request.
const POLL: Duration = Duration::from_millis(20);

/// What a `load` call needs; shared (not copied) between attempts.
pub struct LoadCall {
    /// The table's schema.
    pub table: Arc<TableSchema>,
    /// The batch's context (its attempt changes between calls).
    pub ctx: BatchContext,
    /// The rows, a file handle or an Arrow IPC stream.
    pub items: Arc<Items>,
}

enum Call {
    Spec,
    Load(LoadCall),
}

enum Answer {
    Spec(Result<SinkSpec, CallError>),
    Load(Result<Result<(), SinkError>, CallError>),
}

/// One sink instance behind its own call thread.
pub struct Guarded {
    calls: SyncSender<Call>,
    answers: Receiver<(Answer, bool)>,
    sink: String,
    timeout: Duration,
    worn_out: bool,
    denials: Arc<Mutex<Vec<String>>>,
    cancel: crate::stop::Cancel,
    trace: Arc<Mutex<crate::telemetry::Span>>,
}

impl Guarded {
    /// Moves `instance` to a new call thread.
    pub(super) fn start(instance: SinkInstance) -> Result<Self, String> {
        let (calls, call_rx) = sync_channel::<Call>(1);
        let (answer_tx, answers) = sync_channel(1);
        let sink = instance.sink.clone();
        let timeout = instance.sandbox.call_timeout;
        let cancel = instance.sandbox.cancel.clone();
        let denials = instance.denials.clone();
        let trace = instance.trace.clone();
        std::thread::Builder::new()
            .name(format!("sink-{sink}"))
            .spawn(move || {
                let mut instance = instance;
                while let Ok(call) = call_rx.recv() {
                    let answer = match call {
                        Call::Spec => Answer::Spec(instance.spec()),
                        Call::Load(c) => Answer::Load(instance.load(&c.table, &c.ctx, &c.items)),
                    };
                    if answer_tx.send((answer, instance.worn_out())).is_err() {
                        break; // abandoned: nobody waits any more
                    }
                }
            })
            .map_err(|e| format!("cannot start a call thread: {e}"))?;
        Ok(Guarded { calls, answers, sink, timeout, worn_out: false, denials, cancel, trace })
    }

    /// Calls the sink's `spec`.
    pub fn spec(&mut self) -> Result<SinkSpec, CallError> {
        match self.call(Call::Spec)? {
            Answer::Spec(r) => r,
            Answer::Load(_) => Err(self.lost("answered another call")),
        }
    }

    /// Calls the sink's `load` (see [`SinkInstance::load`]).
    pub fn load(&mut self, call: LoadCall) -> Result<Result<(), SinkError>, CallError> {
        match self.call(Call::Load(call))? {
            Answer::Load(r) => r,
            Answer::Spec(_) => Err(self.lost("answered another call")),
        }
    }

    /// Makes `span` the parent of the sink's HTTP requests from now on.
    pub fn set_trace(&self, span: &crate::telemetry::Span) {
        if let Ok(mut slot) = self.trace.lock() {
            *slot = span.clone();
        }
    }

    /// HTTP requests the policy refused during the last calls (drained).
    pub fn take_denials(&self) -> Vec<String> {
        self.denials.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }

    /// True when the instance should be replaced before the next call.
    pub fn worn_out(&self) -> bool {
        self.worn_out
    }

    fn call(&mut self, call: Call) -> Result<Answer, CallError> {
        if self.calls.send(call).is_err() {
            return Err(self.lost("its thread has ended"));
        }
        let started = Instant::now();
        let mut stop_seen: Option<Instant> = None;
        loop {
            match self.answers.recv_timeout(POLL) {
                Ok((answer, worn_out)) => {
                    self.worn_out = worn_out;
                    return Ok(answer);
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.lost("its thread has ended")),
                Err(RecvTimeoutError::Timeout) => {}
            }
            if started.elapsed() > self.timeout + SLACK {
                // Blocked in a host call: abandon it (this handle is done).
                return Err(CallError::Timeout { sink: self.sink.clone(), timeout: self.timeout });
            }
            if self.cancel.is_cancelled() {
                let since = *stop_seen.get_or_insert_with(Instant::now);
                if since.elapsed() > STOP_GRACE {
                    return Err(CallError::Stopped { sink: self.sink.clone(), waited: STOP_GRACE });
                }
            }
        }
    }

    fn lost(&self, why: &str) -> CallError {
        CallError::Trap { sink: self.sink.clone(), message: format!("the sink's call thread failed: {why}") }
    }
}
