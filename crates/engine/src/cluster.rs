//! This node among the nodes sharing its store: it reports itself on a
//! heartbeat (what it runs, which configuration, how many runs it has in
//! flight) and competes for the `leader` lease, whose holder does the
//! cluster's housekeeping (retention, forgetting nodes long silent).
//!
//! A reload is the cluster's too: the node that reloads publishes it in the
//! store, and the others, seeing a publication newer than the last they
//! acted on, reload their own files at their next heartbeat. Runs finish on
//! the version they started on whichever node resumes them (`versions`).
//!
//! So is a circuit breaker's opening: a node whose breaker opens on its own
//! failures records it ([`StoreBreakers`]), and the others open theirs for
//! as long at their next heartbeat.
//!
//! Connectors' rate limits are the cluster's when the store is shared
//! ([`StoreRate`]): every node takes its calls' slots from one budget. So
//! are their `max_in_flight` limits ([`StoreSlots`]): a call on the wire
//! holds a slot in the store, whichever node sent it.
//!
//! Nothing that keeps runs correct depends on the leader: claims rescue
//! expired leases on every node, and every node fires schedules, deduplicated
//! by fire time. A leader that dies only delays housekeeping until its lease
//! expires ([`LEADER_TTL`]) and another node takes it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use metrics::gauge;
use patchbay_connector::{
    SharedBreakers, SharedError, SharedRate, SharedSlot, SharedSlots, SlotTicket,
};
use patchbay_store::{Clock, LEADER_LEASE, NodeReport, RateSlot, Store};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often a node reports itself and renews its leader lease.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long the leader lease lasts without renewal: a few missed
/// heartbeats, so a slow store does not make leaders come and go, and a
/// dead leader is replaced within seconds.
pub const LEADER_TTL: Duration = Duration::from_secs(10);

/// A node silent for this long is taken off the node list.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// `1` on the node holding the leader lease, `0` elsewhere.
pub const CLUSTER_LEADER: &str = "patchbay_cluster_leader";

/// This node's identity and standing, shared by the engine's tasks and the
/// management API.
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Shared>,
}

struct Shared {
    node_id: String,
    started_at: DateTime<Utc>,
    /// Set once the HTTP server has bound its address.
    address: OnceLock<String>,
    /// Asks for a report now: the address just became known.
    report_now: Notify,
    leader: watch::Sender<bool>,
}

impl Membership {
    pub(crate) fn new(node_id: String, started_at: DateTime<Utc>) -> Membership {
        Membership {
            inner: Arc::new(Shared {
                node_id,
                started_at,
                address: OnceLock::new(),
                report_now: Notify::new(),
                leader: watch::Sender::new(false),
            }),
        }
    }

    /// The node's id, also the lease owner of the runs it claims.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Whether this node held the leader lease at its last heartbeat.
    pub fn is_leader(&self) -> bool {
        *self.inner.leader.borrow()
    }

    /// Records where the node's HTTP server listens, for its reports.
    pub fn set_address(&self, address: String) {
        if self.inner.address.set(address).is_ok() {
            self.inner.report_now.notify_one();
        }
    }

    /// Waits until this node leads; false when `shutdown` comes first.
    pub(crate) async fn until_leader(&self, shutdown: &CancellationToken) -> bool {
        let mut leader = self.inner.leader.subscribe();
        tokio::select! {
            led = leader.wait_for(|leads| *leads) => led.is_ok(),
            () = shutdown.cancelled() => false,
        }
    }

    /// Waits until this node no longer leads.
    pub(crate) async fn until_follower(&self) {
        let mut leader = self.inner.leader.subscribe();
        // The sender lives as long as the membership, so this only returns
        // once the node stops leading.
        let _ = leader.wait_for(|leads| !*leads).await;
    }

    fn set_leader(&self, leads: bool) {
        let was = self.inner.leader.send_replace(leads);
        if was != leads {
            if leads {
                info!(node = %self.node_id(), "this node leads the cluster's housekeeping");
            } else {
                info!(node = %self.node_id(), "this node no longer leads");
            }
        }
        gauge!(CLUSTER_LEADER).set(f64::from(u8::from(leads)));
    }

