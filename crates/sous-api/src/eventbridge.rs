//! EventBridge control plane for scheduled rules, the subset `aws events` and boto3 use for
//! them: AWS JSON 1.1 (`POST /`, `X-Amz-Target: AWSEvents.<Operation>`, SigV4 for service
//! `events`). Operations: PutRule, DescribeRule, ListRules, EnableRule, DisableRule,
//! DeleteRule, PutTargets, ListTargetsByRule, RemoveTargets, on the default event bus only.
//!
//! As in the rest of the API, the transport parses and the core decides: [`parse`] turns the
//! target header and JSON body into one [`Command`] (shape errors: SerializationException;
//! model constraints: ValidationException), [`execute`] runs it against the store's rules
//! (`sous_store::rules`), and [`EventsError`] is rendered once, as AWS JSON 1.1 renders
//! errors: HTTP 400 (500 for InternalException) with `{"__type": ..., "message": ...}`.
//!
//! Rules fire from the scheduler in `sous-events`, which reads the store: a change made here
//! takes effect within its one-second poll.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sous_store::rules::{RuleDeletion, StoredRule, StoredTarget};
use sous_types::error::Violations;
use sous_types::names::Scope;
use sous_types::schedule_expr::{ParseOptions, Schedule};
use sous_types::LambdaError;
use time::OffsetDateTime;

use crate::{sigv4, ApiState};

/// Largest request body accepted (PutTargets with 100 targets and their inputs fits).
const BODY_LIMIT: usize = 1024 * 1024;
/// The only event bus: scheduled rules live on it.
const DEFAULT_BUS: &str = "default";
/// EventBridge's quota of targets per rule.
const TARGETS_PER_RULE: usize = 5;
const NAME_PATTERN: &str = r"[\.\-_A-Za-z0-9]+";
const STATES: [&str; 3] = [
    "ENABLED",
    "DISABLED",
    "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
];

/// An EventBridge error, as AWS JSON 1.1 sends it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct EventsError {
    /// `__type`: ValidationException, ResourceNotFoundException, ...
    pub kind: String,
    pub status: u16,
    pub message: String,
}

impl EventsError {
    fn new(kind: &str, status: u16, message: impl Into<String>) -> Self {
        Self {
            kind: kind.to_string(),
            status,
            message: message.into(),
        }
    }
    fn validation(message: impl Into<String>) -> Self {
        Self::new("ValidationException", 400, message)
    }
    fn rule_not_found(name: &str) -> Self {
        Self::new(
            "ResourceNotFoundException",
            400,
            format!("Rule {name} does not exist on EventBus {DEFAULT_BUS}."),
        )
    }
    fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "eventbridge: internal error");
        Self::new("InternalException", 500, "An internal error occurred.")
    }
}

impl From<LambdaError> for EventsError {
    /// Authentication and model-constraint errors shared with the Lambda API.
    fn from(e: LambdaError) -> Self {
        Self::new(e.code.as_str(), e.code.status(), e.message)
    }
}

impl From<sous_store::StoreError> for EventsError {
    fn from(e: sous_store::StoreError) -> Self {
        Self::internal(format!("store: {e}"))
    }
}

/// Whether this request is an EventBridge call (`X-Amz-Target: AWSEvents.*`).
pub fn handles(parts: &Parts) -> bool {
    parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("AWSEvents."))
}

