//! AWS-compatible services reachable from functions (`sous serve --service-endpoint
//! SERVICE=URL`): what each environment is told (`AWS_ENDPOINT_URL_<SERVICE>` and Lambda's
//! credential variables) and the forwarders that make exactly those endpoints reachable.
//!
//! A sandboxed function cannot reach the host (its loopback included: docs/SECURITY.md). For
//! each distinct endpoint target (`host:port`; `dynamodb` and `s3` on one moto port share
//! one) every environment's network namespace has a listener on its own loopback, made with
//! the Runtime API's (`sous-sandbox`: [`sous_sandbox::SandboxConfig::service_addrs`]; as
//! root Sous binds it inside the namespace, rootless the init binds it and hands it back).
//! Sous accepts on it from the host side and relays each connection byte for byte to the
//! real endpoint ([`forward`]): no firewall change, the same as root and rootless, and
//! nothing else of the host becomes reachable. The relays are bounded per environment
//! ([`MAX_CONNECTIONS`]) and end with it.
//!
//! Inside address: a 127.x.y.z endpoint is listened for at the same address and port, so the
//! URL the function gets is the configured one, byte for byte (and so is the `Host` header
//! its SDK signs). Any other endpoint (a name, another address) is listened for at
//! 127.0.0.1 and its port; a port that is taken (the Runtime API's 9001, or another target's)
//! is replaced by a free one from [`FALLBACK_PORTS`]. The URL then names 127.0.0.1.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use sous_types::endpoints::{ServiceEndpoint, ServiceEndpoints};

/// Connections one environment may have open through its forwarders at once; further ones
/// wait in the listener's backlog until one closes.
pub const MAX_CONNECTIONS: usize = 128;
/// How long a forwarder tries to connect to the real endpoint before it gives up (and closes
/// the function's connection).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where inside ports come from when an endpoint's own port is taken.
pub const FALLBACK_PORTS: std::ops::RangeInclusive<u16> = 9002..=9099;

/// One endpoint target and where environments reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    /// The host as the forwarder connects to it (brackets of an IPv6 literal removed).
    host: String,
    port: u16,
    /// The listener's address inside every environment's network namespace.
    inside: SocketAddr,
    /// The services it serves, for the log.
    services: Vec<String>,
}

/// The configured endpoints, where environments reach them, and the key their credentials
/// are derived from. Made once at start-up.
pub struct ServiceAccess {
    endpoints: Vec<(ServiceEndpoint, usize)>,
    routes: Vec<Route>,
    /// Random per server start: functions' credentials are derived from it.
    key: [u8; 32],
}

impl std::fmt::Debug for ServiceAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccess")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Default for ServiceAccess {
    fn default() -> Self {
        ServiceAccess::new(&ServiceEndpoints::default()).expect("no endpoints")
    }
}

