//! Execute EventBridge commands against the store's rules (`sous_store::rules`): every
//! decision about scheduled rules and their targets is made here.

use serde_json::{json, Value};
use sous_store::rules::{RuleDeletion, StoredRule, StoredTarget};
use sous_types::names::Scope;
use sous_types::schedule_expr::{ParseOptions, Schedule};
use time::OffsetDateTime;

use super::error::{EventsError, ServiceError};
use super::routes::{Command, TargetInput};
use super::DEFAULT_BUS;
use crate::ApiState;

/// EventBridge's quota of targets per rule.
const TARGETS_PER_RULE: usize = 5;

/// Execute a command; `Ok(None)` is an operation without output (an empty 200).
pub fn execute(
    state: &ApiState,
    cmd: Command,
    now: OffsetDateTime,
) -> Result<Option<Value>, ServiceError> {
    let scope = &state.scope;
    let store = &state.store;
    match cmd {
        Command::PutRule(input) => {
            let name = input.name.unwrap_or_default();
            if input.event_pattern.is_some() {
                return Err(ServiceError::from(EventsError::validation(
                    "Sous supports scheduled rules only: EventPattern is not supported. Use ScheduleExpression.",
                )));
            }
            let Some(expr) = input.schedule_expression.filter(|s| !s.is_empty()) else {
                return Err(ServiceError::from(EventsError::validation(
                    "Parameter(s) EventPattern or ScheduleExpression must be specified.",
                )));
            };
            let opts = ParseOptions {
                allow_seconds: state.schedule_seconds,
            };
            if let Err(e) = Schedule::parse(&expr, opts) {
                tracing::info!(rule = %name, expression = %expr, reason = e.reason(), "refused schedule expression");
                return Err(ServiceError::from(EventsError::validation(e.to_string())));
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
            RuleDeletion::HasTargets => {
                Err(EventsError::validation("Rule can't be deleted since it has targets.").into())
            }
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
                return Err(ServiceError::from(EventsError::new(
                    "LimitExceededException",
                    400,
                    format!(
                        "The requested resource exceeds the maximum number allowed: a rule has at most {TARGETS_PER_RULE} targets."
                    ),
                )));
            }
            if !accepted.is_empty() && !store.put_targets(&rule, &accepted)? {
                return Err(ServiceError::from(EventsError::rule_not_found(&rule)));
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
                return Err(ServiceError::from(EventsError::rule_not_found(&rule)));
            }
            Ok(Some(json!({ "FailedEntryCount": 0, "FailedEntries": [] })))
        }
    }
}

fn set_state(state: &ApiState, name: &str, to: &str) -> Result<Option<Value>, ServiceError> {
    if !state.store.set_rule_state(name, to)? {
        return Err(ServiceError::from(EventsError::rule_not_found(name)));
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
            && (q == sous_types::LATEST
                || q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    });
    (name_ok && qualifier_ok).then_some((name, qualifier))
}

#[cfg(test)]
mod tests {
    use super::*;

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
