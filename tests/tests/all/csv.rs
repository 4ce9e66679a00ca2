//! `csv_sink`: a local file destination that stays correct across runs,
//! schema changes and replays.

use e2e::{Scratch, stderr};

#[test]
fn csv_files_per_table_with_a_new_file_when_columns_grow() {
    let s = Scratch::new();
    let first =
        s.file("people.jsonl", "{\"id\":1,\"name\":\"Ada, Countess\"}\n{\"id\":2,\"name\":\"say \\\"hi\\\"\"}\n");
    let out = e2e::run(s.command("run", "csv_sink", &["--input", first.to_str().expect("utf8")]));
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(s.out().join("people.csv")).expect("people.csv");
    assert_eq!(csv, "id,name\n1,\"Ada, Countess\"\n2,\"say \"\"hi\"\"\"\n");

    let second = s.file("people.json", "[{\"id\":3,\"name\":\"Grace\",\"born\":\"1906-12-09T00:00:00Z\"}]");
    let out = e2e::run(s.command("run", "csv_sink", &["--input", second.to_str().expect("utf8")]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(s.out().join("people.csv")).expect("csv"), csv, "the first file is untouched");
    let grown = std::fs::read_to_string(s.out().join("people.1.csv")).expect("people.1.csv");
    assert_eq!(grown, "id,name,born\n3,Grace,1906-12-09T00:00:00.000000Z\n");
}
