//! Secrets at rest: values set with `patchbay secrets set` or the management
//! API, sealed with the node's master key before they reach the database.
//!
//! Sealing is AES-256-GCM with a fresh random 96-bit nonce per value and the
//! secret's name as associated data: a copy of the database without the key
//! reveals nothing, and a sealed value moved to another name (or altered)
//! fails to open rather than resolving to the wrong credential. A stored value
//! is `version (1) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`; the version byte
//! leaves room for a later key rotation.
//!
//! The master key comes from `PATCHBAY_MASTER_KEY` (base64 of 32 bytes) or,
//! failing that, from a key file beside the database, created on first use
//! with mode 0600. Keeping the key in the environment (or on another volume)
//! is what makes the database alone useless to a thief; the key file is the
//! zero-setup default for a single machine, and its loss makes the stored
//! secrets unreadable, so back it up with the database.
//!
//! Values are never read back through the API: [`Secrets::resolve_all`] is
//! for the node itself, which substitutes them into `${secret:NAME}` when it
//! loads the configuration.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::{Aead, Generate, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use crate::{Store, StoreError};

/// The environment variable holding the master key, base64-encoded.
pub const MASTER_KEY_ENV: &str = "PATCHBAY_MASTER_KEY";

/// Longest secret name.
const MAX_NAME: usize = 128;
/// Largest secret value, in bytes: credentials, not documents.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

const FORMAT_V1: u8 = 1;
const NONCE_BYTES: usize = 12;

/// A stored secret's name and when it was last set; never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The key that seals secrets. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MasterKey(Arc<Aes256Gcm>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(****)")
    }
}

