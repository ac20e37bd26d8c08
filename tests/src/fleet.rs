//! The PostgreSQL fleet's fault scenarios, written once and run against
//! the blocking and the async storage (feature `postgres`). Processes
//! stand in for machines: each test binary runs itself as a "machine"
//! ([`MachineSettings::from_env`]), which builds an app of its crate on the
//! shared table, gets an authorizer for Transfer and prints the token, or
//! that a login is required ([`print_outcome`]). The crate under test says
//! how through [`FleetUnderTest`].
//!
//! Every scenario asserts what it checks: a panic is its failure.
#![allow(clippy::missing_panics_doc)]

use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::AuthServer;
use crate::postgres_servers::{
    PgBouncer, fleet_application_name, lease_held, terminate_fleet_sessions,
};

/// How many machines a scenario starts.
pub const MACHINES: usize = 8;

/// The resource server the machines renew.
pub const TRANSFER: &str = "transfer.api.globus.org";

/// What a machine is given: where Globus Auth is, the table, how to reach
/// PostgreSQL, the lease.
#[derive(Debug, Clone)]
pub struct MachineSettings {
    /// The local Globus Auth server's base URL.
    pub base_url: String,
    /// `schema.table`.
    pub table: String,
    /// The connection string, with the fleet's application name.
    pub connection: String,
    /// The storage's `lease_duration`.
    pub lease: Duration,
    /// `user` (a `UserApp` with a refresh token) or `client` (a
    /// `ClientApp` with the secret `fleet-secret`).
    pub kind: String,
}

impl MachineSettings {
    fn new(server: &AuthServer, table: &str) -> Self {
        Self {
            base_url: server.base_url.clone(),
            table: table.to_owned(),
            connection: format!(
                "{} application_name={}",
                crate::postgres_connection_string(),
                fleet_application_name(table)
            ),
            lease: Duration::from_secs(90),
            kind: "user".to_owned(),
        }
    }

    /// The settings given to this process, if it is a machine.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok();
        Some(Self {
            base_url: var("GLOBUS_APP_FLEET_BASE")?,
            table: var("GLOBUS_APP_FLEET_TABLE")?,
            connection: var("GLOBUS_APP_FLEET_CONNECTION")?,
            lease: Duration::from_millis(var("GLOBUS_APP_FLEET_LEASE_MS")?.parse().ok()?),
            kind: var("GLOBUS_APP_FLEET_KIND")?,
        })
    }

    /// Starts this test binary's test `entry` as a machine with these
    /// settings (and `extra` environment variables).
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn start(&self, entry: &str, extra: &[(&str, &str)]) -> Child {
        let mut command = Command::new(std::env::current_exe().expect("the test binary"));
        command
            .args(["--exact", entry, "--nocapture", "--test-threads=1"])
            .env("GLOBUS_APP_FLEET_BASE", &self.base_url)
            .env("GLOBUS_APP_FLEET_TABLE", &self.table)
            .env("GLOBUS_APP_FLEET_CONNECTION", &self.connection)
            .env(
                "GLOBUS_APP_FLEET_LEASE_MS",
                self.lease.as_millis().to_string(),
            )
            .env("GLOBUS_APP_FLEET_KIND", &self.kind)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (name, value) in extra {
            command.env(name, value);
        }
        command.spawn().expect("a machine process")
    }
}

/// What a machine prints: `Ok(token)`, or `Err(message)` when a login is
/// required (a typed error: `Error::is_login_required`). Any other error
/// must panic.
pub fn print_outcome(outcome: Result<String, String>) {
    match outcome {
        Ok(token) => println!("TOKEN={token}"),
        Err(message) => println!("LOGIN_REQUIRED={message}"),
    }
}

/// What a machine printed.
#[derive(Debug, PartialEq, Eq)]
pub enum MachineOutcome {
    /// Its access token.
    Token(String),
    /// A typed login-required error.
    LoginRequired,
}

