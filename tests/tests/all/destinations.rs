//! What the real-database tests share: the benchmark data, what a table
//! loaded from it must hold, computed from the input file here (serde_json
//! for structure, `str::parse` for numbers, calendar arithmetic for
//! timestamps), independent of the host's parser; and the crash and
//! retry drills.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::Scratch;

#[path = "../../../host/benches/data.rs"]
#[allow(dead_code)]
mod data;

/// The benchmark data, `rows` rows, in `events.jsonl`.
pub fn events(s: &Scratch, rows: u64) -> PathBuf {
    let path = s.path().join("events.jsonl");
    data::generate(rows, &path, 42).expect("generate the benchmark data");
    path
}

/// The raw text of a number field (`"key":` up to the next `,` or `}`).
fn raw<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    let rest = &line[start..];
    &rest[..rest.find([',', '}']).expect("end of the number")]
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS` followed by `Z`
/// or `±HH:MM`, by the civil-calendar arithmetic, independent of the
/// host's parser.
fn epoch_micros(t: &str) -> i64 {
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let secs = n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    let offset = match &t[19..] {
        "Z" => 0,
        o => (if o.starts_with('-') { -1 } else { 1 }) * (n(20, 22) * 3600 + n(23, 25) * 60),
    };
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    (days * 86_400 + secs - offset) * 1_000_000
}

/// What the root table and the tags child table must hold, as the SQL
/// aggregates below render it.
pub struct Expected {
    pub rows: usize,
    /// `id:user_id` of each row, by id.
    pub user_ids: String,
    pub texts: String,
    pub doubles: String,
    pub times: String,
    pub flags: String,
    pub tags: String,
}

pub fn expected(input: &Path) -> Expected {
    let text = std::fs::read_to_string(input).expect("input");
    let mut lines: Vec<(i64, &str)> = text.lines().map(|l| (raw(l, "id").parse().expect("id"), l)).collect::<Vec<_>>();
    lines.sort_by_key(|(id, _)| *id);
    let (mut user_ids, mut texts, mut doubles, mut times, mut flags, mut tags) =
        (Vec::new(), Vec::new(), String::new(), Vec::new(), Vec::new(), Vec::new());
    for (_, line) in &lines {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let s = |k: &str| v[k].as_str().expect(k).to_string();
        user_ids.push(format!("{}:{}", raw(line, "id"), raw(line, "user_id")));
        let a = &v["address"];
        texts.push(
            [s("name"), s("email"), s("country"), s("note"), a["city"].as_str().expect("city").into()].join("|")
                + "|"
                + a["zip"].as_str().expect("zip"),
        );
        for d in [raw(line, "score"), raw(line, "amount"), raw(line, "lat")] {
            doubles.push_str(&format!("{:016x}", d.parse::<f64>().expect("a double").to_bits()));
        }
        times.push(format!("{},{}", epoch_micros(&s("created_at")), epoch_micros(&s("updated_at"))));
        flags.push(v["active"].as_bool().expect("active").to_string());
        tags.extend(v["tags"].as_array().expect("tags").iter().map(|t| t.as_str().expect("tag").to_string()));
    }
    Expected {
        rows: lines.len(),
        user_ids: user_ids.join(","),
        texts: texts.join("\n"),
        doubles,
        times: times.join(";"),
        flags: flags.join(","),
        tags: tags.join(","),
    }
}

/// A number from the clock, for kill delays: no two runs kill at the same
/// instants, and the assertion does not depend on when they fall.
fn jitter_ms(lo: u64, hi: u64, n: u64) -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    lo + (u64::from(nanos) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % (hi - lo)
}

/// Starts `run()` ten times and kills each (SIGKILL) after a delay the
/// clock picks: during normalizing, loading or between batches.
pub fn kill_ten_times(mut run: impl FnMut() -> Command) {
    for n in 0..10 {
        let mut child: Child = run().stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start host");
        std::thread::sleep(Duration::from_millis(jitter_ms(50, 1500, n)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
}

/// The lines of a child's stderr, as they come.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads `lines` until the host says the sink asked to retry; returns the
/// lines seen. Fails after two minutes without one.
pub fn wait_for_retry(lines: &mpsc::Receiver<String>) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.iter().any(|l: &String| l.contains("sink asked to retry")) {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no retry after the server stopped: {}", seen.join("\n")),
        }
    }
    seen
}
