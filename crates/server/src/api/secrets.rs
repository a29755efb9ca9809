//! `/api/v1/secrets`: values for `${secret:NAME}`, sealed in the store.
//! Their values go in and never come out: the API lists names only.
//!
//! A changed secret takes effect at the next configuration reload
//! (`POST /api/v1/config/reload`) or restart.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use patchbay_store::{MAX_SECRET_BYTES, Secrets, valid_secret_name};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::page::{NamePage, page_type};
use crate::AppState;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets))
        .routes(routes!(put_secret, delete_secret))
}

/// A stored secret: its name and when it was last set, never its value.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SecretView {
    pub name: String,
    pub updated_at: DateTime<Utc>,
}

page_type!(
    /// A page of secrets, by name.
    SecretList of SecretView
);

/// A secret's new value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretValue {
    /// The value, at most 16384 characters.
    #[schema(max_length = 16384)]
    value: String,
}

/// Longest value accepted here: four UTF-8 bytes per character at most,
/// so it always fits the store's limit.
const MAX_VALUE_CHARS: usize = MAX_SECRET_BYTES / 4;

fn secrets(state: &AppState) -> Result<&Secrets, ApiError> {
    state.engine.secrets().ok_or_else(|| {
        ApiError::not_implemented("this node keeps no secrets (it has no master key)")
    })
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if valid_secret_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid_parameter(
            "name",
            "`name` may only use ASCII letters, digits and `_` (1 to 128 of them)",
        ))
    }
}

fn store_error(e: patchbay_store::StoreError) -> ApiError {
    match e {
        // The name or value was refused; the message says why, never
        // showing the value.
        patchbay_store::StoreError::InvalidSecret(message) => ApiError::bad_request(message),
        other => patchbay_engine::EngineError::from(other).into(),
    }
}

/// List the secrets' names, by name.
#[utoipa::path(
    get,
    path = "/secrets",
    tag = "secrets",
    params(NamePage),
    responses(
        (status = 200, description = "A page of secrets, by name; never their values", body = SecretList),
        (status = 501, description = "`not_implemented`: this node keeps no secrets"),
    ),
    security(("bearer" = ["admin"]))
)]
async fn list_secrets(
    State(state): State<AppState>,
    Query(page): Query<NamePage>,
) -> Result<Json<SecretList>, ApiError> {
    let page = page.page()?;
    let mut listed = secrets(&state)?.list().await.map_err(store_error)?;
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let views = listed
        .into_iter()
        .map(|info| SecretView {
            name: info.name,
            updated_at: info.updated_at,
        })
        .collect();
    Ok(Json(page.of_sorted(views, |s| s.name.clone()).into()))
}

/// Create or replace a secret.
#[utoipa::path(
    put,
    path = "/secrets/{name}",
    tag = "secrets",
    params(("name" = String, Path, description = "ASCII letters, digits and `_`", pattern = "^[A-Za-z0-9_]{1,128}$")),
    request_body(content = SecretValue, content_type = "application/json"),
    responses(
        (status = 204, description = "Stored, sealed with the node's master key"),
        (status = 501, description = "`not_implemented`: this node keeps no secrets"),
    ),
    security(("bearer" = ["admin"]))
)]
async fn put_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<SecretValue>,
) -> Result<StatusCode, ApiError> {
    check_name(&name)?;
    // Characters, as the document's `maxLength` counts them; so many
    // always fit the store's limit in bytes.
    if body.value.chars().count() > MAX_VALUE_CHARS {
        return Err(ApiError::invalid_parameter(
            "value",
            format!("a secret's value may be at most {MAX_VALUE_CHARS} characters"),
        ));
    }
    secrets(&state)?
        .set(&name, &body.value)
        .await
        .map_err(store_error)?;
    tracing::info!(secret = %name, "secret set through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a secret.
#[utoipa::path(
    delete,
    path = "/secrets/{name}",
    tag = "secrets",
    params(("name" = String, Path, description = "The secret's name", pattern = "^[A-Za-z0-9_]{1,128}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no secret has this name"),
        (status = 501, description = "`not_implemented`: this node keeps no secrets"),
    ),
    security(("bearer" = ["admin"]))
)]
async fn delete_secret(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_name(&name)?;
    if secrets(&state)?.delete(&name).await.map_err(store_error)? {
        tracing::info!(secret = %name, "secret deleted through the API");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no secret `{name}`")))
    }
}
