//! Fixtures shared by the store's unit tests.

use sous_types::alias::AliasConfiguration;
use sous_types::config::{EphemeralStorage, FunctionConfiguration, LoggingConfig, TracingConfig};

use crate::queue::NewEvent;
use crate::versions::Published;
use crate::{Store, StoreError, StoredFunction, LATEST};

pub(crate) fn config(name: &str, revision: &str, size: u64) -> FunctionConfiguration {
    FunctionConfiguration {
        function_name: name.into(),
        function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"),
        runtime: Some("provided.al2023".into()),
        role: "arn:aws:iam::000000000000:role/r".into(),
        handler: Some("bootstrap".into()),
        code_size: size,
        description: String::new(),
        timeout: 3,
        memory_size: 128,
        last_modified: "2020-04-10T19:06:32.563+0000".into(),
        code_sha256: "x".into(),
        version: LATEST.into(),
        environment: None,
        tracing_config: TracingConfig {
            mode: Some("PassThrough".into()),
        },
        revision_id: revision.into(),
        dead_letter_config: None,
        state: Some("Active".into()),
        state_reason: None,
        state_reason_code: None,
        last_update_status: Some("Successful".into()),
        package_type: "Zip".into(),
        architectures: vec!["x86_64".into()],
        ephemeral_storage: EphemeralStorage { size: 512 },
        snap_start: serde_json::json!({"ApplyOn": "None", "OptimizationStatus": "Off"}),
        runtime_version_config: None,
        logging_config: LoggingConfig::default(),
        layers: None,
    }
}

pub(crate) fn func(name: &str, revision: &str, hex: &str) -> StoredFunction {
    StoredFunction {
        config: config(name, revision, 10),
        code_sha256_hex: hex.into(),
    }
}

pub(crate) fn publish(store: &Store, name: &str, rev: &str) -> Published {
    store
        .publish_version::<StoreError>(
            name,
            rev,
            |_| Ok(()),
            |latest, n| {
                let mut v = latest.clone();
                v.config.version = n.to_string();
                v.config.revision_id = format!("v{n}");
                v
            },
        )
        .unwrap()
}

pub(crate) fn alias(name: &str, primary: &str, extra: Option<&str>) -> AliasConfiguration {
    AliasConfiguration {
        alias_arn: format!("arn:{name}"),
        name: name.into(),
        function_version: primary.into(),
        description: String::new(),
        routing_config: extra.map(|e| sous_types::alias::AliasRoutingConfiguration {
            additional_version_weights: Some([(e.to_string(), 0.5)].into()),
        }),
        revision_id: format!("r-{name}"),
    }
}

pub(crate) fn ev(rid: &str, at: i64) -> NewEvent {
    NewEvent {
        request_id: rid.into(),
        function_name: "f".into(),
        qualifier: None,
        payload: b"{}".to_vec(),
        received_ms: at,
        trace_id: None,
    }
}
