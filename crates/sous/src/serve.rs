//! `sous serve`: the store, the pool of execution environments and the Lambda API, with a
//! clean shutdown on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use sous_api::ApiState;
use sous_invoke::Invoker;
use sous_runtimes::Catalog;
use sous_sandbox::{
    EnvSandboxSpec, Isolation, Launch, NetworkMode, Sandbox, SandboxConfig, SandboxError,
};
use sous_store::Store;
use sous_types::names::Scope;
use sous_worker::{MemoryBudget, Pool, PoolConfig};

use crate::credentials::{self, Origin};

#[derive(Args)]
pub struct ServeArgs {
    /// Where functions, code and logs live [default: $XDG_DATA_HOME/sous or ~/.local/share/sous]
    #[arg(long, env = "SOUS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the Lambda API.
    #[arg(long, default_value = "127.0.0.1:3001")]
    api_addr: SocketAddr,
    /// Address of the HTTP front door (function URLs, API routes).
    #[arg(long, default_value = "127.0.0.1:3000")]
    gateway_addr: SocketAddr,
    /// Region named in ARNs and given to functions.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id named in ARNs.
    #[arg(long, default_value = "000000000000")]
    account_id: String,
    /// Do not echo function logs on standard output.
    #[arg(long)]
    no_echo_logs: bool,
    /// `full`: every environment is a sandbox (namespaces, cgroups, private root) — as root, or
    /// rootless in user namespaces with a delegated cgroup tree (see below). `none`: plain
    /// processes, for hosts where isolation is impossible — never for code you do not trust.
    #[arg(long, value_enum, default_value = "full")]
    isolation: IsolationArg,
    /// The cgroup tree environments' cgroups are made in: a cgroup2 directory, or a directory
    /// of cgroup v1 controller hierarchies [default: /sys/fs/cgroup as root; rootless: the
    /// delegated cgroups Sous runs in]
    #[arg(long)]
    cgroup_root: Option<PathBuf>,
    /// Network access of functions: `outbound` (as on Lambda) or `none` (their own loopback
    /// only) [default: outbound where this host allows it; otherwise none, with a warning
    /// that names the fix. Given explicitly, `outbound` refuses to start without it]
    #[arg(long, value_enum)]
    function_network: Option<NetworkArg>,
    /// Cap each function's CPU at Lambda's share (1,769 MB = one vCPU) even when cores are
    /// idle. Without it the share is a weight, honoured when the host is busy.
    #[arg(long)]
    function_cpu_cap: bool,
    /// Stop an on-demand execution environment after it has been idle this long (seconds).
    #[arg(long, default_value_t = sous_types::limits::IDLE_TIMEOUT_DEFAULT_S)]
    idle_timeout_secs: u64,
    /// The account's concurrency limit (GetAccountSettings' ConcurrentExecutions).
    #[arg(long, default_value_t = sous_types::limits::ACCOUNT_CONCURRENCY)]
    account_concurrency: u64,
    /// Host memory to budget environments against, in MB [default: MemTotal of /proc/meminfo]
    #[arg(long)]
    host_memory_mb: Option<u64>,
    /// Memory kept free of environments, in MB [default: 10% of host memory, at least 512]
    #[arg(long)]
    memory_headroom_mb: Option<u64>,
    /// Delay before the first retry of an asynchronous invocation that failed, in ms; the
    /// second retry waits twice as long (Lambda: about one minute, then two).
    #[arg(long, default_value_t = 60_000)]
    retry_base_delay_ms: u64,
    /// For tests of the loopback-only fallback (hidden): start as if outbound networking could
    /// not be set up on this host, for this reason.
    #[arg(long, hide = true, value_name = "REASON")]
    test_outbound_unavailable: Option<String>,
    /// Accept `rate(N second(s))` schedule expressions (development and tests). Without it
    /// EventBridge's smallest rate, one minute, applies.
    #[arg(long)]
    schedule_seconds: bool,
    /// Time a client has to send a request head (request line and headers), in seconds:
    /// counted from the connection for a new one, from the head's first byte on a kept-alive
    /// one. A connection that sends nothing is closed after it. Both listeners; 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = sous_http::HEADER_TIMEOUT_DEFAULT_S)]
    header_timeout_secs: u64,
    /// Close a kept-alive connection idle this long between requests (seconds; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = sous_http::KEEP_ALIVE_TIMEOUT_DEFAULT_S)]
    keep_alive_timeout_secs: u64,
    /// Time a request body may take to arrive (seconds), extended by one second for every
    /// --body-min-rate bytes received: a body that trickles more slowly is cut off with 408.
    /// 0: no limit.
    #[arg(long, value_name = "SECS", default_value_t = sous_http::BODY_TIMEOUT_DEFAULT_S)]
    body_timeout_secs: u64,
    /// The minimum rate of a request body, bytes per second (see --body-timeout-secs).
    #[arg(long, value_name = "BYTES", default_value_t = sous_http::BODY_MIN_RATE_DEFAULT)]
    body_min_rate: u64,
    /// Open connections at most, for each listener (the API and the front door). At the cap
    /// a new connection closes the one idle the longest; it is refused only when every
    /// connection has a request in flight [default: from the open-file limit, which Sous
    /// raises to the hard limit: (limit - max(limit/4, 256)) / 2, at most 10000]
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// An AWS-compatible endpoint on this host for one service, as SERVICE=URL (repeatable;
    /// e.g. dynamodb=http://127.0.0.1:8000, s3=http://127.0.0.1:8333). Functions reach
    /// exactly these endpoints of the host, and get AWS_ENDPOINT_URL_<SERVICE> for each
    /// (docs/SECURITY.md, "Service endpoints"); code given as S3Bucket/S3Key is fetched from s3
    /// (http:// only), signed with SOUS_S3_ACCESS_KEY_ID / SOUS_S3_SECRET_ACCESS_KEY when set,
    /// else with the admin key pair.
    #[arg(long = "service-endpoint", value_name = "SERVICE=URL")]
    service_endpoints: Vec<sous_types::endpoints::ServiceEndpoint>,
}

