//! [`TokenStore`]: where rotated OAuth 2.0 refresh tokens are kept.
//!
//! A token server that rotates refresh tokens hands back a new one with every
//! refresh and may reject the old one from then on (some revoke the whole
//! token family when an old one is presented again). A process that forgot
//! the new token would therefore lock itself out on its next start, so each
//! rotated token is saved, and a saved token takes precedence over the one in
//! the configuration.
//!
//! Several processes sharing one store (nodes on one database) would each
//! hold the token they read last, and the first to refresh would leave the
//! others a revoked one: a shared store gives refreshes one at a time
//! ([`TokenStore::begin_refresh`]), and each refresh reads the saved token
//! again before presenting it.
//!
//! On a shared store the access token is shared too
//! ([`TokenStore::load_access`]): the process whose turn it is first looks
//! for one another process fetched and that is still in use, and takes it
//! instead of asking the token server. A cluster then asks for one access
//! token per token life, not one per node.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// Durable storage of refresh tokens, one per connector.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The refresh token saved for `connector`, if any.
    async fn load(&self, connector: &str) -> Result<Option<String>, TokenStoreError>;
    /// Saves `refresh_token` for `connector`, replacing an earlier one.
    async fn save(&self, connector: &str, refresh_token: &str) -> Result<(), TokenStoreError>;

    /// Whether other processes share the store and may rotate the token
    /// too: then a refresh takes its turn ([`TokenStore::begin_refresh`])
    /// and reads the saved token again first, so no process presents a
    /// token another has already rotated away.
    fn shared(&self) -> bool {
        false
    }

    /// Takes the turn to refresh `connector`'s token, for up to `ttl`;
    /// false while another process has it.
    async fn begin_refresh(&self, connector: &str, ttl: Duration) -> Result<bool, TokenStoreError> {
        let _ = (connector, ttl);
        Ok(true)
    }

    /// Gives the turn back.
    async fn end_refresh(&self, connector: &str) {
        let _ = connector;
    }

    /// The access token another process sharing the store fetched for
    /// `connector` last, if any. Only read while holding the turn.
    async fn load_access(&self, connector: &str) -> Result<Option<SharedAccess>, TokenStoreError> {
        let _ = connector;
        Ok(None)
    }

    /// Shares the access token this process just fetched for `connector`
    /// with the others, replacing the one before.
    async fn save_access(
        &self,
        connector: &str,
        access: &SharedAccess,
    ) -> Result<(), TokenStoreError> {
        let _ = (connector, access);
        Ok(())
    }
}

/// An access token as processes sharing a token store pass it on.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedAccess {
    /// The token itself, as sent after `Bearer `.
    pub token: String,
    /// When every process stops using it (wall clock, since processes
    /// share no monotonic clock); `None` when the server gave no lifetime.
    pub replace_at: Option<SystemTime>,
}

impl fmt::Debug for SharedAccess {
    /// The time only: the token is a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAccess")
            .field("replace_at", &self.replace_at)
            .finish_non_exhaustive()
    }
}

/// A token store that failed to read or write.
#[derive(Debug, thiserror::Error)]
#[error("token store: {message}")]
pub struct TokenStoreError {
    message: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl TokenStoreError {
    /// An error described by `message`, which must not contain the token.
    pub fn new(message: impl Into<String>) -> Self {
        TokenStoreError {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source` (a database error, say).
    pub fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        TokenStoreError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// A [`TokenStore`] in memory: for tests, and for processes that accept
/// losing rotated tokens on restart.
#[derive(Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, String>>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        MemoryTokenStore::default()
    }

    /// The token saved for `connector`.
    pub fn get(&self, connector: &str) -> Option<String> {
        self.lock().get(connector).cloned()
    }

    /// Puts a token in place, as if an earlier run had saved it.
    pub fn insert(&self, connector: &str, refresh_token: &str) {
        self.lock()
            .insert(connector.to_string(), refresh_token.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // The map is always whole: a panic elsewhere cannot leave it half-written.
        self.tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn load(&self, connector: &str) -> Result<Option<String>, TokenStoreError> {
        Ok(self.get(connector))
    }

    async fn save(&self, connector: &str, refresh_token: &str) -> Result<(), TokenStoreError> {
        self.insert(connector, refresh_token);
        Ok(())
    }
}

impl fmt::Debug for MemoryTokenStore {
    /// Connector names only: the values are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        f.debug_struct("MemoryTokenStore")
            .field("connectors", &names)
            .finish()
    }
}
