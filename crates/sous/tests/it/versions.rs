//! Versions and aliases over the wire (issue 5, points 4, 5 and 7): PublishVersion
//! (numbering, immutability, unchanged publishes, CodeSha256 and RevisionId preconditions),
//! ListVersionsByFunction, Get/Invoke/Delete with a version or alias qualifier, alias CRUD and
//! every validation refusal, invoking through an alias (executed version, environment,
//! START line, invoked ARN) and weighted routing.

use crate::common::*;
use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use aws_sdk_lambda::Client;

/// A runtime answering, for each event, which code (`tag`) and which configuration (`COLOR`)
/// ran, the version Lambda told it (`AWS_LAMBDA_FUNCTION_VERSION`) and the ARN it was
/// invoked as.
fn tagged_runtime(tag: &str) -> Vec<u8> {
    bootstrap_zip(shell_runtime(
        "",
        &format!(
            r#"  printf '{{"tag":"{tag}","version":"%s","color":"%s","arn":"%s"}}' "$AWS_LAMBDA_FUNCTION_VERSION" "$COLOR" "$(header Lambda-Runtime-Invoked-Function-Arn)" > "$WORK/out"
  respond "$WORK/out""#
        ),
    ))
}

fn qualified_arn(name: &str, qualifier: &str) -> String {
    format!("{}:{qualifier}", function_arn(name))
}

/// A function running `tagged_runtime(tag)` with `COLOR=color`.
async fn create_tagged(server: &Server, name: &str, tag: &str, color: &str) {
    create_ok(
        server,
        create(&server.client, name, &tagged_runtime(tag))
            .environment(env_vars(&[("COLOR", color)])),
    )
    .await;
}

async fn publish(server: &Server, name: &str) -> PublishVersionOutput {
    match server
        .client
        .publish_version()
        .function_name(name)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => panic!(
            "PublishVersion failed: {:#?}\n{}",
            api_error(e),
            server.output_tail(4000)
        ),
    }
}

async fn update_code(server: &Server, name: &str, tag: &str) {
    server
        .client
        .update_function_code()
        .function_name(name)
        .zip_file(aws_sdk_lambda::primitives::Blob::new(tagged_runtime(tag)))
        .send()
        .await
        .expect("UpdateFunctionCode");
}

async fn set_color(server: &Server, name: &str, color: &str) {
    server
        .client
        .update_function_configuration()
        .function_name(name)
        .environment(env_vars(&[("COLOR", color)]))
        .send()
        .await
        .expect("UpdateFunctionConfiguration");
}

/// Invoke `name` with `qualifier` (in `?Qualifier=`), LogType Tail.
async fn invoke_q(server: &Server, name: &str, qualifier: &str) -> (Invoked, serde_json::Value) {
    let out = send_invoke(
        server,
        invoke_req(&server.client, name, b"{}").qualifier(qualifier),
    )
    .await;
    assert_eq!(out.function_error, None, "{}", out.text());
    let body = out.json();
    (out, body)
}

fn weights(pairs: &[(&str, f64)]) -> AliasRoutingConfiguration {
    let mut b = AliasRoutingConfiguration::builder();
    for (k, w) in pairs {
        b = b.additional_version_weights(*k, *w);
    }
    b.build()
}

async fn create_alias(
    client: &Client,
    name: &str,
    alias: &str,
    version: &str,
    routing: Option<AliasRoutingConfiguration>,
) -> Result<
    aws_sdk_lambda::operation::create_alias::CreateAliasOutput,
    aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::create_alias::CreateAliasError,
        aws_sdk_lambda::config::http::HttpResponse,
    >,
> {
    client
        .create_alias()
        .function_name(name)
        .name(alias)
        .function_version(version)
        .set_routing_config(routing)
        .send()
        .await
}

