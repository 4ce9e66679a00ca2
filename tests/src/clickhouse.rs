//! A real ClickHouse server for the tests (Debian's `clickhouse-server`,
//! 18.16 on Debian 12), with its data, config and logs in a temporary
//! directory and its HTTP and native ports free loopback ports; plus a TCP
//! proxy that holds the first INSERT until the test releases it, the hook
//! for stopping the server mid-load. A server that cannot start fails the
//! test with the reason.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The password of the server's `default` user.
pub const PASSWORD: &str = "ch-test-password-7f3a";

/// A running server.
pub struct ClickHouse {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Mutex<Option<Child>>,
    /// Its HTTP port on 127.0.0.1.
    pub http_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a loopback port").local_addr().expect("addr").port()
}

fn server_bin() -> Result<PathBuf, String> {
    ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no clickhouse-server binary (install Debian's `clickhouse-server` package; .ci/run does)".into()
        })
}

impl ClickHouse {
    /// Writes a config and starts the server.
    pub fn start() -> ClickHouse {
        let bin = server_bin().unwrap_or_else(|why| panic!("ClickHouse cannot start: {why}"));
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (http_port, tcp_port) = (free_port(), free_port());
        let path = dir.path().display().to_string();
        let config = format!(
            "<?xml version=\"1.0\"?>\n<yandex>\n\
             <logger><level>warning</level><log>{path}/server.log</log><errorlog>{path}/server.err.log</errorlog><size>100M</size><count>1</count></logger>\n\
             <http_port>{http_port}</http_port><tcp_port>{tcp_port}</tcp_port><listen_host>127.0.0.1</listen_host>\n\
             <path>{path}/data/</path><tmp_path>{path}/data/tmp/</tmp_path>\n\
             <user_files_path>{path}/data/user_files/</user_files_path><format_schema_path>{path}/data/format_schemas/</format_schema_path>\n\
             <users_config>users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>\n\
             <mark_cache_size>536870912</mark_cache_size>\n</yandex>\n"
        );
        let users = format!(
            "<?xml version=\"1.0\"?>\n<yandex><profiles><default></default></profiles>\n\
             <users><default><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks>\
             <profile>default</profile><quota>default</quota></default></users>\n\
             <quotas><default></default></quotas></yandex>\n"
        );
        std::fs::write(dir.path().join("config.xml"), config).expect("config.xml");
        std::fs::write(dir.path().join("users.xml"), users).expect("users.xml");
        let ch = ClickHouse { dir, bin, child: Mutex::new(None), http_port };
        ch.start_server();
        ch
    }

    /// Starts the server (again), waiting until it answers a query.
    pub fn start_server(&self) {
        let log = std::fs::File::create(self.dir.path().join("stdout.log")).expect("log");
        let child = Command::new(&self.bin)
            .arg(format!("--config-file={}", self.dir.path().join("config.xml").display()))
            .current_dir(self.dir.path())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        *self.child.lock().expect("lock") = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.try_query("SELECT 1").is_ok_and(|r| r.0 == 200) {
            let exited = self.child.lock().expect("lock").as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("server.err.log")).unwrap_or_default();
                let out = std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default();
                panic!("ClickHouse did not start ({exited:?}): {out}{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (SIGKILL, as a crash).
    pub fn stop_server(&self) {
        if let Some(mut child) = self.child.lock().expect("lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's HTTP base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Runs `sql` (as `default`, with the password); fails the test unless
    /// the answer is 200. Returns the body.
    pub fn sql(&self, sql: &str) -> String {
        match self.try_query(sql) {
            Ok((200, body)) => body,
            Ok((status, body)) => panic!("`{sql}`: HTTP {status}: {body}"),
            Err(e) => panic!("`{sql}`: {e}"),
        }
    }

    /// The status and body of `sql`, over a plain HTTP/1.0 request (no
    /// client library between the test and the server).
    pub fn try_query(&self, sql: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        let request = format!(
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nX-ClickHouse-User: default\r\nX-ClickHouse-Key: {PASSWORD}\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok((status, body.to_string()))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// A TCP proxy to a backend port that holds the first connection whose
/// request line contains `INSERT` until [`HoldProxy::release`]: the test's
/// hook to act while a batch is in flight.
pub struct HoldProxy {
    /// The proxy's port on 127.0.0.1.
    pub port: u16,
    held: Arc<AtomicBool>,
    released: Arc<AtomicBool>,
}

impl HoldProxy {
    /// Starts forwarding to `backend`.
    pub fn start(backend: u16) -> HoldProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("addr").port();
        let (held, released) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (h, r) = (held.clone(), released.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (h, r) = (h.clone(), r.clone());
                std::thread::spawn(move || forward(client, backend, &h, &r));
            }
        });
        HoldProxy { port, held, released }
    }

    /// Waits until an INSERT is held.
    pub fn wait_held(&self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.held.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "no INSERT reached the proxy");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets the held INSERT (and every later one) through.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

fn forward(mut client: TcpStream, backend: u16, held: &AtomicBool, released: &AtomicBool) {
    // The request line decides whether to hold.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && head.len() < 65536 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    if String::from_utf8_lossy(&head).contains("INSERT") && !held.swap(true, Ordering::SeqCst) {
        while !released.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", backend)) else {
        // The backend is down: the client sees its connection closed.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    if server.write_all(&head).is_err() {
        return;
    }
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else { return };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_r, &mut server_w);
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = up.join();
}
