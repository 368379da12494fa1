//! EventBridge-style scheduled rules: the task that fires them.
//!
//! [`run`] (started by `sous serve`) keeps the next fire time of every enabled rule that has
//! targets, from the rules in the store (`sous_store::rules`, managed through the EventBridge
//! API in `sous-api`). It reads the store again every second, so a rule put, enabled,
//! disabled or deleted takes effect within a second, and sleeps until the earliest firing
//! or the next read. At each firing it sends every target one asynchronous invocation
//! (InvocationType `Event`, through [`Invoker::invoke`], exactly the path of Invoke's `Event`:
//! committed to the durable queue, then delivered with retries) carrying EventBridge's
//! "Scheduled Event" or the target's constant `Input`.
//!
//! Fire times are computed from the clock, never stored: on start the next firing of each
//! rule is the first one after now, so firings missed while Sous was down are skipped (as
//! EventBridge's are), and so are firings missed while this task was late (a suspended host).
//! Rate expressions keep their phase across restarts: they count periods from the moment the
//! expression was set, which the store keeps.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use sous_invoke::{InvocationType, InvokeRequest, Invoker};
use sous_store::rules::{StoredRule, StoredTarget};
use sous_store::Store;
use sous_types::names::Scope;
use sous_types::schedule_expr::{ParseOptions, Schedule};
use sous_types::timefmt;
use time::OffsetDateTime;
use tracing::{info, warn};

/// How the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// Accept `rate(N second(s))` (`--schedule-seconds`).
    pub allow_seconds: bool,
    /// How often the store is read for changed rules.
    pub poll: Duration,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            allow_seconds: false,
            poll: Duration::from_secs(1),
        }
    }
}

/// One firing of a rule: what to send, to whom, for which scheduled time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub rule: String,
    /// The time the rule was scheduled to fire (the event's `time`).
    pub scheduled: OffsetDateTime,
    pub targets: Vec<StoredTarget>,
}

struct Entry {
    rule: StoredRule,
    targets: Vec<StoredTarget>,
    schedule: Schedule,
    next: Option<OffsetDateTime>,
}

/// The next fire time of every scheduled rule. Pure: the caller passes the clock.
pub struct Plan {
    opts: ParseOptions,
    entries: BTreeMap<String, Entry>,
}

impl Plan {
    /// An empty plan; `allow_seconds` as `--schedule-seconds`.
    pub fn new(allow_seconds: bool) -> Self {
        Self {
            opts: ParseOptions { allow_seconds },
            entries: BTreeMap::new(),
        }
    }

    /// Take the store's current rules (enabled, with targets). A rule whose definition or
    /// targets are unchanged keeps its next fire time; a new or changed one gets the first
    /// firing after `now`; rules no longer listed are dropped.
    pub fn refresh(&mut self, rules: Vec<(StoredRule, Vec<StoredTarget>)>, now: OffsetDateTime) {
        let mut entries = BTreeMap::new();
        for (rule, targets) in rules {
            if let Some(old) = self.entries.remove(&rule.name) {
                if old.rule == rule {
                    // Targets may change without moving the schedule.
                    entries.insert(rule.name.clone(), Entry { targets, ..old });
                    continue;
                }
            }
            let schedule = match Schedule::parse(&rule.schedule_expression, self.opts) {
                Ok(s) => s,
                Err(e) => {
                    // Only a seconds rate stored by a run with --schedule-seconds gets here.
                    warn!(rule = %rule.name, expression = %rule.schedule_expression, reason = e.reason(), "rule not scheduled");
                    continue;
                }
            };
            let next = schedule.next_fire_after(anchor(&rule), now);
            info!(rule = %rule.name, expression = %rule.schedule_expression, next = ?next.map(timefmt::iso8601_seconds), "rule scheduled");
            entries.insert(
                rule.name.clone(),
                Entry {
                    rule,
                    targets,
                    schedule,
                    next,
                },
            );
        }
        self.entries = entries;
    }