/// Waits for `child` and reads what it printed.
///
/// # Panics
/// If it failed or printed neither.
pub fn outcome_of(child: Child) -> MachineOutcome {
    let output = child.wait_with_output().expect("the machine's output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "machine failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in stdout.lines() {
        if let Some((_, token)) = line.split_once("TOKEN=") {
            return MachineOutcome::Token(token.trim().to_owned());
        }
        if line.contains("LOGIN_REQUIRED=") {
            return MachineOutcome::LoginRequired;
        }
    }
    panic!("the machine printed no outcome: {stdout}");
}

fn tokens_of(machines: Vec<Child>) -> Vec<String> {
    machines
        .into_iter()
        .map(|machine| match outcome_of(machine) {
            MachineOutcome::Token(token) => token,
            MachineOutcome::LoginRequired => panic!("a machine needs a login"),
        })
        .collect()
}

/// The crate under test, from the test process's side.
pub trait FleetUnderTest {
    /// Logs a user in on `settings`' table and expires the Transfer token
    /// in storage (under the renewal lock).
    fn log_in_and_expire(&self, settings: &MachineSettings);
    /// Gets a client's token once and expires it.
    fn get_client_token_and_expire(&self, settings: &MachineSettings);
    /// The stored Transfer record, read under the renewal lock: its access
    /// token and refresh token.
    fn stored_transfer(&self, settings: &MachineSettings) -> (String, Option<String>);
    /// Starts a machine (usually `settings.start(<its entry test>, ..)`).
    fn start_machine(&self, settings: &MachineSettings) -> Child;
}

/// A schema for one scenario, dropped with everything in it at the end.
pub struct Schema(pub String);

impl Schema {
    /// Creates `globus_app_<test>_<pid>_<n>`.
    ///
    /// # Panics
    /// If the machine's PostgreSQL cannot be reached.
    pub fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "globus_app_{test}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        crate::postgres_admin()
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("CREATE SCHEMA");
        Self(name)
    }

    /// `schema.tokens`.
    pub fn table(&self) -> String {
        format!("{}.tokens", self.0)
    }

    /// Counts, from now on, the leases taken on this schema's table (a
    /// trigger on `tokens_leases`: a row inserted, or given to another
    /// holder; a heartbeat's extension is not a take). The table must
    /// exist: build a storage on it first.
    pub fn count_lease_takes(&self) {
        let name = &self.0;
        crate::postgres_admin()
            .batch_execute(&format!(
                "CREATE TABLE {name}.lease_takes (holder text);
                 CREATE FUNCTION {name}.count_lease_take() RETURNS trigger AS $$
                 BEGIN
                     IF TG_OP = 'INSERT' OR OLD.holder IS DISTINCT FROM NEW.holder THEN
                         INSERT INTO {name}.lease_takes VALUES (NEW.holder);
                     END IF;
                     RETURN NEW;
                 END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER count_lease_take AFTER INSERT OR UPDATE ON {name}.tokens_leases
                     FOR EACH ROW EXECUTE FUNCTION {name}.count_lease_take();"
            ))
            .expect("the lease-take trigger");
    }

    /// The leases taken since [`count_lease_takes`](Self::count_lease_takes).
    pub fn lease_takes(&self) -> i64 {
        crate::postgres_admin()
            .query_one(&format!("SELECT count(*) FROM {}.lease_takes", self.0), &[])
            .expect("the lease-take count")
            .get(0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = crate::postgres_admin()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
    }
}

/// Polls `condition` every 20 ms for at most `limit`.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

fn start_machines(fleet: &dyn FleetUnderTest, settings: &MachineSettings) -> Vec<Child> {
    (0..MACHINES)
        .map(|_| fleet.start_machine(settings))
        .collect()
}

/// A user's fleet on one expired token, rotation with revoke-on-reuse on.
fn expired_user_fleet(fleet: &dyn FleetUnderTest, server: &AuthServer, settings: &MachineSettings) {
    server.fake().rotate_refresh_tokens = true;
    fleet.log_in_and_expire(settings);
}

/// One refresh across the fleet; every machine holds the stored token,
/// and its rotated refresh token is live.
fn assert_one_refresh_and_the_family_alive(
    fleet: &dyn FleetUnderTest,
    server: &AuthServer,
    settings: &MachineSettings,
    tokens: &[String],
) {
    assert_eq!(
        server.grants("refresh_token"),
        1,
        "one refresh across {} machines",
        tokens.len()
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "every machine got the fresh token"
    );
    let (access_token, refresh_token) = fleet.stored_transfer(settings);
    assert_eq!(access_token, tokens[0]);
    assert!(
        server
            .fake()
            .is_live(&refresh_token.expect("a refresh token"), crate::now()),
        "the rotated refresh token family survived"
    );
}

/// Machines on one expired token send one refresh and keep the family;
/// one of them takes the lease, the others read its write (late starters
/// included: the row has moved past what they found expired).
pub fn one_refresh_for_the_fleet(fleet: &dyn FleetUnderTest) {
    let server = AuthServer::start();
    let schema = Schema::new("fleet_user");
    let settings = MachineSettings::new(&server, &schema.table());
    expired_user_fleet(fleet, &server, &settings);
    schema.count_lease_takes();
    let tokens = tokens_of(start_machines(fleet, &settings));
    // Counted before the check below, which reads the row under a lease.
    assert_eq!(
        schema.lease_takes(),
        1,
        "one lease take for {MACHINES} machines"
    );
    assert_one_refresh_and_the_family_alive(fleet, &server, &settings, &tokens);
}

/// Client apps on one expired token send one client-credentials grant.
pub fn one_client_credentials_grant_for_the_fleet(fleet: &dyn FleetUnderTest) {
    let server = AuthServer::start();
    server.fake().client_secret = Some("fleet-secret".into());
    let schema = Schema::new("fleet_client");
    let mut settings = MachineSettings::new(&server, &schema.table());
    "client".clone_into(&mut settings.kind);
    fleet.get_client_token_and_expire(&settings);
    schema.count_lease_takes();
    let before = server.grants("client_credentials");
    let tokens = tokens_of(start_machines(fleet, &settings));
    assert_eq!(
        server.grants("client_credentials") - before,
        1,
        "one grant for the fleet"
    );
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        schema.lease_takes(),
        1,
        "one lease take for {MACHINES} machines"
    );
}

