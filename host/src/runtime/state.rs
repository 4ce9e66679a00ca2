//! The per-Store state (`T` of `Store<T>`): WASI context, HTTP context and
//! egress policy, the sink's resolved config, and the memory limiter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::{ConfigHost, ConfigValue};

/// Everything one Store owns.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) http: WasiHttpCtx,
    pub(super) egress: EgressPolicy,
    pub(super) config: Arc<BTreeMap<String, ConfigValue>>,
    pub(super) limiter: MemoryLimiter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

impl ConfigHost for HostState {
    fn get(&mut self, key: String) -> Option<ConfigValue> {
        // Only declared keys were resolved into this map, so an undeclared
        // key, another sink's key or a host variable is simply not here.
        self.config.get(&key).cloned()
    }
}

/// Which outgoing HTTP requests a sink may make: exact `scheme://host:port`
/// origins the user allowed. Everything else is refused with
/// `HttpRequestDenied`, and the host logs the entry that would allow it.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Allowed origins, e.g. `http://127.0.0.1:8080`.
    pub allowed: Arc<Vec<String>>,
    /// The sink's name, for log lines.
    pub sink: String,
    /// Upper bound for connect and response timeouts.
    pub timeout: Duration,
}

impl EgressPolicy {
    /// Whether a request to `scheme://host:port` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        self.allowed.iter().any(|a| a == origin)
    }
}

/// `scheme://host:port` of a URI, with the scheme's default port filled in.
pub fn origin_of(uri: &http::Uri) -> Option<String> {
    let scheme = uri.scheme_str()?;
    let host = uri.host()?;
    let port = uri.port_u16().or(match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(format!("{scheme}://{host}:{port}"))
}

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        _ = fut;
        let origin = origin_of(request.uri());
        let allowed = origin.as_deref().is_some_and(|o| self.allows(o));
        if !allowed {
            let shown = origin.unwrap_or_else(|| request.uri().to_string());
            tracing::warn!(sink = %self.sink, origin = %shown, "HTTP request denied; allow it with --allow-host {shown}");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let clamp = |d: Option<Duration>| Some(d.map_or(self.timeout, |d| d.min(self.timeout)));
        let options = RequestOptions {
            connect_timeout: clamp(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: clamp(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: clamp(options.and_then(|o| o.between_bytes_timeout)),
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Caps the sum of all linear memories of one instance (a Python or JS sink
/// has several), and remembers the peak and whether the cap was hit, so a
/// trap can be reported as "memory limit" rather than a bare `unreachable`.
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    /// The cap in bytes.
    pub max_total: usize,
    /// Bytes in use now.
    pub used: usize,
    /// Most bytes ever in use.
    pub peak: usize,
    /// A grow was refused.
    pub hit: bool,
}

impl MemoryLimiter {
    /// A limiter with cap `max_total` bytes.
    pub fn new(max_total: usize) -> Self {
        MemoryLimiter { max_total, used: 0, peak: 0, hit: false }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        if next > self.max_total {
            self.hit = true;
            return Ok(false);
        }
        self.used = next;
        self.peak = self.peak.max(next);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
