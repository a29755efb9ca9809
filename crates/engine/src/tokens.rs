//! Keeps the refresh tokens that OAuth2 servers rotate in the store, so a
//! restart resumes with the latest one instead of a token the server has
//! already revoked.
//!
//! A refresh token is a credential as good as a password for as long as it
//! lives, so it is sealed with the node's master key like a secret
//! ([`Secrets::save_credential`]). Without a master key (a node not given
//! one) nothing is written: the rotated token is kept in memory only.
//!
//! On a store several nodes share, a refresh takes the connector's turn, a
//! lease in the store, so nodes refresh one at a time, each with the token
//! the previous one saved. The access token a node fetched is saved too,
//! sealed the same way, so that the next node to need one takes it instead
//! of asking the token server; a node without a master key neither shares
//! nor takes one.

use std::sync::Arc;
use std::time::Duration;

use std::time::UNIX_EPOCH;

use patchbay_connector::{SharedAccess, TokenStore, TokenStoreError};
use patchbay_store::{Secrets, Store};

/// [`TokenStore`] over the engine's [`Store`], one credential per connector,
/// sealed with the secrets' master key.
pub(crate) struct StoredTokens {
    pub store: Arc<dyn Store>,
    /// The engine's secrets, when it was started with them.
    pub secrets: Option<Secrets>,
    /// This node, as the holder of the turn to refresh a token on a store
    /// several nodes share.
    pub node: String,
}

/// The lease that gives one node at a time the turn to refresh
/// `connector`'s token.
fn turn(connector: &str) -> String {
    format!("oauth2:{connector}:refresh")
}

fn name(connector: &str) -> String {
    format!("oauth2:{connector}:refresh_token")
}

fn access_name(connector: &str) -> String {
    format!("oauth2:{connector}:access_token")
}

/// A shared access token as sealed in the store.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAccess {
    token: String,
    /// Unix milliseconds.
    replace_at: Option<u64>,
}

#[async_trait::async_trait]
impl TokenStore for StoredTokens {
    async fn load(&self, connector: &str) -> Result<Option<String>, TokenStoreError> {
        let name = name(connector);
        match self.secrets.as_ref() {
            Some(secrets) => secrets
                .credential(&name)
                .await
                .map_err(|e| TokenStoreError::with_source("cannot read the refresh token", e)),
            // Nothing sealed can be opened, and nothing plain is trusted.
            None => match self.store.credential(&name).await {
                Ok(None) => Ok(None),
                Ok(Some(_)) => Err(TokenStoreError::new(
                    "a refresh token is stored but this node has no master key to open it",
                )),
                Err(e) => Err(TokenStoreError::with_source(
                    "cannot read the refresh token",
                    e,
                )),
            },
        }
    }

    async fn save(&self, connector: &str, refresh_token: &str) -> Result<(), TokenStoreError> {
        let Some(secrets) = self.secrets.as_ref() else {
            return Err(TokenStoreError::new(
                "this node has no master key to seal it with; it is kept in memory only",
            ));
        };
        secrets
            .save_credential(&name(connector), refresh_token)
            .await
            .map_err(|e| TokenStoreError::with_source("cannot save the refresh token", e))
    }

    fn shared(&self) -> bool {
        self.store.is_shared()
    }

    async fn begin_refresh(&self, connector: &str, ttl: Duration) -> Result<bool, TokenStoreError> {
        self.store
            .hold_lease(&turn(connector), &self.node, ttl)
            .await
            .map_err(|e| TokenStoreError::with_source("cannot take the turn to refresh", e))
    }

    async fn end_refresh(&self, connector: &str) {
        if let Err(e) = self.store.drop_lease(&turn(connector), &self.node).await {
            tracing::warn!(connector, error = %e, "cannot give the turn to refresh back; it expires");
        }
    }

    async fn load_access(&self, connector: &str) -> Result<Option<SharedAccess>, TokenStoreError> {
        let Some(secrets) = self.secrets.as_ref() else {
            return Ok(None);
        };
        let Some(text) = secrets
            .credential(&access_name(connector))
            .await
            .map_err(|e| TokenStoreError::with_source("cannot read the shared access token", e))?
        else {
            return Ok(None);
        };
        // The parser's message could quote the text, a credential: not kept.
        let stored: StoredAccess = serde_json::from_str(&text)
            .map_err(|_| TokenStoreError::new("the shared access token is not in its format"))?;
        Ok(Some(SharedAccess {
            token: stored.token,
            replace_at: stored
                .replace_at
                .map(|ms| UNIX_EPOCH + std::time::Duration::from_millis(ms)),
        }))
    }

    async fn save_access(
        &self,
        connector: &str,
        access: &SharedAccess,
    ) -> Result<(), TokenStoreError> {
        let Some(secrets) = self.secrets.as_ref() else {
            return Ok(());
        };
        let stored = StoredAccess {
            token: access.token.clone(),
            replace_at: access.replace_at.map(|at| {
                at.duration_since(UNIX_EPOCH).map_or(0, |since| {
                    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
                })
            }),
        };
        let text = serde_json::to_string(&stored)
            .map_err(|_| TokenStoreError::new("cannot encode the shared access token"))?;
        secrets
            .save_credential(&access_name(connector), &text)
            .await
            .map_err(|e| TokenStoreError::with_source("cannot share the access token", e))
    }
}
