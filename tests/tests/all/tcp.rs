//! TCP grants (`--allow-tcp`, `allowed_tcp`): a sink reaches a granted
//! address and nothing else, and a refusal names the flag. The sink is
//! `faulty` with `TCP_CONNECT=ADDR` (connect, send `ping`, report the
//! answer); the servers are real listeners on 127.0.0.1 that count
//! connections, so "refused" is seen from the server's side too.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use e2e::{Scratch, numbered, stderr};

/// A server on 127.0.0.1 that answers `pong` and counts connections.
struct Pong {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Pong {
    fn start() -> Pong {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"pong\n");
            }
        });
        Pong { port, connections }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// `faulty` connecting to `target`, with `args` (grants).
fn connect(s: &Scratch, target: &str, args: &[&str]) -> Output {
    let input = s.file("t.jsonl", &numbered(1, "x"));
    let tcp = format!("TCP_CONNECT={target}");
    let mut all = vec!["--input", input.to_str().expect("utf8"), "--env", &tcp, "--max-attempts", "1"];
    all.extend_from_slice(args);
    s.run_faulty(&all)
}

#[test]
fn an_ungranted_connection_is_refused_and_names_the_flag() {
    let server = Pong::start();
    let s = Scratch::new();
    let out = connect(&s, &server.addr(), &[]);
    let err = stderr(&out);
    assert!(err.contains(&format!("tcp {}: connect failed", server.addr())), "{err}");
    assert!(err.contains(&format!("sandbox denied: TCP connection to {}", server.addr())), "{err}");
    assert!(err.contains("--allow-tcp HOST:PORT"), "names the flag: {err}");
    assert_eq!(server.connections(), 0, "nothing reached the server");
}

#[test]
fn a_granted_address_is_reached_and_only_that_one() {
    let (granted, other) = (Pong::start(), Pong::start());
    let s = Scratch::new();
    let out = connect(&s, &granted.addr(), &["--allow-tcp", &granted.addr()]);
    let err = stderr(&out);
    assert!(err.contains(&format!("tcp {}: connected, answer \"pong\\n\"", granted.addr())), "{err}");
    assert!(granted.connections() >= 1);

    // Granted one port, the sink cannot reach another.
    let s = Scratch::new();
    let out = connect(&s, &other.addr(), &["--allow-tcp", &granted.addr()]);
    let err = stderr(&out);
    assert!(err.contains(&format!("sandbox denied: TCP connection to {}", other.addr())), "{err}");
    assert_eq!(other.connections(), 0, "the other port saw nothing");

    // The same grant from the sink's config section.
    let s = Scratch::new();
    s.file(".dlt/config.toml", &format!("[destination.faulty]\nallowed_tcp = [\"{}\"]\n", granted.addr()));
    let before = granted.connections();
    let out = connect(&s, &granted.addr(), &["--project-dir", s.path().to_str().expect("utf8")]);
    assert!(stderr(&out).contains("connected, answer"), "{}", stderr(&out));
    assert!(granted.connections() > before);
}

#[test]
fn a_name_is_resolved_once_and_cannot_grant_a_local_address() {
    let server = Pong::start();
    let s = Scratch::new();
    // A name that resolves to loopback is not a grant of loopback.
    let name = format!("db.example.test:{}", server.port);
    let fixed = format!("{name}:127.0.0.1");
    let out = connect(&s, &server.addr(), &["--allow-tcp", &name, "--resolve", &fixed]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("local addresses that a name cannot grant"), "{err}");
    assert!(err.contains(&format!("--allow-tcp {}", server.addr())), "says what to grant: {err}");
    assert_eq!(server.connections(), 0);

    // A bad grant is refused when the flags are read.
    let out = connect(&s, &server.addr(), &["--allow-tcp", "db.example.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("expected HOST:PORT"), "{}", stderr(&out));
}