/// Serve one EventBridge request: read, authenticate, parse, execute, answer.
pub async fn handle(
    state: &Arc<ApiState>,
    parts: Parts,
    body: Body,
    now: OffsetDateTime,
) -> Response {
    let request_id = crate::new_request_id();
    let body = match crate::read_body(body, &parts.headers, BODY_LIMIT).await {
        Ok(b) => b,
        Err(crate::ReadError::TooLarge) => {
            return error_response(
                &EventsError::new(
                    "ValidationException",
                    413,
                    format!("Request body is larger than {BODY_LIMIT} bytes."),
                ),
                &request_id,
            )
        }
        Err(crate::ReadError::Broken(e)) => {
            return error_response(
                &EventsError::new(
                    "SerializationException",
                    400,
                    format!("Could not read the request body: {e}"),
                ),
                &request_id,
            )
        }
    };
    let signed = sigv4::SignedRequest::from_parts(&parts, &body);
    if let Err(e) = sigv4::verify(&signed, &state.credentials, "events", now) {
        return error_response(&e.into(), &request_id);
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let result = match parse(target, &body) {
        Ok(cmd) => {
            let span = tracing::info_span!("events", op = cmd.operation());
            let _guard = span.enter();
            execute(state, cmd, now)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(Some(value)) => json_response(200, value.to_string(), &request_id),
        Ok(None) => json_response(200, String::new(), &request_id),
        Err(e) => error_response(&e, &request_id),
    }
}

fn json_response(status: u16, body: String, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// `{"__type": ..., "message": ...}` with the error's status.
fn error_response(e: &EventsError, request_id: &str) -> Response {
    let body = json!({ "__type": e.kind, "message": e.message }).to_string();
    json_response(e.status, body, request_id)
}

// ---------------------------------------------------------------------------------------
// Transport: requests → commands

/// One EventBridge operation, parsed and checked against the model's constraints.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    PutRule(PutRuleInput),
    DescribeRule {
        name: String,
    },
    ListRules {
        prefix: String,
        limit: usize,
        next_token: Option<String>,
    },
    EnableRule {
        name: String,
    },
    DisableRule {
        name: String,
    },
    DeleteRule {
        name: String,
    },
    PutTargets {
        rule: String,
        targets: Vec<TargetInput>,
    },
    ListTargetsByRule {
        rule: String,
        limit: usize,
        next_token: Option<String>,
    },
    RemoveTargets {
        rule: String,
        ids: Vec<String>,
    },
}

impl Command {
    /// The operation's name, for spans.
    pub fn operation(&self) -> &'static str {
        match self {
            Command::PutRule(_) => "PutRule",
            Command::DescribeRule { .. } => "DescribeRule",
            Command::ListRules { .. } => "ListRules",
            Command::EnableRule { .. } => "EnableRule",
            Command::DisableRule { .. } => "DisableRule",
            Command::DeleteRule { .. } => "DeleteRule",
            Command::PutTargets { .. } => "PutTargets",
            Command::ListTargetsByRule { .. } => "ListTargetsByRule",
            Command::RemoveTargets { .. } => "RemoveTargets",
        }
    }
}

/// PutRule's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRuleInput {
    pub name: Option<String>,
    pub schedule_expression: Option<String>,
    pub event_pattern: Option<String>,
    pub state: Option<String>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub tags: Option<Value>,
    pub event_bus_name: Option<String>,
}

