//! TCP grants: the addresses a sink may open TCP connections to, checked in
//! one place (`--allow-tcp HOST:PORT`, `allowed_tcp` in the sink's section).
//!
//! A sink gets `wasi:sockets` TCP only when something is granted; it may
//! then connect to exactly the granted addresses and nothing else: no
//! listening, no binding to an address of its own, no UDP, no name lookups
//! (a sink connects by IP address). A grant that names a host is resolved
//! once, when the run starts, and allows the addresses it resolved to, so a
//! later lookup cannot point the sink elsewhere (DNS rebinding). As for
//! HTTP, a name that resolves to a loopback, private or link-local address
//! is refused unless the grant names that address (or `localhost`) itself.

use std::net::{IpAddr, SocketAddr};

use super::egress::{Network, is_local};

/// A grant could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allowed TCP address `{entry}`: {reason} (expected HOST:PORT, e.g. 10.0.0.7:5432, db.example.com:5432 or [::1]:5432)"
)]
pub struct AllowedTcpError {
    /// The entry.
    pub entry: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// One granted `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTcp {
    /// Lower-cased name or IP address (no brackets).
    host: String,
    port: u16,
}

impl std::fmt::Display for AllowedTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl AllowedTcp {
    /// Parses `HOST:PORT` (`[IPv6]:PORT` for an IPv6 address). The port is
    /// required and not 0.
    pub fn parse(entry: &str) -> Result<Self, AllowedTcpError> {
        let err = |reason| AllowedTcpError { entry: entry.to_string(), reason };
        let (host, port) = entry.rsplit_once(':').ok_or_else(|| err("no port"))?;
        let port: u16 = port.parse().map_err(|_| err("the port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(err("the port is not a number from 1 to 65535"));
        }
        let host = match host.strip_prefix('[') {
            Some(inner) => {
                let v6 = inner.strip_suffix(']').ok_or_else(|| err("an IPv6 address needs its closing bracket"))?;
                v6.parse::<std::net::Ipv6Addr>().map_err(|_| err("not an IPv6 address in the brackets"))?;
                v6.to_string()
            }
            None if host.contains(':') => return Err(err("write an IPv6 address in brackets: [::1]:5432")),
            None => host.to_ascii_lowercase(),
        };
        let name_ok = host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if host.is_empty() || !name_ok {
            return Err(err("bad host"));
        }
        Ok(AllowedTcp { host, port })
    }

    /// True when the grant names a local address itself, so reaching it
    /// is what the user asked for.
    fn names_local(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok()
    }
}

/// A grant that cannot take effect.
#[derive(Debug, thiserror::Error)]
pub enum TcpGrantError {
    /// The name did not resolve.
    #[error("--allow-tcp {grant}: cannot resolve {host}: {source}")]
    Lookup {
        /// The grant.
        grant: String,
        /// The name.
        host: String,
        /// Why.
        source: std::io::Error,
    },
    /// The name resolved only to local addresses the grant does not name.
    #[error(
        "--allow-tcp {grant}: the name resolves to {addresses}, local addresses that a name cannot grant; grant the address itself (--allow-tcp {example}) if that is the database you mean"
    )]
    OnlyLocal {
        /// The grant.
        grant: String,
        /// What it resolved to.
        addresses: String,
        /// A grant that would allow the first of them.
        example: String,
    },
}

/// The addresses a run's sink may connect to, resolved once.
#[derive(Debug, Clone, Default)]
pub struct TcpGrants {
    /// Each allowed address with the grant that allows it.
    allowed: Vec<(SocketAddr, String)>,
}

impl TcpGrants {
    /// Resolves `grants` through `network`: each name once; IP addresses
    /// as written.
    pub async fn resolve(grants: &[AllowedTcp], network: &dyn Network) -> Result<TcpGrants, TcpGrantError> {
        let mut allowed = Vec::new();
        for grant in grants {
            if let Ok(ip) = grant.host.parse::<IpAddr>() {
                allowed.push((SocketAddr::new(ip, grant.port), grant.to_string()));
                continue;
            }
            let found = network.lookup(&grant.host, grant.port).await.map_err(|source| TcpGrantError::Lookup {
                grant: grant.to_string(),
                host: grant.host.clone(),
                source,
            })?;
            let usable: Vec<SocketAddr> =
                found.iter().copied().filter(|a| grant.names_local() || !is_local(a.ip())).collect();
            if usable.is_empty() {
                let addresses = found.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(", ");
                let example = found.first().map_or_else(|| grant.to_string(), SocketAddr::to_string);
                return Err(TcpGrantError::OnlyLocal { grant: grant.to_string(), addresses, example });
            }
            allowed.extend(usable.into_iter().map(|a| (a, grant.to_string())));
        }
        Ok(TcpGrants { allowed })
    }

