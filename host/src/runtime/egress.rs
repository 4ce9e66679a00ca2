//! Outgoing HTTP policy: which origins a sink may call, checked in one place.
//!
//! Entries are `scheme://host:port` (`https://api.example.com:443`), with a
//! `*.` subdomain wildcard (`https://*.example.com:443`) and the port
//! optional (the scheme's default). They are parsed once at startup. A
//! request to anything else fails with `HttpRequestDenied` for the guest and
//! a log line naming the entry that would allow it. Names that resolve to
//! loopback, private or link-local addresses are refused unless the entry
//! names that address (or `localhost`) itself, so a public-looking name
//! cannot be pointed at the host's own network. A name is resolved once,
//! and the connection goes to an address that was checked: a second
//! lookup could answer differently (DNS rebinding). Connect and response
//! timeouts are clamped to the call timeout.

use crate::telemetry::{Attr, Span};
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
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

impl std::fmt::Display for AllowedHost {
    /// `scheme://host:port`, `*.` before a wildcard's suffix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{}://{star}{}:{}", self.scheme, self.host, self.port)
    }
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

/// Loopback, private, link-local, unspecified, multicast, reserved or
/// otherwise not a public unicast address, in any of its written forms:
/// IPv4-mapped (`::ffff:127.0.0.1`), IPv4-compatible (`::127.0.0.1`),
/// NAT64 (`64:ff9b::127.0.0.1`, `64:ff9b:1::/48`) and 6to4 (`2002::/16`)
/// IPv6 addresses are judged by the IPv4 address they carry.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => is_local_v6(v6),
    }
}

fn is_local_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    a == 0 // "this network", 0.0.0.0/8: 0.0.0.0 connects to the host itself
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_multicast()
        || (a == 100 && (b & 0xc0) == 64) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240 // reserved
}

fn is_local_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
        return true;
    }
    if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return true; // unique local, link-local, site-local
    }
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_local_v4(v4);
    }
    if s[..6] == [0; 6] {
        return is_local_v4(embedded(s[6], s[7])); // IPv4-compatible
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_local_v4(embedded(s[6], s[7])); // NAT64, well-known prefix
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return true; // NAT64, local-use prefix
    }
    if s[0] == 0x2002 {
        return is_local_v4(embedded(s[1], s[2])); // 6to4
    }
    false
}

/// How the host looks up names and opens connections for a sink's HTTP
/// requests. A trait so that a test can answer each lookup differently
/// and see where the host connects.
pub trait Network: Send + Sync + std::fmt::Debug {
    /// The addresses of `host`.
    fn lookup(&self, host: &str, port: u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + '_>>;
    /// A TCP connection to `addr`.
    fn connect(&self, addr: SocketAddr)
    -> Pin<Box<dyn Future<Output = io::Result<tokio::net::TcpStream>> + Send + '_>>;
}

/// The system's resolver and sockets, with fixed answers for some names
/// (`--resolve HOST:PORT:ADDRESS`, as curl's): those are never looked up.
#[derive(Debug, Default, Clone)]
pub struct SystemNetwork {
    /// `(lower-cased host, port)` → addresses.
    pub fixed: BTreeMap<(String, u16), Vec<IpAddr>>,
}

impl SystemNetwork {
    /// Parses `HOST:PORT:ADDRESS` (an IPv6 address in brackets or not).
    pub fn parse_fixed(entry: &str) -> Result<((String, u16), IpAddr), String> {
        let bad = || format!("--resolve {entry}: expected HOST:PORT:ADDRESS, e.g. api.example.com:443:10.0.0.7");
        let (host, rest) = entry.split_once(':').ok_or_else(bad)?;
        let (port, address) = rest.split_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let address = address.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(((host.to_ascii_lowercase(), port), address))
    }
}

impl Network for SystemNetwork {
    fn lookup(&self, host: &str, port: u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + '_>> {
        let fixed = self.fixed.get(&(host.to_string(), port)).cloned();
        let host = host.to_string();
        Box::pin(async move {
            match fixed {
                Some(ips) => Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect()),
                None => Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()),
            }
        })
    }

    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<tokio::net::TcpStream>> + Send + '_>> {
        Box::pin(tokio::net::TcpStream::connect(addr))
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
    /// Answers by status class: index 1 to 5 for 1xx to 5xx, 0 for a
    /// request that got no answer (refused, timed out, reset).
    pub by_class: [AtomicU64; 6],
}