    /// The earliest next firing of any rule.
    pub fn next_wake(&self) -> Option<OffsetDateTime> {
        self.entries.values().filter_map(|e| e.next).min()
    }

    /// The firings due at `now`, each rule's schedule moved past `now` (firings that are
    /// already past too are skipped, not caught up).
    pub fn take_due(&mut self, now: OffsetDateTime) -> Vec<Firing> {
        let mut due = Vec::new();
        for entry in self.entries.values_mut() {
            let Some(scheduled) = entry.next.filter(|t| *t <= now) else {
                continue;
            };
            due.push(Firing {
                rule: entry.rule.name.clone(),
                scheduled,
                targets: entry.targets.clone(),
            });
            let next = entry
                .schedule
                .next_fire_after(anchor(&entry.rule), scheduled);
            entry.next = match next {
                Some(n) if n <= now => {
                    warn!(rule = %entry.rule.name, "scheduler late: firings skipped");
                    entry.schedule.next_fire_after(anchor(&entry.rule), now)
                }
                other => other,
            };
        }
        due
    }
}

fn anchor(rule: &StoredRule) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(rule.schedule_anchor_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// EventBridge's "Scheduled Event" for one firing of `rule`.
pub fn scheduled_event(scope: &Scope, rule: &str, scheduled: OffsetDateTime, id: &str) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": scope.account,
        "time": timefmt::iso8601_seconds(scheduled),
        "region": scope.region,
        "resources": [format!("arn:aws:events:{}:{}:rule/{rule}", scope.region, scope.account)],
        "detail": {}
    })
}

/// Fire scheduled rules until the task is aborted.
pub async fn run(
    store: Arc<Store>,
    invoker: Arc<Invoker>,
    scope: Scope,
    settings: ScheduleSettings,
) {
    let mut plan = Plan::new(settings.allow_seconds);
    loop {
        let now = OffsetDateTime::now_utc();
        match store.run(|s| s.scheduled_rules()).await {
            Ok(rules) => plan.refresh(rules, now),
            Err(e) => warn!(error = %e, "read scheduled rules; keeping the last known ones"),
        }
        for firing in plan.take_due(now) {
            let (invoker, scope) = (invoker.clone(), scope.clone());
            tokio::spawn(async move { fire(&invoker, &scope, firing).await });
        }
        let now = OffsetDateTime::now_utc();
        let mut wait = settings.poll;
        if let Some(next) = plan.next_wake() {
            let until = (next - now).max(time::Duration::ZERO);
            wait = wait.min(Duration::from_nanos(
                u64::try_from(until.whole_nanoseconds()).unwrap_or(u64::MAX),
            ));
        }
        tokio::time::sleep(wait).await;
    }
}

