//! Mutation fuzzing of the JSON Lines parser against serde_json, for as long
//! as asked: lines of a JSON Lines file (or a built-in sample) are cut,
//! spliced with JSON fragments and bad bytes, and each result must be
//! accepted or refused by both parsers alike, without a panic. Every
//! document also goes through two normalizers, one by the fast path
//! (`push_line`, the tree when it declines) and one by the tree alone:
//! their rows and schemas must be the same. The test suite runs short
//! seeded versions of both; this is the long one.
//!
//! Usage: cargo run --release --example fuzz_parser -- SECONDS [FILE.jsonl] [SEED]

use std::time::{Duration, Instant};

use host::input::Node;
use host::normalize::{NormalizeSettings, Normalizer, Row};
use host::schema::Schema;

/// What mutations splice in: structure, escapes, number edges, bad UTF-8.
const PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"",
    b"\\",
    b"\\u",
    b"d83d",
    b"\\ud800",
    b"-",
    b"0",
    b"1e",
    b".",
    b"e+",
    b"true",
    b"nul",
    b" ",
    b"\n",
    b"\xff",
    b"\xc3",
    b"\xa9",
    b"\x00",
    b"99999999999999999999999",
];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(seconds) = args.get(1).and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: fuzz_parser SECONDS [FILE.jsonl] [SEED]");
        std::process::exit(2);
    };
    let mut corpus: Vec<Vec<u8>> = vec![
        br#"{"a":"\u00e9\ud83d\ude00","b":[1,-0,1e5,1.5E-3,[],{}],"c":null,"d":true,"a":12345678901234567890123}"#
            .to_vec(),
    ];
    if let Some(path) = args.get(2) {
        let data = std::fs::read(path)?;
        corpus.extend(data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).take(10_000).map(<[u8]>::to_vec));
    }
    let mut seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0x1234_5678_9abc_def1);
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    // Nesting 0 (nested values kept whole) and 1 (flattened, lists as
    // child tables): a fast-path and a tree-only normalizer for each.
    let settings = |nesting: u32| NormalizeSettings {
        naming_convention: host::normalize::NamingConvention::Direct,
        max_nesting_level: nesting,
        skip_dlt_columns_and_tables: true,
        schema_hints: Default::default(),
    };
    let pair = |nesting: u32| -> std::io::Result<[Normalizer; 2]> {
        let one = || Normalizer::new(&settings(nesting), Schema::default(), "1").map_err(std::io::Error::other);
        Ok([one()?, one()?])
    };
    let mut pairs = [pair(0)?, pair(1)?];
    let (mut fast_rows, mut tree_rows, mut taken) = (Vec::new(), Vec::new(), 0u64);
    let started = Instant::now();
    let (mut tried, mut accepted, mut disagreed) = (0u64, 0u64, 0u64);
    while started.elapsed() < Duration::from_secs(seconds) {
        let mut doc = corpus[next(corpus.len())].clone();
        for _ in 0..=next(4) {
            let at = next(doc.len() + 1);
            match next(4) {
                0 => doc.truncate(at),
                1 => {
                    let piece = PIECES[next(PIECES.len())];
                    doc.splice(at..at, piece.iter().copied());
                }
                2 if at < doc.len() => doc[at] = next(256) as u8,
                _ if at < doc.len() => {
                    doc.remove(at);
                }
                _ => {}
            }
        }
        let ours = Node::parse(&doc);
        let theirs = serde_json::from_slice::<serde_json::Value>(&doc);
        tried += 1;
        accepted += u64::from(ours.is_ok());
        // The fast path against the tree, on the same document.
        let nesting = tried as usize % 2;
        let [fast, tree] = &mut pairs[nesting];
        fast_rows.clear();
        tree_rows.clear();
        let by_tree = |n: &mut Normalizer, rows: &mut Vec<Row>| match &ours {
            Ok(record) => n.push("t", record, rows).is_ok(),
            Err(_) => false,
        };
        let fast_ok = if fast.push_line("t", &doc, &mut fast_rows) {
            taken += 1;
            true
        } else {
            by_tree(fast, &mut fast_rows)
        };
        let tree_ok = by_tree(tree, &mut tree_rows);
        for row in fast_rows.iter_mut().chain(tree_rows.iter_mut()) {
            row.values.sort_by_key(|(c, _)| *c);
        }
        if fast_ok != tree_ok || fast_rows != tree_rows || fast.schema() != tree.schema() {
            disagreed += 1;
            println!("fast path and tree differ (nesting {nesting}): {:?}", String::from_utf8_lossy(&doc));
            // Start over, so one difference is reported once.
            pairs[nesting] = pair(nesting as u32)?;
        }
        if ours.is_ok() != theirs.is_ok() {
            disagreed += 1;
            println!(
                "disagree (ours {}, serde_json {}): {:?}",
                ours.is_ok(),
                theirs.is_ok(),
                String::from_utf8_lossy(&doc)
            );
        }
    }
    println!(
        "{tried} documents in {seconds} s: {accepted} accepted, {taken} normalized on the fast path, \
         {disagreed} disagreements (parsers, or fast path and tree)"
    );
    if disagreed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
