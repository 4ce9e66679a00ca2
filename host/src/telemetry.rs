//! Traces: OpenTelemetry spans for a run, its packages, jobs and batches,
//! and the sink's HTTP requests, exported over OTLP/HTTP when the CLI
//! installs an exporter (`--otlp-endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! Without one, the global tracer is OpenTelemetry's no-op: spans are not
//! recorded, nothing is exported, and no `traceparent` header is added.
//! Spans are made per batch at most, never per row.
//!
//! What a span may carry is decided here: names of sinks, pipelines and
//! tables, counts, attempts, idempotency keys (hashes), outcomes in one
//! word, and for HTTP the method, scheme, host, port and status. Never a
//! secret, a row value, a sink's message, a URL's path or query, or a
//! header value.

use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue, global};

/// The instrumentation scope of every span.
const SCOPE: &str = "dlthost";

/// A span in progress; ended when dropped (or by [`Span::end`]).
#[derive(Debug, Clone, Default)]
pub struct Span {
    cx: Context,
}

/// One attribute of a span.
pub enum Attr<'a> {
    /// A name or an identifier.
    Text(&'static str, &'a str),
    /// A count.
    Count(&'static str, u64),
}

impl Span {
    /// Starts `name` as a child of `parent` (a fresh trace for the
    /// default span).
    fn start(name: &'static str, parent: &Span, kind: SpanKind, attrs: &[Attr<'_>]) -> Span {
        let tracer = global::tracer(SCOPE);
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attrs.iter().map(key_value).collect::<Vec<_>>())
            .start_with_context(&tracer, &parent.cx);
        Span { cx: parent.cx.with_span(span) }
    }

    /// A client span (an outgoing HTTP request) under `self`.
    pub fn client(&self, name: &'static str, attrs: &[Attr<'_>]) -> Span {
        Span::start(name, self, SpanKind::Client, attrs)
    }

    /// An internal span (run, package, job, batch).
    pub fn child(&self, name: &'static str, attrs: &[Attr<'_>]) -> Span {
        Span::start(name, self, SpanKind::Internal, attrs)
    }

    /// Adds attributes (an outcome, a final count).
    pub fn set(&self, attrs: &[Attr<'_>]) {
        let span = self.cx.span();
        for a in attrs {
            span.set_attribute(key_value(a));
        }
    }

    /// Marks the span failed with `outcome`, one word (`terminal`,
    /// `retry`, `timeout`); never a message from the sink.
    pub fn fail(&self, outcome: &'static str) {
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("dlthost.outcome", outcome));
        span.set_status(Status::error(outcome));
    }

    /// Ends the span now.
    pub fn end(&self) {
        self.cx.span().end();
    }

    /// The W3C `traceparent` of this span, when it is recorded (tracing on).
    pub fn traceparent(&self) -> Option<String> {
        let span = self.cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| format!("00-{:032x}-{:016x}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
    }

    /// True when spans are being recorded.
    pub fn is_recording(&self) -> bool {
        self.cx.span().is_recording()
    }
}

/// Exporting spans failed to start.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {endpoint}: {message}")]
pub struct ExportError {
    endpoint: String,
    message: String,
}

/// The OTLP/HTTP exporter of this process, installed as the global tracer
/// provider. [`Exporter::finish`] sends what is buffered.
pub struct Exporter {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

/// Where spans go: `base` (`http://collector:4318`) with the traces path
/// OTLP/HTTP uses, unless it already ends with it.
pub fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") { base.to_string() } else { format!("{base}/v1/traces") }
}

impl Exporter {
    /// Exports spans to the OTLP/HTTP collector at `endpoint` (protobuf,
    /// from the SDK's batch thread) from now on.
    pub fn install(endpoint: &str) -> Result<Exporter, ExportError> {
        use opentelemetry_otlp::{Protocol, WithExportConfig as _};
        let url = traces_url(endpoint);
        let error = |message: String| ExportError { endpoint: url.clone(), message };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .with_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| error(e.to_string()))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(SCOPE)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        global::set_tracer_provider(provider.clone());
        Ok(Exporter { provider })
    }

    /// Sends the spans still buffered and stops exporting; a failure is
    /// returned for a warning (the run's result does not depend on it).
    pub fn finish(self) -> Result<(), String> {
        self.provider.shutdown().map_err(|e| e.to_string())
    }
}

fn key_value(a: &Attr<'_>) -> KeyValue {
    match a {
        Attr::Text(k, v) => KeyValue::new(*k, v.to_string()),
        Attr::Count(k, n) => KeyValue::new(*k, i64::try_from(*n).unwrap_or(i64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_spans_cost_nothing_and_add_no_header() {
        let run = Span::default().child("run", &[Attr::Text("dlthost.sink", "s")]);
        let batch = run.child("batch", &[Attr::Count("dlthost.rows", 3)]);
        assert!(!batch.is_recording());
        assert_eq!(batch.traceparent(), None);
        batch.fail("terminal");
        batch.end();
    }
}
