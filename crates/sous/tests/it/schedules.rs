//! EventBridge scheduled rules through the real binary (issue 7, point 5): the control plane
//! driven by the unmodified AWS CLI (`aws events ...`) and by boto3, a schedule firing a
//! function with the Scheduled Event payload (and a constant `Input`), rules taking effect
//! when disabled, and rules surviving a restart.
//!
//! Firing tests run `sous serve --schedule-seconds` so that `rate(2 seconds)` is accepted.
//! The function prints, for each event, the time it ran (`date +%s%N`) and the event, and the
//! test reads that from the function's log streams in `<data-dir>/logs/<function>/`. The
//! punctuality check compares the event's `time` (its scheduled time) with the time the
//! function saw, never the test's own clock.
//!
//! The CLI is `$SOUS_TEST_AWS_CLI` (`.ci/run` sets it to the venv's `aws`), else `aws` on
//! PATH; boto3 is the venv's python (`$SOUS_TEST_PYTHON`, else `.venv/bin/python`). If they
//! do not run, the tests fail: they are never skipped.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;
use serde_json::{json, Value};

/// Runs `aws events` that must fail with `code` and `message` (as the CLI prints them).
fn fails_with(cli: &AwsCli, args: &[&str], code: &str, message: &str) {
    let stderr = cli.fails_with(args, code);
    assert!(
        stderr.contains(message),
        "aws events {args:?}: expected {code}: {message}, got:\n{stderr}"
    );
}

fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

fn rule_arn(name: &str) -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}")
}

/// Prints `EVENT <epoch ns when it ran> <event>` and answers `{}`.
fn recording_function() -> String {
    shell_runtime(
        "",
        r#"  printf 'EVENT %s %s\n' "$(date +%s%N)" "$(cat "$EVENT" | tr -d '\n')"
  respond_text '{}'"#,
    )
}

async fn create_function(server: &Server, name: &str) {
    if let Err(e) = create(&server.client, name, &bootstrap_zip(recording_function()))
        .timeout(30)
        .send()
        .await
    {
        panic!(
            "CreateFunction {name}: {:#?}\n{}",
            api_error(e),
            server.output()
        );
    }
}

/// One event a function received: when it ran (epoch ns) and the event.
#[derive(Debug, Clone)]
struct Received {
    ran_ns: i128,
    event: Value,
}

/// Every event `function` printed, from all its log streams.
fn received(server: &Server, function: &str) -> Vec<Received> {
    let lines = server.log_events(function);
    let mut out: Vec<Received> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT "))
        .filter_map(|rest| rest.split_once(' '))
        .filter_map(|(ns, json)| {
            Some(Received {
                ran_ns: ns.trim().parse().ok()?,
                event: serde_json::from_str(json).ok()?,
            })
        })
        .collect();
    out.sort_by_key(|r| r.ran_ns);
    out
}