impl MasterKey {
    /// A key from its base64 text (32 bytes once decoded).
    pub fn from_base64(text: &str) -> Result<Self, StoreError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| StoreError::MasterKey(format!("not valid base64: {e}")))?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            StoreError::MasterKey(format!("must be 32 bytes, found {}", bytes.len()))
        })?;
        Ok(MasterKey(Arc::new(cipher)))
    }

    /// A fresh random key, as base64 text.
    pub fn generate_base64() -> String {
        let key: [u8; 32] = Generate::generate();
        BASE64.encode(key)
    }

    /// The key from `PATCHBAY_MASTER_KEY` when set, else from `key_file`,
    /// which is created (mode 0600) with a new key if it does not exist.
    pub fn load(env_value: Option<&str>, key_file: &Path) -> Result<Self, StoreError> {
        if let Some(text) = env_value {
            return MasterKey::from_base64(text)
                .map_err(|e| StoreError::MasterKey(format!("{MASTER_KEY_ENV}: {e}")));
        }
        let in_file =
            |e: StoreError| StoreError::MasterKey(format!("key file {}: {e}", key_file.display()));
        match std::fs::read_to_string(key_file) {
            Ok(text) => {
                refuse_shared_key_file(key_file)?;
                MasterKey::from_base64(&text).map_err(in_file)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = MasterKey::generate_base64();
                write_new_key_file(key_file, &text)
                    .map_err(|e| in_file(StoreError::MasterKey(e.to_string())))?;
                tracing::info!(path = %key_file.display(), "created a master key for secrets; back it up with the store");
                MasterKey::from_base64(&text)
            }
            Err(e) => Err(in_file(StoreError::MasterKey(e.to_string()))),
        }
    }

    /// Where the key file of the store at `store_path` lives by default.
    pub fn default_file(store_path: &Path) -> PathBuf {
        let mut name = store_path.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    fn seal(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.seal_as(name, &associated_data(name), value)
    }

    fn open(&self, name: &str, sealed: &[u8]) -> Result<String, StoreError> {
        self.open_as(name, &associated_data(name), sealed)
    }

    /// Seals `value` bound to `aad` (a secret's or a credential's name).
    fn seal_as(&self, name: &str, aad: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: Nonce<aes_gcm::aead::consts::U12> = Generate::generate();
        let ciphertext = self
            .0
            .encrypt(&nonce, Payload { msg: value, aad })
            .map_err(|_| StoreError::Sealed {
                name: name.to_string(),
                reason: "encryption failed",
            })?;
        let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    fn open_as(&self, name: &str, aad: &[u8], sealed: &[u8]) -> Result<String, StoreError> {
        let failed = |reason| StoreError::Sealed {
            name: name.to_string(),
            reason,
        };
        let [FORMAT_V1, rest @ ..] = sealed else {
            return Err(failed("unknown format"));
        };
        if rest.len() < NONCE_BYTES {
            return Err(failed("truncated"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        let nonce = Nonce::<aes_gcm::aead::consts::U12>::try_from(nonce)
            .map_err(|_| failed("truncated"))?;
        let plain = self
            .0
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| failed("wrong master key, or the value was altered"))?;
        String::from_utf8(plain).map_err(|_| failed("not UTF-8"))
    }
}

fn associated_data(name: &str) -> Vec<u8> {
    format!("patchbay-secret:{name}").into_bytes()
}

/// A credential's associated data: apart from secrets', so a sealed secret
/// copied into the credentials table opens as nothing.
fn credential_data(name: &str) -> Vec<u8> {
    format!("patchbay-credential:{name}").into_bytes()
}

/// How a sealed credential starts in the `credentials` table; the rest is
/// the base64 of the sealed bytes.
const SEALED_CREDENTIAL: &str = "sealed:";

/// Refuses a key file that others than its owner may read: whoever reads
/// it opens every secret in the store.
fn refuse_shared_key_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| StoreError::MasterKey(format!("key file {}: {e}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(StoreError::MasterKey(format!(
                "key file {} is readable by group or others (mode {:o}); \
                 restrict it with `chmod 600 {}` (or set {MASTER_KEY_ENV} instead)",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_new_key_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Whether `name` may name a secret: ASCII letters, digits and `_`, like an
/// environment variable, so `${secret:NAME}` parses the same way.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The secrets of one store, sealed and opened with one master key.
#[derive(Clone)]
pub struct Secrets {
    store: Arc<dyn Store>,
    key: MasterKey,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets").finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(store: Arc<dyn Store>, key: MasterKey) -> Self {
        Secrets { store, key }
    }

    /// Creates or replaces a secret.
    pub async fn set(&self, name: &str, value: &str) -> Result<(), StoreError> {
        if !valid_secret_name(name) {
            return Err(StoreError::InvalidSecret(format!(
                "`{name}` is not a valid secret name: use 1 to {MAX_NAME} ASCII letters, digits and `_`"
            )));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(StoreError::InvalidSecret(format!(
                "the value of `{name}` is {} bytes; the limit is {MAX_SECRET_BYTES}",
                value.len()
            )));
        }
        let sealed = self.key.seal(name, value.as_bytes())?;
        self.store.put_sealed_secret(name, &sealed).await
    }

    /// Deletes a secret; false when there was none of that name.
    pub async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.store.delete_secret(name).await
    }

    /// Names and update times, never values.
    pub async fn list(&self) -> Result<Vec<SecretInfo>, StoreError> {
        self.store.secret_names().await
    }

    /// Every secret's value, for `${secret:NAME}` at load time. Fails if
    /// one cannot be opened (a wrong master key): a node must not start
    /// with credentials it cannot read.
    pub async fn resolve_all(&self) -> Result<HashMap<String, String>, StoreError> {
        let mut values = HashMap::new();
        for (name, sealed) in self.store.sealed_secrets().await? {
            let value = self.key.open(&name, &sealed)?;
            values.insert(name, value);
        }
        Ok(values)
    }
}

impl Secrets {
    /// A credential issued at run time (a rotated refresh token), opened.
    /// One stored in the clear by an earlier version is sealed on the spot.
    pub async fn credential(&self, name: &str) -> Result<Option<String>, StoreError> {
        let Some(stored) = self.store.credential(name).await? else {
            return Ok(None);
        };
        match stored.strip_prefix(SEALED_CREDENTIAL) {
            Some(encoded) => {
                let sealed = BASE64.decode(encoded).map_err(|_| StoreError::Sealed {
                    name: name.to_string(),
                    reason: "not valid base64",
                })?;
                self.key
                    .open_as(name, &credential_data(name), &sealed)
                    .map(Some)
            }
            None => {
                self.save_credential(name, &stored).await?;
                tracing::info!(credential = %name, "a stored credential was sealed with the master key");
                Ok(Some(stored))
            }
        }
    }

    /// Seals and stores a credential issued at run time, replacing the
    /// previous value of that name.
    pub async fn save_credential(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let sealed = self
            .key
            .seal_as(name, &credential_data(name), value.as_bytes())?;
        let text = format!("{SEALED_CREDENTIAL}{}", BASE64.encode(sealed));
        self.store.save_credential(name, &text).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_base64(&MasterKey::generate_base64()).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_name() {
        let key = key();
        let sealed = key.seal("crm_token", b"s3cr3t").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cr3t"),
            "the plain value is not in the sealed bytes"
        );
        assert_eq!(key.open("crm_token", &sealed).unwrap(), "s3cr3t");
        // Same value, new nonce.
        assert_ne!(sealed, key.seal("crm_token", b"s3cr3t").unwrap());

        let moved = key.open("erp_token", &sealed).unwrap_err();
        assert!(moved.to_string().contains("erp_token"), "{moved}");
        let other = self::key().open("crm_token", &sealed).unwrap_err();
        assert!(other.to_string().contains("wrong master key"), "{other}");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open("crm_token", &altered).is_err());
        assert!(key.open("crm_token", &sealed[..5]).is_err());
        assert!(key.open("crm_token", &[]).is_err());
    }

    #[test]
    fn bad_keys_are_named() {
        let short = MasterKey::from_base64("c2hvcnQ=").unwrap_err();
        assert!(short.to_string().contains("32 bytes"), "{short}");
        let garbage = MasterKey::from_base64("!!!").unwrap_err();
        assert!(garbage.to_string().contains("base64"), "{garbage}");
        assert_eq!(format!("{:?}", key()), "MasterKey(****)");
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = MasterKey::default_file(&dir.path().join("patchbay.db"));
        assert!(path.ends_with("patchbay.db.key"));
        let first = MasterKey::load(None, &path).unwrap();
        let sealed = first.seal("a", b"value").unwrap();
        let again = MasterKey::load(None, &path).unwrap();
        assert_eq!(again.open("a", &sealed).unwrap(), "value");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The environment wins over the file.
        let env = MasterKey::generate_base64();
        let from_env = MasterKey::load(Some(&env), &path).unwrap();
        assert!(from_env.open("a", &sealed).is_err());
        let bad_env = MasterKey::load(Some("nope"), &path).unwrap_err();
        assert!(bad_env.to_string().contains(MASTER_KEY_ENV), "{bad_env}");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = MasterKey::default_file(&dir.path().join("patchbay.db"));
        MasterKey::load(None, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = MasterKey::load(None, &path).unwrap_err().to_string();
        assert!(refused.contains(&path.display().to_string()), "{refused}");
        assert!(refused.contains("chmod 600"), "{refused}");
        assert!(refused.contains("644"), "{refused}");
    }

    #[test]
    fn names_are_like_variables() {
        assert!(valid_secret_name("crm_client_secret"));
        assert!(valid_secret_name("A1"));
        assert!(!valid_secret_name(""));
        assert!(!valid_secret_name("a-b"));
        assert!(!valid_secret_name("a}b"));
        assert!(!valid_secret_name(&"a".repeat(129)));
    }
}
