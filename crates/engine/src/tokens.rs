//! Keeps the refresh tokens that OAuth2 servers rotate in the store, so a
//! restart resumes with the latest one instead of a token the server has
//! already revoked.

use std::sync::Arc;

use patchbay_connector::{TokenStore, TokenStoreError};
use patchbay_store::Store;

/// [`TokenStore`] over the engine's [`Store`], one credential per connector.
pub(crate) struct StoredTokens {
    pub store: Arc<dyn Store>,
}

fn name(connector: &str) -> String {
    format!("oauth2:{connector}:refresh_token")
}

#[async_trait::async_trait]
impl TokenStore for StoredTokens {
    async fn load(&self, connector: &str) -> Result<Option<String>, TokenStoreError> {
        self.store
            .credential(&name(connector))
            .await
            .map_err(|e| TokenStoreError::with_source("cannot read the refresh token", e))
    }

    async fn save(&self, connector: &str, refresh_token: &str) -> Result<(), TokenStoreError> {
        self.store
            .save_credential(&name(connector), refresh_token)
            .await
            .map_err(|e| TokenStoreError::with_source("cannot save the refresh token", e))
    }
}