impl ServiceAccess {
    /// Plan the listeners of `endpoints`. Fails when there are more distinct targets than an
    /// environment can hold listeners for, or no free inside port is left.
    pub fn new(endpoints: &ServiceEndpoints) -> Result<ServiceAccess, String> {
        let mut routes: Vec<Route> = Vec::new();
        let mut taken: HashSet<SocketAddr> = HashSet::from([sous_sandbox::RUNTIME_API_ADDR]);
        let mut out = Vec::new();
        let mut fallback = FALLBACK_PORTS;
        for e in endpoints.iter() {
            let host = e.host.trim_start_matches('[').trim_end_matches(']');
            if let Some(i) = routes
                .iter()
                .position(|r| r.host.eq_ignore_ascii_case(host) && r.port == e.port)
            {
                routes[i].services.push(e.service.clone());
                out.push((e.clone(), i));
                continue;
            }
            if routes.len() == sous_sandbox::MAX_SERVICE_LISTENERS {
                return Err(format!(
                    "--service-endpoint: at most {} distinct host:port targets",
                    sous_sandbox::MAX_SERVICE_LISTENERS
                ));
            }
            let preferred = match host.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) if ip.is_loopback() => SocketAddr::from((ip, e.port)),
                _ => SocketAddr::from((Ipv4Addr::LOCALHOST, e.port)),
            };
            let inside = if taken.contains(&preferred) {
                fallback
                    .by_ref()
                    .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
                    .find(|a| !taken.contains(a))
                    .ok_or_else(|| {
                        "--service-endpoint: no free port left for a forwarder".to_string()
                    })?
            } else {
                preferred
            };
            taken.insert(inside);
            routes.push(Route {
                host: host.to_string(),
                port: e.port,
                inside,
                services: vec![e.service.clone()],
            });
            out.push((e.clone(), routes.len() - 1));
        }
        Ok(ServiceAccess {
            endpoints: out,
            routes,
            key: rand::random(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The loopback addresses every environment's network namespace listens on, in the
    /// order [`ServiceAccess::forward`] expects their listeners.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.routes.iter().map(|r| r.inside).collect()
    }

    /// `(service, url the functions get, target)` of each configured endpoint, for the log.
    pub fn describe(&self) -> Vec<(String, String, String)> {
        self.endpoints
            .iter()
            .map(|(e, i)| (e.service.clone(), self.inside_url(e, *i), e.url()))
            .collect()
    }

    fn inside_url(&self, e: &ServiceEndpoint, route: usize) -> String {
        format!("{}://{}", e.scheme, self.routes[route].inside)
    }

    /// The variables an environment of `function` gets: `AWS_ENDPOINT_URL_<SERVICE>` of each
    /// endpoint (the forwarder's address inside the sandbox; the endpoint itself when
    /// `isolated` is false, as the function then runs on the host), and the credentials
    /// ([`Credentials::for_function`]).
    pub fn variables(&self, function: &str, isolated: bool) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .endpoints
            .iter()
            .map(|(e, i)| {
                let url = match isolated {
                    true => self.inside_url(e, *i),
                    false => e.url(),
                };
                (e.env_var(), url)
            })
            .collect();
        vars.extend(self.credentials(function).variables());
        vars
    }

    /// The credentials of `function`'s environments for this server run.
    pub fn credentials(&self, function: &str) -> Credentials {
        Credentials::derive(&self.key, function)
    }

    /// Start one forwarder per listener (in [`ServiceAccess::listen_addrs`]'s order, as the
    /// sandbox hands them over) on the current Tokio runtime. They stop when the returned
    /// value is dropped, with every connection they relay.
    pub fn forward(&self, listeners: Vec<std::net::TcpListener>) -> std::io::Result<Forwarders> {
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut forwarders = Forwarders::default();
        for (listener, route) in listeners.into_iter().zip(&self.routes) {
            listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(listener)?;
            let target = Arc::new(Target {
                host: route.host.clone(),
                port: route.port,
                services: route.services.join(","),
                warned: std::sync::Mutex::new(None),
            });
            forwarders
                .tasks
                .push(tokio::spawn(serve(listener, target, permits.clone())));
        }
        Ok(forwarders)
    }
}

/// The running forwarders of one environment; dropping it stops them and closes their
/// connections.
#[derive(Debug, Default)]
pub struct Forwarders {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where a forwarder connects.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    services: String,
    /// When this forwarder last logged a failed connect: a function connecting in a loop to
    /// an endpoint that is down gets one warning per [`WARN_EVERY`], not one per attempt.
    warned: std::sync::Mutex<Option<std::time::Instant>>,
}

/// At most one "endpoint unreachable" warning per forwarder this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Target {
    fn unreachable(&self, why: &str) {
        let now = std::time::Instant::now();
        let mut last = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            debug!(services = %self.services, host = %self.host, port = self.port, why,
                "service endpoint unreachable");
            return;
        }
        *last = Some(now);
        warn!(services = %self.services, host = %self.host, port = self.port, why,
            "service endpoint unreachable: a function's connection to it was closed");
    }
}