/// The holder's refresh is held up at Globus Auth while its PostgreSQL
/// connections are lost (`lose_connections`); it reconnects and writes,
/// and the machines waiting on its lease take its token: one grant, the
/// rotated family alive. (With a lock that lived on the connection, the
/// lock went with it and a second machine refreshed the same token.)
fn lost_connection_keeps_the_family(
    fleet: &dyn FleetUnderTest,
    server: &AuthServer,
    settings: &MachineSettings,
    lose_connections: impl FnOnce(),
) {
    expired_user_fleet(fleet, server, settings);
    server.delay_next(&[Duration::from_secs(3)]);
    let machines = start_machines(fleet, settings);
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0
            && lease_held(&settings.table)),
        "no machine took the lease and sent its refresh"
    );
    lose_connections();
    let tokens = tokens_of(machines);
    assert_one_refresh_and_the_family_alive(fleet, server, settings, &tokens);
}

/// `pg_terminate_backend` of every machine's sessions (the holder's
/// included) while the holder's refresh is in flight.
pub fn terminated_connections_keep_the_family(fleet: &dyn FleetUnderTest) {
    let server = AuthServer::start();
    let schema = Schema::new("terminated_holder");
    let settings = MachineSettings::new(&server, &schema.table());
    lost_connection_keeps_the_family(fleet, &server, &settings, || {
        assert!(terminate_fleet_sessions(&settings.table) >= 1);
    });
}

/// The machines' role has `idle_session_timeout` at 200 ms: the holder's
/// connection dies while its refresh is held up (3 s).
pub fn an_idle_session_timeout_keeps_the_family(fleet: &dyn FleetUnderTest) {
    let server = AuthServer::start();
    let schema = Schema::new("idle_timeout");
    let role = format!("{}_role", schema.0);
    crate::postgres_admin()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER; ALTER ROLE {role} SET idle_session_timeout = '200ms'"
        ))
        .expect("CREATE ROLE");
    let mut settings = MachineSettings::new(&server, &schema.table());
    settings.connection = format!("{} user={role}", settings.connection);
    lost_connection_keeps_the_family(fleet, &server, &settings, || {
        std::thread::sleep(Duration::from_millis(500));
    });
    drop(schema);
    let _ = crate::postgres_admin().batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
}

/// A machine is killed holding the lease, its grant `held` at Globus Auth
/// by `hold`; a fleet started after it waits for the lease to expire.
fn kill_the_holder_then_start_a_fleet(
    fleet: &dyn FleetUnderTest,
    server: &AuthServer,
    settings: &MachineSettings,
    hold: impl FnOnce(&AuthServer),
) -> Vec<Child> {
    hold(server);
    let mut dying = fleet.start_machine(settings);
    assert!(
        wait_for(Duration::from_secs(30), || server.pending_delays() == 0
            && lease_held(&settings.table)),
        "the machine never took the lease and sent its refresh"
    );
    dying.kill().expect("SIGKILL");
    let _ = dying.wait();
    start_machines(fleet, settings)
}

/// A holder SIGKILLed before its grant reached Globus Auth: another
/// machine renews once its lease (2 s) expires; one grant in all.
pub fn a_holder_killed_before_its_grant_is_replaced(fleet: &dyn FleetUnderTest) {
    let server = AuthServer::start();
    let schema = Schema::new("killed_before");
    let mut settings = MachineSettings::new(&server, &schema.table());
    settings.lease = Duration::from_secs(2);
    expired_user_fleet(fleet, &server, &settings);
    let started = Instant::now();
    let machines = kill_the_holder_then_start_a_fleet(fleet, &server, &settings, |server| {
        // Its refresh never reaches the fake Globus Auth.
        server.never_handle_next(&[Duration::from_secs(20)]);
    });
    let tokens = tokens_of(machines);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the lease was honoured"
    );
    assert_one_refresh_and_the_family_alive(fleet, &server, &settings, &tokens);
}