impl ServeArgs {
    /// The `--service-endpoint`s, one per service (the last given wins).
    fn service_endpoints(&self) -> sous_types::endpoints::ServiceEndpoints {
        sous_types::endpoints::ServiceEndpoints::new(self.service_endpoints.iter().cloned())
    }

    /// The listeners' connection limits, after raising the open-file limit they derive from.
    fn connection_limits(&self) -> sous_http::Limits {
        let fds = match sous_http::raise_fd_limit() {
            Ok(l) => {
                if l.soft > l.was {
                    info!(from = l.was, to = l.soft, "raised the open-file limit");
                }
                l.soft
            }
            Err(e) => {
                warn!(error = %e, "could not raise the open-file limit");
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .map(|(soft, _)| soft)
                    .unwrap_or(1024)
            }
        };
        let derived = sous_http::default_max_connections(fds);
        let max_connections = self.max_connections.unwrap_or(derived).max(1);
        if fds < sous_http::FD_LIMIT_LOW {
            warn!(
                open_file_limit = fds,
                max_connections,
                "the open-file limit is low: each listener keeps at most {max_connections} \
                 connections; raise the hard limit (systemd: LimitNOFILE=, shell: ulimit -Hn) \
                 for more"
            );
        }
        if max_connections > derived {
            warn!(
                open_file_limit = fds,
                max_connections,
                "--max-connections {max_connections} leaves too few of the {fds} file \
                 descriptors for environments and the store under full load"
            );
        }
        sous_http::Limits {
            header_timeout: std::time::Duration::from_secs(self.header_timeout_secs),
            keep_alive_timeout: std::time::Duration::from_secs(self.keep_alive_timeout_secs),
            body_timeout: std::time::Duration::from_secs(self.body_timeout_secs),
            body_min_rate: self.body_min_rate,
            max_connections,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum IsolationArg {
    Full,
    None,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum NetworkArg {
    Outbound,
    None,
}

/// What `sous serve --help` says about isolation with and without root.
pub const ISOLATION_HELP: &str = "\
Isolation as root and rootless (--isolation full run by an ordinary user: needs unprivileged
user namespaces and a delegated cgroup tree; docs/SECURITY.md has the details):

  feature              as root                              rootless
  namespaces           mount, PID, IPC, UTS, network        the same, inside a user namespace
  function identity    uid 993 / gid 990, no other groups   uid 993 / gid 990 mapped onto Sous's
                                                            user; Sous's supplementary groups
                                                            stay (setgroups is denied)
  privileges           no capabilities, no_new_privs,       the same
                       seccomp filter
  root filesystem      pivot_root into read-only binds      the same (the host's device nodes
                                                            are bound, not created)
  cgroups (memory,     under /sys/fs/cgroup or              a delegated tree: the cgroups Sous
  CPU, pids, kill)     --cgroup-root                        runs in (v2: Delegate=yes; v1:
                                                            chown'ed to its user) or --cgroup-root
  /tmp                 an ext4 image of EphemeralStorage    a private directory in the data dir:
                       MB (loop mount)                      storage, but its size is NOT enforced
  outbound network     veth pair, NAT, nftables firewall    slirp4netns per environment (Debian:
                       (host and other environments         slirp4netns); refused: the host's
                       blocked; iptables only where         loopback and own addresses, link-
                       nf_tables is absent)                 local and the private ranges (DNS
                                                            excepted); other routed ranges reach
  --function-network   loopback only (the Runtime API)      the same
  none
  cgroup2              remounted with favordynmods          left as it is
";

/// The warning `sous serve` prints, once, when it starts with functions' network limited to
/// their loopback because outbound networking cannot be set up (and was not asked for).
const LOOPBACK_ONLY_WARNING: &str =
    "functions' network is limited to their own loopback: outbound networking cannot be set up";

/// The sandbox manager, or why `sous serve` refuses to run functions. Outbound networking
/// that cannot be set up is an error only when `--function-network outbound` was given;
/// otherwise functions get their loopback only, with one warning.
/// Sous's own API stays unreachable from functions (until IAM scopes their credentials):
/// a `--service-endpoint` that leads to it is refused.
fn refuse_own_api(
    endpoints: &sous_types::endpoints::ServiceEndpoints,
    api: SocketAddr,
) -> anyhow::Result<()> {
    use std::net::{IpAddr, ToSocketAddrs};
    let host_addresses = sous_sandbox::network::host_addresses();
    let local = |ip: IpAddr| {
        ip.is_loopback()
            || ip.is_unspecified()
            || matches!(ip, IpAddr::V4(v4) if host_addresses.contains(&v4))
    };
    for e in endpoints.iter().filter(|e| e.port == api.port()) {
        let host = e.host.trim_start_matches('[').trim_end_matches(']');
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, e.port)
                .to_socket_addrs()
                .map(|a| a.map(|a| a.ip()).collect())
                .unwrap_or_default(),
        };
        if ips.into_iter().any(|ip| {
            ip == api.ip() || (local(ip) && (api.ip().is_unspecified() || ip.is_unspecified()))
        }) {
            anyhow::bail!(
                "--service-endpoint {e}: that is Sous's own API ({api}), which functions may not \
                 reach; name the service's own endpoint"
            );
        }
    }
    Ok(())
}

fn sandbox(
    data_dir: &std::path::Path,
    args: &ServeArgs,
    service_addrs: Vec<SocketAddr>,
) -> anyhow::Result<(Sandbox, NetworkMode)> {
    let mut cfg = SandboxConfig::new(data_dir.join("sandbox"));
    cfg.service_addrs = service_addrs;
    cfg.cpu_cap = args.function_cpu_cap;
    cfg.cgroup_root = args.cgroup_root.clone();
    cfg.network = match args.function_network {
        Some(NetworkArg::Outbound) | None => NetworkMode::Outbound,
        Some(NetworkArg::None) => NetworkMode::None,
    };
    if let IsolationArg::None = args.isolation {
        cfg.isolation = Isolation::None;
        warn!("--isolation none: functions run as plain processes of this user, not isolated from the host or each other");
    }
    let first = match &args.test_outbound_unavailable {
        Some(reason) if cfg.network == NetworkMode::Outbound => {
            Err(SandboxError::Outbound(reason.clone()))
        }
        _ => Sandbox::new(cfg.clone()),
    };
    let sandbox = match first {
        Err(SandboxError::Outbound(reason)) if args.function_network.is_none() => {
            warn!(
                "{LOOPBACK_ONLY_WARNING}: {reason}. Fix that and restart for outbound access \
                 (or pass --function-network none to choose loopback only)"
            );
            cfg.network = NetworkMode::None;
            Sandbox::new(cfg.clone())
        }
        Err(SandboxError::Outbound(reason)) => {
            anyhow::bail!(
                "--function-network outbound was asked for, but outbound networking cannot be \
                 set up on this host: {reason}. Fix that, or pass --function-network none \
                 (functions get their own loopback only)"
            )
        }
        other => other,
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "execution environments cannot be isolated on this host: {e}. \
             Run as root on Linux with cgroups, or as a user with unprivileged user namespaces \
             and a delegated cgroup tree (see `sous serve --help`), or pass --isolation none \
             to run functions unisolated"
        )
    })?;
    let cfg_network = cfg.network;
    if sandbox
        .outbound_firewall()
        .is_some_and(|f| f.starts_with("nftables"))
    {
        forward_policy_warning();
    }
    if sandbox.is_rootless() {
        info!(
            cgroups = ?sandbox.cgroup_version(),
            "isolation: rootless (user namespaces, delegated cgroups; see `sous serve --help` for what differs from root)"
        );
    }
    for w in sandbox.warnings() {
        warn!("{w}");
    }
    Ok((sandbox, cfg_network))
}

