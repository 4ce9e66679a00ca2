//! The per-Store state (`T` of `Store<T>`): WASI context, HTTP context and
//! egress policy, the sink's resolved config, and the memory limiter.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::egress::EgressPolicy;

use super::bindings::{ConfigHost, ConfigValue};

/// Everything one Store owns.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) http: WasiHttpCtx,
    pub(super) egress: EgressPolicy,
    pub(super) config: Arc<BTreeMap<String, ConfigValue>>,
    /// Keys the sink asked for (`host test-sink` checks declared keys are read).
    pub(super) keys_read: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
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
        let value = self.config.get(&key).cloned();
        if value.is_some()
            && let Ok(mut read) = self.keys_read.lock()
        {
            read.insert(key);
        }
        value
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
