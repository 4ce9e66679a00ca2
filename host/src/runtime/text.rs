//! Text that comes from a sink is hostile input: an error or retry
//! message, a line it prints, the message of its trap. Before the host
//! prints or stores such text anywhere (stderr, `--json`, the ledger,
//! `failed_jobs/*.exception`), [`sink_text`] makes it safe: every resolved
//! secret is replaced, control characters are escaped (a sink's newline
//! cannot forge a log line, nor an escape sequence repaint the terminal),
//! and it is cut to [`MAX_SINK_TEXT`] bytes with a note of how much was cut.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// The most bytes of one sink text the host keeps (a few KiB: enough for
/// any useful error, nothing a sink can flood a disk or a terminal with).
pub const MAX_SINK_TEXT: usize = 4096;

/// Secrets shorter than this are not replaced inside text: a 3-byte
/// secret would mangle every message it happens to occur in (the host
/// warns once that it cannot be redacted).
pub const MIN_REDACTABLE: usize = 6;

/// What replaces a secret.
pub const REDACTED: &str = "[secret]";

/// Replaces the resolved secret values of a run wherever they occur.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    /// A redactor for `secrets`; those shorter than [`MIN_REDACTABLE`]
    /// bytes are left out (see [`Redactor::unredactable`]).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut kept: Vec<String> = secrets.into_iter().filter(|s| s.len() >= MIN_REDACTABLE).collect();
        kept.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        kept.dedup();
        Redactor { secrets: Arc::new(kept) }
    }

    /// True for a secret value this redactor cannot replace in text.
    pub fn unredactable(secret: &str) -> bool {
        secret.len() < MIN_REDACTABLE
    }

    /// The longest secret, in bytes (0 with none).
    fn longest(&self) -> usize {
        self.secrets.first().map_or(0, String::len)
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }
}

/// A sink's text made safe to print and store (see the module's notes).
pub fn sink_text(raw: &str, redactor: &Redactor) -> String {
    // Cut first (keeping enough to find a secret that crosses the cut),
    // so a 64 MiB message is never copied whole.
    let head = prefix(raw, MAX_SINK_TEXT + redactor.longest());
    let redacted = redactor.redact(head);
    let kept = prefix(&redacted, MAX_SINK_TEXT);
    let mut out = String::with_capacity(kept.len() + 48);
    for c in kept.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    if head.len() < raw.len() || kept.len() < redacted.len() {
        let _ = write!(out, "… [cut to {MAX_SINK_TEXT} bytes of {}]", raw.len());
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_short_ones_are_not() {
        let r = Redactor::new(["s3cr3t-token".to_string(), "abc".to_string(), "s3cr3t".to_string()]);
        assert_eq!(sink_text("auth s3cr3t-token failed; s3cr3t; abc", &r), "auth [secret] failed; [secret]; abc");
        assert!(Redactor::unredactable("abc") && !Redactor::unredactable("abcdef"));
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        let text = sink_text("bad\nLoaded 100 rows\r\u{1b}[2J", &Redactor::default());
        assert!(!text.contains(['\n', '\r', '\u{1b}']), "{text}");
        assert!(text.starts_with("bad\\nLoaded 100 rows\\r\\u{1b}[2J"), "{text}");
    }

    #[test]
    fn long_text_is_cut_with_a_note_and_a_secret_at_the_cut_is_still_replaced() {
        let secret = "0123456789abcdef";
        let r = Redactor::new([secret.to_string()]);
        let raw = format!("{}{secret}{}", "x".repeat(MAX_SINK_TEXT - 4), "y".repeat(64 << 20));
        let text = sink_text(&raw, &r);
        assert!(text.len() < MAX_SINK_TEXT + 100, "{}", text.len());
        assert!(!text.contains("0123"), "no part of the secret survives the cut");
        assert!(text.ends_with(&format!("of {}]", raw.len())), "{}", &text[text.len() - 60..]);
        // Multi-byte characters are never split.
        let wide = "▶".repeat(MAX_SINK_TEXT);
        assert!(sink_text(&wide, &Redactor::default()).starts_with('▶'));
    }
}