    fn report(&self, config_version: String, runs_in_flight: u64) -> NodeReport {
        NodeReport {
            id: self.inner.node_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            address: self.inner.address.get().cloned(),
            config_version,
            started_at: self.inner.started_at,
            runs_in_flight,
        }
    }
}

/// The heartbeat task: reports, leads or follows, until shutdown, then
/// gives the leader lease up so another node takes it at once.
pub(crate) struct Heartbeat {
    pub membership: Membership,
    pub store: Arc<dyn Store>,
    /// The configuration version new work runs on, read at each beat (a
    /// reload changes it).
    pub config_version: Box<dyn Fn() -> String + Send + Sync>,
    /// How many runs this node executes now.
    pub in_flight: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Holds this node's breakers open as other nodes' opened theirs (the
    /// openings still in force, with how long they last); nothing on a
    /// store only one node uses.
    pub hold_open: Option<HoldOpen>,
    /// Reloads this node's configuration without publishing it; `None`
    /// once the engine is gone.
    pub reload: Box<dyn Fn() -> BoxFuture<'static, ReloadOutcome> + Send + Sync>,
    pub clock: Arc<dyn Clock>,
    pub shutdown: CancellationToken,
}

/// Opens a connector's breaker (by name) for as long as given.
pub(crate) type HoldOpen = Box<dyn Fn(&str, Duration) + Send + Sync>;

/// What a reload the cluster asked for came to.
pub(crate) type ReloadOutcome = Result<Option<crate::Reloaded>, crate::EngineError>;

impl Heartbeat {
    pub async fn run(self) {
        // The publication in force when this node loaded its files is not
        // news to it.
        let mut acted_on = match self.store.published_config().await {
            Ok(published) => published.map(|p| p.published_at),
            Err(_) => None,
        };
        let mut interval = tokio::time::interval(HEARTBEAT);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    self.beat().await;
                    self.follow_reloads(&mut acted_on).await;
                    self.follow_breakers().await;
                }
                () = self.membership.inner.report_now.notified() => self.beat().await,
                () = self.shutdown.cancelled() => break,
            }
        }
        if self.membership.is_leader() {
            let node = self.membership.node_id();
            if let Err(e) = self.store.drop_lease(LEADER_LEASE, node).await {
                warn!(error = %e, "cannot give the leader lease up; it expires on its own");
            }
            self.membership.set_leader(false);
        }
    }

    /// Reloads when another node published a configuration since the last
    /// publication this node acted on.
    async fn follow_reloads(&self, acted_on: &mut Option<DateTime<Utc>>) {
        let published = match self.store.published_config().await {
            Ok(Some(published)) => published,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "cannot read the cluster's configuration");
                return;
            }
        };
        if Some(published.published_at) <= *acted_on {
            return;
        }
        *acted_on = Some(published.published_at);
        if published.node == self.membership.node_id() {
            return;
        }
        info!(
            version = %published.version,
            by = %published.node,
            "another node reloaded its configuration; reloading"
        );
        match (self.reload)().await {
            Ok(Some(reloaded)) if reloaded.version != published.version => warn!(
                version = %reloaded.version,
                published = %published.version,
                "this node's files give another configuration than the node that reloaded: \
                 deploy the same files to every node"
            ),
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "the reload the cluster asked for failed; the running configuration stays")
            }
        }
    }

    /// Opens this node's breakers that another node's failures opened.
    async fn follow_breakers(&self) {
        let Some(hold_open) = &self.hold_open else {
            return;
        };
        let openings = match self.store.open_breakers().await {
            Ok(openings) => openings,
            Err(e) => {
                warn!(error = %e, "cannot read the cluster's breaker openings");
                return;
            }
        };
        let now = self.clock.now();
        for opening in openings {
            if opening.node == self.membership.node_id() {
                continue;
            }
            if let Ok(left) = (opening.until - now).to_std() {
                hold_open(&opening.connector, left);
            }
        }
    }

    async fn beat(&self) {
        // The lease before the report: whoever sees this node's report
        // (its address comes with the first report after binding) also
        // sees whether it leads, never an instant in between.
        let node = self.membership.node_id();
        let leads = match self.store.hold_lease(LEADER_LEASE, node, LEADER_TTL).await {
            Ok(leads) => leads,
            Err(e) => {
                // Unsure of the lease, stop leading: housekeeping waits,
                // nothing else does.
                warn!(error = %e, "cannot renew the leader lease");
                false
            }
        };
        self.membership.set_leader(leads);
        let report = self
            .membership
            .report((self.config_version)(), (self.in_flight)());
        if let Err(e) = self.store.heartbeat(&report).await {
            warn!(error = %e, "cannot record this node's heartbeat");
        }
        if leads {
            let silent_since =
                self.clock.now() - chrono::Duration::from_std(FORGET_AFTER).unwrap_or_default();
            if let Err(e) = self.store.forget_nodes(silent_since).await {
                warn!(error = %e, "cannot forget silent nodes");
            }
            if let Err(e) = self.store.forget_rates(silent_since).await {
                warn!(error = %e, "cannot forget idle rate limits");
            }
        }
    }
}

