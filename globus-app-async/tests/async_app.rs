//! The async apps over HTTP on 127.0.0.1 (the default client: ureq on the
//! `blocking` pool; surf with its feature), under three executors:
//! `futures::executor::block_on`, async-std and tokio (multi-thread).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use globus_app_async::http::{AsyncHttpClient, TransportError, UnblockedHttp};
use globus_app_async::login::{BrowserOpener, LocalServerLoginFlowManager, UnblockedLogin};
use globus_app_async::proto::app::LoginOutcome;
use globus_app_async::proto::testing::SIM_CLIENT_ID;
use globus_app_async::storage::{AsyncJsonTokenStorage, AsyncTokenStorage, Unblocked};
use globus_app_async::{ClientApp, GlobusAppConfig, UserApp};
use globus_app_blocking::http::RetryPolicy;
use globus_app_blocking::http::UreqClient;
use globus_app_blocking::storage::{JsonTokenStorage, MemoryTokenStorage};
use globus_app_dev_server::{AuthServer, TempDir, follow_authorize_url, now};

const TRANSFER: &str = "transfer.api.globus.org";
const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";

struct FollowingBrowser;

impl BrowserOpener for FollowingBrowser {
    fn open(&self, url: &str) -> Result<(), globus_app_async::login::BrowserError> {
        follow_authorize_url(url);
        Ok(())
    }
}

/// Runs `test` under each executor.
fn on_every_executor<F: Future<Output = ()>>(test: impl Fn() -> F) {
    futures::executor::block_on(test());
    async_std::task::block_on(test());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test());
}

fn login_flow() -> UnblockedLogin {
    UnblockedLogin::new(
        LocalServerLoginFlowManager::new()
            .with_browser(FollowingBrowser)
            .with_timeout(Duration::from_secs(10))
            .allow_remote_session(true),
    )
}

/// A user app requiring Transfer against `server`, refresh tokens as `refresh`.
fn builder(server: &AuthServer, refresh: bool) -> globus_app_async::UserAppBuilder {
    UserApp::builder("Async Test")
        .client_id(SIM_CLIENT_ID)
        .scope_requirements(TRANSFER, TRANSFER_ALL)
        .config(
            GlobusAppConfig::default()
                .with_auth_base_url(server.base_url.clone())
                .with_request_refresh_tokens(refresh),
        )
}

async fn user_app(
    server: &AuthServer,
    storage: impl AsyncTokenStorage + 'static,
    refresh: bool,
) -> UserApp {
    builder(server, refresh)
        .token_storage(storage)
        .login_flow_manager(login_flow())
        .build()
        .await
        .unwrap()
}

#[test]
fn login_refresh_and_logout_under_every_executor() {
    on_every_executor(|| async {
        let server = AuthServer::start();
        let dir = TempDir::new("async-login");
        let storage: AsyncJsonTokenStorage =
            Unblocked::new(JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap());
        let app = user_app(&server, storage.clone(), true).await;
        assert!(app.login_required().await.unwrap());
        let outcome = app.login().await.unwrap();
        assert!(matches!(
            outcome,
            LoginOutcome::LoggedIn { identity: Some(_) }
        ));
        let first = app.get_authorizer(TRANSFER).await.unwrap();
        assert!(server.fake().is_live(first.access_token().secret(), now()));
        // Expire on disk: the next call refreshes.
        let mut records = storage.load().await.unwrap().records().to_vec();
        for record in &mut records {
            record.expires_at = now();
        }
        storage.store(records).await.unwrap();
        let second = app.get_authorizer(TRANSFER).await.unwrap();
        assert_ne!(first.access_token(), second.access_token());
        let report = app.logout().await.unwrap();
        assert!(report.is_complete());
        assert!(!server.fake().is_live(second.access_token().secret(), now()));
        assert!(app.login_required().await.unwrap());
    });
}

#[test]
fn client_app_under_every_executor() {
    on_every_executor(|| async {
        let server = AuthServer::start();
        server.fake().client_secret = Some("s".into());
        let app = ClientApp::builder("Async Service")
            .client_id(SIM_CLIENT_ID)
            .client_secret("s")
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
            .token_storage(MemoryTokenStorage::new())
            .build()
            .await
            .unwrap();
        let authorization = app.get_authorizer(TRANSFER).await.unwrap();
        assert!(
            server
                .fake()
                .is_live(authorization.access_token().secret(), now())
        );
    });
}

async fn expire(app: &UserApp) {
    let mut records = app.token_storage().load().await.unwrap().records().to_vec();
    for record in &mut records {
        record.expires_at = now();
    }
    app.token_storage().store(records).await.unwrap();
}

fn refreshes(server: &AuthServer) -> usize {
    server.grants("refresh_token")
}

#[test]
fn a_thousand_tasks_with_an_expired_token_cause_one_refresh() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = AuthServer::start();
        let app = user_app(&server, MemoryTokenStorage::new(), true).await;
        app.login().await.unwrap();
        expire(&app).await;
        let tasks: Vec<_> = (0..1_000)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { app.get_authorizer(TRANSFER).await.unwrap() })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        assert_eq!(refreshes(&server), 1);
        assert!(results.windows(2).all(|w| w[0] == w[1]));
    });
}

