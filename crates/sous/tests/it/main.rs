//! The integration tests of `sous`, as one test binary (`cargo test -p sous --test it`): each
//! module was once a binary of its own, and each of those re-linked the AWS SDK. One module per
//! area; `common` is the harness (the real `sous serve`, an SDK client, zips, the AWS CLI).
//!
//! Select an area or a test with a filter on the module path:
//! `cargo test -p sous --test it sandbox::` or `cargo test -p sous --test it cli::logs`.

#[macro_use]
mod common;

mod api_errors;
mod async_invoke;
mod auth;
mod aws_services;
mod bundled_sdks;
mod cli;
mod code_from_s3;
mod concurrency;
mod connections;
mod control_plane;
mod crash_queue;
mod forced_stop;
mod function_urls;
mod gateway;
mod http_apis;
mod invoke;
mod layers;
mod lifecycle;
mod logs_command;
mod net_startup;
mod packages;
mod rootless;
mod rt_detection;
mod runtime_api;
mod runtime_clients;
mod runtime_java;
mod runtime_node;
mod runtime_python;
mod sandbox;
mod schedules;
mod service_endpoints;
mod sigv4;
mod versions;
