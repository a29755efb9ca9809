//! `/api/v1/nodes`: the nodes sharing this node's store, as each last
//! reported itself on its heartbeat, which one leads the cluster's
//! housekeeping, and which one answered. One node on SQLite; several on
//! PostgreSQL. Few rows: one list, not pages.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use patchbay_engine::cluster::{HEARTBEAT, LEADER_TTL};
use patchbay_store::LEADER_LEASE;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_nodes))
}

/// Heartbeats a node may miss before it is shown as not alive.
const MISSED_HEARTBEATS: u32 = 3;

/// One node.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NodeView {
    /// The node's id, also the lease owner of the runs it executes.
    pub id: String,
    /// The Patchbay version it runs.
    pub version: String,
    /// Where its HTTP server listens, if it runs one.
    pub address: Option<String>,
    /// The configuration version it starts new runs on.
    pub config_version: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Runs it was executing at its last heartbeat.
    pub runs_in_flight: u64,
    /// Whether it reported within the last few heartbeats.
    pub alive: bool,
    /// Whether it holds the leader lease (housekeeping: retention).
    pub leader: bool,
    /// Whether it is the node that answered this request.
    pub this_node: bool,
}

/// The nodes, by id.
#[derive(Serialize, ToSchema)]
pub(crate) struct NodeList {
    items: Vec<NodeView>,
    /// Seconds between heartbeats.
    heartbeat_seconds: u64,
    /// Seconds the leader lease lasts without renewal.
    leader_lease_seconds: u64,
}

/// List the nodes sharing this store: what each runs, its last heartbeat,
/// its runs in flight, whether it is alive, and which one leads.
#[utoipa::path(
    get,
    path = "/nodes",
    tag = "nodes",
    responses((status = 200, description = "The nodes sharing this store", body = NodeList)),
    security(("bearer" = ["read"]))
)]
async fn list_nodes(State(state): State<AppState>) -> Result<Json<NodeList>, ApiError> {
    let store = state.engine.store();
    let nodes = store
        .nodes()
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let leader = store
        .lease_holder(LEADER_LEASE)
        .await
        .map_err(patchbay_engine::EngineError::from)?;
    let this_node = state.engine.membership().node_id();
    let silent_after =
        chrono::Duration::from_std(HEARTBEAT * MISSED_HEARTBEATS).unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    let items = nodes
        .into_iter()
        .map(|seen| {
            let report = seen.report;
            NodeView {
                alive: now - seen.last_heartbeat <= silent_after,
                leader: leader.as_deref() == Some(report.id.as_str()),
                this_node: report.id == this_node,
                id: report.id,
                version: report.version,
                address: report.address,
                config_version: report.config_version,
                started_at: report.started_at,
                last_heartbeat: seen.last_heartbeat,
                runs_in_flight: report.runs_in_flight,
            }
        })
        .collect();
    Ok(Json(NodeList {
        items,
        heartbeat_seconds: HEARTBEAT.as_secs(),
        leader_lease_seconds: LEADER_TTL.as_secs(),
    }))
}
