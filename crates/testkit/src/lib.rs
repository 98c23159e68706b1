//! Test helpers: an engine on a temporary SQLite directory or a fresh PostgreSQL database, a
//! server on a real socket with keys of every scope, and a JSON client for it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tailor_engine::{Engine, EngineConfig, Scope, Storage};

/// The environment variable that enables PostgreSQL tests.
pub const POSTGRES_ENV: &str = "TAILOR_TEST_POSTGRES_URL";

/// Which backend a test engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A temporary SQLite directory.
    Sqlite,
    /// A fresh database on the server named by `TAILOR_TEST_POSTGRES_URL`.
    Postgres,
}

/// An engine that owns its storage: the temporary directory lives as long as it does.
pub struct TestEngine {
    /// The engine.
    pub engine: Engine,
    /// The storage it was opened on (to reopen it).
    pub storage: Storage,
    _dir: Option<tempfile::TempDir>,
}

/// Creates a fresh PostgreSQL database for one test and returns its URL, or `None` when
/// `TAILOR_TEST_POSTGRES_URL` is not set.
pub async fn fresh_postgres_database() -> anyhow::Result<Option<String>> {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        return Ok(None);
    };
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await?;
    let name = format!("tailor_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let (base, _) = admin_url.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("{POSTGRES_ENV} has no database part"))?;
    Ok(Some(format!("{base}/{name}")))
}

impl TestEngine {
    /// An engine on `backend` with the background projection on; `None` when the backend is
    /// PostgreSQL and no server is configured (the caller skips with a message).
    pub async fn new(backend: TestBackend) -> Option<TestEngine> {
        let (storage, dir) = match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                (Storage::Embedded(dir.path().to_path_buf()), Some(dir))
            }
            TestBackend::Postgres => match fresh_postgres_database().await.unwrap_or_else(|e| {
                panic!(
                    "{POSTGRES_ENV} is set but PostgreSQL cannot be reached ({e}): start it with scripts/services.sh"
                )
            }) {
                Some(url) => (Storage::Url(url), None),
                None => {
                    assert!(std::env::var_os("CI").is_none(), "CI must run the PostgreSQL tests: set {POSTGRES_ENV}");
                    eprintln!("skipping the PostgreSQL run: set {POSTGRES_ENV} to run it");
                    return None;
                }
            },
        };
        let engine = Engine::open(EngineConfig { storage: storage.clone(), background: true, retrain_every: None })
            .await
            .expect("open engine");
        Some(TestEngine { engine, storage, _dir: dir })
    }
}

/// One key per scope a test server hands out.
pub struct TestKeys {
    /// A write key (browser/app: behaviour only).
    pub write: String,
    /// A source key (a trusted server-side source).
    pub source: String,
    /// A read key.
    pub read: String,
    /// An admin key.
    pub admin: String,
}

impl TestKeys {
    /// Creates a write, a source, a read and an admin key on `engine`.
    pub async fn create(engine: &Engine) -> TestKeys {
        TestKeys {
            write: engine.create_key(Scope::Write, "test").await.expect("key"),
            source: engine.create_key(Scope::Source, "test server").await.expect("key"),
            read: engine.create_key(Scope::Read, "test").await.expect("key"),
            admin: engine.create_key(Scope::Admin, "test").await.expect("key"),
        }
    }
}

/// A Tailor server on a real socket, with one key per scope.
pub struct TestServer {
    /// The engine behind it.
    pub engine: Engine,
    /// The backend the engine stores on.
    pub backend: TestBackend,
    /// Its address.
    pub addr: SocketAddr,
    /// A write key (browser/app: behaviour only).
    pub write_key: String,
    /// A source key (a server-side source: its orders are sales).
    pub source_key: String,
    /// A read key.
    pub read_key: String,
    /// An admin key.
    pub admin_key: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    _owner: TestEngine,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server on an embedded store, with the default connection limits and no request
    /// rate limit (tests of other things send many requests, and bad keys, from one address).
    pub async fn start() -> TestServer {
        Self::start_with(tailor_server::ServerLimits::without_rate_limits()).await
    }

    /// Starts a server on an embedded store under `limits`.
    pub async fn start_with(limits: tailor_server::ServerLimits) -> TestServer {
        Self::start_on_with(TestBackend::Sqlite, limits).await.expect("sqlite engine")
    }

    /// Starts a server on `backend` with no request rate limit; `None` when the backend is
    /// PostgreSQL and `TAILOR_TEST_POSTGRES_URL` is unset (the caller skips, see
    /// [`http_both_backends!`]).
    pub async fn start_on(backend: TestBackend) -> Option<TestServer> {
        Self::start_on_with(backend, tailor_server::ServerLimits::without_rate_limits()).await
    }