/// One target of PutTargets (the members Sous reads; others must be absent).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TargetInput {
    pub id: Option<String>,
    pub arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Every other member (InputPath, InputTransformer, RetryPolicy, ...): not supported.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameInput {
    name: Option<String>,
    event_bus_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRulesInput {
    name_prefix: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTargetsInput {
    rule: Option<String>,
    event_bus_name: Option<String>,
    targets: Option<Vec<TargetInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTargetsInput {
    rule: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveTargetsInput {
    rule: Option<String>,
    event_bus_name: Option<String>,
    ids: Option<Vec<String>>,
}

/// Parse `X-Amz-Target` and the JSON body into a [`Command`].
pub fn parse(target: &str, body: &[u8]) -> Result<Command, EventsError> {
    let op = target.strip_prefix("AWSEvents.").unwrap_or(target);
    let cmd = match op {
        "PutRule" => {
            let input: PutRuleInput = decode(body)?;
            check_bus(input.event_bus_name.as_deref())?;
            let mut v = Violations::default();
            check_name(input.name.as_deref(), "name", &mut v);
            if let Some(s) = &input.schedule_expression {
                check_len(s, "scheduleExpression", 0, 256, &mut v);
            }
            if let Some(d) = &input.description {
                check_len(d, "description", 0, 512, &mut v);
            }
            if let Some(s) = &input.state {
                if !STATES.contains(&s.as_str()) {
                    v.push(
                        s,
                        "state",
                        &format!(
                            "Member must satisfy enum value set: [{}]",
                            STATES.join(", ")
                        ),
                    );
                }
            }
            v.into_result()?;
            Command::PutRule(input)
        }
        "DescribeRule" | "EnableRule" | "DisableRule" | "DeleteRule" => {
            let input: NameInput = decode(body)?;
            check_bus(input.event_bus_name.as_deref())?;
            let mut v = Violations::default();
            check_name(input.name.as_deref(), "name", &mut v);
            v.into_result()?;
            let name = input.name.unwrap_or_default();
            match op {
                "DescribeRule" => Command::DescribeRule { name },
                "EnableRule" => Command::EnableRule { name },
                "DisableRule" => Command::DisableRule { name },
                _ => Command::DeleteRule { name },
            }
        }
        "ListRules" => {
            let input: ListRulesInput = decode(body)?;
            check_bus(input.event_bus_name.as_deref())?;
            let mut v = Violations::default();
            if let Some(p) = &input.name_prefix {
                check_name(Some(p), "namePrefix", &mut v);
            }
            let limit = check_limit(input.limit, &mut v);
            check_token(input.next_token.as_deref(), &mut v);
            v.into_result()?;
            Command::ListRules {
                prefix: input.name_prefix.unwrap_or_default(),
                limit,
                next_token: input.next_token,
            }
        }
        "PutTargets" => {
            let input: PutTargetsInput = decode(body)?;
            check_bus(input.event_bus_name.as_deref())?;
            let mut v = Violations::default();
            check_name(input.rule.as_deref(), "rule", &mut v);
            match &input.targets {
                None => v.push_null("targets"),
                Some(t) if t.is_empty() => v.push(
                    "[]",
                    "targets",
                    "Member must have length greater than or equal to 1",
                ),
                Some(t) if t.len() > 100 => v.push(
                    &format!("{} targets", t.len()),
                    "targets",
                    "Member must have length less than or equal to 100",
                ),
                Some(t) => {
                    for (i, target) in t.iter().enumerate() {
                        let member = format!("targets.{}.member", i + 1);
                        check_name(target.id.as_deref(), &format!("{member}.id"), &mut v);
                        match &target.arn {
                            None => v.push_null(&format!("{member}.arn")),
                            Some(a) => check_len(a, &format!("{member}.arn"), 1, 1600, &mut v),
                        }
                        if let Some(input) = &target.input {
                            check_len(input, &format!("{member}.input"), 0, 8192, &mut v);
                        }
                    }
                }
            }
            v.into_result()?;
            Command::PutTargets {
                rule: input.rule.unwrap_or_default(),
                targets: input.targets.unwrap_or_default(),
            }
        }
        "ListTargetsByRule" => {
            let input: ListTargetsInput = decode(body)?;
            check_bus(input.event_bus_name.as_deref())?;
            let mut v = Violations::default();
            check_name(input.rule.as_deref(), "rule", &mut v);
            let limit = check_limit(input.limit, &mut v);
            check_token(input.next_token.as_deref(), &mut v);
            v.into_result()?;
            Command::ListTargetsByRule {
                rule: input.rule.unwrap_or_default(),
                limit,
                next_token: input.next_token,
            }
        }
        "RemoveTargets" => {
            let input: RemoveTargetsInput = decode(body)?;
            check_bus(input.event_bus_name.as_deref())?;
            let mut v = Violations::default();
            check_name(input.rule.as_deref(), "rule", &mut v);
            match &input.ids {
                None => v.push_null("ids"),
                Some(ids) if ids.is_empty() || ids.len() > 100 => v.push(
                    &format!("{} ids", ids.len()),
                    "ids",
                    "Member must have length between 1 and 100",
                ),
                Some(ids) => {
                    for (i, id) in ids.iter().enumerate() {
                        check_name(Some(id), &format!("ids.{}.member", i + 1), &mut v);
                    }
                }
            }
            v.into_result()?;
            Command::RemoveTargets {
                rule: input.rule.unwrap_or_default(),
                ids: input.ids.unwrap_or_default(),
            }
        }
        _ => {
            return Err(EventsError::new(
                "UnknownOperationException",
                400,
                format!("Sous does not implement the EventBridge operation '{op}'."),
            ))
        }
    };
    Ok(cmd)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, EventsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        EventsError::new(
            "SerializationException",
            400,
            format!("The request body could not be read: {e}"),
        )
    })
}

/// Only the default event bus exists (by name or ARN).
fn check_bus(bus: Option<&str>) -> Result<(), EventsError> {
    match bus {
        None | Some(DEFAULT_BUS) => Ok(()),
        Some(b) if b.starts_with("arn:") && b.ends_with(":event-bus/default") => Ok(()),
        Some(b) => Err(EventsError::new(
            "ResourceNotFoundException",
            400,
            format!("Event bus {b} does not exist."),
        )),
    }
}

fn check_name(name: Option<&str>, member: &str, v: &mut Violations) {
    let Some(name) = name else {
        v.push_null(member);
        return;
    };
    check_len(name, member, 1, 64, v);
    if !name.is_empty()
        && !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        v.push(
            name,
            member,
            &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
        );
    }
}

fn check_len(value: &str, member: &str, min: usize, max: usize, v: &mut Violations) {
    let n = value.chars().count();
    if n < min {
        v.push(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        );
    } else if n > max {
        v.push(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        );
    }
}

fn check_limit(limit: Option<i64>, v: &mut Violations) -> usize {
    match limit {
        None => 100,
        Some(n) if !(1..=100).contains(&n) => {
            let constraint = if n < 1 {
                "Member must have value greater than or equal to 1"
            } else {
                "Member must have value less than or equal to 100"
            };
            v.push(&n.to_string(), "limit", constraint);
            100
        }
        Some(n) => n as usize,
    }
}

fn check_token(token: Option<&str>, v: &mut Violations) {
    if let Some(t) = token {
        check_len(t, "nextToken", 1, 2048, v);
    }
}

// ---------------------------------------------------------------------------------------
// Core: commands → results

/// Execute a command; `Ok(None)` is an operation without output (an empty 200).
pub fn execute(
    state: &ApiState,
    cmd: Command,
    now: OffsetDateTime,
) -> Result<Option<Value>, EventsError> {
    let scope = &state.scope;
    let store = &state.store;
    match cmd {
        Command::PutRule(input) => {
            let name = input.name.unwrap_or_default();
            if input.event_pattern.is_some() {
                return Err(EventsError::validation(
                    "Sous supports scheduled rules only: EventPattern is not supported. Use ScheduleExpression.",
                ));
            }
            let Some(expr) = input.schedule_expression.filter(|s| !s.is_empty()) else {
                return Err(EventsError::validation(
                    "Parameter(s) EventPattern or ScheduleExpression must be specified.",
                ));
            };
            let opts = ParseOptions {
                allow_seconds: state.schedule_seconds,
            };
            if let Err(e) = Schedule::parse(&expr, opts) {
                tracing::info!(rule = %name, expression = %expr, reason = e.reason(), "refused schedule expression");
                return Err(EventsError::validation(e.to_string()));
            }
            // Rates count from a whole second, so every firing's `time` is exact.
            let anchor_ms = now.unix_timestamp() * 1000;
            let rule = StoredRule {
                name: name.clone(),
                schedule_expression: expr,
                state: input.state.unwrap_or_else(|| "ENABLED".to_string()),
                description: input.description,
                role_arn: input.role_arn,
                schedule_anchor_ms: anchor_ms,
            };
            store.put_rule(&rule)?;
            tracing::info!(rule = %name, "rule put");
            Ok(Some(json!({ "RuleArn": rule_arn(scope, &name) })))
        }
        Command::DescribeRule { name } => {
            let rule = store
                .get_rule(&name)?
                .ok_or_else(|| EventsError::rule_not_found(&name))?;
            let mut out = rule_json(scope, &rule);
            out["CreatedBy"] = json!(scope.account);
            Ok(Some(out))
        }
        Command::ListRules {
            prefix,
            limit,
            next_token,
        } => {
            let rules = store.list_rules(&prefix)?;
            let (page, token) = paginate(&rules, |r| r.name.as_str(), limit, next_token)?;
            let mut out =
                json!({ "Rules": page.iter().map(|r| rule_json(scope, r)).collect::<Vec<_>>() });
            if let Some(t) = token {
                out["NextToken"] = json!(t);
            }
            Ok(Some(out))
        }
        Command::EnableRule { name } => set_state(state, &name, "ENABLED"),
        Command::DisableRule { name } => set_state(state, &name, "DISABLED"),
        Command::DeleteRule { name } => match store.delete_rule(&name)? {
            // Deleting a rule that does not exist succeeds, as on AWS.
            RuleDeletion::Deleted | RuleDeletion::NotFound => Ok(None),
            RuleDeletion::HasTargets => Err(EventsError::validation(
                "Rule can't be deleted since it has targets.",
            )),
        },
        Command::PutTargets { rule, targets } => {
            let existing = store
                .list_targets(&rule)?
                .ok_or_else(|| EventsError::rule_not_found(&rule))?;
            let mut failed = Vec::new();
            let mut accepted: Vec<StoredTarget> = Vec::new();
            for t in targets {
                let id = t.id.clone().unwrap_or_default();
                match accept_target(scope, &t) {
                    Ok(stored) => accepted.push(stored),
                    Err((code, message)) => failed.push(json!({
                        "TargetId": id, "ErrorCode": code, "ErrorMessage": message
                    })),
                }
            }
            let mut ids: Vec<&str> = existing.iter().map(|t| t.id.as_str()).collect();
            for t in &accepted {
                if !ids.contains(&t.id.as_str()) {
                    ids.push(&t.id);
                }
            }
            if ids.len() > TARGETS_PER_RULE {
                return Err(EventsError::new(
                    "LimitExceededException",
                    400,
                    format!(
                        "The requested resource exceeds the maximum number allowed: a rule has at most {TARGETS_PER_RULE} targets."
                    ),
                ));
            }
            if !accepted.is_empty() && !store.put_targets(&rule, &accepted)? {
                return Err(EventsError::rule_not_found(&rule));
            }
            Ok(Some(
                json!({ "FailedEntryCount": failed.len(), "FailedEntries": failed }),
            ))
        }
        Command::ListTargetsByRule {
            rule,
            limit,
            next_token,
        } => {
            let targets = store
                .list_targets(&rule)?
                .ok_or_else(|| EventsError::rule_not_found(&rule))?;
            let (page, token) = paginate(&targets, |t| t.id.as_str(), limit, next_token)?;
            let page: Vec<Value> = page
                .iter()
                .map(|t| {
                    let mut o = json!({ "Id": t.id, "Arn": t.arn });
                    if let Some(i) = &t.input {
                        o["Input"] = json!(i);
                    }
                    if let Some(r) = &t.role_arn {
                        o["RoleArn"] = json!(r);
                    }
                    o
                })
                .collect();
            let mut out = json!({ "Targets": page });
            if let Some(t) = token {
                out["NextToken"] = json!(t);
            }
            Ok(Some(out))
        }
        Command::RemoveTargets { rule, ids } => {
            if !store.remove_targets(&rule, &ids)? {
                return Err(EventsError::rule_not_found(&rule));
            }
            Ok(Some(json!({ "FailedEntryCount": 0, "FailedEntries": [] })))
        }
    }
}

fn set_state(state: &ApiState, name: &str, to: &str) -> Result<Option<Value>, EventsError> {
    if !state.store.set_rule_state(name, to)? {
        return Err(EventsError::rule_not_found(name));
    }
    tracing::info!(rule = %name, state = to, "rule state set");
    Ok(None)
}

/// `arn:aws:events:{region}:{account}:rule/{name}`
pub fn rule_arn(scope: &Scope, name: &str) -> String {
    format!(
        "arn:aws:events:{}:{}:rule/{name}",
        scope.region, scope.account
    )
}

/// A rule as DescribeRule and ListRules show it.
fn rule_json(scope: &Scope, rule: &StoredRule) -> Value {
    let mut out = json!({
        "Name": rule.name,
        "Arn": rule_arn(scope, &rule.name),
        "ScheduleExpression": rule.schedule_expression,
        "State": rule.state,
        "EventBusName": DEFAULT_BUS,
    });
    if let Some(d) = &rule.description {
        out["Description"] = json!(d);
    }
    if let Some(r) = &rule.role_arn {
        out["RoleArn"] = json!(r);
    }
    out
}

/// One page of `items` (sorted by `key`) after `next_token` (the key of the page's first
/// item, hex-encoded), and the token of the next page.
fn paginate<T>(
    items: &[T],
    key: impl Fn(&T) -> &str,
    limit: usize,
    next_token: Option<String>,
) -> Result<(&[T], Option<String>), EventsError> {
    let start = match next_token {
        None => 0,
        Some(token) => {
            let first = hex::decode(&token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| EventsError::validation("The NextToken provided is invalid."))?;
            items
                .iter()
                .position(|i| key(i) >= first.as_str())
                .unwrap_or(items.len())
        }
    };
    let end = (start + limit).min(items.len());
    let token = items.get(end).map(|i| hex::encode(key(i)));
    Ok((&items[start..end], token))
}

/// Whether Sous can fire `t`: a Lambda function of this region and account, with a
/// constant JSON `Input` or none. Refusals are PutTargets' FailedEntries (code, message).
fn accept_target(scope: &Scope, t: &TargetInput) -> Result<StoredTarget, (&'static str, String)> {
    let id = t.id.clone().unwrap_or_default();
    let arn = t.arn.clone().unwrap_or_default();
    if let Some(member) = t.other.keys().next() {
        return Err((
            "ValidationException",
            format!("Sous does not support the target member {member}; a target has Id, Arn and optionally Input."),
        ));
    }
    if parse_function_arn(scope, &arn).is_none() {
        return Err((
            "ValidationException",
            format!(
                "Sous supports only AWS Lambda function targets of region {} and account {}: {arn} is not one.",
                scope.region, scope.account
            ),
        ));
    }
    if let Some(input) = &t.input {
        if serde_json::from_str::<Value>(input).is_err() {
            return Err((
                "ValidationException",
                format!("Target {id}: Input is not valid JSON text."),
            ));
        }
    }
    Ok(StoredTarget {
        id,
        arn,
        input: t.input.clone(),
        role_arn: t.role_arn.clone(),
    })
}

/// `arn:aws:lambda:{region}:{account}:function:{name}[:{qualifier}]` → (name, qualifier).
pub fn parse_function_arn<'a>(scope: &Scope, arn: &'a str) -> Option<(&'a str, Option<&'a str>)> {
    let rest = arn.strip_prefix("arn:aws:lambda:")?;
    let rest = rest
        .strip_prefix(scope.region.as_str())?
        .strip_prefix(':')?;
    let rest = rest
        .strip_prefix(scope.account.as_str())?
        .strip_prefix(":function:")?;
    let (name, qualifier) = match rest.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (rest, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let qualifier_ok = qualifier.is_none_or(|q| {
        !q.is_empty()
            && q.len() <= 128
            && (q == "$LATEST"
                || q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    });
    (name_ok && qualifier_ok).then_some((name, qualifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operations_and_checks_constraints() {
        let cmd = parse(
            "AWSEvents.PutRule",
            br#"{"Name":"r1","ScheduleExpression":"rate(1 minute)","State":"DISABLED"}"#,
        )
        .unwrap();
        assert_eq!(cmd.operation(), "PutRule");
        let err = parse("AWSEvents.PutRule", br#"{"Name":"bad name"}"#).unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        assert_eq!(
            err.message,
            r"1 validation error detected: Value 'bad name' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+"
        );
        let err = parse("AWSEvents.PutRule", br#"{"Name":"r","State":"ON"}"#).unwrap_err();
        assert!(err.message.contains("enum value set"), "{}", err.message);
        let err = parse("AWSEvents.DescribeRule", b"{}").unwrap_err();
        assert_eq!(
            err.message,
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
        );
        let err = parse("AWSEvents.DescribeRule", b"{not json").unwrap_err();
        assert_eq!(err.kind, "SerializationException");
        let err = parse("AWSEvents.PutEvents", b"{}").unwrap_err();
        assert_eq!(err.kind, "UnknownOperationException");
        let err = parse("AWSEvents.ListRules", br#"{"EventBusName":"other"}"#).unwrap_err();
        assert_eq!(err.kind, "ResourceNotFoundException");
        let err = parse("AWSEvents.PutTargets", br#"{"Rule":"r","Targets":[]}"#).unwrap_err();
        assert_eq!(err.kind, "ValidationException");
        let cmd = parse(
            "AWSEvents.PutTargets",
            br#"{"Rule":"r","Targets":[{"Id":"t","Arn":"arn:aws:lambda:us-east-1:000000000000:function:f","Input":"{}"}]}"#,
        )
        .unwrap();
        let Command::PutTargets { targets, .. } = cmd else {
            panic!("not PutTargets")
        };
        assert!(targets[0].other.is_empty());
    }

    #[test]
    fn function_arns() {
        let scope = Scope::new("us-east-1", "000000000000");
        let f = "arn:aws:lambda:us-east-1:000000000000:function:my-fn";
        assert_eq!(parse_function_arn(&scope, f), Some(("my-fn", None)));
        assert_eq!(
            parse_function_arn(&scope, &format!("{f}:live")),
            Some(("my-fn", Some("live")))
        );
        assert_eq!(
            parse_function_arn(&scope, &format!("{f}:$LATEST")),
            Some(("my-fn", Some("$LATEST")))
        );
        for bad in [
            "arn:aws:lambda:eu-west-1:000000000000:function:my-fn",
            "arn:aws:sqs:us-east-1:000000000000:queue",
            "arn:aws:lambda:us-east-1:000000000000:function:",
            "my-fn",
        ] {
            assert_eq!(parse_function_arn(&scope, bad), None, "{bad}");
        }
    }

    #[test]
    fn pages_by_key() {
        let items = ["a", "b", "c"];
        let (page, token) = paginate(&items, |s| s, 2, None).unwrap();
        assert_eq!(page, ["a", "b"]);
        let (page, token) = paginate(&items, |s| s, 2, token).unwrap();
        assert_eq!(page, ["c"]);
        assert_eq!(token, None);
        assert!(paginate(&items, |s| s, 2, Some("zz-not-hex".into())).is_err());
    }
}
