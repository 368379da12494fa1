//! The account: GetAccountSettings (limits and usage, and the host's memory capacity) and
//! Sous's own status document (`GET /_sous/status`).

use serde::Serialize;
use sous_types::limits::*;

use super::Reply;
use crate::error::{store_error, ApiError};
use crate::ApiState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountSettings {
    pub account_limit: AccountLimit,
    pub account_usage: AccountUsage,
    /// Sous's host capacity (not an AWS member; SDKs ignore members they do not model).
    pub sous: SousCapacity,
}

/// The host's memory budget as Sous admits environments against it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SousCapacity {
    #[serde(rename = "HostMemoryMB")]
    pub host_memory_mb: u64,
    #[serde(rename = "MemoryHeadroomMB")]
    pub memory_headroom_mb: u64,
    #[serde(rename = "MemoryCapacityMB")]
    pub memory_capacity_mb: u64,
    #[serde(rename = "MemoryReservedMB")]
    pub memory_reserved_mb: u64,
    #[serde(rename = "MemoryAvailableMB")]
    pub memory_available_mb: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountLimit {
    pub total_code_size: u64,
    pub code_size_unzipped: u64,
    pub code_size_zipped: u64,
    pub concurrent_executions: u64,
    pub unreserved_concurrent_executions: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    pub total_code_size: u64,
    pub function_count: u64,
}

/// GetAccountSettings, with Sous's host capacity.
pub(super) fn settings(state: &ApiState) -> Result<Reply, ApiError> {
    let usage = state
        .store
        .usage()
        .map_err(|e| store_error(e, "GetAccountSettings"))?;
    let (account, unreserved, memory, reserved_mb) = state.invoker.pool().capacity();
    Ok(Reply::AccountSettings(AccountSettings {
        account_limit: AccountLimit {
            total_code_size: TOTAL_CODE_SIZE_BYTES,
            code_size_unzipped: UNZIPPED_MAX_BYTES,
            code_size_zipped: ZIPPED_MAX_BYTES,
            concurrent_executions: account,
            unreserved_concurrent_executions: unreserved,
        },
        account_usage: AccountUsage {
            total_code_size: usage.total_code_size,
            function_count: usage.function_count,
        },
        sous: SousCapacity {
            host_memory_mb: memory.host_mb,
            memory_headroom_mb: memory.headroom_mb,
            memory_capacity_mb: memory.capacity_mb(),
            memory_reserved_mb: reserved_mb,
            memory_available_mb: memory.capacity_mb().saturating_sub(reserved_mb),
        },
    }))
}

/// `GET /_sous/status`: environments, concurrency, memory and the async queue.
pub(super) fn status(state: &ApiState) -> Reply {
    let mut status = state.invoker.pool().status();
    if let Some(obj) = status.as_object_mut() {
        obj.insert("async".into(), state.invoker.async_status());
    }
    Reply::Status(status)
}
