//! Parse an EventBridge request (`X-Amz-Target` and the JSON body) into one [`Command`],
//! checked against the model's constraints: shape errors are SerializationException, model
//! constraints ValidationException, as AWS's front end answers them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sous_types::error::Violations;

use super::error::EventsError;
use super::DEFAULT_BUS;
use crate::protocol::body;

const NAME_PATTERN: &str = r"[\.\-_A-Za-z0-9]+";
const STATES: [&str; 3] = [
    "ENABLED",
    "DISABLED",
    "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS",
];

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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
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

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameInput {
    name: Option<String>,
    event_bus_name: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListRulesInput {
    name_prefix: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTargetsInput {
    rule: Option<String>,
    event_bus_name: Option<String>,
    targets: Option<Vec<TargetInput>>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTargetsInput {
    rule: Option<String>,
    event_bus_name: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

#[derive(Default, Deserialize)]
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

fn decode<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, EventsError> {
    body::json(body).map_err(|e| {
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
}
