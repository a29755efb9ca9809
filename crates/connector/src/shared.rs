//! What a connector shares with the other nodes of a cluster:
//! [`SharedRate`], a rate limit kept outside the node, so that every node
//! draws from one budget per connector and key; [`SharedSlots`], the
//! `max_in_flight` slots every node takes its calls' from; and
//! [`SharedBreakers`], where its circuit breaker's openings go.
//!
//! A connector's `rate_limit` is the upstream's limit, not a node's: three
//! nodes each pacing themselves to 50 calls a second would send 150. When
//! the engine attaches a shared rate (nodes on PostgreSQL), a call's slot is
//! reserved there, one round trip per call, on the store's clock (one clock
//! for every node, whatever their own say), and the call sleeps until its
//! slot: nodes never race for the next free slot, so the pace holds at the
//! limit. Calls of one key still queue in arrival order on each node first,
//! so one node reserves one slot at a time per key.

use std::time::Duration;

use async_trait::async_trait;

/// A GCRA budget shared by every node.
#[async_trait]
pub trait SharedRate: Send + Sync {
    /// Reserves the next slot of `key`, paced at one per `interval` with up
    /// to `burst` back to back, unless it comes later than `horizon` from
    /// now.
    async fn reserve(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        horizon: Duration,
    ) -> Result<SharedSlot, SharedError>;
}

/// A connector's `max_in_flight` slots, shared by every node: a call on the
/// wire holds one, whichever node sent it.
#[async_trait]
pub trait SharedSlots: Send + Sync {
    /// Takes one of the `limit` slots of `name`, held at most `hold` (a
    /// node that dies never gives it back), unless every slot is held.
    async fn take(
        &self,
        name: &str,
        limit: u32,
        hold: Duration,
    ) -> Result<Option<SlotTicket>, SharedError>;
    /// Gives a slot back.
    async fn release(&self, ticket: &SlotTicket) -> Result<(), SharedError>;
}

/// A slot [`SharedSlots::take`] gave: which one, and to whom, so that a
/// release after the hold ran out leaves the next holder's alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotTicket {
    pub name: String,
    pub slot: u32,
    pub holder: String,
}

/// What the shared budget gave a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedSlot {
    /// The call's slot: it goes after this long (zero: now).
    Reserved(Duration),
    /// The next slot comes this long from now, beyond the horizon; nothing
    /// was reserved.
    Refused(Duration),
}

/// Shared state that could not be asked (its store is unreachable).
#[derive(Debug, thiserror::Error)]
#[error("the cluster's shared state: {message}")]
pub struct SharedError {
    message: String,
}

impl SharedError {
    pub fn new(message: impl Into<String>) -> Self {
        SharedError {
            message: message.into(),
        }
    }
}

/// Where a node's breaker openings go, for the other nodes sharing its
/// store (see `crate::breaker`).
pub trait SharedBreakers: Send + Sync {
    /// A breaker opened on this node's failures, for `open_for`. `breaker`
    /// is the connector's name, or `connector[key]` for a keyed breaker
    /// (see [`crate::Connectors::open_breaker_as_elsewhere`]). Called under
    /// the breaker's lock: only hand the news on.
    fn opened(&self, breaker: &str, open_for: Duration);
}

/// Who hears of every change of a breaker's state on this node (alert
/// flows fire on them).
pub trait BreakerWatch: Send + Sync {
    /// `connector`'s breaker (of `key`, when keyed) went from `from` to
    /// `to`. Called under the breaker's lock: only hand the news on.
    fn changed(
        &self,
        connector: &str,
        key: Option<&str>,
        from: crate::BreakerState,
        to: crate::BreakerState,
    );
}
