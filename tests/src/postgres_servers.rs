//! PostgreSQL servers configured differently from the machine's, started
//! by the tests that need them (feature `postgres`): PgBouncer in
//! transaction mode in front of the machine's server, and a cluster of
//! its own (`initdb`) with TLS and few connections. Each listens on a free
//! port of 127.0.0.1 and is stopped when dropped. Run as root, the
//! programs run as the `postgres` user (neither runs as root).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// Where Debian's PostgreSQL 15 keeps `initdb` and `pg_ctl`.
const POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// `program args`, as the `postgres` user when this process is root.
fn command_as_postgres(program: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

/// Gives `dir` to the `postgres` user when this process is root.
fn hand_over(dir: &Path) {
    if running_as_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown {}", dir.display());
    }
}

/// Waits (at most 20 s) until something accepts connections on `port`.
fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not start on port {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// PgBouncer in transaction pooling mode in front of the machine's
/// PostgreSQL (127.0.0.1:5432, database `test`).
pub struct PgBouncer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: TempDir,
}

impl PgBouncer {
    /// Starts it, with at most `server_connections` connections to
    /// PostgreSQL.
    ///
    /// # Panics
    /// If `pgbouncer` is not installed (`.ci/run` installs Debian's
    /// package) or does not start.
    pub fn start_in_transaction_mode(server_connections: u32) -> Self {
        let dir = TempDir::new("pgbouncer");
        let port = free_port();
        let log = dir.0.join("pgbouncer.log");
        std::fs::write(dir.0.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.0.join("pgbouncer.ini"),
            format!(
                "[databases]
test = host=127.0.0.1 port=5432 dbname=test user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {users}
pool_mode = transaction
default_pool_size = {server_connections}
max_client_conn = 2000
ignore_startup_parameters = extra_float_digits,options
logfile = {log}
",
                users = dir.0.join("users.txt").display(),
                log = log.display(),
            ),
        )
        .unwrap();
        hand_over(&dir.0);
        let program = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("pgbouncer (Debian's package; .ci/run installs it)");
        let child = command_as_postgres(program)
            .arg(dir.0.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        wait_for_port(port, "pgbouncer", &log);
        Self { port, child, dir }
    }

    /// A connection string to the database `test` through it.
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=test",
            self.port
        )
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // The child is `runuser`, or pgbouncer itself: end both.
        let _ = Command::new("pkill")
            .args(["-f", &format!("pgbouncer.*{}", self.dir.0.display())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL cluster of its own, with TLS (a certificate for
/// `localhost` from a CA made for it) and `max_connections` connections.
pub struct TlsPostgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The CA that signed the server's certificate (PEM).
    pub ca_file: PathBuf,
    /// Another CA, which signed nothing the server uses (PEM).
    pub other_ca_file: PathBuf,
    data: PathBuf,
    _dir: TempDir,
}

impl TlsPostgres {
    /// Creates and starts it (`initdb`, `pg_ctl`; a few seconds).
    ///
    /// # Panics
    /// If PostgreSQL 15's programs are missing or the cluster does not
    /// start.
    pub fn start(max_connections: u32) -> Self {
        let dir = TempDir::new("tls-postgres");
        let data = dir.0.join("data");
        let port = free_port();
        let ca = certificate_authority("globus-app test CA");
        let other_ca = certificate_authority("globus-app unrelated CA");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters");
        params.distinguished_name = rcgen::DistinguishedName::new();
        let key = rcgen::KeyPair::generate().expect("a key");
        let server = params.signed_by(&key, &ca).expect("signed");
        let ca_file = dir.0.join("ca.pem");
        let other_ca_file = dir.0.join("other-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::write(&other_ca_file, other_ca.pem()).unwrap();
        hand_over(&dir.0);
        let status = command_as_postgres(&format!("{POSTGRES_BIN}/initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        std::fs::write(data.join("server.crt"), server.pem()).unwrap();
        std::fs::write(data.join("server.key"), key.serialize_pem()).unwrap();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(
            &mut conf,
            format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
                 ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
                 max_connections = {max_connections}\nsuperuser_reserved_connections = 0\n\
                 fsync = off\n"
            )
            .as_bytes(),
        )
        .unwrap();
        drop(conf);
        hand_over(&dir.0);
        if running_as_root() {
            let _ = Command::new("chmod")
                .arg("600")
                .arg(data.join("server.key"))
                .status();
        }
        let log = dir.0.join("postgres.log");
        let status = command_as_postgres(&format!("{POSTGRES_BIN}/pg_ctl"))
            .args(["-w", "-t", "30", "-l"])
            .arg(&log)
            .arg("-D")
            .arg(&data)
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl");
        assert!(
            status.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        wait_for_port(port, "PostgreSQL", &log);
        Self {
            port,
            ca_file,
            other_ca_file,
            data,
            _dir: dir,
        }
    }

    /// A connection string for `host` (`localhost` matches the
    /// certificate, `127.0.0.1` does not) and the database `postgres`,
    /// without TLS settings.
    pub fn connection_string(&self, host: &str) -> String {
        format!(
            "host={host} port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// A plain connection (no TLS), for the test's own statements.
    ///
    /// # Panics
    /// If the server cannot be reached.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(
            &format!("{} sslmode=disable", self.connection_string("127.0.0.1")),
            postgres::NoTls,
        )
        .expect("the test's PostgreSQL")
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = command_as_postgres(&format!("{POSTGRES_BIN}/pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn certificate_authority(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().expect("a CA key");
    rcgen::CertifiedIssuer::self_signed(params, key).expect("a CA certificate")
}

/// The application name the fleet tests give the storages of one table's
/// machines, so that a test finds their sessions among those of tests
/// running beside it.
pub fn fleet_application_name(table: &str) -> String {
    format!("globus-app-{}", table.replace('.', "-"))
}

/// Whether a renewal lease on `table` (`schema.table`) is held.
///
/// # Panics
/// If the machine's PostgreSQL cannot be queried.
pub fn lease_held(table: &str) -> bool {
    crate::postgres_admin()
        .query_one(&format!("SELECT count(*) FROM {table}_leases"), &[])
        .ok()
        .is_some_and(|row| row.get::<_, i64>(0) > 0)
}

/// Ends every session of `table`'s machines on the machine's PostgreSQL
/// (as an administrator, a failover or a proxy reset would); how many.
///
/// # Panics
/// If the machine's PostgreSQL cannot be queried.
pub fn terminate_fleet_sessions(table: &str) -> i64 {
    crate::postgres_admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&fleet_application_name(table)],
        )
        .expect("pg_terminate_backend")
        .get(0)
}
