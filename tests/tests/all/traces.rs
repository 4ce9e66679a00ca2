//! `--otlp-endpoint`: the spans of a run, received by an OTLP/HTTP receiver
//! on 127.0.0.1 and decoded with the official protobuf types, and the
//! `traceparent` the test API saw on the sink's requests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::api::{ApiServer, Faults};
use e2e::{Scratch, stderr};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

const SECRET: &str = "otlp-secret-key-7781";
const ROW_VALUE: &str = "row-value-5b1e9c";

/// An OTLP/HTTP receiver: keeps the body of every POST to /v1/traces.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind the OTLP receiver");
        let port = server.server_addr().to_ip().expect("ip").port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let Ok(Some(mut req)) = server.recv_timeout(Duration::from_millis(50)) else { continue };
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let status = if req.url() == "/v1/traces" {
                    kept.lock().expect("lock").push(body);
                    200
                } else {
                    404
                };
                let _ = req.respond(tiny_http::Response::from_data(Vec::new()).with_status_code(status));
            }
        });
        Receiver { port, bodies, stop, thread: Some(thread) }
    }

    fn spans(&self) -> Vec<Span> {
        let bodies = self.bodies.lock().expect("lock");
        bodies
            .iter()
            .flat_map(|b| {
                ExportTraceServiceRequest::decode(b.as_slice()).expect("an OTLP protobuf body").resource_spans
            })
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    })
}

#[test]
fn a_run_exports_its_span_tree_and_the_api_sees_the_batch_traceparent() {
    let s = Scratch::new();
    let api = ApiServer::start(Faults::default());
    let otlp = Receiver::start();
    let rows: String = (0..20).map(|i| format!("{{\"id\":{i},\"note\":\"{ROW_VALUE}\"}}\n")).collect();
    let input = s.file("orders.jsonl", &rows);
    let url = format!("--set=url={}/v1", api.url());
    let allow = api.url();
    let endpoint = format!("http://127.0.0.1:{}", otlp.port);
    let mut cmd = s.command_for(
        "run",
        &e2e::guest("http_sink"),
        &[
            "--input",
            input.to_str().expect("utf8"),
            "--batch-size",
            "5",
            "--workers",
            "1",
            "--allow-host",
            &allow,
            &url,
            "--otlp-endpoint",
            &endpoint,
        ],
    );
    cmd.env("DESTINATION__HTTP_SINK__API_KEY", SECRET);
    let out = e2e::run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));

    let spans = otlp.spans();
    let by_name = |name: &str| spans.iter().filter(|s| s.name == name).collect::<Vec<_>>();
    let ids: BTreeMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let parent_name = |s: &Span| ids.get(&s.parent_span_id).map(|p| p.name.clone()).unwrap_or_default();
    let [run] = by_name("dlthost.run")[..] else {
        panic!("one run span: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
    };
    assert!(run.parent_span_id.is_empty(), "the run is the root");
    assert_eq!(attr(run, "dlthost.sink").as_deref(), Some("http_sink"));
    assert_eq!(attr(run, "dlthost.rows").as_deref(), Some("20"));
    let [package] = by_name("dlthost.package")[..] else { panic!("one package span") };
    assert_eq!(parent_name(package), "dlthost.run");
    let [job] = by_name("dlthost.job")[..] else { panic!("one job span") };
    assert_eq!(parent_name(job), "dlthost.package");
    assert_eq!(attr(job, "dlthost.table").as_deref(), Some("orders"));
    let batches = by_name("dlthost.batch");
    assert_eq!(batches.len(), 4, "20 rows in batches of 5");
    let mut keys = BTreeSet::new();
    for b in &batches {
        assert_eq!(parent_name(b), "dlthost.job");
        assert_eq!(attr(b, "dlthost.rows").as_deref(), Some("5"));
        assert_eq!(attr(b, "dlthost.attempt").as_deref(), Some("1"));
        assert_eq!(attr(b, "dlthost.outcome").as_deref(), Some("delivered"));
        assert_eq!(attr(b, "dlthost.sink").as_deref(), Some("http_sink"));
        keys.insert(attr(b, "dlthost.idempotency_key").expect("a key"));
    }
    assert_eq!(keys.len(), 4, "a key per batch");
    let posts = by_name("POST");
    assert_eq!(posts.len(), 4, "one HTTP request per batch");
    for p in &posts {
        assert_eq!(parent_name(p), "dlthost.batch", "the request is a child of its batch");
        assert_eq!(attr(p, "http.response.status_code").as_deref(), Some("200"));
        assert_eq!(attr(p, "server.address").as_deref(), Some("127.0.0.1"));
    }
    let trace_id = &run.trace_id;
    assert!(spans.iter().all(|s| &s.trace_id == trace_id), "one trace");

    // The API saw each request's own span as its parent.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let post_ids: BTreeSet<String> = posts.iter().map(|p| hex(&p.span_id)).collect();
    let seen = api.received.lock().expect("lock").traceparent.clone();
    assert_eq!(seen.len(), 4);
    for t in seen {
        let t = t.expect("a traceparent header on every request");
        let parts: Vec<&str> = t.split('-').collect();
        assert_eq!(parts.len(), 4, "{t}");
        assert_eq!((parts[0], parts[1], parts[3]), ("00", hex(trace_id).as_str(), "01"), "{t}");
        assert!(post_ids.contains(parts[2]), "{t}: the span of that request");
    }

    // Nothing exported holds the secret, a row value or the URL's path.
    let bodies = otlp.bodies.lock().expect("lock").concat();
    let text = String::from_utf8_lossy(&bodies);
    assert!(!text.contains(SECRET), "the secret was exported");
    assert!(!text.contains(ROW_VALUE), "a row value was exported");
    assert!(spans.iter().flat_map(|s| &s.attributes).all(|a| !a.key.starts_with("url.path")
        && !a.key.starts_with("url.query")
        && !a.key.starts_with("http.request.header")));
}

#[test]
fn without_an_endpoint_the_sink_gets_no_traceparent() {
    let s = Scratch::new();
    let api = ApiServer::start(Faults::default());
    let input = s.file("orders.jsonl", &e2e::numbered(3, "x"));
    let url = format!("--set=url={}/v1", api.url());
    let allow = api.url();
    let mut cmd = s.command_for(
        "run",
        &e2e::guest("http_sink"),
        &["--input", input.to_str().expect("utf8"), "--allow-host", &allow, &url],
    );
    cmd.env("DESTINATION__HTTP_SINK__API_KEY", SECRET).env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    let out = e2e::run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let seen = api.received.lock().expect("lock").traceparent.clone();
    assert!(!seen.is_empty() && seen.iter().all(Option::is_none), "{seen:?}");
}