    /// Starts a server on `backend` under `limits`; `None` as for [`TestServer::start_on`].
    pub async fn start_on_with(backend: TestBackend, limits: tailor_server::ServerLimits) -> Option<TestServer> {
        let owner = TestEngine::new(backend).await?;
        let engine = owner.engine.clone();
        let keys = TestKeys::create(&engine).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = tailor_server::app(engine.clone());
        let task = tokio::spawn(async move {
            let _ = tailor_server::serve_router_with(listener, app, limits, std::future::pending()).await;
        });
        Some(TestServer {
            engine,
            backend,
            addr,
            write_key: keys.write,
            source_key: keys.source,
            read_key: keys.read,
            admin_key: keys.admin,
            http: reqwest::Client::new(),
            _owner: owner,
            task,
        })
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a JSON body with the write key as Basic user name; returns status and JSON body.
    pub async fn send(&self, path: &str, body: &Value) -> (u16, Value) {
        let res =
            self.http.post(self.url(path)).basic_auth(&self.write_key, Some("")).json(body).send().await.expect("send");
        read(res).await
    }

    /// POSTs a JSON body with the source key (a trusted server-side source), as a shop's
    /// backend sends its orders; returns status and JSON body.
    pub async fn send_trusted(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(path))
            .basic_auth(&self.source_key, Some(""))
            .json(body)
            .send()
            .await
            .expect("send");
        read(res).await
    }

    /// A request with a Bearer key; returns status and JSON body (Null when empty).
    pub async fn call(&self, method: &str, path: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(b);
        }
        read(req.send().await.expect("send")).await
    }

    /// GETs with the read key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, &self.read_key.clone(), None).await
    }

    /// Polls `path` (read key) until its answer satisfies `done`, and returns that answer; after
    /// [`EVENT_WAIT`] with no such answer it returns the last one, for the caller's assertion to
    /// show. A wait for the event, not a measure of how fast it came: speed is for benchmarks.
    pub async fn get_until(&self, path: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            let (status, body) = self.get(path).await;
            if done(status, &body) || Instant::now() >= deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// How long a test waits for an event (a projection, an expiry, a swapped model) before it
/// reports that the event never came: a bound against hanging, not a performance claim.
pub const EVENT_WAIT: Duration = Duration::from_secs(60);

async fn read(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs each listed `async fn name(t: &TestEngine)` as two tests, `sqlite::name` and
/// `postgres::name` (the latter skips with a message when `TAILOR_TEST_POSTGRES_URL` is unset):
/// the one conformance suite of DESIGN § Layers, for every domain's tests.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = $crate::TestEngine::new($crate::TestBackend::Sqlite).await.expect("sqlite");
                    super::$name(&t).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(t) = $crate::TestEngine::new($crate::TestBackend::Postgres).await {
                        super::$name(&t).await;
                    }
                }
            )*
        }
    };
}

/// Runs each listed `async fn name(s: TestServer)` as two tests over a real socket,
/// `sqlite::name` and `postgres::name` (the latter skips with a message when
/// `TAILOR_TEST_POSTGRES_URL` is unset, and fails under CI): the HTTP suite on both backends.
#[macro_export]
macro_rules! http_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = $crate::TestServer::start_on($crate::TestBackend::Sqlite).await.expect("sqlite");
                    super::$name(s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(s) = $crate::TestServer::start_on($crate::TestBackend::Postgres).await {
                        super::$name(s).await;
                    }
                }
            )*
        }
    };
}

/// A real SMTP server for tests (`scripts/smtp-sink.sh`, PyPI aiosmtpd): every message it
/// accepts is stored as a file, so a test reads back exactly what was delivered. Stopped when
/// dropped.
pub struct SmtpSink {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts a sink on a free port (installs aiosmtpd when missing).
    pub fn start() -> SmtpSink {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("sink dir");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-sink.sh");
        let mut child = std::process::Command::new("bash")
            .arg(script)
            .arg(dir.path())
            .arg("0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start scripts/smtp-sink.sh (python3 and aiosmtpd)");
        let mut line = String::new();
        let out = child.stdout.take().expect("stdout");
        std::io::BufReader::new(out).read_line(&mut line).expect("the sink's port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP sink did not start: {line:?}"));
        SmtpSink { port, dir, child }
    }

    /// How many messages were delivered so far.
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count())
            .unwrap_or(0)
    }

    /// Every message delivered so far, in arrival order (raw RFC 5322 text).
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files.iter().filter_map(|p| std::fs::read(p).ok()).map(|b| String::from_utf8_lossy(&b).into_owned()).collect()
    }

    /// Waits until at least `n` messages arrived (bounded by [`EVENT_WAIT`]) and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The channels for an engine: e-mail to this sink as `Shop <shop@example.com>`.
    pub fn channels(&self) -> tailor_engine::Channels {
        let config = tailor_engine::SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            from: "Shop <shop@example.com>".into(),
        };
        tailor_engine::Channels {
            email: Some(tailor_engine::Engine::smtp_channel(&config).expect("smtp channel")),
            brand_name: "Tailor Shop".into(),
            brand_url: "https://shop.example".into(),
            ..Default::default()
        }
    }
}