impl HttpStats {
    /// Counts the answer (or its absence) to an allowed request.
    fn count<B, E>(&self, answer: &Result<(http::Response<B>, E), wasmtime_wasi_http::Error>) {
        let class = match answer {
            Ok((response, _)) => usize::from(response.status().as_u16() / 100).min(5),
            Err(_) => 0,
        };
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }
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
    /// The span of the batch being delivered, parent of each request's span.
    pub trace: Arc<Mutex<Span>>,
    /// Name lookups and connections.
    pub network: Arc<dyn Network>,
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
            d.push(format!("HTTP {what} ({hint})"));
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
        let span = self.request_span(request.method(), &scheme, &host, port);
        if let Some(parent) = span.traceparent().and_then(|t| http::HeaderValue::from_str(&t).ok()) {
            request.headers_mut().insert("traceparent", parent);
        }
        let clamp = |d: Option<Duration>| Some(d.map_or(self.timeout, |d| d.min(self.timeout)));
        let options = RequestOptions {
            connect_timeout: clamp(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: clamp(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: clamp(options.and_then(|o| o.between_bytes_timeout)),
        };
        let policy = self.clone();
        Box::new(async move {
            let addrs = policy.resolve(&host, port).await?;
            if !entry.names_local()
                && let Some(ip) = addrs.iter().map(SocketAddr::ip).find(|ip| is_local(*ip))
            {
                policy.deny(
                    format!("{origin} (resolves to {ip})"),
                    format!("local addresses must be allowed explicitly, e.g. --allow-host {scheme}://{ip}:{port}"),
                );
                return Err(wasmtime_wasi_http::Error::DestinationIpProhibited);
            }
            // Only the addresses just checked are dialled: no second lookup.
            let stream = match connect_checked(policy.network.as_ref(), &addrs, options.connect_timeout).await {
                Ok(stream) => stream,
                Err(e) => {
                    policy.stats.by_class[0].fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            };
            let answer = send_on(stream, request, &host, scheme == "https", options).await;
            policy.stats.count(&answer);
            match &answer {
                Ok((response, _)) => {
                    span.set(&[Attr::Count("http.response.status_code", response.status().as_u16().into())])
                }
                Err(_) => span.fail("no_answer"),
            }
            span.end();
            answer
        })
    }
}

impl EgressPolicy {
    /// A client span for one allowed request, under the batch's span: the
    /// method, scheme, host and port, never the path, query or headers.
    fn request_span(&self, method: &http::Method, scheme: &str, host: &str, port: u16) -> Span {
        let parent = self.trace.lock().map(|s| s.clone()).unwrap_or_default();
        let name = match *method {
            http::Method::GET => "GET",
            http::Method::POST => "POST",
            http::Method::PUT => "PUT",
            http::Method::PATCH => "PATCH",
            http::Method::DELETE => "DELETE",
            http::Method::HEAD => "HEAD",
            _ => "HTTP",
        };
        let attrs = [
            Attr::Text("http.request.method", method.as_str()),
            Attr::Text("url.scheme", scheme),
            Attr::Text("server.address", host),
            Attr::Count("server.port", port.into()),
        ];
        parent.client(name, &attrs)
    }

    /// The addresses of `host` (itself when it is an address), looked up
    /// once.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, wasmtime_wasi_http::Error> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let dns_error = |info: String| wasmtime_wasi_http::Error::DnsError { rcode: Some(info), info_code: None };
        let addrs = self.network.lookup(host, port).await.map_err(|e| dns_error(e.to_string()))?;
        if addrs.is_empty() {
            return Err(dns_error(format!("{host} has no address")));
        }
        Ok(addrs)
    }
}

/// A TCP connection to the first of `addrs` that answers.
async fn connect_checked(
    network: &dyn Network,
    addrs: &[SocketAddr],
    timeout: Option<Duration>,
) -> Result<tokio::net::TcpStream, wasmtime_wasi_http::Error> {
    let timeout = timeout.unwrap_or(Duration::from_secs(600));
    let mut last = wasmtime_wasi_http::Error::ConnectionRefused;
    for addr in addrs {
        match tokio::time::timeout(timeout, network.connect(*addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = wasmtime_wasi_http::Error::Connect(e),
            Err(_) => last = wasmtime_wasi_http::Error::ConnectionTimeout,
        }
    }
    Err(last)
}

/// Sends `request` over `stream` (TLS first for https, verified against
/// the name `host`, not the address), and returns the response and the
/// task that drives the connection.
async fn send_on(
    stream: tokio::net::TcpStream,
    mut request: http::Request<WasiBody>,
    host: &str,
    tls: bool,
    options: RequestOptions,
) -> Result<
    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
    wasmtime_wasi_http::Error,
> {
    use http_body_util::BodyExt;
    use wasmtime_wasi_http::Error as E;
    let io: Box<dyn AsyncIo> = if tls {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(E::InvalidDnsNameError)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        Box::new(connector.connect(name, stream).await.map_err(E::Tls)?)
    } else {
        Box::new(stream)
    };
    let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(600));
    let (mut sender, conn) = tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(HyperIo(io)))
        .await
        .map_err(|_| E::ConnectionTimeout)??;
    // The origin goes in the Host header; the request line holds the path.
    if !request.headers().contains_key(http::header::HOST)
        && let Some(authority) = request.uri().authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(http::header::HOST, value);
    }
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| E::HttpRequestUriInvalid)?;
    let driver = tokio::spawn(conn);
    let first_byte = options.first_byte_timeout.unwrap_or(Duration::from_secs(600));
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| E::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(E::from).boxed_unsync());
    let done = async move {
        match driver.await {
            Ok(result) => result.map_err(E::from),
            Err(_) => Err(E::ConnectionTerminated),
        }
    };
    Ok((response, Box::new(done)))
}