/// The JSON token file, counting the cross-process renewal locks taken.
struct CountingFile {
    file: AsyncJsonTokenStorage,
    locks: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl AsyncTokenStorage for CountingFile {
    async fn load(
        &self,
    ) -> Result<globus_app_async::proto::app::TokenSet, globus_app_async::storage::StorageError>
    {
        self.file.load().await
    }
    async fn store(
        &self,
        records: Vec<globus_app_async::proto::token::TokenData>,
    ) -> Result<(), globus_app_async::storage::StorageError> {
        self.file.store(records).await
    }
    async fn remove(
        &self,
        resource_servers: Vec<String>,
    ) -> Result<(), globus_app_async::storage::StorageError> {
        self.file.remove(resource_servers).await
    }
    async fn lock_renewal(
        &self,
        resource_server: String,
    ) -> Result<globus_app_blocking::storage::RenewalGuard, globus_app_async::storage::StorageError>
    {
        self.locks.fetch_add(1, Ordering::SeqCst);
        self.file.lock_renewal(resource_server).await
    }
}

#[test]
fn tasks_that_waited_for_a_renewal_take_the_new_token_without_the_lock_file() {
    futures::executor::block_on(async {
        let server = AuthServer::start();
        let dir = TempDir::new("async-waiters");
        let locks = Arc::new(std::sync::atomic::AtomicUsize::default());
        let storage = CountingFile {
            file: Unblocked::new(
                JsonTokenStorage::new(dir.0.join("tokens.json"), "DEFAULT").unwrap(),
            ),
            locks: Arc::clone(&locks),
        };
        let app = user_app(&server, storage, true).await;
        app.login().await.unwrap();
        expire(&app).await;
        let results =
            futures::future::join_all((0..1_000).map(|_| app.get_authorizer(TRANSFER))).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(refreshes(&server), 1);
        // Only the renewing task took the cross-process lock.
        assert_eq!(locks.load(Ordering::SeqCst), 1);
    });
}

/// A client that answers the first `n` refresh requests 503 itself, and
/// sends everything else.
struct FailsRefreshes {
    remaining: std::sync::atomic::AtomicUsize,
    inner: UnblockedHttp<UreqClient>,
}

#[async_trait::async_trait]
impl AsyncHttpClient for FailsRefreshes {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let refresh = request
            .body()
            .windows(24)
            .any(|w| w == b"grant_type=refresh_token");
        if refresh
            && self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Ok(http::Response::builder()
                .status(503)
                .body(b"busy".to_vec())
                .unwrap());
        }
        self.inner.send(request).await
    }
}

#[test]
fn after_a_transient_failure_the_next_call_tries_again() {
    on_every_executor(|| async {
        let server = AuthServer::start();
        let storage = MemoryTokenStorage::new();
        let app = user_app(&server, storage.clone(), true).await;
        app.login().await.unwrap();
        expire(&app).await;
        let flaky = Arc::new(FailsRefreshes {
            remaining: 2.into(),
            inner: UnblockedHttp::ureq(),
        });
        let shared = Arc::clone(&flaky);
        let app = builder(&server, true)
            .token_storage(storage)
            .http_client(move |request| {
                let client = Arc::clone(&shared);
                async move { client.send(request).await }
            })
            .retry_policy(RetryPolicy::new(2, Duration::ZERO, Duration::from_secs(10)))
            .build()
            .await
            .unwrap();
        // Both attempts of the first call get a 503: a retryable error.
        let err = app.get_authorizer(TRANSFER).await.unwrap_err();
        assert!(
            matches!(&err, globus_app_async::Error::App(e) if e.is_retryable()),
            "{err:?}"
        );
        assert_eq!(flaky.remaining.load(Ordering::SeqCst), 0);
        assert_eq!(refreshes(&server), 0);
        // Nothing is left locked or poisoned: the next call refreshes.
        let authorization = app.get_authorizer(TRANSFER).await.unwrap();
        assert!(authorization.expires_at() > now());
        assert_eq!(refreshes(&server), 1);
    });
}

/// A client whose first request never completes.
struct HangsOnce {
    hung: AtomicBool,
    inner: UnblockedHttp<UreqClient>,
}

#[async_trait::async_trait]
impl AsyncHttpClient for HangsOnce {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        if !self.hung.swap(true, Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        self.inner.send(request).await
    }
}