/// Warn when another table's forward chain drops by policy what Sous's table lets through
/// (nftables: an accept ends only its own chain), e.g. Docker's `FORWARD` policy drop.
fn forward_policy_warning() {
    match sous_sandbox::network::nft::forward_drop_policies() {
        Ok(chains) if !chains.is_empty() => warn!(
            "outbound networking: the host's forward chain(s) {} drop forwarded packets by \
             policy, so functions' outbound connections will fail; accept the environments' \
             traffic there (Docker: iptables -I DOCKER-USER -i sous+ -j ACCEPT; iptables -I \
             DOCKER-USER -o sous+ -j ACCEPT; Sous's own table still drops what it must)",
            chains.join(", ")
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "could not list the host's nftables chains"),
    }
}

/// The one line that says, at start-up, what invocations will get.
fn readiness(sandbox: &Sandbox, network: NetworkMode, runtimes: &[&str]) -> String {
    let isolation = match (sandbox.isolation(), sandbox.is_rootless()) {
        (Isolation::None, _) => "none (plain processes)",
        (Isolation::Full, true) => "full, rootless",
        (Isolation::Full, false) => "full, as root",
    };
    let network = match (network, sandbox.outbound_firewall()) {
        (NetworkMode::None, _) => "loopback only".to_string(),
        (NetworkMode::Outbound, Some(fw)) => format!("outbound (NAT and firewall: {fw})"),
        (NetworkMode::Outbound, None) if sandbox.is_rootless() => {
            "outbound (slirp4netns)".to_string()
        }
        (NetworkMode::Outbound, None) => "outbound (not isolated)".to_string(),
    };
    let checked = match sandbox.isolation() {
        Isolation::Full => "start-up check passed (an environment ran and wrote to its /tmp)",
        Isolation::None => "nothing to check without isolation",
    };
    format!(
        "ready: isolation {isolation}; functions' network {network}; runtimes {}; {checked}",
        runtimes.join(", ")
    )
}

