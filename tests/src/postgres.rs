//! A real PostgreSQL server for the tests: a cluster made in a temporary
//! directory and started on a free loopback port, stopped when dropped.
//!
//! Debian's `postgresql` package puts the server under
//! `/usr/lib/postgresql/<version>/bin`. PostgreSQL refuses to run as root,
//! so as root the cluster belongs to the `postgres` system user the package
//! creates, and every server command runs as that user (`runuser`). A
//! server that cannot start fails the test with the reason: it never
//! passes silently.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its loopback port.
    pub port: u16,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb` and
/// `pg_ctl`, or the reason there is none.
fn server_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| format!("{}: {e} (install Debian's `postgresql` package; .ci/run does)", root.display()))?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| format!("no server binaries under {}", root.display()))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A free loopback port (the listener is closed before the server binds).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("addr").port()
}

impl Postgres {
    /// Makes a cluster with trust authentication and starts it.
    pub fn start() -> Postgres {
        let bin = server_bin().unwrap_or_else(|why| panic!("PostgreSQL cannot start: {why}"));
        let dir = tempfile::tempdir().expect("a temporary directory");
        let as_postgres = is_root();
        if as_postgres {
            let chown = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(chown.is_ok_and(|s| s.success()), "chown of the cluster directory to `postgres` failed");
        }
        let pg = Postgres { dir, bin, port: free_port(), as_postgres };
        let data = pg.data();
        let init = pg.server_command("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs a server program (as `postgres` when this process is root).
    fn server_command(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
    }

    /// Starts the server (again) on its port, waiting until it accepts
    /// connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        let started = self.server_command("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
        assert!(
            started.status.success(),
            "PostgreSQL did not start: {}{}",
            String::from_utf8_lossy(&started.stdout),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops the server at once, as a crash would (`-m immediate`).
    pub fn stop_server(&self) {
        let stopped = self.server_command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        assert!(stopped.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&stopped.stderr));
    }

    /// `HOST:PORT` of the server.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The result of `sql` through `psql` (unaligned, tuples only), rows
    /// by line, fields by `|`. Fails the test on an SQL error.
    pub fn sql(&self, sql: &str) -> String {
        let out = self.psql().args(["-v", "ON_ERROR_STOP=1", "-c", sql]).output().expect("run psql");
        assert!(out.status.success(), "psql `{sql}`: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string()
    }

    /// A `psql` command connected to the server (not started).
    pub fn psql(&self) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres", "-At", "-X"]);
        cmd
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.server_command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
    }
}