/// Polls until `ready` returns something (bounded by `secs`).
fn wait_for<T>(server: &Server, what: &str, secs: u64, ready: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            server.output_tail(20_000)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `2024-03-10T10:00:02Z` → epoch ns.
fn parse_event_time(t: &str) -> i128 {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(t, &format)
        .unwrap_or_else(|e| panic!("event time {t:?} is not RFC 3339: {e}"))
        .unix_timestamp_nanos()
}

fn scheduled_events(all: &[Received], rule: &str) -> Vec<Received> {
    all.iter()
        .filter(|r| {
            r.event["detail-type"] == "Scheduled Event" && r.event["resources"][0] == rule_arn(rule)
        })
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn control_plane_with_the_aws_cli() {
    let server = Server::start();
    let cli = AwsCli::new(&server, "events").single_attempt();
    let rule = unique("every-minute");

    let out = cli.json(&[
        "put-rule",
        "--name",
        &rule,
        "--schedule-expression",
        "rate(1 minute)",
        "--description",
        "tick",
    ]);
    assert_eq!(out, json!({ "RuleArn": rule_arn(&rule) }));

    let d = cli.json(&["describe-rule", "--name", &rule]);
    assert_eq!(d["Name"], rule.as_str());
    assert_eq!(d["Arn"], rule_arn(&rule));
    assert_eq!(d["ScheduleExpression"], "rate(1 minute)");
    assert_eq!(d["State"], "ENABLED");
    assert_eq!(d["Description"], "tick");
    assert_eq!(d["EventBusName"], "default");

    // Another rule, to see the prefix filter.
    cli.json(&[
        "put-rule",
        "--name",
        "zz-other",
        "--schedule-expression",
        "cron(0 12 ? * MON-FRI *)",
        "--state",
        "DISABLED",
    ]);
    let l = cli.json(&["list-rules", "--name-prefix", &rule]);
    let names: Vec<&str> = l["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [rule.as_str()]);
    let all = cli.json(&["list-rules"]);
    assert_eq!(all["Rules"].as_array().unwrap().len(), 2);
    assert_eq!(all["Rules"][1]["State"], "DISABLED");

    // Targets: a function (qualified or not) is accepted; anything else is a failed entry.
    let f = function_arn("target-fn");
    let out = cli.json(&[
        "put-targets",
        "--rule",
        &rule,
        "--targets",
        &json!([
            { "Id": "fn", "Arn": f },
            { "Id": "fn-live", "Arn": format!("{f}:live"), "Input": "{\"k\":1}" },
            { "Id": "queue", "Arn": "arn:aws:sqs:us-east-1:000000000000:q" },
        ])
        .to_string(),
    ]);
    assert_eq!(out["FailedEntryCount"], 1);
    assert_eq!(out["FailedEntries"][0]["TargetId"], "queue");
    assert!(out["FailedEntries"][0]["ErrorMessage"].is_string());
    let t = cli.json(&["list-targets-by-rule", "--rule", &rule]);
    assert_eq!(
        t["Targets"],
        json!([
            { "Id": "fn", "Arn": f },
            { "Id": "fn-live", "Arn": format!("{f}:live"), "Input": "{\"k\":1}" },
        ])
    );

    // State changes.
    assert_eq!(cli.json(&["disable-rule", "--name", &rule]), Value::Null);
    assert_eq!(
        cli.json(&["describe-rule", "--name", &rule])["State"],
        "DISABLED"
    );
    cli.json(&["enable-rule", "--name", &rule]);
    assert_eq!(
        cli.json(&["describe-rule", "--name", &rule])["State"],
        "ENABLED"
    );

    // A rule with targets cannot be deleted.
    fails_with(
        &cli,
        &["delete-rule", "--name", &rule],
        "ValidationException",
        "Rule can't be deleted since it has targets.",
    );
    let out = cli.json(&["remove-targets", "--rule", &rule, "--ids", "fn", "fn-live"]);
    assert_eq!(out["FailedEntryCount"], 0);
    assert_eq!(
        cli.json(&["list-targets-by-rule", "--rule", &rule])["Targets"],
        json!([])
    );
    cli.json(&["delete-rule", "--name", &rule]);
    // Deleting a rule that does not exist succeeds, as on AWS.
    assert_eq!(cli.json(&["delete-rule", "--name", &rule]), Value::Null);
    fails_with(
        &cli,
        &["describe-rule", "--name", &rule],
        "ResourceNotFoundException",
        &format!("Rule {rule} does not exist on EventBus default."),
    );
    fails_with(
        &cli,
        &["list-targets-by-rule", "--rule", &rule],
        "ResourceNotFoundException",
        "does not exist",
    );
    fails_with(
        &cli,
        &["enable-rule", "--name", &rule],
        "ResourceNotFoundException",
        "does not exist",
    );

    // Invalid expressions, and what Sous does not schedule.
    for bad in [
        "rate(5 minute)",
        "rate(1 minutes)",
        "cron(0 10 * * *)",
        "cron(0 10 * * MON *)",
        "cron(0 10 ? * ? *)",
        "rate(10 seconds)",
    ] {
        fails_with(
            &cli,
            &["put-rule", "--name", "bad", "--schedule-expression", bad],
            "ValidationException",
            "Parameter ScheduleExpression is not valid.",
        );
    }
    fails_with(
        &cli,
        &["put-rule", "--name", "bad"],
        "ValidationException",
        "Parameter(s) EventPattern or ScheduleExpression must be specified.",
    );
    fails_with(
        &cli,
        &[
            "put-rule",
            "--name",
            "bad",
            "--event-pattern",
            r#"{"source":["aws.ec2"]}"#,
        ],
        "ValidationException",
        "EventPattern is not supported",
    );
    fails_with(
        &cli,
        &[
            "put-rule",
            "--name",
            "bad name",
            "--schedule-expression",
            "rate(1 minute)",
        ],
        "ValidationException",
        "Member must satisfy regular expression pattern",
    );
    assert!(cli.run(&["describe-rule", "--name", "bad"]).status.code() != Some(0));
}

#[test]
fn control_plane_with_boto3() {
    let server = Server::start();
    let (akid, secret) = server.credentials();
    let script = r#"
import json, sys, boto3, botocore
c = boto3.client("events", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
                 config=botocore.config.Config(retries={"max_attempts": 1}))
def code(f, **kw):
    try:
        f(**kw)
    except botocore.exceptions.ClientError as e:
        return [e.response["Error"]["Code"], e.response["Error"]["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
    return None
out = {}
for n in ["b-1", "b-2", "b-3"]:
    out.setdefault("arns", []).append(c.put_rule(Name=n, ScheduleExpression="cron(0/15 * * * ? *)")["RuleArn"])
page1 = c.list_rules(NamePrefix="b-", Limit=2)
page2 = c.list_rules(NamePrefix="b-", Limit=2, NextToken=page1["NextToken"])
out["pages"] = [[r["Name"] for r in page1["Rules"]], [r["Name"] for r in page2["Rules"]], "NextToken" in page2]
fn = "arn:aws:lambda:us-east-1:000000000000:function:boto-fn"
out["put_targets"] = c.put_targets(Rule="b-1", Targets=[{"Id": "t1", "Arn": fn, "Input": json.dumps({"a": 1})}])["FailedEntryCount"]
out["targets"] = c.list_targets_by_rule(Rule="b-1")["Targets"]
out["describe"] = {k: v for k, v in c.describe_rule(Name="b-1").items() if k != "ResponseMetadata"}
out["delete_with_targets"] = code(c.delete_rule, Name="b-1")
out["invalid"] = code(c.put_rule, Name="b-4", ScheduleExpression="rate(0 minutes)")
out["missing"] = code(c.describe_rule, Name="nope")
out["put_targets_missing_rule"] = code(c.put_targets, Rule="nope", Targets=[{"Id": "t", "Arn": fn}])
c.remove_targets(Rule="b-1", Ids=["t1"])
c.delete_rule(Name="b-1")
out["after_delete"] = [r["Name"] for r in c.list_rules(NamePrefix="b-")["Rules"]]
bad = boto3.client("events", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id=sys.argv[2], aws_secret_access_key="not-the-secret",
                   config=botocore.config.Config(retries={"max_attempts": 1}))
out["bad_signature"] = code(bad.list_rules)
print(json.dumps(out))
"#;
    let out = Command::new(venv_python())
        .args(["-c", script, &server.endpoint(), &akid, &secret])
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", venv_python().display()));
    assert!(
        out.status.success(),
        "boto3 script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.output_tail(10_000)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["arns"],
        json!([rule_arn("b-1"), rule_arn("b-2"), rule_arn("b-3")])
    );
    assert_eq!(v["pages"], json!([["b-1", "b-2"], ["b-3"], false]));
    assert_eq!(v["put_targets"], 0);
    assert_eq!(
        v["targets"],
        json!([{ "Id": "t1", "Arn": function_arn("boto-fn"), "Input": "{\"a\": 1}" }])
    );
    assert_eq!(v["describe"]["Name"], "b-1");
    assert_eq!(v["describe"]["Arn"], rule_arn("b-1"));
    assert_eq!(v["describe"]["ScheduleExpression"], "cron(0/15 * * * ? *)");
    assert_eq!(v["describe"]["State"], "ENABLED");
    assert_eq!(
        v["delete_with_targets"],
        json!([
            "ValidationException",
            "Rule can't be deleted since it has targets.",
            400
        ])
    );
    assert_eq!(
        v["invalid"],
        json!([
            "ValidationException",
            "Parameter ScheduleExpression is not valid.",
            400
        ])
    );
    assert_eq!(
        v["missing"],
        json!([
            "ResourceNotFoundException",
            "Rule nope does not exist on EventBus default.",
            400
        ])
    );
    assert_eq!(
        v["put_targets_missing_rule"][0],
        "ResourceNotFoundException"
    );
    assert_eq!(v["after_delete"], json!(["b-2", "b-3"]));
    // SigV4 for service `events`, checked as on the Lambda API.
    assert_eq!(v["bad_signature"][0], "InvalidSignatureException", "{v}");
    assert_eq!(v["bad_signature"][2], 403, "{v}");
}

/// A `rate(2 seconds)` rule fires its function with the Scheduled Event, on time; a second
/// rule sends its target's constant Input; disabling a rule stops it.
#[tokio::test(flavor = "multi_thread")]
async fn schedule_fires_the_function_on_time() {
    let server = Server::start_with(ServerOptions::with_args(&["--schedule-seconds"]));
    let cli = AwsCli::new(&server, "events").single_attempt();
    let function = unique("tick");
    create_function(&server, &function).await;
    let rule = unique("every-2s");
    cli.json(&[
        "put-rule",
        "--name",
        &rule,
        "--schedule-expression",
        "rate(2 seconds)",
    ]);
    cli.json(&[
        "put-targets",
        "--rule",
        &rule,
        "--targets",
        &json!([{ "Id": "f", "Arn": function_arn(&function) }]).to_string(),
    ]);
    let constant = unique("constant");
    cli.json(&[
        "put-rule",
        "--name",
        &constant,
        "--schedule-expression",
        "rate(3 seconds)",
    ]);
    cli.json(&[
        "put-targets",
        "--rule",
        &constant,
        "--targets",
        &json!([{ "Id": "c", "Arn": format!("{}:$LATEST", function_arn(&function)), "Input": "{\"m\":\"constant\"}" }]).to_string(),
    ]);

    let events = wait_for(&server, "six scheduled events", 60, || {
        let got = scheduled_events(&received(&server, &function), &rule);
        (got.len() >= 6).then_some(got)
    });
    let mut ids = std::collections::BTreeSet::new();
    let mut lags_ms = Vec::new();
    for r in &events {
        let e = &r.event;
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        let mut keys = keys;
        keys.sort();
        assert_eq!(
            keys,
            [
                "account",
                "detail",
                "detail-type",
                "id",
                "region",
                "resources",
                "source",
                "time",
                "version"
            ],
            "{e}"
        );
        assert_eq!(e["version"], "0");
        assert_eq!(e["source"], "aws.events");
        assert_eq!(e["account"], ACCOUNT);
        assert_eq!(e["region"], REGION);
        assert_eq!(e["resources"], json!([rule_arn(&rule)]));
        assert_eq!(e["detail"], json!({}));
        let id = e["id"].as_str().unwrap();
        assert_eq!(id.len(), 36, "{id}");
        ids.insert(id.to_string());
        let time = e["time"].as_str().unwrap();
        assert_eq!(time.len(), "2024-03-10T10:00:02Z".len(), "{time}");
        assert!(time.ends_with('Z'));
        let scheduled_ns = parse_event_time(time);
        // The function never runs before the scheduled time (the clock is the same host's).
        let lag_ms = (r.ran_ns - scheduled_ns) / 1_000_000;
        assert!(
            lag_ms >= -50,
            "ran {lag_ms} ms before its scheduled time: {e}"
        );
        lags_ms.push(lag_ms);
    }
    assert_eq!(ids.len(), events.len(), "every firing has its own id");
    let times: Vec<i128> = events
        .iter()
        .map(|r| parse_event_time(r.event["time"].as_str().unwrap()))
        .collect();
    for w in times.windows(2) {
        assert_eq!(
            (w[1] - w[0]) % 2_000_000_000,
            0,
            "firings are whole periods apart: {times:?}"
        );
    }
    // Soon after the scheduled time (the first may include a cold start; warm firings are
    // the measure, and the bound leaves room for a slow disk's fsync on a busy machine).
    eprintln!("lags from scheduled time to the function, ms: {lags_ms:?}");
    let best = lags_ms.iter().min().unwrap();
    assert!(
        *best < 2000,
        "no firing reached the function within two seconds of its time: lags {lags_ms:?} ms"
    );

    // The constant Input, exactly.
    wait_for(&server, "the constant input", 60, || {
        received(&server, &function)
            .iter()
            .find(|r| r.event == json!({ "m": "constant" }))
            .cloned()
    });

    // Disabled: no firing scheduled after the scheduler has seen it (it reads the store every
    // second). Judged by each event's scheduled time, not by when it arrives, since an event
    // already queued may still be delivered late.
    cli.json(&["disable-rule", "--name", &rule]);
    cli.json(&["disable-rule", "--name", &constant]);
    let disabled_ns = i128::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    let late: Vec<String> = scheduled_events(&received(&server, &function), &rule)
        .iter()
        .map(|r| r.event["time"].as_str().unwrap().to_string())
        .filter(|t| parse_event_time(t) > disabled_ns + 2_000_000_000)
        .collect();
    assert!(
        late.is_empty(),
        "a disabled rule fired, scheduled at {late:?}"
    );
}

/// Rules and targets are durable: after a restart on the same data dir the rule is there and
/// fires again.
#[tokio::test(flavor = "multi_thread")]
async fn rules_survive_a_restart() {
    let mut server = Server::start_with(ServerOptions::with_args(&["--schedule-seconds"]));
    let function = unique("durable");
    create_function(&server, &function).await;
    let rule = unique("durable-rule");
    {
        let cli = AwsCli::new(&server, "events").single_attempt();
        cli.json(&[
            "put-rule",
            "--name",
            &rule,
            "--schedule-expression",
            "rate(2 seconds)",
            "--description",
            "kept",
        ]);
        cli.json(&[
            "put-targets",
            "--rule",
            &rule,
            "--targets",
            &json!([{ "Id": "f", "Arn": function_arn(&function) }]).to_string(),
        ]);
    }
    server.restart();
    let restarted_ns = (now_ms() as i128) * 1_000_000;
    let cli = AwsCli::new(&server, "events").single_attempt();
    let d = cli.json(&["describe-rule", "--name", &rule]);
    assert_eq!(d["ScheduleExpression"], "rate(2 seconds)");
    assert_eq!(d["Description"], "kept");
    assert_eq!(d["State"], "ENABLED");
    assert_eq!(
        cli.json(&["list-targets-by-rule", "--rule", &rule])["Targets"],
        json!([{ "Id": "f", "Arn": function_arn(&function) }])
    );
    wait_for(&server, "a firing after the restart", 60, || {
        scheduled_events(&received(&server, &function), &rule)
            .into_iter()
            .find(|r| parse_event_time(r.event["time"].as_str().unwrap()) >= restarted_ns)
    });
}
