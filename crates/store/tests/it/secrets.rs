//! Secrets through the store: sealed on the way in, listed by name only,
//! replaced and deleted by name, and opened only with the same key.

use std::sync::Arc;

use patchbay_store::{MasterKey, Secrets, Store, StoreError};

use crate::open;

fn key() -> MasterKey {
    MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
}

#[tokio::test]
async fn set_list_replace_delete() {
    let (store, _dir) = open().await;
    let store: Arc<dyn Store> = Arc::from(store);
    let key = key();
    let secrets = Secrets::new(store.clone(), key.clone());

    secrets.set("crm_token", "one").await.unwrap();
    secrets.set("erp_password", "two").await.unwrap();
    secrets.set("crm_token", "three").await.unwrap();

    let names: Vec<String> = secrets
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["crm_token", "erp_password"]);
    let values = secrets.resolve_all().await.unwrap();
    assert_eq!(values["crm_token"], "three");
    assert_eq!(values["erp_password"], "two");

    // What the table holds is sealed.
    for (_, sealed) in store.sealed_secrets().await.unwrap() {
        assert!(!sealed.windows(3).any(|w| w == b"two" || w == b"thr"));
    }

    // Another key opens nothing, and says which secret failed.
    let stranger = Secrets::new(store.clone(), self::key());
    match stranger.resolve_all().await {
        Err(StoreError::Sealed { name, .. }) => assert_eq!(name, "crm_token"),
        other => panic!("expected a sealed-value error, got {other:?}"),
    }

    assert!(secrets.delete("crm_token").await.unwrap());
    assert!(!secrets.delete("crm_token").await.unwrap());
    assert_eq!(secrets.list().await.unwrap().len(), 1);

    let bad = secrets.set("crm token", "x").await.unwrap_err();
    assert!(bad.to_string().contains("not a valid secret name"), "{bad}");
    let huge = secrets
        .set("big", &"x".repeat(patchbay_store::MAX_SECRET_BYTES + 1))
        .await
        .unwrap_err();
    assert!(huge.to_string().contains("limit"), "{huge}");
}

#[tokio::test]
async fn credentials_are_sealed_at_rest() {
    let (store, dir) = open().await;
    let store: Arc<dyn Store> = Arc::from(store);
    let key = key();
    let secrets = Secrets::new(store.clone(), key.clone());
    let name = "oauth2:crm:refresh_token";

    secrets
        .save_credential(name, "rotated-refresh-token-1")
        .await
        .unwrap();
    let stored = store.credential(name).await.unwrap().unwrap();
    assert!(!stored.contains("rotated-refresh"), "{stored}");
    assert_eq!(
        secrets.credential(name).await.unwrap().as_deref(),
        Some("rotated-refresh-token-1")
    );
    assert_eq!(store.count_credentials().await.unwrap(), 1);

    // Another key opens nothing, and a credential is not a secret.
    let stranger = Secrets::new(store.clone(), self::key());
    assert!(stranger.credential(name).await.is_err());

    // One stored in the clear (by an earlier version) is sealed when read.
    store
        .save_credential("oauth2:erp:refresh_token", "plain-refresh-token")
        .await
        .unwrap();
    assert_eq!(
        secrets
            .credential("oauth2:erp:refresh_token")
            .await
            .unwrap()
            .as_deref(),
        Some("plain-refresh-token")
    );
    let resealed = store
        .credential("oauth2:erp:refresh_token")
        .await
        .unwrap()
        .unwrap();
    assert!(!resealed.contains("plain-refresh"), "{resealed}");
    drop(dir);
}