    /// True when nothing is granted: the sink gets no TCP at all.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// The allowed addresses, as `ADDRESS (from GRANT)`.
    pub fn describe(&self) -> Vec<String> {
        self.allowed
            .iter()
            .map(|(a, g)| if a.to_string() == *g { g.clone() } else { format!("{a} (from {g})") })
            .collect()
    }

    /// Whether a connection to `addr` is granted. IPv4-mapped IPv6 forms
    /// of a granted IPv4 address count as that address.
    pub fn allows_connect(&self, addr: SocketAddr) -> bool {
        let canonical = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        self.allowed.iter().any(|(a, _)| *a == canonical || *a == addr)
    }
}

/// The implicit bind that a connect performs (the unspecified address,
/// port 0): the only bind a granted sink may do.
pub fn is_implicit_bind(addr: SocketAddr) -> bool {
    addr.ip().is_unspecified() && addr.port() == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::pin::Pin;

    #[derive(Debug)]
    struct Fixed(Vec<IpAddr>);

    impl Network for Fixed {
        fn lookup(
            &self,
            _host: &str,
            port: u16,
        ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + '_>> {
            let found = self.0.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
            Box::pin(async move { Ok(found) })
        }

        fn connect(
            &self,
            _addr: SocketAddr,
        ) -> Pin<Box<dyn Future<Output = io::Result<tokio::net::TcpStream>> + Send + '_>> {
            Box::pin(async { Err(io::Error::other("no connections in this test")) })
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn grants_parse_host_and_port() {
        assert_eq!(AllowedTcp::parse("10.0.0.7:5432").expect("v4").to_string(), "10.0.0.7:5432");
        assert_eq!(AllowedTcp::parse("DB.Example.com:5432").expect("name").to_string(), "db.example.com:5432");
        assert_eq!(AllowedTcp::parse("[::1]:6379").expect("v6").to_string(), "[::1]:6379");
        for bad in ["db.example.com", "db:0", "db:99999", "::1:5432", "[::1:5432", ":5432", "a b:1", "x/y:1"] {
            assert!(AllowedTcp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_is_resolved_once_and_may_not_grant_local_addresses() {
        let grant = |s: &str| AllowedTcp::parse(s).expect("grant");
        let resolve = |g: &[AllowedTcp], answers: &[&str]| {
            let network = Fixed(answers.iter().map(|a| ip(a)).collect());
            wasmtime_wasi::runtime::in_tokio(TcpGrants::resolve(g, &network))
        };
        // A public answer is allowed, the local one beside it is not.
        let g = resolve(&[grant("db.example.com:5432")], &["203.0.113.7", "127.0.0.1"]).expect("grants");
        assert!(g.allows_connect("203.0.113.7:5432".parse().expect("addr")));
        assert!(!g.allows_connect("127.0.0.1:5432".parse().expect("addr")));
        assert!(!g.allows_connect("203.0.113.7:5433".parse().expect("addr")), "another port");
        // Only local answers: refused, naming the address to grant instead.
        let e = resolve(&[grant("db.example.com:5432")], &["10.1.2.3"]).expect_err("local only");
        assert!(e.to_string().contains("--allow-tcp 10.1.2.3:5432"), "{e}");
        // localhost and an address are the user's own words.
        let g = resolve(&[grant("localhost:6379"), grant("127.0.0.1:5432")], &["127.0.0.1"]).expect("grants");
        assert!(g.allows_connect("127.0.0.1:6379".parse().expect("addr")));
        assert!(g.allows_connect("[::ffff:127.0.0.1]:5432".parse().expect("mapped")));
        assert!(!g.allows_connect("127.0.0.1:22".parse().expect("addr")));
        assert!(is_implicit_bind("0.0.0.0:0".parse().expect("addr")));
        assert!(!is_implicit_bind("127.0.0.1:0".parse().expect("addr")));
    }
}