/// Accept connections (one [`MAX_CONNECTIONS`] permit each) and relay them. The relays live
/// in a `JoinSet`, so aborting this task aborts them too.
async fn serve(listener: TcpListener, target: Arc<Target>, permits: Arc<Semaphore>) {
    let mut relays = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = relays.join_next(), if !relays.is_empty() => {}
            accepted = accept(&listener, &permits) => match accepted {
                Some((stream, permit)) => {
                    relays.spawn(relay(stream, target.clone(), permit));
                }
                // Out of descriptors or the like: a pause, rather than a busy loop.
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
}

async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(e) => {
            warn!(error = %e, "service endpoint forwarder: accept");
            None
        }
    }
}

/// Relay one connection to the endpoint, byte for byte, until both sides have closed.
async fn relay(
    mut inside: TcpStream,
    target: Arc<Target>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let connect = TcpStream::connect((target.host.as_str(), target.port));
    let mut outside = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return target.unreachable(&e.to_string()),
        Err(_) => return target.unreachable(&format!("no connection within {CONNECT_TIMEOUT:?}")),
    };
    let _ = inside.set_nodelay(true);
    let _ = outside.set_nodelay(true);
    match tokio::io::copy_bidirectional(&mut inside, &mut outside).await {
        Ok((up, down)) => {
            debug!(services = %target.services, up, down, "forwarded connection closed")
        }
        Err(e) => debug!(services = %target.services, error = %e, "forwarded connection ended"),
    }
}

/// The credentials an environment gets in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN`, as Lambda sets an execution role's. Until Sous has IAM they are
/// derived from the function's name and a key drawn at each server start: the same for
/// every environment of a function during one run, different for another function or after
/// a restart, and accepted by nothing of Sous's (docs/SECURITY.md, "Service endpoints").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `ASIA` and 16 characters of A-Z2-7, the shape of a temporary key id.
    pub access_key_id: String,
    /// 40 characters of base64, the shape of a secret access key.
    pub secret_access_key: String,
    pub session_token: String,
}

impl Credentials {
    fn derive(key: &[u8; 32], function: &str) -> Credentials {
        let mac = |what: &str| {
            let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            m.update(what.as_bytes());
            m.update(&[0]);
            m.update(function.as_bytes());
            m.finalize().into_bytes()
        };
        const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let id = mac("access key id");
        let access_key_id = std::iter::once("ASIA".to_string())
            .chain(
                id.iter()
                    .take(16)
                    .map(|b| (BASE32[(b & 31) as usize] as char).to_string()),
            )
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD;
        let secret_access_key = b64.encode(&mac("secret access key")[..30]);
        let mut token = mac("session token").to_vec();
        token.extend_from_slice(&mac("session token 2"));
        Credentials {
            access_key_id,
            secret_access_key,
            session_token: b64.encode(token),
        }
    }

