//! Names that come from outside the host (a sink's `spec().name`, a
//! `--pipeline`, a table) and the one function that turns such a name into
//! a path: [`safe_join`], which proves the path stays inside its directory.
//!
//! It sits below every other module: the runtime checks a sink's name when
//! the spec is read, the package layer joins every pipeline directory
//! through it.

use std::path::{Component, Path, PathBuf};

/// The longest sink name (the WIT asks for lower snake_case).
pub const MAX_SINK_NAME: usize = 64;
/// The longest pipeline name (one path component).
pub const MAX_COMPONENT: usize = 128;
/// The longest file name most file systems take, in bytes (job file
/// names, which embed a table name, may be this long).
pub const MAX_FILE_NAME: usize = 255;

/// A name the host refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {shown} is refused: {why}")]
pub struct NameError {
    /// What the name is for (`sink name`, `pipeline name`).
    pub what: &'static str,
    /// The name, quoted and escaped (never printed raw: it may hold
    /// newlines or escape sequences), and cut to 80 characters.
    pub shown: String,
    /// The rule it breaks.
    pub why: String,
}

/// `name` quoted and escaped for a message, at most 80 characters.
pub fn shown(name: &str) -> String {
    let cut: String = name.chars().take(80).collect();
    let more = if cut.len() < name.len() { "…" } else { "" };
    format!("{:?}{more}", cut)
}

/// A sink's name as `spec()` returns it: lower snake_case (`a`–`z`,
/// `0`–`9`, `_`, starting with a letter), 1 to [`MAX_SINK_NAME`]
/// characters. It names the pipeline directory by default, the config
/// section `[destination.<name>]` and the `[<name>]` prefix of log lines,
/// so nothing else may pass.
pub fn check_sink_name(name: &str) -> Result<&str, NameError> {
    let refuse = |why: &str| NameError { what: "sink name", shown: shown(name), why: why.to_string() };
    if name.is_empty() || name.len() > MAX_SINK_NAME {
        return Err(refuse(&format!("a sink name has 1 to {MAX_SINK_NAME} characters")));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(refuse("a sink name is lower snake_case: a-z, 0-9 and _, starting with a letter"));
    }
    Ok(name)
}

/// A name that becomes one path component (a pipeline directory): not
/// empty, not `.` or `..` or starting with `.`, no `/` or `\`, no control
/// character, at most [`MAX_COMPONENT`] bytes.
pub fn check_component<'a>(name: &'a str, what: &'static str) -> Result<&'a str, NameError> {
    check_name(name, what, MAX_COMPONENT)
}

/// Like [`check_component`], for a file name of up to [`MAX_FILE_NAME`]
/// bytes.
pub fn check_file_name<'a>(name: &'a str, what: &'static str) -> Result<&'a str, NameError> {
    check_name(name, what, MAX_FILE_NAME)
}

fn check_name<'a>(name: &'a str, what: &'static str, max: usize) -> Result<&'a str, NameError> {
    let refuse = |why: &str| NameError { what, shown: shown(name), why: why.to_string() };
    if name.is_empty() || name.len() > max {
        return Err(refuse(&format!("it must have 1 to {max} bytes")));
    }
    if name.starts_with('.') {
        return Err(refuse("it must not start with `.`"));
    }
    if name.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(refuse("it must not hold `/`, `\\` or control characters"));
    }
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(name),
        _ => Err(refuse("it must be one plain path component")),
    }
}

/// `dir/name` for a `name` that [`check_component`] accepts: the only way
/// the host makes a path from text it did not choose, so such a path is
/// always directly inside `dir`.
pub fn safe_join(dir: &Path, name: &str, what: &'static str) -> Result<PathBuf, NameError> {
    Ok(dir.join(check_component(name, what)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_names_are_lower_snake_case() {
        for ok in ["capture", "http_sink", "a", "s3_v2"] {
            assert_eq!(check_sink_name(ok), Ok(ok));
        }
        for bad in ["", "../x", "/etc", "Capture", "my-sink", "1sink", "_x", "a\nb", "a b", &"x".repeat(65)] {
            let err = check_sink_name(bad).expect_err(bad);
            assert!(!err.to_string().contains('\n'), "no raw newline in the message: {err}");
        }
    }

    #[test]
    fn components_stay_inside_their_directory() {
        let dir = Path::new("/p");
        for ok in ["capture", "my pipeline", "a.b", "ünïcode", "x-y_z"] {
            assert_eq!(safe_join(dir, ok, "pipeline name").expect(ok), dir.join(ok));
        }
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "a\\b", ".hidden", "a\nb", "\u{1b}[31m", &"x".repeat(129)] {
            assert!(safe_join(dir, bad, "pipeline name").is_err(), "{bad:?}");
        }
    }
}
