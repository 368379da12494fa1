//! Test fixture: a Lambda function written with the official `lambda_runtime` crate, deployed
//! unchanged as a `provided.al2023` `bootstrap` by the integration tests.
//!
//! It answers with the event, a per-process invocation counter (proves warm reuse), the
//! invocation context and the process environment. An event with `"fail": "<message>"` makes
//! the handler return an error instead.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    let count = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.to_string().into());
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    Ok(json!({
        "echo": payload,
        "count": count,
        "pid": std::process::id(),
        "request_id": ctx.request_id,
        "invoked_arn": ctx.invoked_function_arn,
        "deadline_ms": ctx.deadline,
        "xray_trace_id": ctx.xray_trace_id,
        "client_context": ctx.client_context,
        "function_name": ctx.env_config.function_name,
        "memory": ctx.env_config.memory,
        "version": ctx.env_config.version,
        "log_stream": ctx.env_config.log_stream,
        "log_group": ctx.env_config.log_group,
        "env": env,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