/// A byte stream hyper can drive: a TCP stream, or TLS over one.
trait AsyncIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> AsyncIo for T {}

/// tokio's I/O traits as hyper's.
struct HyperIo(Box<dyn AsyncIo>);

impl hyper::rt::Read for HyperIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        // SAFETY-free: read into a zeroed stack buffer, then copy.
        let mut tmp = [0u8; 16 * 1024];
        let want = buf.remaining().min(tmp.len());
        let mut read = tokio::io::ReadBuf::new(&mut tmp[..want]);
        match Pin::new(&mut *self.0).poll_read(cx, &mut read) {
            std::task::Poll::Ready(Ok(())) => {
                buf.put_slice(read.filled());
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl hyper::rt::Write for HyperIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
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
        for ip in ["8.8.8.8", "2001:4860::8888", "172.32.0.1", "64:ff9b::808:808", "::ffff:8.8.8.8", "2002:808:808::1"]
        {
            assert!(!is_local(ip.parse().expect("ip")), "{ip}");
        }
    }

    /// The forms of a local address that an allow-list check used to miss.
    #[test]
    fn every_form_of_a_local_address_is_local() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "224.0.0.1",
            "ff02::1",
            "240.0.0.1",
            "198.18.0.1",
        ] {
            assert!(is_local(ip.parse().expect("ip")), "{ip}");
        }
    }

    /// Answers each lookup with the next address of its list and records
    /// where the host connects (connecting nowhere).
    #[derive(Debug, Default)]
    struct Rebinding {
        answers: Mutex<Vec<IpAddr>>,
        lookups: AtomicU64,
        dialled: Mutex<Vec<SocketAddr>>,
    }

    impl Network for Rebinding {
        fn lookup(&self, _: &str, port: u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + '_>> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            let ip = self.answers.lock().expect("lock").remove(0);
            Box::pin(async move { Ok(vec![SocketAddr::new(ip, port)]) })
        }

        fn connect(
            &self,
            addr: SocketAddr,
        ) -> Pin<Box<dyn Future<Output = io::Result<tokio::net::TcpStream>> + Send + '_>> {
            self.dialled.lock().expect("lock").push(addr);
            Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
        }
    }

    fn policy(network: Arc<dyn Network>) -> EgressPolicy {
        EgressPolicy {
            allowed: Arc::new(vec![AllowedHost::parse("http://api.example.com").expect("entry")]),
            sink: "t".into(),
            timeout: Duration::from_secs(5),
            stats: Arc::default(),
            denials: Arc::default(),
            inject: None,
            network,
            trace: Arc::default(),
        }
    }

    fn request() -> http::Request<WasiBody> {
        use http_body_util::BodyExt;
        let body = http_body_util::Empty::<bytes::Bytes>::new().map_err(|e| match e {}).boxed_unsync();
        http::Request::get("http://api.example.com/v1").body(body).expect("request")
    }

    fn run(fut: ResponseFuture) -> Result<(), wasmtime_wasi_http::Error> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(Box::into_pin(fut)).map(|_| ())
    }

    /// DNS rebinding: the first lookup answers a public address, a second
    /// one would answer loopback. The name is looked up once and the host
    /// dials the address it checked, never the second answer.
    #[test]
    fn the_connection_goes_to_the_address_that_was_checked() {
        let checked: IpAddr = "203.0.113.7".parse().expect("ip");
        let net = Arc::new(Rebinding {
            answers: Mutex::new(vec![checked, "127.0.0.1".parse().expect("ip")]),
            ..Rebinding::default()
        });
        let mut p = policy(net.clone());
        let result = run(p.send_request(request(), None, Box::new(async { Ok(()) })));
        assert!(matches!(result, Err(wasmtime_wasi_http::Error::Connect(_))), "{result:?}");
        assert_eq!(net.lookups.load(Ordering::SeqCst), 1, "one lookup");
        assert_eq!(*net.dialled.lock().expect("lock"), [SocketAddr::new(checked, 80)]);

        // And a name that answers a local form is refused before any dial.
        let net = Arc::new(Rebinding {
            answers: Mutex::new(vec!["::ffff:127.0.0.1".parse().expect("ip")]),
            ..Rebinding::default()
        });
        let mut p = policy(net.clone());
        let result = run(p.send_request(request(), None, Box::new(async { Ok(()) })));
        assert!(matches!(result, Err(wasmtime_wasi_http::Error::DestinationIpProhibited)), "{result:?}");
        assert!(net.dialled.lock().expect("lock").is_empty());
    }
}