    pub fn variables(&self) -> [(String, String); 3] {
        [
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
            ("AWS_SESSION_TOKEN".into(), self.session_token.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(specs: &[&str]) -> ServiceAccess {
        ServiceAccess::new(&ServiceEndpoints::new(
            specs.iter().map(|s| s.parse::<ServiceEndpoint>().unwrap()),
        ))
        .unwrap()
    }

    fn var<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_loopback_endpoint_keeps_its_url_and_services_on_one_port_share_a_listener() {
        let a = access(&["dynamodb=http://127.0.0.1:5000", "s3=http://127.0.0.1:5000"]);
        assert_eq!(a.listen_addrs(), vec!["127.0.0.1:5000".parse().unwrap()]);
        let vars = a.variables("f", true);
        assert_eq!(
            var(&vars, "AWS_ENDPOINT_URL_DYNAMODB"),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            var(&vars, "AWS_ENDPOINT_URL_S3"),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn names_and_taken_ports_get_127_0_0_1_and_a_free_port() {
        let a = access(&[
            "dynamodb=http://dynamo.internal:9001",
            "s3=https://store.example",
            "sqs=http://127.0.0.2:443",
            "sns=http://[::1]:443",
        ]);
        let addrs: Vec<String> = a.listen_addrs().iter().map(|a| a.to_string()).collect();
        // 9001 is the Runtime API's; 443 at 127.0.0.1 is the s3 name's, so ::1's moves too.
        assert_eq!(
            addrs,
            vec![
                "127.0.0.1:9002",
                "127.0.0.1:443",
                "127.0.0.2:443",
                "127.0.0.1:9003"
            ]
        );
        let vars = a.variables("f", true);
        assert_eq!(
            var(&vars, "AWS_ENDPOINT_URL_DYNAMODB"),
            Some("http://127.0.0.1:9002")
        );
        assert_eq!(
            var(&vars, "AWS_ENDPOINT_URL_S3"),
            Some("https://127.0.0.1:443")
        );
        assert_eq!(
            var(&vars, "AWS_ENDPOINT_URL_SNS"),
            Some("http://127.0.0.1:9003")
        );
        assert_eq!(a.routes[3].host, "::1");
        // Unisolated functions run on the host: the endpoints themselves.
        let vars = a.variables("f", false);
        assert_eq!(
            var(&vars, "AWS_ENDPOINT_URL_DYNAMODB"),
            Some("http://dynamo.internal:9001")
        );
    }

    #[test]
    fn too_many_targets_are_refused() {
        let specs: Vec<String> = (0..=sous_sandbox::MAX_SERVICE_LISTENERS)
            .map(|i| format!("s{i}=http://127.0.0.1:{}", 20000 + i))
            .collect();
        let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
        assert!(ServiceAccess::new(&ServiceEndpoints::new(
            refs.iter().map(|s| s.parse::<ServiceEndpoint>().unwrap())
        ))
        .is_err());
    }

    #[test]
    fn credentials_are_per_function_and_per_server_start_and_look_like_aws_ones() {
        let a = access(&[]);
        let f = a.credentials("f");
        assert_eq!(f, a.credentials("f"));
        assert_ne!(f, a.credentials("g"));
        assert_ne!(f, access(&[]).credentials("f"));
        assert_eq!(f.access_key_id.len(), 20);
        assert!(f.access_key_id.starts_with("ASIA"));
        assert!(f
            .access_key_id
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
        assert_eq!(f.secret_access_key.len(), 40);
        assert!(!f.session_token.is_empty());
        // Set even with no endpoint configured, as Lambda always sets them.
        let vars = a.variables("f", true);
        assert_eq!(vars.len(), 3);
        assert_eq!(
            var(&vars, "AWS_SESSION_TOKEN"),
            Some(f.session_token.as_str())
        );
    }

    #[tokio::test]
    async fn a_connection_to_an_endpoint_that_is_down_is_closed() {
        use tokio::io::AsyncReadExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let a = access(&[&format!("s3=http://127.0.0.1:{port}")]);
        let inside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inside_addr = inside.local_addr().unwrap();
        let _fw = a.forward(vec![inside]).unwrap();
        for _ in 0..3 {
            let mut c = TcpStream::connect(inside_addr).await.unwrap();
            let mut buf = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
                .await
                .expect("closed at once")
                .unwrap_or(0);
            assert_eq!(n, 0);
        }
    }

    #[tokio::test]
    async fn a_forwarder_relays_bytes_both_ways_and_stops_when_dropped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        let echo = tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let a = access(&[&format!("dynamodb=http://127.0.0.1:{port}")]);
        // Here the "inside" listener is on the host, at a free port.
        let inside = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inside_addr = inside.local_addr().unwrap();
        let fw = a.forward(vec![inside]).unwrap();
        let mut c = TcpStream::connect(inside_addr).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        echo.await.unwrap();
        drop(fw);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(inside_addr).await.is_err());
    }
}
