//! Outgoing HTTP policy: which origins a sink may call, checked in one place.
//!
//! Entries are `scheme://host:port` (`https://api.example.com:443`), with a
//! `*.` subdomain wildcard (`https://*.example.com:443`) and the port
//! optional (the scheme's default). They are parsed once at startup. A
//! request to anything else fails with `HttpRequestDenied` for the guest and
//! a log line naming the entry that would allow it. Names that resolve to
//! loopback, private or link-local addresses are refused unless the entry
//! names that address (or `localhost`) itself, so a public-looking name
//! cannot be pointed at the host's own network. Connect and response
//! timeouts are clamped to the call timeout.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// An allow-list entry could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allowed host `{entry}`: {reason} (expected scheme://host[:port], e.g. https://api.example.com:443 or https://*.example.com)"
)]
pub struct AllowedHostError {
    /// The entry.
    pub entry: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// One allowed origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: String,
    /// Lower-cased host; for a wildcard, the suffix after `*.`.
    host: String,
    wildcard: bool,
    port: u16,
}

impl AllowedHost {
    /// Parses `scheme://host[:port]`.
    pub fn parse(entry: &str) -> Result<Self, AllowedHostError> {
        let err = |reason| AllowedHostError { entry: entry.to_string(), reason };
        let (scheme, rest) = entry.split_once("://").ok_or_else(|| err("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(err("the scheme must be http or https")),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.is_empty() {
            return Err(err("only scheme, host and port are allowed"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| err("the port is not a number"))?)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(suffix) => (suffix.to_string(), true),
            None => (host, false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(err("bad host"));
        }
        Ok(AllowedHost { scheme, host, wildcard, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        if self.wildcard { host.ends_with(&format!(".{}", self.host)) } else { self.host == host }
    }

    /// True when the entry itself names a local address, so reaching it is
    /// what the user asked for.
    fn names_local(&self) -> bool {
        !self.wildcard && (self.host == "localhost" || self.host.parse::<IpAddr>().is_ok())
    }
}

/// Loopback, private, link-local, unspecified or otherwise non-public.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_local(IpAddr::V4(v4)))
        }
    }
}

/// HTTP counters of one run, shared by all Stores.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests refused by the policy.
    pub denied: AtomicU64,
    /// Request body bytes sent, as declared by `content-length`.
    pub bytes_sent: AtomicU64,
}

/// The policy of one Store, handed to wasi-http as its hooks.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Allowed origins.
    pub allowed: Arc<Vec<AllowedHost>>,
    /// The sink's name, for log lines.
    pub sink: String,
    /// Upper bound for connect and response timeouts.
    pub timeout: Duration,
    /// Counters.
    pub stats: Arc<HttpStats>,
    /// Denials of this Store, for error messages.
    pub denials: Arc<Mutex<Vec<String>>>,
    /// A header the host adds to every allowed request (secret; the guest
    /// never sees it).
    pub inject: Option<InjectedHeader>,
}

/// A header added by the host, e.g. `Authorization: Bearer <api_key>`. Its
/// value is a secret: `Debug` never prints it.
#[derive(Clone)]
pub struct InjectedHeader {
    /// Header name.
    pub name: http::HeaderName,
    /// Header value (secret).
    pub value: http::HeaderValue,
}

impl std::fmt::Debug for InjectedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: <secret>", self.name)
    }
}

impl InjectedHeader {
    /// Parses `Name: value template`, replacing `{key}` with `values[key]`.
    /// Returns the header and the keys it used.
    pub fn parse(
        template: &str,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<(Self, Vec<String>), String> {
        let (name, value) = template.split_once(':').ok_or("auth_header must look like `Name: value`")?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("bad header name `{}`", name.trim()))?;
        let mut out = value.trim().to_string();
        let mut used = Vec::new();
        for (k, v) in values {
            let placeholder = format!("{{{k}}}");
            if out.contains(&placeholder) {
                out = out.replace(&placeholder, v);
                used.push(k.clone());
            }
        }
        if out.contains('{') && out.contains('}') {
            return Err("auth_header refers to a key the sink does not declare or that has no value".into());
        }
        let value = http::HeaderValue::from_str(&out)
            .map_err(|_| "the auth_header value is not a valid header value".to_string())?;
        Ok((InjectedHeader { name, value }, used))
    }
}

impl EgressPolicy {
    fn allowed_entry(&self, scheme: &str, host: &str, port: u16) -> Option<&AllowedHost> {
        self.allowed.iter().find(|a| a.matches(scheme, host, port))
    }

    fn deny(&self, what: String, hint: String) {
        self.stats.denied.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(sink = %self.sink, request = %what, "HTTP request denied; {hint}");
        if let Ok(mut d) = self.denials.lock() {
            d.push(format!("{what} ({hint})"));
        }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                wasmtime_wasi_http::Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> ResponseFuture {
        _ = fut;
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        let origin = format!("{scheme}://{host}:{port}");
        let Some(entry) = self.allowed_entry(&scheme, &host, port).cloned() else {
            self.deny(origin.clone(), format!("allow it with --allow-host {origin}"));
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(len) =
            request.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
        {
            self.stats.bytes_sent.fetch_add(len, Ordering::Relaxed);
        }
        let mut request = request;
        if let Some(h) = &self.inject {
            request.headers_mut().insert(h.name.clone(), h.value.clone());
        }
        let clamp = |d: Option<Duration>| Some(d.map_or(self.timeout, |d| d.min(self.timeout)));
        let options = RequestOptions {
            connect_timeout: clamp(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: clamp(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: clamp(options.and_then(|o| o.between_bytes_timeout)),
        };
        let policy = self.clone();
        Box::new(async move {
            if !entry.names_local() {
                let local = match tokio::net::lookup_host((host.as_str(), port)).await {
                    Ok(addrs) => addrs.map(|a| a.ip()).find(|ip| is_local(*ip)),
                    Err(_) => None,
                };
                if let Some(ip) = local {
                    policy.deny(
                        format!("{origin} (resolves to {ip})"),
                        format!("local addresses must be allowed explicitly, e.g. --allow-host {scheme}://{ip}:{port}"),
                    );
                    return Err(wasmtime_wasi_http::Error::DestinationIpProhibited);
                }
            }
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_entries() {
        let a = AllowedHost::parse("https://api.example.com").expect("parse");
        assert!(a.matches("https", "api.example.com", 443));
        assert!(!a.matches("http", "api.example.com", 443));
        assert!(!a.matches("https", "evil.api.example.com", 443));
        let w = AllowedHost::parse("https://*.Example.com:8443").expect("parse");
        assert!(w.matches("https", "a.b.example.com", 8443));
        assert!(!w.matches("https", "example.com", 8443));
        assert!(!w.matches("https", "badexample.com", 8443));
        let l = AllowedHost::parse("http://127.0.0.1:8080/").expect("parse");
        assert!(l.matches("http", "127.0.0.1", 8080) && l.names_local());
        let v6 = AllowedHost::parse("http://[::1]:9000").expect("parse");
        assert!(v6.matches("http", "::1", 9000));
        for bad in ["api.example.com", "ftp://x:1", "https://x/path", "https://x:port", "https://*", "https://u@x"] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.1.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "100.64.0.1",
        ] {
            assert!(is_local(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["8.8.8.8", "2001:4860::8888", "172.32.0.1"] {
            assert!(!is_local(ip.parse().expect("ip")), "{ip}");
        }
    }
}
