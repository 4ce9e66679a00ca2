//! Guest stdout and stderr → the host's stderr, one line at a time, each
//! prefixed with the sink's name, so the host's stdout stays free for
//! machine-readable output. Output beyond a byte cap is dropped (with one
//! notice), so a chatty or hostile sink cannot flood the terminal or disk.
//! Each line has the run's secrets replaced and its control characters
//! escaped (see [`super::text`]) before it is written.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::text::Redactor;

/// A line-buffered, prefixed, capped writer shared by a Store's stdout and
/// stderr.
#[derive(Clone)]
pub struct GuestLog {
    inner: Arc<Mutex<LogState>>,
}

struct LogState {
    prefix: String,
    redactor: Redactor,
    /// The last line the guest printed during the current call (cleaned)
    /// that says something of its own, for the message of a trap: a
    /// panic's or an exception's own words (see [`is_wrapper_line`]).
    last: Option<String>,
    pending: Vec<u8>,
    written: u64,
    cap: u64,
    truncated: bool,
}

impl GuestLog {
    /// A log writing lines as `[<sink>] <line>` up to `cap` bytes in total.
    pub fn new(sink: &str, cap: u64, redactor: Redactor) -> Self {
        GuestLog {
            inner: Arc::new(Mutex::new(LogState {
                prefix: format!("[{sink}] "),
                redactor,
                last: None,
                pending: Vec::new(),
                written: 0,
                cap,
                truncated: false,
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let Ok(mut s) = self.inner.lock() else { return };
        s.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(pos) = s.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = s.pending.drain(..=pos).collect();
            s.emit(&line, &mut out);
        }
        // A guest that never writes a newline still must not grow memory.
        if s.pending.len() > 1 << 20 {
            let mut line = std::mem::take(&mut s.pending);
            line.push(b'\n');
            s.emit(&line, &mut out);
        }
        if !out.is_empty() {
            let _ = std::io::stderr().lock().write_all(&out);
        }
    }

    /// Forgets the last line (at the start of a call).
    pub fn start_call(&self) {
        if let Ok(mut s) = self.inner.lock() {
            s.last = None;
        }
    }

    /// The last line the guest printed during this call, if any.
    pub fn last_line(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|s| s.last.clone())
    }

    /// Writes out a last line without a newline (at the end of a call).
    pub fn flush(&self) {
        let Ok(mut s) = self.inner.lock() else { return };
        if s.pending.is_empty() {
            return;
        }
        let mut line = std::mem::take(&mut s.pending);
        line.push(b'\n');
        let mut out = Vec::new();
        s.emit(&line, &mut out);
        let _ = std::io::stderr().lock().write_all(&out);
    }
}

/// Lines a guest language's runtime prints after an uncaught exception,
/// which wrap it without saying what it was. componentize-py prints the
/// Python traceback (its last line names the exception), then a Rust panic
/// at its own `runtime/src/lib.rs` with a fixed message; componentize-js
/// prints the error (`... (received `Error: boom`) ...`), `Stack:`, the
/// frames (`  name@file:line:column`) and an abort notice. The trap's
/// message takes the last line before these. `raw` is the line as printed.
fn is_wrapper_line(raw: &str) -> bool {
    let line = raw.trim();
    let js_frame = raw.starts_with(' ') && line.contains('@') && line.ends_with(|c: char| c.is_ascii_digit());
    line == "Python function threw an unexpected exception"
        || (line.starts_with("thread '") && line.contains(" panicked at runtime/src/"))
        || line == "Stack:"
        || line == "Redirecting call to abort() to mozalloc_abort"
        || js_frame
}

/// Lines a guest's runtime prints after a panic that mean nothing for a
/// sink: the host cannot pass `RUST_BACKTRACE` to it, and the backtrace is
/// in the trap with `-vv`.
fn is_runtime_hint(line: &str) -> bool {
    line.starts_with("note: run with `RUST_BACKTRACE")
        || line.starts_with("note: Some details are omitted")
        || line == "stack backtrace:"
}

impl LogState {
    fn emit(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
        let text = text.strip_suffix('\r').unwrap_or(&text);
        if is_runtime_hint(text) {
            return;
        }
        if !text.trim().is_empty() && !is_wrapper_line(text) {
            self.last = Some(super::text::sink_text(text.trim(), &self.redactor));
        }
        if self.written + line.len() as u64 > self.cap {
            if !self.truncated {
                self.truncated = true;
                out.extend_from_slice(
                    format!(
                        "{}(output beyond {} bytes dropped; raise with --max-guest-output)\n",
                        self.prefix, self.cap
                    )
                    .as_bytes(),
                );
            }
            return;
        }
        self.written += line.len() as u64;
        out.extend_from_slice(self.prefix.as_bytes());
        let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(line));
        let text = text.strip_suffix('\r').unwrap_or(&text);
        out.extend_from_slice(clean_line(text, &self.redactor).as_bytes());
        out.push(b'\n');
    }
}

/// One line of guest output with secrets replaced and control characters
/// escaped (tabs stay). Lines are already bounded by the output cap.
fn clean_line(line: &str, redactor: &Redactor) -> String {
    let redacted = redactor.redact(line);
    let mut out = String::with_capacity(redacted.len());
    for c in redacted.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for GuestLog {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trap_names_the_exception_not_the_runtime_that_wrapped_it() {
        let log = GuestLog::new("py", 1 << 20, Redactor::new(["s3cr3t-value".to_string()]));
        log.start_call();
        log.write(
            b"Traceback (most recent call last):\n  File \"/0/app.py\", line 10, in load\n\
              ModuleNotFoundError: No module named 's3cr3t-value'\n\n\
              thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\n\
              Python function threw an unexpected exception\n",
        );
        assert_eq!(log.last_line().as_deref(), Some("ModuleNotFoundError: No module named '[secret]'"));
        // componentize-js: the error, then its stack and an abort notice.
        log.start_call();
        log.write(
            b"invalid variant tag value `undefined` (received `Error: boom`) specified for `SinkError`\nStack:\n  \
              export_load@/tmp/250f811a5693/sources/initializer.js:733:17\n\nRedirecting call to abort() to mozalloc_abort\n",
        );
        assert!(log.last_line().is_some_and(|l| l.contains("(received `Error: boom`)")), "{:?}", log.last_line());
        // A Rust sink's panic message is its own last line.
        log.start_call();
        log.write(b"thread '<unnamed>' panicked at src/lib.rs:12:5:\ninjected panic at row 1\n");
        assert_eq!(log.last_line().as_deref(), Some("injected panic at row 1"));
    }
}
