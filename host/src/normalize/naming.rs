//! Naming conventions: how keys of the input become table and column names.
//!
//! Two of dlt's conventions, with its exact rules: `direct` (dlt's default for
//! custom destinations) and `snake_case`.

use std::sync::LazyLock;

use regex::Regex;

/// The name dlt gives an empty or whitespace-only key.
pub const EMPTY_KEY: &str = "_empty";

/// A naming convention: identifier rules plus the path separator that joins
/// nested names (`address▶city`, `people__tags`).
/// Recorded in packages by its name (`direct`, `snake_case`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamingConvention {
    /// Keeps names as they are, except for a few characters; joins with `▶`.
    Direct,
    /// dlt's `snake_case`; joins with `__`.
    #[serde(alias = "sql_cs_v1")]
    SnakeCase,
}

impl NamingConvention {
    /// Parses a convention name as dlt spells it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "direct" => Some(NamingConvention::Direct),
            "snake_case" | "sql_cs_v1" => Some(NamingConvention::SnakeCase),
            _ => None,
        }
    }

    /// The name as dlt spells it.
    pub fn name(self) -> &'static str {
        match self {
            NamingConvention::Direct => "direct",
            NamingConvention::SnakeCase => "snake_case",
        }
    }

    /// Joins the parts of a nested path.
    pub fn separator(self) -> &'static str {
        match self {
            NamingConvention::Direct => "▶",
            NamingConvention::SnakeCase => "__",
        }
    }

    /// Normalizes a key or table name as dlt's `normalize_path` does: the
    /// text is split at the separator, blank parts are dropped, each other
    /// part is trimmed and normalized on its own, and the parts are joined
    /// again. So `__dunder__` is `dunder` in `snake_case`, `a___b` stays
    /// (`a` and `_b`), and `x▶▶y` is `x▶y` in `direct`.
    ///
    /// A blank key is [`EMPTY_KEY`], as in dlt. So is a key made of
    /// separators only (`__`), where dlt gets an empty name and drops the
    /// value: a documented difference, we keep it.
    pub fn identifier(self, raw: &str) -> String {
        let sep = self.separator();
        let mut out = String::with_capacity(raw.len());
        for part in raw.split(sep).map(str::trim).filter(|p| !p.is_empty()) {
            if !out.is_empty() {
                out.push_str(sep);
            }
            match self {
                NamingConvention::Direct => out.push_str(&direct(part)),
                NamingConvention::SnakeCase => out.push_str(&snake_case(part)),
            }
        }
        if out.is_empty() { EMPTY_KEY.to_string() } else { out }
    }

    /// The key has no part that is not blank (`""`, `" "`, `__` in
    /// `snake_case`): a list under it adds no fragment to its child table's
    /// name, as in dlt.
    pub fn is_blank(self, raw: &str) -> bool {
        raw.split(self.separator()).all(|p| p.trim().is_empty())
    }
}

fn direct(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\'' | '"' => '_',
            c => c,
        })
        .collect()
}

static BREAK_1: LazyLock<Regex> = LazyLock::new(|| Regex::new("([^_])([A-Z][a-z]+)").expect("valid regex"));
static BREAK_2: LazyLock<Regex> = LazyLock::new(|| Regex::new("([a-z0-9])([A-Z])").expect("valid regex"));
static UNDERSCORES: LazyLock<Regex> = LazyLock::new(|| Regex::new("__+").expect("valid regex"));
static NON_ALNUM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[^a-zA-Z0-9_]+").expect("valid regex"));

fn snake_case(s: &str) -> String {
    // dlt first maps a few symbols to letters so that `x+` and `x-` differ.
    let reduced: String = s
        .chars()
        .map(|c| match c {
            '+' | '*' => 'x',
            '-' => '_',
            '@' => 'a',
            '|' => 'l',
            c => c,
        })
        .collect();
    let ident = NON_ALNUM.replace_all(&reduced, "_");
    let ident = BREAK_1.replace_all(&ident, "${1}_${2}");
    let mut ident = BREAK_2.replace_all(&ident, "${1}_${2}").to_lowercase();
    if ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident.insert(0, '_');
    }
    let stripped = ident.trim_end_matches('_');
    let trailing = ident.len() - stripped.len();
    let ident = format!("{stripped}{}", "x".repeat(trailing));
    // Runs of underscores become one, so that no part holds the `__`
    // separator (`g- h` is `g_h`, not `g__h`).
    UNDERSCORES.replace_all(&ident, "_").into_owned()
}

/// Memoizes identifier normalization: inputs repeat the same keys on every row.
#[derive(Debug)]
pub struct Namer {
    convention: NamingConvention,
    cache: rustc_hash::FxHashMap<String, String>,
}

impl Namer {
    /// A namer for `convention` with an empty cache.
    pub fn new(convention: NamingConvention) -> Self {
        Namer { convention, cache: Default::default() }
    }

    /// The convention this namer applies.
    pub fn convention(&self) -> NamingConvention {
        self.convention
    }

    /// Normalizes one identifier.
    pub fn identifier(&mut self, raw: &str) -> &str {
        if !self.cache.contains_key(raw) {
            let name = self.convention.identifier(raw);
            self.cache.insert(raw.to_string(), name);
        }
        &self.cache[raw]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_dlt() {
        let cases = [
            ("Full Name", "full_name"),
            ("geoPos", "geo_pos"),
            ("PErson", "p_erson"),
            ("CamelCaseID", "camel_case_id"),
            ("1abc", "_1abc"),
            ("a-b", "a_b"),
            ("x+", "xx"),
            ("trail_", "trailx"),
            ("héllo", "h_llo"),
            ("a___b", "a___b"),
            ("__dunder__", "dunder"),
            ("a__", "a"),
            ("__b", "b"),
            ("g- h", "g_h"),
            ("c- _b", "c_b"),
            ("x__y", "x__y"),
            ("a__ __b", "a__b"),
            ("___", "x"),
            ("_", "x"),
            ("a___", "a__x"),
            ("1__2", "_1___2"),
            ("Ab__Cd", "ab__cd"),
            ("__My__Table__", "my__table"),
            ("__", "_empty"),
            ("  ", "_empty"),
            ("", "_empty"),
            ("camelCase", "camel_case"),
        ];
        for (raw, want) in cases {
            assert_eq!(NamingConvention::SnakeCase.identifier(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn direct_keeps_case_and_spaces() {
        let d = NamingConvention::Direct;
        assert_eq!(d.identifier(" Full Name "), "Full Name");
        assert_eq!(d.identifier("camelCase"), "camelCase");
        assert_eq!(d.identifier("a▶b\"c'd\ne"), "a▶b_c_d_e", "dlt 1.31 keeps ▶ between parts");
        assert_eq!(d.identifier("\t"), "_empty");
        assert_eq!(d.identifier("a▶▶b"), "a▶b", "empty path parts are dropped");
        assert_eq!(d.identifier(" a ▶ b "), "a▶b");
        assert_eq!(d.identifier("▶x▶"), "x");
        assert!(d.is_blank("▶") && d.is_blank(" ") && !d.is_blank("▶x"));
    }
}