/// How long the start-up check's environment may take to run its command.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The start-up check: one execution environment made and run as an invocation's would be
/// (cgroup, namespaces, network with its veth when outbound, the read-only root, a /tmp of the
/// default EphemeralStorage), running a shell that writes to its /tmp. What fails here would
/// fail every invocation, so `sous serve` stops with the reason instead. Without isolation
/// there is nothing to check.
fn check_environment(sandbox: &Sandbox, data_dir: &std::path::Path) -> anyhow::Result<()> {
    if sandbox.isolation() == Isolation::None {
        return Ok(());
    }
    let task_dir = data_dir.join("sandbox").join("startup-check");
    std::fs::create_dir_all(&task_dir).with_context(|| format!("create {}", task_dir.display()))?;
    let spec = EnvSandboxSpec {
        id: "startup-check".into(),
        memory_mb: 128,
        ephemeral_mb: sous_sandbox::storage::DEFAULT_EPHEMERAL_MB,
        task_dir,
        runtime_dir: None,
        opt_dir: None,
        host_paths: Vec::new(),
        hostname: "startup-check".into(),
    };
    // The pool makes its first init and /tmp in the background: take those (a /tmp made here
    // at the same time as the pool's first would format the same template twice at once).
    let deadline = std::time::Instant::now() + CHECK_TIMEOUT;
    while sandbox.pool_status().0 == 0 || sandbox.pool_status().1 == 0 {
        if std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut env = sandbox
        .prepare(&spec)
        .context("prepare an execution environment")?;
    // Close-on-exec: no process another thread starts meanwhile may hold the write end.
    let (out_rd, out_wr) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("make a pipe")?;
    let err_wr = out_wr.try_clone().context("make a pipe")?;
    let args = [
        "-c".to_string(),
        "echo ok > /tmp/.sous-check && cat /tmp/.sous-check && rm /tmp/.sous-check".to_string(),
    ];
    let env_vars = [("PATH".to_string(), "/usr/bin:/bin".to_string())];
    let mut child = env
        .start(Launch {
            program: std::path::Path::new("/bin/sh"),
            args: &args,
            env: &env_vars,
            cwd: std::path::Path::new("/tmp"),
            stdout: out_wr,
            stderr: err_wr,
            telemetry: None,
            runtime_api: None,
        })
        .context("start a program in it")?;
    let deadline = std::time::Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait().context("wait for it")? {
            Some(status) => break status,
            None if std::time::Instant::now() > deadline => {
                let _ = env.kill_all();
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("its program did not finish in {CHECK_TIMEOUT:?}");
            }
            None => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    };
    let _ = env.kill_all();
    let destroyed = env.destroy();
    let mut output = String::new();
    let _ = std::io::Read::read_to_string(&mut std::fs::File::from(out_rd), &mut output);
    if !status.success() || output.trim() != "ok" {
        anyhow::bail!(
            "its program (/bin/sh writing to /tmp) failed: {status}: {}",
            output.trim()
        );
    }
    destroyed.context("tear it down")?;
    Ok(())
}

/// The data dir from the flag, else `$XDG_DATA_HOME/sous`, else `~/.local/share/sous`.
pub fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(d) = flag {
        return Ok(d);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(x).join("sous"));
    }
    let home = std::env::var_os("HOME").context("no --data-dir, XDG_DATA_HOME or HOME")?;
    Ok(PathBuf::from(home).join(".local/share/sous"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let data_dir = data_dir(args.data_dir.clone())?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("create data dir {}", data_dir.display()))?;
    let (creds, origin) = credentials::load(&data_dir)?;
    match origin {
        Origin::Environment => info!("credentials: access key from SOUS_ACCESS_KEY_ID"),
        Origin::File => info!(
            "credentials: profile [{}] of {}",
            credentials::PROFILE,
            data_dir.join("credentials").display()
        ),
        Origin::Generated => info!(
            "credentials: generated a key pair into {} (profile [{}]); use it with AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={}",
            data_dir.join("credentials").display(),
            credentials::PROFILE,
            data_dir.join("credentials").display(),
            credentials::PROFILE
        ),
    }

    let service_endpoints = args.service_endpoints();
    let services = Arc::new(
        sous_worker::services::ServiceAccess::new(&service_endpoints)
            .map_err(anyhow::Error::msg)?,
    );
    for (service, inside, url) in services.describe() {
        info!(%service, %url, functions_use = %inside, "service endpoint");
    }
    let s3_code = s3_code(&service_endpoints, &creds, &args.region)?;

    let store = Arc::new(
        Store::open(&data_dir).with_context(|| format!("open store in {}", data_dir.display()))?,
    );
    let (sandbox, network) = sandbox(&data_dir, &args, services.listen_addrs())?;
    tokio::task::block_in_place(|| check_environment(&sandbox, &data_dir)).context(
        "start-up check: an execution environment does not work on this host, so no \
         function could run",
    )?;
    let sandbox = Arc::new(sandbox);
    let ready_sandbox = sandbox.clone();
    let memory = MemoryBudget::from_settings(args.host_memory_mb, args.memory_headroom_mb)
        .context("read the host's memory (or pass --host-memory-mb)")?;
    info!(
        host_mb = memory.host_mb,
        headroom_mb = memory.headroom_mb,
        capacity_mb = memory.capacity_mb(),
        account_concurrency = args.account_concurrency,
        idle_timeout_secs = args.idle_timeout_secs,
        "capacity"
    );
    let pool = Pool::new(PoolConfig {
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs),
        account_concurrency: args.account_concurrency,
        memory,
        sandbox,
        services,
        ..PoolConfig::new(data_dir.clone(), !args.no_echo_logs)
    })
    .context("prepare execution environments")?;
    let scope = Scope::new(args.region.clone(), args.account_id.clone());
    let runtimes = Arc::new(Catalog::detect(&data_dir).context("prepare managed runtimes")?);
    info!(runtimes = %runtimes.available().join(", "), "runtimes this host serves");
    install_bundled_sdks(&runtimes);
    info!(
        "{}",
        readiness(&ready_sandbox, network, &runtimes.available())
    );
    drop(ready_sandbox);
    let invoker = Arc::new(Invoker::new(
        store.clone(),
        pool.clone(),
        runtimes,
        scope.clone(),
    ));
    match invoker.restore() {
        Ok(0) => {}
        Ok(n) => info!(configurations = n, "provisioned concurrency restored"),
        Err(e) => warn!(error = %e, "restore concurrency settings"),
    }
    // Deliver the asynchronous invocation queue (events left by an earlier run are due now).
    let delivery = tokio::spawn(sous_invoke::queue::run(
        invoker.clone(),
        sous_invoke::queue::DeliverySettings {
            retry_base: std::time::Duration::from_millis(args.retry_base_delay_ms),
            ..Default::default()
        },
    ));
    // Fire scheduled rules (EventBridge); firings missed while stopped are skipped.
    let schedules = tokio::spawn(sous_events::schedule::run(
        store.clone(),
        invoker.clone(),
        scope.clone(),
        sous_events::schedule::ScheduleSettings {
            allow_seconds: args.schedule_seconds,
            ..Default::default()
        },
    ));
    match store.queue_stats() {
        Ok(q) if q.depth > 0 => info!(
            events = q.depth,
            "asynchronous invocations queued from an earlier run"
        ),
        Ok(_) => {}
        Err(e) => warn!(error = %e, "read the asynchronous invocation queue"),
    }
    let limits = args.connection_limits();
    let listener = tokio::net::TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("listen on {}", args.api_addr))?;
    let api_addr = listener.local_addr().context("api address")?;
    refuse_own_api(&service_endpoints, api_addr)?;
    let gateway_listener = tokio::net::TcpListener::bind(args.gateway_addr)
        .await
        .with_context(|| format!("listen on {} (the HTTP front door)", args.gateway_addr))?;
    let gateway_addr =
        loopback_if_unspecified(gateway_listener.local_addr().context("gateway address")?);
    let gateway_state = Arc::new(sous_events::gateway::GatewayState {
        store: store.clone(),
        invoker: invoker.clone(),
        scope: scope.clone(),
        credentials: creds.clone(),
    });
    let state = Arc::new(ApiState {
        store,
        invoker,
        scope,
        credentials: creds,
        public_url: format!("http://{api_addr}"),
        gateway_url: format!("http://{gateway_addr}"),
        schedule_seconds: args.schedule_seconds,
        s3_code,
    });
    println!("sous: HTTP front door listening on http://{gateway_addr} (function URLs: /lambda-url/<url-id>/, HTTP APIs: /execute-api/<api-id>/)");
    let (stop_gateway, mut gateway_stopped) = tokio::sync::watch::channel(false);
    let gateway = tokio::spawn(sous_events::gateway::serve(
        gateway_listener,
        gateway_state,
        limits,
        async move {
            let _ = gateway_stopped.changed().await;
        },
    ));
    println!(
        "sous: Lambda API listening on http://{api_addr} (region {}, account {})",
        args.region, args.account_id
    );

    let stopping = pool.clone();
    let shutdown = async move {
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
        sous_sandbox::forced_stop::stop_phase("signal");
        // Stop the environments first: invocations in flight then end (Runtime.ExitError)
        // instead of holding the API's graceful drain open for up to their timeout.
        stopping.shutdown();
        let _ = stop_gateway.send(true);
    };
    sous_api::resume_pending_creations(&state);
    let result = sous_api::serve(listener, state, limits, shutdown).await;
    // Events being delivered stay queued and run again on the next start (at least once).
    delivery.abort();
    schedules.abort();
    pool.shutdown();
    result.context("serve the Lambda API")?;
    match gateway.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "the HTTP front door stopped with an error"),
        Err(e) => warn!(error = %e, "the HTTP front door task failed"),
    }
    info!("stopped");
    Ok(())
}

