//! The store's earlier JSON-string methods, kept only until `sous-api` moves to the typed
//! ones (they are thin conversions onto them; nothing else may use them):
//!
//! | legacy (JSON strings)              | typed                                   |
//! |------------------------------------|-----------------------------------------|
//! | `put_event_invoke_config(.., &str)`| [`Store::set_event_invoke_config`]      |
//! | `get_event_invoke_config`          | [`Store::event_invoke_config`]          |
//! | `list_event_invoke_configs`        | [`Store::event_invoke_configs`]         |
//! | `insert_function_url(&StoredUrl)`  | [`Store::insert_url`]                   |
//! | `get_function_url`                 | [`Store::url`]                          |
//! | `function_url_by_id`               | [`Store::url_by_id`]                    |
//! | `update_function_url(.., &str)`    | [`Store::update_url`]                   |
//! | `list_function_urls`               | [`Store::urls`]                         |

use sous_types::function_url::FunctionUrlConfig;

use crate::db::{Store, StoreError};
use crate::urls::FunctionUrl;

/// A function URL with its configuration as JSON (legacy: see [`FunctionUrl`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUrl {
    pub url_id: String,
    pub function_name: String,
    /// `$LATEST` or an alias name.
    pub qualifier: String,
    pub config_json: String,
}

impl TryFrom<FunctionUrl> for StoredUrl {
    type Error = StoreError;

    fn try_from(url: FunctionUrl) -> Result<Self, StoreError> {
        Ok(StoredUrl {
            config_json: serde_json::to_string(&url.config)
                .map_err(|e| StoreError::Corrupt(format!("serialize URL configuration: {e}")))?,
            url_id: url.url_id,
            function_name: url.function_name,
            qualifier: url.qualifier,
        })
    }
}

fn url_config(json: &str) -> Result<FunctionUrlConfig, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("function URL configuration given: {e}")))
}

impl Store {
    /// Legacy of [`Store::set_event_invoke_config`]; `config_json` must be a
    /// `FunctionEventInvokeConfig`.
    pub fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
        config_json: &str,
    ) -> Result<(), StoreError> {
        let config = serde_json::from_str(config_json)
            .map_err(|e| StoreError::Corrupt(format!("event invoke configuration given: {e}")))?;
        self.set_event_invoke_config(function, qualifier, &config)
    }

    /// Legacy of [`Store::event_invoke_config`].
    pub fn get_event_invoke_config(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<String>, StoreError> {
        self.event_invoke_json(function, qualifier)
    }

    /// Legacy of [`Store::event_invoke_configs`].
    pub fn list_event_invoke_configs(&self, function: &str) -> Result<Vec<String>, StoreError> {
        self.event_invoke_jsons(function)
    }

    /// Legacy of [`Store::insert_url`].
    pub fn insert_function_url(&self, url: &StoredUrl) -> Result<(), StoreError> {
        self.insert_url(&FunctionUrl {
            url_id: url.url_id.clone(),
            function_name: url.function_name.clone(),
            qualifier: url.qualifier.clone(),
            config: url_config(&url.config_json)?,
        })
    }

    /// Legacy of [`Store::url`].
    pub fn get_function_url(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<StoredUrl>, StoreError> {
        self.url(function, qualifier)?
            .map(StoredUrl::try_from)
            .transpose()
    }

    /// Legacy of [`Store::url_by_id`].
    pub fn function_url_by_id(&self, url_id: &str) -> Result<Option<StoredUrl>, StoreError> {
        self.url_by_id(url_id)?.map(StoredUrl::try_from).transpose()
    }

    /// Legacy of [`Store::update_url`].
    pub fn update_function_url(
        &self,
        function: &str,
        qualifier: &str,
        config_json: &str,
    ) -> Result<bool, StoreError> {
        self.update_url(function, qualifier, &url_config(config_json)?)
    }

    /// Legacy of [`Store::urls`].
    pub fn list_function_urls(&self, function: &str) -> Result<Vec<StoredUrl>, StoreError> {
        self.urls(function)?
            .into_iter()
            .map(StoredUrl::try_from)
            .collect()
    }
}
