//! A small real HTTP API on 127.0.0.1 for the reverse-ETL tests: it stores
//! the rows it receives per table, drops requests whose `Idempotency-Key`
//! it has seen, and fails on request the way real APIs do.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

/// What the API has received.
#[derive(Debug, Default)]
pub struct Received {
    /// Stored rows per table, in arrival order (first delivery of each key).
    pub rows: BTreeMap<String, Vec<Value>>,
    /// Idempotency keys stored.
    pub keys: HashSet<String>,
    /// Requests received, including failed and duplicate ones.
    pub requests: u64,
    /// Requests dropped as repeats of a stored key.
    pub duplicates: u64,
    /// `Authorization` header of each request.
    pub authorization: Vec<Option<String>>,
    /// W3C `traceparent` header of each request.
    pub traceparent: Vec<Option<String>>,
}

/// Faults to inject, by request number (1-based, counted across restarts).
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer every Nth request with 503 and `Retry-After: 0`.
    pub fail_every: Option<u64>,
    /// Answer this request with 400.
    pub bad_request_at: Option<u64>,
    /// Before answering this request, stall this long.
    pub stall_at: Option<(u64, Duration)>,
    /// Stop serving (crash) when this request arrives, without answering.
    pub crash_at: Option<u64>,
}

/// A running API server.
pub struct ApiServer {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// What it received (shared across restarts).
    pub received: Arc<Mutex<Received>>,
    faults: Arc<Mutex<Faults>>,
    stop: Arc<AtomicBool>,
    crashed: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Starts a server on a free port.
    pub fn start(faults: Faults) -> Self {
        Self::start_on(0, Arc::new(Mutex::new(Received::default())), Arc::new(Mutex::new(faults)))
    }

    fn start_on(port: u16, received: Arc<Mutex<Received>>, faults: Arc<Mutex<Faults>>) -> Self {
        let server = tiny_http::Server::http(("127.0.0.1", port)).expect("bind the test API");
        let port = server.server_addr().to_ip().expect("ip address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let crashed = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, faults, stop, crashed) = (received.clone(), faults.clone(), stop.clone(), crashed.clone());
            std::thread::spawn(move || serve(server, &received, &faults, &stop, &crashed))
        };
        ApiServer { port, received, faults, stop, crashed, thread: Some(thread) }
    }

    /// The base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// True once the server crashed (on `crash_at`).
    pub fn has_crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// Starts a new server on the same port with the same store, after a crash.
    pub fn restart(mut self) -> Self {
        self.shutdown();
        if let Ok(mut f) = self.faults.lock() {
            f.crash_at = None;
        }
        Self::start_on(self.port, self.received.clone(), self.faults.clone())
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Every stored row of `table`.
    pub fn rows(&self, table: &str) -> Vec<Value> {
        self.received.lock().map(|r| r.rows.get(table).cloned().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    server: tiny_http::Server,
    received: &Mutex<Received>,
    faults: &Mutex<Faults>,
    stop: &AtomicBool,
    crashed: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) else { continue };
        let header = |name: &'static str| {
            req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_string())
        };
        let key = header("Idempotency-Key");
        let auth = header("Authorization");
        let traceparent = header("traceparent");
        let mut body = String::new();
        let _ = req.as_reader().read_to_string(&mut body);
        let n = {
            let Ok(mut r) = received.lock() else { return };
            r.requests += 1;
            r.authorization.push(auth);
            r.traceparent.push(traceparent);
            r.requests
        };
        let f = faults.lock().map(|f| f.clone()).unwrap_or_default();
        if f.crash_at == Some(n) {
            // Drop everything on the floor, like a process that died.
            crashed.store(true, Ordering::SeqCst);
            return;
        }
        if let Some((at, how_long)) = f.stall_at
            && at == n
        {
            std::thread::sleep(how_long);
        }
        if f.fail_every.is_some_and(|every| n % every == 0) {
            let resp = tiny_http::Response::from_string("overloaded")
                .with_status_code(503)
                .with_header(tiny_http::Header::from_bytes("Retry-After", "0").expect("header"));
            let _ = req.respond(resp);
            continue;
        }
        if f.bad_request_at == Some(n) {
            let _ = req.respond(tiny_http::Response::from_string("bad request: row 7 has no id").with_status_code(400));
            continue;
        }
        let Some(key) = key else {
            let _ = req.respond(tiny_http::Response::from_string("missing Idempotency-Key").with_status_code(422));
            continue;
        };
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if let Ok(mut r) = received.lock() {
            if r.keys.contains(&key) {
                r.duplicates += 1;
            } else {
                r.keys.insert(key);
                let table = parsed["table"].as_str().unwrap_or_default().to_string();
                let rows = parsed["rows"].as_array().cloned().unwrap_or_default();
                r.rows.entry(table).or_default().extend(rows);
            }
        }
        let _ = req.respond(tiny_http::Response::from_string("{\"ok\":true}").with_status_code(200));
    }
}