/// The cluster's rate limits, kept in the shared store (see
/// [`patchbay_connector::SharedRate`]).
pub(crate) struct StoreRate {
    pub store: Arc<dyn Store>,
}

#[async_trait::async_trait]
impl SharedRate for StoreRate {
    async fn reserve(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        horizon: Duration,
    ) -> Result<SharedSlot, SharedError> {
        match self.store.reserve_rate(key, interval, burst, horizon).await {
            Ok(RateSlot::Reserved(wait)) => Ok(SharedSlot::Reserved(wait)),
            Ok(RateSlot::Refused(wait)) => Ok(SharedSlot::Refused(wait)),
            Err(e) => Err(SharedError::new(e.to_string())),
        }
    }
}

/// The cluster's `max_in_flight` slots, kept in the shared store (see
/// [`patchbay_connector::SharedSlots`]). Each slot taken gets a holder name
/// of its own (the node's id and a count), so a late release never frees a
/// slot another call took after the hold ran out.
pub(crate) struct StoreSlots {
    pub store: Arc<dyn Store>,
    pub node: String,
    pub taken: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl SharedSlots for StoreSlots {
    async fn take(
        &self,
        name: &str,
        limit: u32,
        hold: Duration,
    ) -> Result<Option<SlotTicket>, SharedError> {
        let count = self
            .taken
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let holder = format!("{}/{count}", self.node);
        match self.store.take_slot(name, limit, &holder, hold).await {
            Ok(slot) => Ok(slot.map(|slot| SlotTicket {
                name: name.to_string(),
                slot,
                holder,
            })),
            Err(e) => Err(SharedError::new(e.to_string())),
        }
    }

    async fn release(&self, ticket: &SlotTicket) -> Result<(), SharedError> {
        self.store
            .release_slot(&ticket.name, ticket.slot, &ticket.holder)
            .await
            .map_err(|e| SharedError::new(e.to_string()))
    }
}

/// Where this node's breaker openings go: the shared store, for the other
/// nodes' heartbeats to pick up (see [`Heartbeat`]).
pub(crate) struct StoreBreakers {
    pub store: Arc<dyn Store>,
    pub node: String,
    pub clock: Arc<dyn Clock>,
}

impl SharedBreakers for StoreBreakers {
    fn opened(&self, connector: &str, open_for: Duration) {
        let until = self.clock.now() + chrono::Duration::from_std(open_for).unwrap_or_default();
        let (store, connector, node) =
            (self.store.clone(), connector.to_string(), self.node.clone());
        // Called under the breaker's lock: the write goes on a task.
        tokio::spawn(async move {
            if let Err(e) = store.open_breaker(&connector, until, &node).await {
                warn!(connector = %connector, error = %e, "cannot tell the other nodes a breaker opened");
            }
        });
    }
}