/// A function with versions 1 (tag a) and 2 (tag b) published.
async fn two_versions(server: &Server, name: &str) {
    create_tagged(server, name, "a", "red").await;
    assert_eq!(publish(server, name).await.version(), Some("1"));
    update_code(server, name, "b").await;
    assert_eq!(publish(server, name).await.version(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_versions_are_numbered_frozen_and_not_duplicated() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("pub");
    let zip_a = tagged_runtime("a");
    create_tagged(&server, &name, "a", "red").await;
    let latest_before = c
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .unwrap();

    let v1 = publish(&server, &name).await;
    assert_eq!(v1.version(), Some("1"));
    assert_eq!(v1.function_arn(), Some(qualified_arn(&name, "1").as_str()));
    assert_eq!(v1.code_sha256(), Some(code_sha256(&zip_a).as_str()));
    assert_eq!(v1.description(), Some(""));
    assert_matches(UUID_RE, v1.revision_id().unwrap(), "version RevisionId");
    assert_ne!(v1.revision_id(), latest_before.revision_id());
    assert_eq!(v1.state().map(|s| s.as_str()), Some("Active"));
    // Everything but the identity of the version is $LATEST's.
    let (a, b) = (conf!(v1), conf!(latest_before));
    assert_eq!(
        (
            a.runtime,
            a.role,
            a.handler,
            a.code_size,
            a.timeout,
            a.memory_size,
            a.environment
        ),
        (
            b.runtime,
            b.role,
            b.handler,
            b.code_size,
            b.timeout,
            b.memory_size,
            b.environment
        )
    );

    // Nothing changed: the same version again, no new number.
    let again = publish(&server, &name).await;
    assert_eq!(again.version(), Some("1"));
    assert_eq!(again.revision_id(), v1.revision_id());

    // New code, then new configuration: each publish is a new number, with its own
    // description.
    update_code(&server, &name, "b").await;
    let v2 = c
        .publish_version()
        .function_name(&name)
        .description("second")
        .send()
        .await
        .unwrap();
    assert_eq!(v2.version(), Some("2"));
    assert_eq!(v2.description(), Some("second"));
    assert_eq!(
        v2.code_sha256(),
        Some(code_sha256(&tagged_runtime("b")).as_str())
    );
    set_color(&server, &name, "blue").await;
    assert_eq!(publish(&server, &name).await.version(), Some("3"));

    // Each version runs exactly what was published; $LATEST runs the current state.
    for (q, tag, color, version) in [
        ("1", "a", "red", "1"),
        ("2", "b", "red", "2"),
        ("3", "b", "blue", "3"),
        ("$LATEST", "b", "blue", "$LATEST"),
    ] {
        let (out, body) = invoke_q(&server, &name, q).await;
        assert_eq!(body["tag"], tag, "code of {q}");
        assert_eq!(body["color"], color, "configuration of {q}");
        assert_eq!(
            body["version"], version,
            "AWS_LAMBDA_FUNCTION_VERSION of {q}"
        );
        assert_eq!(out.executed_version.as_deref(), Some(version));
        assert!(
            out.log().contains(&format!(" Version: {version}")),
            "START line of {q}: {}",
            out.log()
        );
    }
    // $LATEST moves on; the versions do not.
    update_code(&server, &name, "c").await;
    let (_, body) = invoke_q(&server, &name, "1").await;
    assert_eq!(body["tag"], "a");
    let (_, body) = invoke_q(&server, &name, "$LATEST").await;
    assert_eq!(body["tag"], "c");

    // GetFunction / GetFunctionConfiguration by version, in ?Qualifier= or in the name.
    let got = c
        .get_function()
        .function_name(&name)
        .qualifier("1")
        .send()
        .await
        .unwrap();
    let cfg = got.configuration().unwrap();
    assert_eq!(cfg.version(), Some("1"));
    assert_eq!(cfg.function_arn(), Some(qualified_arn(&name, "1").as_str()));
    assert_eq!(cfg.code_sha256(), Some(code_sha256(&zip_a).as_str()));
    // Version 1's code is still stored although $LATEST moved on twice.
    let location = got.code().unwrap().location().unwrap().to_string();
    let dl = raw_request("GET", &location, &[], Vec::new()).await;
    assert_eq!(dl.status, 200);
    assert_eq!(dl.body, zip_a);
    let cfg2 = c
        .get_function_configuration()
        .function_name(format!("{name}:2"))
        .send()
        .await
        .unwrap();
    assert_eq!(cfg2.version(), Some("2"));
    assert_eq!(cfg2.description(), Some("second"));
    assert_eq!(
        cfg2.function_arn(),
        Some(qualified_arn(&name, "2").as_str())
    );

    // Versions that do not exist.
    let e = expect_err(
        c.get_function_configuration()
            .function_name(&name)
            .qualifier("9")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", qualified_arn(&name, "9"))
    );
    let e = expect_err(c.invoke().function_name(format!("{name}:9")).send().await);
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", qualified_arn(&name, "9"))
    );
    // Published versions are immutable.
    let e = expect_err(
        c.update_function_configuration()
            .function_name(format!("{name}:1"))
            .timeout(10)
            .send()
            .await,
    );
    assert_eq!(e.status, Some(400), "{e:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_honours_code_sha256_and_revision_id() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("pre");
    create_tagged(&server, &name, "a", "red").await;
    let sha = code_sha256(&tagged_runtime("a"));
    let wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let e = expect_err(
        c.publish_version()
            .function_name(&name)
            .code_sha256(wrong)
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(
        e.message(),
        format!("CodeSHA256 ({wrong}) is different from current CodeSHA256 in $LATEST ({sha}). Please try again with the CodeSHA256 in $LATEST.")
    );
    let e = expect_err(
        c.publish_version()
            .function_name(&name)
            .revision_id("00000000-0000-0000-0000-000000000000")
            .send()
            .await,
    );
    e.assert(412, "PreconditionFailedException");
    assert!(
        e.message().contains("Revision Id provided does not match"),
        "{e:#?}"
    );
    // Nothing was published by the refused calls.
    let versions = c
        .list_versions_by_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1);

    let latest = c
        .get_function_configuration()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let v = c
        .publish_version()
        .function_name(&name)
        .code_sha256(&sha)
        .revision_id(latest.revision_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(v.version(), Some("1"));

    let e = expect_err(
        c.publish_version()
            .function_name(&name)
            .description("x".repeat(257))
            .send()
            .await,
    );
    e.assert(400, "ValidationException");
    let missing = unique("missing");
    let e = expect_err(c.publish_version().function_name(&missing).send().await);
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", function_arn(&missing))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_update_code_can_publish() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("cpub");
    let created = create_ok(
        &server,
        create(c, &name, &tagged_runtime("a"))
            .environment(env_vars(&[("COLOR", "red")]))
            .publish(true),
    )
    .await;
    assert_eq!(created.version(), Some("1"));
    let updated = c
        .update_function_code()
        .function_name(&name)
        .zip_file(aws_sdk_lambda::primitives::Blob::new(tagged_runtime("b")))
        .publish(true)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.version(), Some("2"));
    assert_eq!(
        updated.function_arn(),
        Some(qualified_arn(&name, "2").as_str())
    );
    let (_, body) = invoke_q(&server, &name, "1").await;
    assert_eq!(body["tag"], "a");
    let (_, body) = invoke_q(&server, &name, "2").await;
    assert_eq!(body["tag"], "b");
    let versions = c
        .list_versions_by_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let listed: Vec<_> = versions
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(listed, ["$LATEST", "1", "2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_versions_pages_latest_first() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("list");
    create_tagged(&server, &name, "a", "red").await;
    for i in 1..=3 {
        set_color(&server, &name, &format!("c{i}")).await;
        assert_eq!(
            publish(&server, &name).await.version(),
            Some(i.to_string().as_str())
        );
    }
    let page1 = c
        .list_versions_by_function()
        .function_name(&name)
        .max_items(2)
        .send()
        .await
        .unwrap();
    let versions: Vec<_> = page1
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(versions, ["$LATEST", "1"]);
    assert_eq!(
        page1.versions()[0].function_arn(),
        Some(qualified_arn(&name, "$LATEST").as_str())
    );
    assert_eq!(
        page1.versions()[1].function_arn(),
        Some(qualified_arn(&name, "1").as_str())
    );
    let marker = page1.next_marker().expect("a second page").to_string();
    let page2 = c
        .list_versions_by_function()
        .function_name(&name)
        .max_items(2)
        .marker(marker)
        .send()
        .await
        .unwrap();
    let versions: Vec<_> = page2
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(versions, ["2", "3"]);
    assert_eq!(page2.next_marker(), None);
    let env = page2.versions()[1]
        .environment()
        .and_then(|e| e.variables())
        .and_then(|v| v.get("COLOR"))
        .cloned();
    assert_eq!(env.as_deref(), Some("c3"));

    let missing = unique("missing");
    let e = expect_err(
        c.list_versions_by_function()
            .function_name(&missing)
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_versions_and_functions() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("del");
    two_versions(&server, &name).await;
    create_alias(c, &name, "live", "1", None).await.unwrap();
    create_alias(c, &name, "canary", "2", Some(weights(&[("1", 0.5)])))
        .await
        .unwrap();

    // Refusals: $LATEST alone, an alias, a version an alias routes to (as primary or as
    // additional version).
    let e = expect_err(
        c.delete_function()
            .function_name(&name)
            .qualifier("$LATEST")
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(
        e.message(),
        "$LATEST version cannot be deleted without deleting the function."
    );
    let e = expect_err(
        c.delete_function()
            .function_name(&name)
            .qualifier("live")
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    let e = expect_err(
        c.delete_function()
            .function_name(&name)
            .qualifier("1")
            .send()
            .await,
    );
    e.assert(409, "ResourceConflictException");
    assert_eq!(
        e.message(),
        "Unable to delete version because the following aliases reference it: [canary, live]"
    );
    let e = expect_err(
        c.delete_function()
            .function_name(format!("{name}:2"))
            .send()
            .await,
    );
    e.assert(409, "ResourceConflictException");
    assert_eq!(
        e.message(),
        "Unable to delete version because the following aliases reference it: [canary]"
    );

    // Once no alias routes to it, version 2 goes, and only it.
    c.delete_alias()
        .function_name(&name)
        .name("canary")
        .send()
        .await
        .unwrap();
    c.delete_function()
        .function_name(&name)
        .qualifier("2")
        .send()
        .await
        .unwrap();
    let e = expect_err(
        c.get_function()
            .function_name(&name)
            .qualifier("2")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    let listed = c
        .list_versions_by_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let versions: Vec<_> = listed
        .versions()
        .iter()
        .filter_map(|v| v.version())
        .collect();
    assert_eq!(versions, ["$LATEST", "1"]);
    let (_, body) = invoke_q(&server, &name, "live").await;
    assert_eq!(body["tag"], "a");
    let (_, body) = invoke_q(&server, &name, "$LATEST").await;
    assert_eq!(body["tag"], "b");
    // A version that does not exist: nothing to do.
    c.delete_function()
        .function_name(&name)
        .qualifier("2")
        .send()
        .await
        .unwrap();
    c.delete_function()
        .function_name(&name)
        .qualifier("77")
        .send()
        .await
        .unwrap();
    // Numbers are never reused.
    set_color(&server, &name, "green").await;
    assert_eq!(publish(&server, &name).await.version(), Some("3"));

    // Deleting the function deletes its versions and aliases.
    c.delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    let e = expect_err(
        c.get_function()
            .function_name(&name)
            .qualifier("1")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    let e = expect_err(c.list_aliases().function_name(&name).send().await);
    e.assert(404, "ResourceNotFoundException");
    create_tagged(&server, &name, "z", "red").await;
    let listed = c
        .list_versions_by_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions().len(), 1);
    let aliases = c.list_aliases().function_name(&name).send().await.unwrap();
    assert!(aliases.aliases().is_empty(), "{aliases:?}");
    assert_eq!(publish(&server, &name).await.version(), Some("1"));
    let e = expect_err(
        c.delete_function()
            .function_name(unique("missing"))
            .qualifier("1")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qualifier_in_name_and_parameter_must_agree() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("clash");
    two_versions(&server, &name).await;
    let clash =
        "The derived qualifier from the function name does not match the specified qualifier.";
    let e = expect_err(
        c.get_function()
            .function_name(format!("{name}:1"))
            .qualifier("2")
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(e.message(), clash);
    let e = expect_err(
        c.invoke()
            .function_name(qualified_arn(&name, "1"))
            .qualifier("2")
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    assert_eq!(e.message(), clash);
    // Agreeing qualifiers are fine.
    let got = c
        .get_function_configuration()
        .function_name(format!("{name}:2"))
        .qualifier("2")
        .send()
        .await
        .unwrap();
    assert_eq!(got.version(), Some("2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_lifecycle() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("alias");
    two_versions(&server, &name).await;

    let rec = Recorder::default();
    let live = c
        .create_alias()
        .function_name(&name)
        .name("live")
        .function_version("1")
        .description("production")
        .customize()
        .interceptor(rec.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rec.seen().status, 201);
    assert_eq!(
        live.alias_arn(),
        Some(qualified_arn(&name, "live").as_str())
    );
    assert_eq!(live.name(), Some("live"));
    assert_eq!(live.function_version(), Some("1"));
    assert_eq!(live.description(), Some("production"));
    assert!(live.routing_config().is_none());
    assert_matches(UUID_RE, live.revision_id().unwrap(), "alias RevisionId");

    let got = c
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(got.alias_arn(), live.alias_arn());
    assert_eq!(got.revision_id(), live.revision_id());
    assert_eq!(got.description(), Some("production"));

    // An alias may point at $LATEST (without weights).
    let beta = create_alias(c, &name, "beta", "$LATEST", None)
        .await
        .unwrap();
    assert_eq!(beta.function_version(), Some("$LATEST"));
    assert_eq!(beta.description(), Some(""));

    let all = c.list_aliases().function_name(&name).send().await.unwrap();
    let names: Vec<_> = all.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["beta", "live"]);
    let on_1 = c
        .list_aliases()
        .function_name(&name)
        .function_version("1")
        .send()
        .await
        .unwrap();
    let names: Vec<_> = on_1.aliases().iter().filter_map(|a| a.name()).collect();
    assert_eq!(names, ["live"]);
    let page = c
        .list_aliases()
        .function_name(&name)
        .max_items(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.aliases().len(), 1);
    let next = c
        .list_aliases()
        .function_name(&name)
        .max_items(1)
        .marker(page.next_marker().expect("second page"))
        .send()
        .await
        .unwrap();
    assert_eq!(next.aliases()[0].name(), Some("live"));
    assert_eq!(next.next_marker(), None);

    // GetFunction through the alias: the version's configuration, the alias's ARN.
    let cfg = c
        .get_function_configuration()
        .function_name(&name)
        .qualifier("live")
        .send()
        .await
        .unwrap();
    assert_eq!(cfg.version(), Some("1"));
    assert_eq!(
        cfg.function_arn(),
        Some(qualified_arn(&name, "live").as_str())
    );

    // UpdateAlias: RevisionId precondition, new version, weights, `{}` clears them.
    let e = expect_err(
        c.update_alias()
            .function_name(&name)
            .name("live")
            .function_version("2")
            .revision_id("00000000-0000-0000-0000-000000000000")
            .send()
            .await,
    );
    e.assert(412, "PreconditionFailedException");
    let moved = c
        .update_alias()
        .function_name(&name)
        .name("live")
        .function_version("2")
        .revision_id(live.revision_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(moved.function_version(), Some("2"));
    assert_eq!(
        moved.description(),
        Some("production"),
        "kept when not given"
    );
    assert_ne!(moved.revision_id(), live.revision_id());
    let weighted = c
        .update_alias()
        .function_name(&name)
        .name("live")
        .routing_config(weights(&[("1", 0.25)]))
        .send()
        .await
        .unwrap();
    assert_eq!(weighted.function_version(), Some("2"));
    let w = weighted
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .and_then(|m| m.get("1"))
        .copied();
    assert_eq!(w, Some(0.25));
    let got = c
        .get_alias()
        .function_name(&name)
        .name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(got.routing_config(), weighted.routing_config());
    let cleared = c
        .update_alias()
        .function_name(&name)
        .name("live")
        .routing_config(AliasRoutingConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    assert!(
        cleared
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .is_none_or(|m| m.is_empty()),
        "{cleared:?}"
    );
    // The stale RevisionId of before is refused now.
    let e = expect_err(
        c.update_alias()
            .function_name(&name)
            .name("live")
            .description("x")
            .revision_id(moved.revision_id().unwrap())
            .send()
            .await,
    );
    e.assert(412, "PreconditionFailedException");

    // DeleteAlias: 204, then gone; deleting again is no error.
    let rec = Recorder::default();
    c.delete_alias()
        .function_name(&name)
        .name("beta")
        .customize()
        .interceptor(rec.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(rec.seen().status, 204);
    let e = expect_err(c.get_alias().function_name(&name).name("beta").send().await);
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Cannot find alias arn: {}", qualified_arn(&name, "beta"))
    );
    c.delete_alias()
        .function_name(&name)
        .name("beta")
        .send()
        .await
        .unwrap();
    let e = expect_err(
        c.get_function()
            .function_name(&name)
            .qualifier("beta")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", qualified_arn(&name, "beta"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_validation_refusals() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("aval");
    two_versions(&server, &name).await;
    create_alias(c, &name, "live", "1", None).await.unwrap();

    // Model constraints: ValidationException.
    for (alias, version, routing, member) in [
        ("123", "1", None, "'name'"),
        ("ok", "abc", None, "'functionVersion'"),
        (
            "ok",
            "1",
            Some(weights(&[("2", 1.5)])),
            "'routingConfig.additionalVersionWeights'",
        ),
        (
            "ok",
            "1",
            Some(weights(&[("2", -0.1)])),
            "'routingConfig.additionalVersionWeights'",
        ),
        (
            "ok",
            "1",
            Some(weights(&[("$LATEST", 0.5)])),
            "'routingConfig.additionalVersionWeights'",
        ),
    ] {
        let e = expect_err(create_alias(c, &name, alias, version, routing.clone()).await);
        e.assert(400, "ValidationException");
        assert!(
            e.message().contains(member),
            "{alias} {version} {routing:?}: {e:#?}"
        );
    }
    let e = expect_err(create_alias(c, &name, "ok", "1", Some(weights(&[("2", 1.5)]))).await);
    assert_eq!(
        e.message(),
        "1 validation error detected: Value '{2=1.5}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"
    );
    let e = expect_err(
        c.create_alias()
            .function_name(&name)
            .name("ok")
            .function_version("1")
            .description("d".repeat(257))
            .send()
            .await,
    );
    e.assert(400, "ValidationException");

    // Lambda's rules: InvalidParameterValueException.
    for (version, routing, message) in [
        (
            "1",
            weights(&[("2", 0.1), ("3", 0.1)]),
            "Number of items in AdditionalVersionWeights cannot be greater than 1".to_string(),
        ),
        (
            "1",
            weights(&[("1", 0.1)]),
            "Invalid function version 1. Function version 1 is already included in routing configuration.".to_string(),
        ),
        (
            "$LATEST",
            weights(&[("1", 0.1)]),
            "$LATEST is not supported for an alias pointing to more than 1 version".to_string(),
        ),
    ] {
        let e = expect_err(create_alias(c, &name, "ok", version, Some(routing)).await);
        e.assert(400, "InvalidParameterValueException");
        assert_eq!(e.message(), message);
    }

    // Versions and functions that do not exist: 404.
    let e = expect_err(create_alias(c, &name, "ok", "9", None).await);
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", qualified_arn(&name, "9"))
    );
    let e = expect_err(create_alias(c, &name, "ok", "1", Some(weights(&[("9", 0.1)]))).await);
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", qualified_arn(&name, "9"))
    );
    let missing = unique("missing");
    let e = expect_err(create_alias(c, &missing, "ok", "1", None).await);
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", function_arn(&missing))
    );

    // A duplicate: 409.
    let e = expect_err(create_alias(c, &name, "live", "2", None).await);
    e.assert(409, "ResourceConflictException");
    assert_eq!(
        e.message(),
        format!("Alias already exists: {}", qualified_arn(&name, "live"))
    );

    // UpdateAlias: the same rules, and a missing alias.
    let e = expect_err(
        c.update_alias()
            .function_name(&name)
            .name("live")
            .routing_config(weights(&[("1", 0.5)]))
            .send()
            .await,
    );
    e.assert(400, "InvalidParameterValueException");
    let e = expect_err(
        c.update_alias()
            .function_name(&name)
            .name("live")
            .function_version("9")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    let e = expect_err(
        c.update_alias()
            .function_name(&name)
            .name("nope")
            .function_version("1")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Alias not found: {}", qualified_arn(&name, "nope"))
    );

    // None of the refused calls changed anything.
    let all = c.list_aliases().function_name(&name).send().await.unwrap();
    assert_eq!(all.aliases().len(), 1, "{all:?}");
    let live = &all.aliases()[0];
    assert_eq!(live.function_version(), Some("1"));
    assert!(live.routing_config().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoking_through_an_alias_runs_its_version() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("ainv");
    two_versions(&server, &name).await;
    create_alias(c, &name, "live", "1", None).await.unwrap();

    // Qualifier in the name, and in ?Qualifier=.
    for out in [
        send_invoke(&server, invoke_req(c, &format!("{name}:live"), b"{}")).await,
        send_invoke(&server, invoke_req(c, &name, b"{}").qualifier("live")).await,
    ] {
        let body = out.json();
        assert_eq!(out.executed_version.as_deref(), Some("1"));
        assert_eq!(body["tag"], "a");
        assert_eq!(body["version"], "1");
        assert_eq!(body["arn"], qualified_arn(&name, "live"));
        assert!(out.log().contains(" Version: 1"), "{}", out.log());
    }
    // Invoked by version, the ARN carries the version.
    let (_, body) = invoke_q(&server, &name, "2").await;
    assert_eq!(body["arn"], qualified_arn(&name, "2"));

    // Moving the alias moves its traffic.
    c.update_alias()
        .function_name(&name)
        .name("live")
        .function_version("2")
        .send()
        .await
        .unwrap();
    let (out, body) = invoke_q(&server, &name, "live").await;
    assert_eq!(out.executed_version.as_deref(), Some("2"));
    assert_eq!(body["tag"], "b");
    assert_eq!(body["version"], "2");
    assert!(out.log().contains(" Version: 2"), "{}", out.log());

    // An alias of $LATEST follows $LATEST.
    create_alias(c, &name, "edge", "$LATEST", None)
        .await
        .unwrap();
    update_code(&server, &name, "c").await;
    let (out, body) = invoke_q(&server, &name, "edge").await;
    assert_eq!(out.executed_version.as_deref(), Some("$LATEST"));
    assert_eq!(body["tag"], "c");

    let e = expect_err(
        c.invoke()
            .function_name(&name)
            .qualifier("nope")
            .send()
            .await,
    );
    e.assert(404, "ResourceNotFoundException");
    assert_eq!(
        e.message(),
        format!("Function not found: {}", qualified_arn(&name, "nope"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_alias_splits_traffic_by_weight() {
    let server = Server::start();
    let c = &server.client;
    let name = unique("weight");
    two_versions(&server, &name).await;

    // The extremes are exact: weight 0 never routes to the additional version, 1 always.
    create_alias(c, &name, "none", "1", Some(weights(&[("2", 0.0)])))
        .await
        .unwrap();
    create_alias(c, &name, "all", "1", Some(weights(&[("2", 1.0)])))
        .await
        .unwrap();
    for _ in 0..10 {
        let (out, _) = invoke_q(&server, &name, "none").await;
        assert_eq!(out.executed_version.as_deref(), Some("1"));
        let (out, _) = invoke_q(&server, &name, "all").await;
        assert_eq!(out.executed_version.as_deref(), Some("2"));
    }

    // 30 % to version 2. With n = 400 the count of version 2 is Binomial(400, 0.3): mean
    // 120, standard deviation 9.2; the accepted band 120 ± 50 is more than 5 standard
    // deviations wide on each side (a false failure about once in 10^7 runs), while a
    // router that ignores the weight (0 or 400) or inverts it (280) fails.
    create_alias(c, &name, "live", "1", Some(weights(&[("2", 0.3)])))
        .await
        .unwrap();
    let n = 400;
    let mut to_2 = 0;
    for _ in 0..n {
        let out = send_invoke(&server, c.invoke().function_name(&name).qualifier("live")).await;
        let executed = out
            .executed_version
            .clone()
            .expect("X-Amz-Executed-Version");
        let body = out.json();
        // The header tells the truth: the environment that ran is that version's.
        assert_eq!(body["version"], executed.as_str());
        assert_eq!(body["tag"], if executed == "2" { "b" } else { "a" });
        assert_eq!(body["arn"], qualified_arn(&name, "live"));
        if executed == "2" {
            to_2 += 1;
        } else {
            assert_eq!(executed, "1");
        }
    }
    assert!(
        (70..=170).contains(&to_2),
        "{to_2} of {n} invocations ran version 2 at weight 0.3"
    );
}