/// One asynchronous invocation per target: the Scheduled Event (one id for all targets, as
/// EventBridge sends one event) or the target's constant Input.
async fn fire(invoker: &Invoker, scope: &Scope, firing: Firing) {
    let id = uuid::Uuid::new_v4().to_string();
    let event = scheduled_event(scope, &firing.rule, firing.scheduled, &id).to_string();
    for target in &firing.targets {
        let Some((function, qualifier)) = target.function() else {
            warn!(rule = %firing.rule, target = %target.id, arn = %target.arn, "target is not a function; skipped");
            continue;
        };
        let payload = target.input.clone().unwrap_or_else(|| event.clone());
        let req = InvokeRequest {
            function_name: function.to_string(),
            qualifier: qualifier.map(str::to_string),
            invocation_type: InvocationType::Event,
            payload: Bytes::from(payload),
            tail_logs: false,
            client_context: None,
            trace_id: None,
        };
        match invoker.invoke(req).await {
            Ok(out) => info!(
                rule = %firing.rule,
                target = %target.id,
                function,
                request_id = %out.request_id,
                time = %timefmt::iso8601_seconds(firing.scheduled),
                "scheduled invocation queued"
            ),
            Err(e) => warn!(
                rule = %firing.rule,
                target = %target.id,
                function,
                error = %e,
                "scheduled invocation failed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn rule(name: &str, expr: &str, anchor: OffsetDateTime) -> StoredRule {
        StoredRule {
            name: name.into(),
            schedule_expression: expr.into(),
            state: "ENABLED".into(),
            description: None,
            role_arn: None,
            schedule_anchor_ms: (anchor.unix_timestamp_nanos() / 1_000_000) as i64,
        }
    }

    fn target(id: &str) -> StoredTarget {
        StoredTarget {
            id: id.into(),
            arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{id}"),
            input: None,
            role_arn: None,
        }
    }

    #[test]
    fn fires_each_period_and_skips_what_was_missed() {
        let t0 = datetime!(2024-03-10 10:00:00 UTC);
        let mut plan = Plan::new(true);
        plan.refresh(
            vec![(rule("r", "rate(2 seconds)", t0), vec![target("f")])],
            t0 + time::Duration::milliseconds(500),
        );
        assert_eq!(plan.next_wake(), Some(t0 + time::Duration::seconds(2)));
        assert!(plan.take_due(t0 + time::Duration::seconds(1)).is_empty());
        let due = plan.take_due(t0 + time::Duration::milliseconds(2010));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].scheduled, t0 + time::Duration::seconds(2));
        assert_eq!(plan.next_wake(), Some(t0 + time::Duration::seconds(4)));
        // Late by 5 s: one firing (the one due), the missed ones skipped.
        let due = plan.take_due(t0 + time::Duration::seconds(9));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].scheduled, t0 + time::Duration::seconds(4));
        assert_eq!(plan.next_wake(), Some(t0 + time::Duration::seconds(10)));
    }

    #[test]
    fn a_restart_starts_from_now_and_keeps_the_rates_phase() {
        let t0 = datetime!(2024-03-10 10:00:00 UTC);
        let mut plan = Plan::new(false);
        // Down for an hour and a half: the next firing is the first after now.
        plan.refresh(
            vec![(rule("r", "rate(1 hour)", t0), vec![target("f")])],
            t0 + time::Duration::minutes(90),
        );
        assert_eq!(plan.next_wake(), Some(t0 + time::Duration::hours(2)));
    }

    #[test]
    fn changes_take_effect_and_unchanged_rules_keep_their_time() {
        let t0 = datetime!(2024-03-10 10:00:00 UTC);
        let mut plan = Plan::new(false);
        let r = rule("r", "cron(0 12 * * ? *)", t0);
        plan.refresh(vec![(r.clone(), vec![target("f")])], t0);
        assert_eq!(plan.next_wake(), Some(datetime!(2024-03-10 12:00 UTC)));
        // New targets: same time.
        plan.refresh(vec![(r.clone(), vec![target("f"), target("g")])], t0);
        let due = plan.take_due(datetime!(2024-03-10 12:00 UTC));
        assert_eq!(due[0].targets.len(), 2);
        // Removed (disabled, deleted or without targets): nothing more.
        plan.refresh(vec![], t0);
        assert_eq!(plan.next_wake(), None);
        // A seconds rate is not scheduled without the setting.
        plan.refresh(
            vec![(rule("s", "rate(5 seconds)", t0), vec![target("f")])],
            t0,
        );
        assert_eq!(plan.next_wake(), None);
    }

    #[test]
    fn scheduled_event_shape() {
        let scope = Scope::new("us-east-1", "000000000000");
        let e = scheduled_event(
            &scope,
            "every-minute",
            datetime!(2024-03-10 10:01:07.250 UTC),
            "id-1",
        );
        assert_eq!(
            e,
            json!({
                "version": "0",
                "id": "id-1",
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "000000000000",
                "time": "2024-03-10T10:01:07Z",
                "region": "us-east-1",
                "resources": ["arn:aws:events:us-east-1:000000000000:rule/every-minute"],
                "detail": {}
            })
        );
    }
}