/// Where code given as S3Bucket/S3Key comes from: the `s3` service endpoint, signed for with
/// the S3 key pair (`credentials::s3`).
fn s3_code(
    endpoints: &sous_types::endpoints::ServiceEndpoints,
    admin: &sous_api::sigv4::Credentials,
    region: &str,
) -> anyhow::Result<Option<sous_api::s3_code::S3Code>> {
    let Some(endpoint) = endpoints.get("s3") else {
        return Ok(None);
    };
    let (creds, from_env) = credentials::s3(admin)?;
    let s3 = sous_api::s3_code::S3Code::new(endpoint.clone(), creds, region);
    match s3.unusable() {
        Some(why) => warn!(url = %s3.url(), "code from S3 is not available: {why}"),
        None => info!(
            url = %s3.url(),
            signed_with = if from_env { "SOUS_S3_ACCESS_KEY_ID" } else { "the admin key pair" },
            "code from S3 (S3Bucket/S3Key) is fetched from this endpoint"
        ),
    }
    Ok(Some(s3))
}

/// The address a client on this machine uses to reach a listener bound to `addr`
/// (`0.0.0.0:3000` is reached at `127.0.0.1:3000`).
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// Installs, each in a thread of its own, the bundled SDKs (boto3, the AWS SDK for JavaScript
/// v3) of the served runtimes that are not installed yet (`sous_runtimes::sdk`); start-up does
/// not wait. A function whose environment starts before its SDK is ready does not see it; an
/// unreachable registry only costs a warning.
fn install_bundled_sdks(runtimes: &Catalog) {
    for sdk in runtimes.bundled_sdks() {
        if sdk.ready().is_some() {
            continue;
        }
        info!(
            runtime = sdk.bundle.runtime,
            "bundled SDK ({}) not installed yet: installing it in the background; functions \
             started before it is ready run without it",
            sdk.bundle.label
        );
        let spawned = std::thread::Builder::new()
            .name(format!("sdk-{}", sdk.bundle.runtime))
            .spawn(move || sdk.install_and_show(sous_runtimes::sdk::Output::Log));
        if let Err(e) = spawned {
            warn!("bundled SDK install not started: {e}");
        }
    }
}