#[test]
fn dropping_a_refresh_midway_releases_the_lock_for_the_next_caller() {
    on_every_executor(|| async {
        let server = AuthServer::start();
        // Log in with a normal client first.
        let storage = MemoryTokenStorage::new();
        let app = user_app(&server, storage.clone(), true).await;
        app.login().await.unwrap();
        expire(&app).await;
        let hanging = builder(&server, true)
            .token_storage(storage)
            .http_client(HangsOnce {
                hung: AtomicBool::new(false),
                inner: UnblockedHttp::ureq(),
            })
            .build()
            .await
            .unwrap();
        // The first call hangs inside the refresh, holding the lock; drop it.
        let stuck = Box::pin(hanging.get_authorizer(TRANSFER));
        let timer = Box::pin(blocking::unblock(|| {
            std::thread::sleep(Duration::from_millis(200));
        }));
        match futures::future::select(stuck, timer).await {
            futures::future::Either::Left(_) => panic!("the hanging call finished"),
            futures::future::Either::Right(((), stuck)) => drop(stuck),
        }
        // The next caller is not blocked by the abandoned one.
        let authorization = hanging.get_authorizer(TRANSFER).await.unwrap();
        assert!(authorization.expires_at() > now());
    });
}

#[test]
fn the_public_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let server = AuthServer::start();
    let app = futures::executor::block_on(user_app(&server, MemoryTokenStorage::new(), true));
    send(&app.get_authorizer(TRANSFER));
    send(&app.login());
    send(&app.login_required());
    send(&app.logout());
    send(&UserApp::builder("x").client_id("y").build());
    let app = Arc::new(app);
    std::thread::spawn(move || drop(app)).join().unwrap();
}

/// The opt-in surf client (native-tls build) logs in and refreshes.
#[cfg(feature = "surf")]
#[test]
fn the_surf_client_logs_in_and_refreshes() {
    on_every_executor(|| async {
        let server = AuthServer::start();
        let app = builder(&server, true)
            .token_storage(MemoryTokenStorage::new())
            .login_flow_manager(login_flow())
            .http_client(globus_app_async::http::SurfClient::default())
            .build()
            .await
            .unwrap();
        app.login().await.unwrap();
        expire(&app).await;
        let authorization = app.get_authorizer(TRANSFER).await.unwrap();
        assert!(authorization.expires_at() > now());
        assert_eq!(refreshes(&server), 1);
    });
}

/// The request head a one-shot server on 127.0.0.1 received.
fn head_of_one_request(send: impl FnOnce(String)) -> String {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/v2/oauth2/.well-known/openid-configuration",
        listener.local_addr().unwrap()
    );
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        for _ in 0..100 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let mut stream = stream;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        head
    });
    send(url);
    server.join().unwrap()
}

#[test]
fn get_requests_carry_no_content_type() {
    let get = |url: String| http::Request::get(url).body(Vec::new()).unwrap();
    let head = head_of_one_request(|url| {
        let response = futures::executor::block_on(UnblockedHttp::ureq().send(get(url))).unwrap();
        assert_eq!(response.status(), 200);
    });
    assert!(!head.contains("content-type"), "{head}");
    #[cfg(feature = "surf")]
    {
        let head = head_of_one_request(|url| {
            let client = globus_app_async::http::SurfClient::default();
            let response = async_std::task::block_on(client.send(get(url))).unwrap();
            assert_eq!(response.status(), 200);
        });
        assert!(!head.contains("content-type"), "{head}");
    }
}

/// While another process holds the renewal lock of a token that is due but
/// still valid, the async app hands that token out at once under every
/// executor (a wait would last the lock timeout, 60 s, and fail); once the
/// lock is free, one grant renews it.
#[test]
fn a_due_but_valid_token_is_handed_out_while_another_process_renews() {
    use globus_app_blocking::storage::TokenStorage as _;
    on_every_executor(|| async {
        let server = AuthServer::start();
        server.fake().client_secret = Some("s".into());
        let dir = TempDir::new("async-valid-while-due");
        let path = dir.0.join("tokens.json");
        let storage: AsyncJsonTokenStorage = Unblocked::new(
            JsonTokenStorage::new(&path, "DEFAULT")
                .unwrap()
                .with_recheck_interval(std::time::Duration::ZERO),
        );
        let app = ClientApp::builder("Async Service")
            .client_id(SIM_CLIENT_ID)
            .client_secret("s")
            .scope_requirements(TRANSFER, TRANSFER_ALL)
            .config(GlobusAppConfig::default().with_auth_base_url(server.base_url.clone()))
            .token_storage(storage)
            .build()
            .await
            .unwrap();
        app.get_authorizer(TRANSFER).await.unwrap();
        let other = JsonTokenStorage::new(&path, "DEFAULT").unwrap();
        let mut due = other.load().unwrap().get(TRANSFER).unwrap().clone();
        due.expires_at = now().saturating_add_secs(30);
        other.store(std::slice::from_ref(&due)).unwrap();
        let grants = server.grants("client_credentials");

        let held = other.lock_renewal(TRANSFER).unwrap();
        let handed = app.get_authorizer(TRANSFER).await.unwrap();
        assert_eq!(handed.access_token(), &due.access_token);
        assert_eq!(server.grants("client_credentials"), grants, "nothing sent");

        held.release();
        let renewed = app.get_authorizer(TRANSFER).await.unwrap();
        assert_ne!(renewed.access_token(), &due.access_token);
        assert_eq!(server.grants("client_credentials"), grants + 1);
    });
}
