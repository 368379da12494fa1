//! Blocking work off the async worker threads.
//!
//! The store's calls (SQLite, the code store's file system, zip extraction) and the invoker's
//! blocking ones (`provision`, `refresh_provisioned`, `async_status`) never run on a Tokio
//! worker thread: a slow disk would stall every request and invocation scheduled there. The
//! services run them through [`blocking`] or [`on_pool`], on Tokio's blocking pool:
//!
//! - a command whose execution has nothing to await runs whole on the pool (the Lambda API's
//!   dispatcher, `service::execute`, and the API Gateway and EventBridge handlers), so a
//!   read-check-write sequence stays one piece of straight-line code;
//! - a command that awaits the invoker (Invoke, CreateFunction, Update*, Delete*,
//!   PublishVersion) runs its store work in [`blocking`] steps between its awaits.
//!
//! The closure runs in the request's span, so its log lines carry the request id. A panic in
//! it (or a pool that is shutting down) is Sous's own failure: an [`InternalError`], rendered
//! like any other (docs/ERROR-HANDLING.md), never a dropped connection.

use std::sync::Arc;

use crate::error::InternalError;
use crate::ApiState;

/// Run `f` on the blocking pool, in the current span; a task that panics or is cancelled is
/// an [`InternalError`].
pub(crate) async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<InternalError> + Send + 'static,
{
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(result) => result,
        Err(e) => Err(InternalError::new("run a blocking task", e).into()),
    }
}

/// [`blocking`], given the API's state.
pub(crate) async fn on_pool<T, E, F>(state: &Arc<ApiState>, f: F) -> Result<T, E>
where
    F: FnOnce(&Arc<ApiState>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<InternalError> + Send + 'static,
{
    let state = Arc::clone(state);
    blocking(move || f(&state)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    #[tokio::test]
    async fn runs_off_the_async_workers() {
        let there = blocking(|| -> Result<_, ApiError> { Ok(std::thread::current().id()) })
            .await
            .unwrap();
        assert_ne!(
            there,
            std::thread::current().id(),
            "ran on the caller's thread"
        );
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error() {
        let err = blocking(|| -> Result<(), ApiError> { panic!("boom at /var/lib/sous") })
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Internal(_)), "{err:?}");
    }
}
