//! A Patchbay node: store, engine and HTTP server of one project, started
//! together and stopped together. `run` and `demo` both use it, so the demo
//! exercises exactly what production runs.
//!
//! A node starts from a [`Prepared`] project: the engine's [`Build`] (the
//! project validated, its plan compiled, its connectors built) and the
//! server's certificate. `check` prepares a project the same way and stops
//! there, so `run` refuses at start nothing that `check` lets through;
//! [`Node::start`] only adds the store, the sockets and the tasks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use patchbay_config::{Diagnostic, Env, Project, Report};
use patchbay_engine::{Build, Engine, EngineOptions, EngineTasks, ReloadFrom, Roles, SystemClock};
use patchbay_server::tls::CertResolver;
use patchbay_server::{ApiAccess, BrowserPolicy, ServerSettings};
use patchbay_store::{MasterKey, Secrets, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// A project ready to serve: built, with the server's certificate read.
pub struct Prepared {
    pub build: Build,
    /// The certificate and key of `server.tls`, when it is set.
    pub tls: Option<Arc<CertResolver>>,
}

impl Prepared {
    /// Loads and builds the project in `dir` and reads its certificate;
    /// every problem, in one report, otherwise.
    pub fn load(dir: &Path, env: &dyn Env) -> Result<Prepared, Report> {
        let mut tls = None;
        let build = Build::load_checking(dir, env, |project| match server_tls(project) {
            Ok(resolver) => {
                tls = resolver;
                Report::default()
            }
            Err(problem) => problem.into(),
        })?;
        Ok(Prepared { build, tls })
    }

    /// A project built elsewhere (the demo's, embedded in the binary), with
    /// its certificate read.
    pub fn new(build: Build) -> Result<Prepared, Report> {
        let tls = server_tls(&build.project)?;
        Ok(Prepared { build, tls })
    }
}

/// The server's certificate and key (`server.tls`), paths resolved against
/// the project folder.
fn server_tls(project: &Project) -> Result<Option<Arc<CertResolver>>, Diagnostic> {
    let Some(files) = &project.config.server.tls else {
        return Ok(None);
    };
    CertResolver::load(
        &project.dir.join(&files.cert),
        &project.dir.join(&files.key),
    )
    .map(|resolver| Some(Arc::new(resolver)))
    .map_err(|e| Diagnostic::new(&project.root_file, 0, 0, format!("server.tls: {e}")))
}

/// How to start a node.
pub struct NodeOptions {
    /// Listen address; overrides `server.listen` when given.
    pub listen: Option<SocketAddr>,
    pub roles: Roles,
    /// The store's master key: it opens secrets for the management API and
    /// seals rotated refresh tokens. Without one, rotated tokens are kept
    /// in memory only.
    pub master_key: Option<MasterKey>,
    /// The project folder a reload loads the configuration from (with the
    /// store's secrets, so it needs `master_key`); `None` for a node that
    /// cannot reload.
    pub reload_from: Option<ReloadFolder>,
}

/// The folder a node reloads its project from.
pub struct ReloadFolder {
    pub dir: PathBuf,
    /// The digest of the secrets the project was loaded with (see
    /// [`crate::secrets::digest`]).
    pub secrets_digest: String,
}

/// A started node.
pub struct Node {
    pub engine: Engine,
    pub address: SocketAddr,
    shutdown: CancellationToken,
    tasks: EngineTasks,
    server: JoinHandle<std::io::Result<()>>,
}

impl Node {
    /// Opens the store, starts the engine, binds the listener and serves.
    /// `env` resolves the API tokens, as it did the rest of the project.
    pub async fn start(
        prepared: Prepared,
        env: &dyn Env,
        options: NodeOptions,
    ) -> anyhow::Result<Node> {
        let Prepared { build, tls } = prepared;
        let project = &build.project;
        let listen = match options.listen {
            Some(address) => address,
            None => project
                .config
                .server
                .listen
                .parse()
                .with_context(|| format!("server.listen `{}`", project.config.server.listen))?,
        };
        // Checked before anything starts: the API must not be open to the
        // network by accident.
        let api = ApiAccess::from_config(&project.config.api, env, listen)?;
        if project.config.api.dangerous_allow_anonymous {
            // Said at every start, so an open API is never forgotten.
            warn!(
                listen = %listen,
                tokens = project.config.api.tokens.len(),
                "api.dangerous_allow_anonymous is set: without tokens, anyone who can reach \
                 the port may use the management API"
            );
        }
        let browser = BrowserPolicy {
            https: tls.is_some(),
            open_api: api.is_open(),
            allowed_hosts: project
                .config
                .api
                .allowed_hosts
                .iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
        };
        let server = &project.config.server;
        let settings = ServerSettings {
            max_body_bytes: server.max_body_bytes,
            request_timeout: server.request_timeout.0,
            api: Arc::new(api),
            browser: Arc::new(browser),
            header_timeout: server.header_timeout.0,
            body_timeout: server.body_timeout.0,
            max_connections: server.max_connections,
            max_inflight_per_webhook: server.max_inflight_per_webhook,
            tls,
        };
        // One recorder per process, behind `GET /metrics`; later nodes of
        // the same process (tests, the demo) share it.
        patchbay_server::metrics::install_recorder().map_err(anyhow::Error::msg)?;
        let store = open_store(project, env).await?;
        let secrets = options
            .master_key
            .map(|key| Secrets::new(store.clone(), key));
        let reload = match (options.reload_from, &secrets) {
            (Some(folder), Some(secrets)) => Some(ReloadFrom {
                source: Arc::new(crate::secrets::FolderSource {
                    dir: folder.dir,
                    secrets: secrets.clone(),
                }),
                secrets_digest: folder.secrets_digest,
            }),
            (Some(_), None) => anyhow::bail!("reloading from a folder needs the master key"),
            (None, _) => None,
        };
        let shutdown = CancellationToken::new();
        let (engine, tasks) = Engine::start(
            build,
            store,
            EngineOptions {
                roles: options.roles,
                secrets,
                reload,
                clock: Arc::new(SystemClock),
            },
            shutdown.clone(),
        )?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        engine.membership().set_address(address.to_string());
        let server = tokio::spawn(patchbay_server::serve(
            engine.clone(),
            listener,
            settings,
            shutdown.clone(),
        ));
        Ok(Node {
            engine,
            address,
            shutdown,
            tasks,
            server,
        })
    }

    /// Stops accepting, lets running steps finish within the grace period,
    /// releases unfinished runs, and waits for the server to close.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.tasks.stopped().await;
        self.server
            .await
            .context("server task")?
            .context("server")?;
        Ok(())
    }
}

/// Opens the store `project` names (the SQLite file, or its PostgreSQL
/// database, whose URL is resolved with `env`).
pub async fn open_store(project: &Project, env: &dyn Env) -> anyhow::Result<Arc<dyn Store>> {
    crate::store_at::StoreAt::of(project, env)?.open().await
}
