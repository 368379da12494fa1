//! AWS-compatible engines the tests start themselves, each on a free loopback port and
//! stopped when dropped: moto's server mode (from PyPI, installed into `.venv` by `cargo
//! xtask setup`), which serves S3, DynamoDB and the other services moto models on one port.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo_root;

/// How long an engine may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The credentials tests use against an engine (moto accepts any).
pub const ENGINE_ACCESS_KEY_ID: &str = "testing";
pub const ENGINE_SECRET_ACCESS_KEY: &str = "testing";

/// A moto server (`moto_server -H 127.0.0.1 -p PORT`), killed on drop.
pub struct Moto {
    child: Child,
    pub addr: SocketAddr,
}

impl Moto {
    /// `$SOUS_TEST_MOTO_SERVER`, else the checkout's `.venv/bin/moto_server`.
    pub fn binary() -> PathBuf {
        let path = std::env::var_os("SOUS_TEST_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/bin/moto_server"));
        assert!(
            path.exists(),
            "moto's server is not at {}: run `cargo xtask setup` (it installs moto[server] into \
             .venv), or set SOUS_TEST_MOTO_SERVER",
            path.display()
        );
        path
    }

    /// Start one on a free loopback port and wait until it accepts connections.
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(Self::binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { child, addr };
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited before listening: {status}");
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "moto_server did not listen on {addr} within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The AWS CLI against this engine, with the engine's test credentials.
    pub fn aws(&self, args: &[&str]) -> std::process::Output {
        Command::new(super::aws_cli())
            .arg("--endpoint-url")
            .arg(self.url())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", ENGINE_ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ENGINE_SECRET_ACCESS_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run the AWS CLI")
    }

    /// Like [`Moto::aws`], and the command must succeed.
    pub fn aws_ok(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {args:?} against moto failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
