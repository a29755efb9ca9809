//! A Patchbay node: store, engine and HTTP server of one project, started
//! together and stopped together. `run` and `demo` both use it, so the demo
//! exercises exactly what production runs.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use patchbay_config::{Env, Project, TlsConfig};
use patchbay_engine::{Engine, EngineTasks, Plan, Roles};
use patchbay_server::tls::{CertResolver, TlsError};
use patchbay_server::{ApiAccess, BrowserPolicy, ServerSettings};
use patchbay_store::{MasterKey, Secrets, SqliteOptions, SqliteStore, Store};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// How to start a node.
pub struct NodeOptions {
    /// Listen address; overrides `server.listen` when given.
    pub listen: Option<SocketAddr>,
    pub roles: Roles,
    /// The store's master key: it opens secrets for the management API and
    /// seals rotated refresh tokens. Without one, rotated tokens are kept
    /// in memory only.
    pub master_key: Option<MasterKey>,
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
    pub async fn start(
        project: &Project,
        plan: Plan,
        env: &dyn Env,
        options: NodeOptions,
    ) -> anyhow::Result<Node> {
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
        let tls = match &project.config.server.tls {
            Some(files) => Some(Arc::new(load_tls(project, files)?)),
            None => None,
        };
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
        // One recorder per process, behind `GET /metrics`; later nodes of
        // the same process (tests, the demo) share it.
        patchbay_server::metrics::install_recorder().map_err(anyhow::Error::msg)?;
        let store = open_store(project).await?;
        let shutdown = CancellationToken::new();
        let (engine, tasks) = Engine::start(
            project,
            plan,
            store.clone(),
            env,
            options.roles,
            shutdown.clone(),
        )?;
        if let Some(key) = options.master_key {
            engine.attach_secrets(Secrets::new(store, key));
        }
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let address = listener.local_addr()?;
        let settings = ServerSettings {
            max_body_bytes: project.config.server.max_body_bytes,
            request_timeout: project.config.server.request_timeout.0,
            api: Arc::new(api),
            browser: Arc::new(browser),
            header_timeout: project.config.server.header_timeout.0,
            body_timeout: project.config.server.body_timeout.0,
            max_connections: project.config.server.max_connections,
            max_inflight_per_webhook: project.config.server.max_inflight_per_webhook,
            tls,
        };
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

/// The server's certificate and key (`server.tls`), paths resolved against
/// the project folder. `check` and `run` both load them here.
pub fn load_tls(project: &Project, files: &TlsConfig) -> Result<CertResolver, TlsError> {
    CertResolver::load(
        &project.dir.join(&files.cert),
        &project.dir.join(&files.key),
    )
}

/// Opens the project's SQLite store, creating it on first use.
pub async fn open_store(project: &Project) -> anyhow::Result<Arc<dyn Store>> {
    open_store_at(&project.store_path()).await
}

/// Opens the SQLite store at `path`, creating it on first use.
pub async fn open_store_at(path: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
    let store = SqliteStore::open(SqliteOptions::new(path))
        .await
        .with_context(|| format!("cannot open the store at {}", path.display()))?;
    Ok(Arc::new(store))
}