/// The window no lease can close: the holder dies after Globus Auth
/// rotated the refresh token and before the new one was written. The row
/// holds a spent refresh token; the next machine's refresh is rejected
/// (and, with rotation, revokes the family), it stores the record without
/// the refresh token, and every machine reports a typed login-required
/// error. No other machine sends the spent token.
pub fn a_holder_killed_after_its_grant_leaves_every_machine_needing_a_login(
    fleet: &dyn FleetUnderTest,
) {
    let server = AuthServer::start();
    let schema = Schema::new("killed_after");
    let mut settings = MachineSettings::new(&server, &schema.table());
    settings.lease = Duration::from_secs(2);
    expired_user_fleet(fleet, &server, &settings);
    let machines = kill_the_holder_then_start_a_fleet(fleet, &server, &settings, |server| {
        // Its refresh is handled (the token rotated), the answer held up.
        server.hold_next_answers(&[Duration::from_secs(20)]);
    });
    for machine in machines {
        assert_eq!(outcome_of(machine), MachineOutcome::LoginRequired);
    }
    assert_eq!(
        server.grants("refresh_token"),
        2,
        "the dead holder's refresh, and one rejected refresh"
    );
    assert_eq!(fleet.stored_transfer(&settings).1, None);
}

/// A holder SIGKILLed mid-renewal while the stored token is still valid
/// (due: it expires in 45 s, renewal starts a minute ahead): the machines
/// started after it hand out that token at once. Before, each waited for
/// the dead holder's lease (up to `lock_timeout`) and failed, or renewed
/// once it lapsed; a machine that waited would hand out a new token, or an
/// error, not the stored one.
pub fn a_holder_killed_while_the_token_is_valid_costs_no_machine_a_wait(
    fleet: &dyn FleetUnderTest,
) {
    let server = AuthServer::start();
    let schema = Schema::new("killed_valid");
    let settings = MachineSettings::new(&server, &schema.table());
    expired_user_fleet(fleet, &server, &settings);
    // Due but valid: the record's expiry set 45 s ahead, as a newer row.
    let table = schema.table();
    let stored: String = crate::postgres_admin()
        .query_one(
            &format!(
                "UPDATE {table} SET version = version + 1, record = jsonb_set(record::jsonb,
                     '{{expires_at_seconds}}', to_jsonb(extract(epoch FROM now())::bigint + 45))::text
                 WHERE resource_server = '{TRANSFER}'
                 RETURNING record::jsonb->>'access_token'"
            ),
            &[],
        )
        .expect("a stored record to make due")
        .get(0);
    let machines = kill_the_holder_then_start_a_fleet(fleet, &server, &settings, |server| {
        // Its refresh never reaches the fake Globus Auth.
        server.never_handle_next(&[Duration::from_secs(20)]);
    });
    for token in tokens_of(machines) {
        assert_eq!(token, stored, "a machine did not hand out the valid token");
    }
    assert_eq!(
        server.grants("refresh_token"),
        0,
        "no refresh but the dead one's"
    );
}

/// The fleet through PgBouncer in transaction mode: one refresh.
pub fn one_refresh_through_pgbouncer(fleet: &dyn FleetUnderTest) {
    let pooler = PgBouncer::start_in_transaction_mode(4);
    let server = AuthServer::start();
    let schema = Schema::new("pgbouncer_fleet");
    let mut settings = MachineSettings::new(&server, &schema.table());
    settings.connection = format!(
        "{} application_name={}",
        pooler.connection_string(),
        fleet_application_name(&settings.table)
    );
    expired_user_fleet(fleet, &server, &settings);
    let tokens = tokens_of(start_machines(fleet, &settings));
    assert_one_refresh_and_the_family_alive(fleet, &server, &settings, &tokens);
}

/// Through PgBouncer in transaction mode, PgBouncer's server connections
/// are terminated while the holder's refresh is in flight (PgBouncer
/// passes the machines' application name on; the machines' own
/// connections, to PgBouncer, live on).
pub fn a_lost_server_connection_through_pgbouncer_keeps_the_family(fleet: &dyn FleetUnderTest) {
    let pooler = PgBouncer::start_in_transaction_mode(4);
    let server = AuthServer::start();
    let schema = Schema::new("pgbouncer_lost");
    let mut settings = MachineSettings::new(&server, &schema.table());
    settings.connection = format!(
        "{} application_name={}",
        pooler.connection_string(),
        fleet_application_name(&settings.table)
    );
    lost_connection_keeps_the_family(fleet, &server, &settings, || {
        assert!(
            terminate_fleet_sessions(&settings.table) >= 1,
            "no PgBouncer session to end"
        );
    });
}
