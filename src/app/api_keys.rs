//! The API keys' use cases: create (the key is returned once and only its hash is kept), list,
//! revoke, and authenticate a presented key (by its hash, so the comparison is of digests in
//! an index, never of keys).

use serde::Serialize;

use super::views::ApiKeyView;
use super::{App, AppError};
use crate::core::model::{ApiKey, NewApiKey, Scope};
use crate::core::text::FreeText;

/// The longest key name, in characters.
pub const NAME_MAX: usize = 64;

/// A key just created: the key itself, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    pub key: String,
}

pub async fn create(app: &App, name: &str, scope: Scope) -> Result<CreatedKey, AppError> {
    let name = FreeText::parse(name, NAME_MAX)
        .map_err(|e| AppError::invalid_field("name", format!(": {e}")))?
        .into_string();
    if name.contains([' ', ':']) {
        return Err(AppError::invalid_field(
            "name",
            format!(
                " \"{name}\": use letters, digits, '-' or '_' (it names the key in events, as api:{name})"
            ),
        ));
    }
    let (key, key_hash, key_prefix) = crate::api_keys::generate()
        .map_err(|e| AppError::Unavailable(format!("no randomness from the OS: {e}")))?;
    let stored = app
        .store()
        .create_api_key(
            &NewApiKey {
                name,
                scope,
                key_hash,
                key_prefix,
            },
            app.now(),
        )
        .await?;
    Ok(CreatedKey {
        api_key: ApiKeyView::from(&stored),
        key,
    })
}

pub async fn list(app: &App) -> Result<Vec<ApiKeyView>, AppError> {
    Ok(app
        .store()
        .api_keys()
        .await?
        .iter()
        .map(ApiKeyView::from)
        .collect())
}

pub async fn revoke(app: &App, name: &str) -> Result<ApiKeyView, AppError> {
    Ok(ApiKeyView::from(
        &app.store().revoke_api_key(name, app.now()).await?,
    ))
}

/// The live key a request presents, or `None` for an unknown or revoked one (the caller
/// answers both the same way). Records the use.
pub async fn authenticate(app: &App, presented: &str) -> Result<Option<ApiKey>, AppError> {
    let found = live(app, &crate::api_keys::hash(presented)).await?;
    if let Some(key) = &found {
        app.store().touch_api_key(key.id, app.now()).await?;
    }
    Ok(found)
}

/// The live (not revoked) key with this SHA-256, without recording a use: how a console
/// session checks on each request that the key it was opened with still stands.
pub async fn live(app: &App, hash: &[u8; 32]) -> Result<Option<ApiKey>, AppError> {
    Ok(app
        .store()
        .api_key_by_hash(hash)
        .await?
        .filter(|key| key.revoked_at.is_none()))
}
