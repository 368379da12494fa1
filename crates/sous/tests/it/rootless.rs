//! Rootless isolation (issue 4: "user namespaces where the host allows"): the real `sous
//! serve` run by an ordinary user, attacked from inside as in `sandbox.rs`.
//!
//! The test itself must run as root (CI does): it plays the administrator who delegates a
//! cgroup tree to a test user (uid/gid 64123, no passwd entry needed), then starts `sous serve`
//! as that user inside the tree (`common::RunAs`: a shell moves itself into the cgroups, then
//! `setpriv` drops to the user with no supplementary groups). Everything below must then hold
//! without any privilege: user, mount, PID, IPC, UTS and network namespaces, uid 993 / gid 990
//! inside, limits through the delegated cgroups, a private `/tmp`, the Runtime API in the
//! environment's own network namespace and outbound networking through slirp4netns. Tests
//! that need root fail loudly without it.
//!
//! The outbound tests talk only to a test host (a network namespace the test makes, see
//! `common::attack::TestHost`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::common::attack::*;
use crate::common::*;

/// The unprivileged user Sous runs as.
const TEST_UID: u32 = 64123;
const TEST_GID: u32 = 64123;

pub(crate) fn require_root() {
    assert_eq!(
        sous_sandbox::syscalls::geteuid(),
        0,
        "the rootless isolation tests must run as root: they delegate a cgroup tree to a test \
         user and start `sous serve` as that user; run `cargo test -p sous --test it rootless::` \
         as root"
    );
}

/// A cgroup tree delegated to [`TEST_UID`], as an administrator would: on cgroup v1 a child
/// of the test's own cgroup in each hierarchy Sous uses, chown'ed with its files; on v2 a
/// child of the root with the controllers enabled, the directory and its `cgroup.procs`,
/// `cgroup.threads` and `cgroup.subtree_control` chown'ed (the kernel's delegation rules).
/// Removed (bottom-up) on drop, after the server that lived in it.
pub(crate) struct Delegation {
    dirs: Vec<PathBuf>,
}

impl Delegation {
    pub(crate) fn new() -> Delegation {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sous-rootless-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let root = Path::new("/sys/fs/cgroup");
        let mut dirs = Vec::new();
        if root.join("cgroup.controllers").is_file() {
            let available = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap();
            let enabled =
                std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
            for c in ["memory", "pids", "cpu"] {
                let on = |t: &str| t.split_whitespace().any(|a| a == c);
                if on(&available) && !on(&enabled) {
                    undo_at_exit(|u| u.controllers.push(c.to_string()));
                    let _ = std::fs::write(root.join("cgroup.subtree_control"), format!("+{c}"));
                }
            }
            let dir = root.join(&name);
            std::fs::create_dir(&dir).unwrap();
            for f in [
                "",
                "cgroup.procs",
                "cgroup.threads",
                "cgroup.subtree_control",
            ] {
                chown(&dir.join(f));
            }
            dirs.push(dir);
        } else {
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
            for c in ["memory", "pids", "freezer", "cpu"] {
                let base = root.join(c);
                if !base.is_dir() {
                    continue;
                }
                let path = own
                    .lines()
                    .filter_map(|l| {
                        let mut f = l.splitn(3, ':');
                        Some((f.nth(1)?, f.next()?))
                    })
                    .find(|(ctrls, _)| ctrls.split(',').any(|x| x == c))
                    .map(|(_, p)| p.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                let dir = base.join(path).join(&name);
                std::fs::create_dir(&dir)
                    .unwrap_or_else(|e| panic!("delegate {}: {e}", dir.display()));
                chown(&dir);
                for f in std::fs::read_dir(&dir).unwrap().flatten() {
                    chown(&f.path());
                }
                dirs.push(dir);
            }
        }
        Delegation { dirs }
    }

    /// The `cgroup.procs` files to start the server in.
    fn procs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Environment cgroups Sous made in the tree and has not removed.
    fn environment_cgroups(&self) -> Vec<String> {
        let mut out = Vec::new();
        for d in &self.dirs {
            for e in std::fs::read_dir(d.join("sous"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if e.path().is_dir() {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out
    }
}

fn chown(p: &Path) {
    std::os::unix::fs::chown(p, Some(TEST_UID), Some(TEST_GID))
        .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
}

/// rmdir a cgroup and its children, deepest first.
fn remove_cgroup(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path());
        }
    }
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => return,
        }
    }
}

impl Drop for Delegation {
    fn drop(&mut self) {
        for d in &self.dirs {
            remove_cgroup(d);
        }
    }
}

/// Rootless outbound networking needs `/dev/net/tun` usable by the user, as the usual
/// distributions' udev rules make it (mode 0666); a machine without those rules gets the
/// same mode here, as its administrator would give it, and its own mode back when the test
/// process exits ([`undo_at_exit`]).
fn tun_usable_by_users() {
    use std::os::unix::fs::PermissionsExt;
    let tun = Path::new(sous_sandbox::network::TUN_DEVICE);
    let mode = std::fs::metadata(tun)
        .unwrap_or_else(|e| panic!("{}: {e}", tun.display()))
        .permissions()
        .mode();
    if mode & 0o006 != 0o006 {
        undo_at_exit(|u| {
            u.tun_mode.get_or_insert(mode & 0o7777);
        });
        std::fs::set_permissions(tun, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
}

/// What the tests changed on the host, undone when the test process exits.
#[derive(Default)]
struct HostChanges {
    /// `/dev/net/tun`'s mode before [`tun_usable_by_users`].
    tun_mode: Option<u32>,
    /// The directory of [`user_binary`]'s link.
    bin_dir: Option<PathBuf>,
    /// Controllers the tests enabled in the root cgroup's `cgroup.subtree_control`.
    controllers: Vec<String>,
}

static HOST_CHANGES: std::sync::Mutex<Option<HostChanges>> = std::sync::Mutex::new(None);

/// Record a change (`f`) to undo when the process exits (the test harness returns from
/// main or calls exit: atexit handlers run either way).
fn undo_at_exit(f: impl FnOnce(&mut HostChanges)) {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        sous_sandbox::syscalls::at_exit(undo_host_changes).expect("register the undo at exit");
    });
    let mut g = HOST_CHANGES.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(HostChanges::default));
}

extern "C" fn undo_host_changes() {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::panic::catch_unwind(|| {
        let mut g = HOST_CHANGES.lock().unwrap_or_else(|p| p.into_inner());
        let Some(u) = g.take() else { return };
        if let Some(mode) = u.tun_mode {
            let _ = std::fs::set_permissions(
                sous_sandbox::network::TUN_DEVICE,
                std::fs::Permissions::from_mode(mode),
            );
        }
        if let Some(d) = u.bin_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        // Best effort: refused (EBUSY) while another cgroup still uses the controller.
        for c in u.controllers.iter().rev() {
            let _ = std::fs::write("/sys/fs/cgroup/cgroup.subtree_control", format!("-{c}"));
        }
    });
}

/// The `sous` binary as the test user can run it: the one under test when every directory
/// on its path lets others through (the checkout may live under a private home), else a hard
/// link to it (a copy across filesystems) in a directory of the temp dir that does. Links of
/// earlier test processes that are gone are removed.
fn user_binary() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = Server::binary();
        let others_may = |p: &Path, bits: u32| {
            std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bits == bits)
        };
        if others_may(&bin, 0o005) && bin.ancestors().skip(1).all(|d| others_may(d, 0o001)) {
            return bin;
        }
        let tmp = std::env::temp_dir();
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("sous-rootless-bin-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = tmp.join(format!("sous-rootless-bin-{}", std::process::id()));
        undo_at_exit(|u| u.bin_dir = Some(dir.clone()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let to = dir.join("sous");
        let _ = std::fs::remove_file(&to);
        if std::fs::hard_link(&bin, &to).is_err() {
            std::fs::copy(&bin, &to).unwrap();
        }
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        to
    })
    .clone()
}

/// `sous serve` as [`TEST_UID`] inside `cg`, with `args`.
pub(crate) fn start_rootless(cg: &Delegation, args: &[&str]) -> Server {
    if !args.contains(&"none") {
        tun_usable_by_users();
    }
    let server = Server::start_with(ServerOptions {
        run_as: Some(RunAs {
            uid: TEST_UID,
            gid: TEST_GID,
            cgroup_procs: cg.procs(),
            program: Some(user_binary()),
        }),
        ..ServerOptions::with_args(args)
    });
    // It really is unprivileged.
    let pid = server.pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uids.split_whitespace().skip(1).collect::<Vec<_>>(),
        vec![TEST_UID.to_string(); 4],
        "{status}"
    );
    let caps = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(caps.ends_with("0000000000000000"), "{caps}");
    assert!(
        server.output().contains("isolation: rootless"),
        "{}",
        server.output()
    );
    server
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_answers_as_993_in_its_own_user_namespace() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &[]);
    assert!(
        server.output().contains("EphemeralStorage is not enforced"),
        "{}",
        server.output()
    );
    let zip = attack_zip(
        r#"echo "uid=$(id -u)"
  echo "gid=$(id -g)"
  echo "groups=$(id -G)"
  echo "id=$(id)"
  echo "uid_map=$(cat /proc/self/uid_map | tr -s ' ')"
  echo "gid_map=$(cat /proc/self/gid_map | tr -s ' ')"
  echo "api=$AWS_LAMBDA_RUNTIME_API"
  echo "host=$(hostname)"
  echo "cwd=$(pwd)""#,
    );
    let name = deploy(&server, "rootless-id", &zip, 10, 128, 512, &[]).await;
    let out = report(&server, &name).await;
    assert_eq!(field(&out, "uid"), Some("993"), "{out}");
    assert_eq!(field(&out, "gid"), Some("990"), "{out}");
    assert_eq!(field(&out, "groups"), Some("990"), "{out}");
    assert!(
        field(&out, "id")
            .unwrap()
            .starts_with("uid=993(sbx_user1051) gid=990(sbx_user1051)"),
        "{out}"
    );
    // One id mapped, onto the unprivileged user that runs Sous.
    assert_eq!(field(&out, "uid_map"), Some(" 993 64123 1"), "{out}");
    assert_eq!(field(&out, "gid_map"), Some(" 990 64123 1"), "{out}");
    assert_eq!(field(&out, "api"), Some("127.0.0.1:9001"), "{out}");
    assert!(
        field(&out, "host").unwrap().starts_with("169.254."),
        "{out}"
    );
    assert_eq!(field(&out, "cwd"), Some("/var/task"), "{out}");
    assert_sous_unharmed(&server).await;
}

/// The managed runtimes work rootless too: their Runtime API and telemetry pipes were made by
/// Sous's own user, which is the function's user inside, so Java can open them through
/// `/proc/self/fd` without the init giving them away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_runtimes_answer_and_log_rootless() {
    use aws_sdk_lambda::types::Runtime;
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);

    // Java: a handler compiled against `sous sdk java`, logging one multi-line event.
    let dir = tempfile::tempdir().unwrap();
    let sdk = dir.path().join("sdk.jar");
    let ok = Command::new(Server::binary())
        .args(["sdk", "java", "--out"])
        .arg(&sdk)
        .status()
        .unwrap();
    assert!(ok.success());
    let src = dir.path().join("Hello.java");
    std::fs::write(
        &src,
        "package hello;\n\
         import com.amazonaws.services.lambda.runtime.*;\n\
         public class Hello implements RequestHandler<java.util.Map<String, Object>, String> {\n\
           public String handleRequest(java.util.Map<String, Object> e, Context c) {\n\
             c.getLogger().log(\"java one\\njava two\");\n\
             return \"java \" + e.get(\"k\");\n\
           }\n\
         }\n",
    )
    .unwrap();
    let classes = dir.path().join("classes");
    let out = Command::new("javac")
        .args(["--release", "17", "-cp"])
        .arg(&sdk)
        .arg("-d")
        .arg(&classes)
        .arg(&src)
        .output()
        .expect("run javac (JDK 17)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let class = std::fs::read(classes.join("hello/Hello.class")).unwrap();

    let cases: [(Runtime, &str, Vec<u8>, &str); 3] = [
        (
            Runtime::Python311,
            "app.handler",
            zip_files(&[(
                "app.py",
                b"import logging\ndef handler(e, c):\n    logging.getLogger().warning('python one\\npython two')\n    return 'python ' + e['k']\n",
                0o644,
            )]),
            "python",
        ),
        (
            Runtime::Nodejs20x,
            "index.handler",
            zip_files(&[(
                "index.js",
                b"exports.handler = async (e) => { console.log('node one\\nnode two'); return 'node ' + e.k; };",
                0o644,
            )]),
            "node",
        ),
        (
            Runtime::Java17,
            "hello.Hello::handleRequest",
            zip_files(&[("hello/Hello.class", &class, 0o644)]),
            "java",
        ),
    ];
    // Each answers "<lang> ok" and logs "<lang> one\n<lang> two" in one call.
    for (runtime, handler, zip, lang) in cases {
        let name = unique("rootless-managed");
        create_ok(
            &server,
            create(&server.client, &name, &zip)
                .runtime(runtime.clone())
                .handler(handler)
                // The JVM's start at a 128 MB function's CPU share can pass 3 s when busy.
                .memory_size(1769)
                .timeout(30),
        )
        .await;
        let out = invoke(&server, &name, br#"{"k":"ok"}"#).await;
        assert_eq!(out.function_error, None, "{runtime:?}: {}", out.text());
        assert_eq!(out.text(), format!("\"{lang} ok\""), "{runtime:?}");
        // The multi-line record arrived whole, through the telemetry pipe.
        let events = server.log_events(&name);
        assert!(
            events
                .iter()
                .any(|e| e.contains(&format!("{lang} one\n{lang} two"))),
            "{runtime:?}: {events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sees_only_its_own_processes() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    check_sees_only_its_own_processes(&server, "rootless-ps").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_signal_its_init_sous_or_other_environments() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    let victim = deploy_victim(&server, "rootless-victim").await;
    // The init is the function's own uid here (both are Sous's user outside), but it is the
    // PID namespace's init: the kernel drops SIGKILL sent to it from inside, and it holds
    // capabilities the function lacks, so ptrace-like access to it is refused.
    let pid = server.pid().unwrap().to_string();
    let attacker = deploy(
        &server,
        "rootless-killer",
        &attack_zip(
            r#"t server kill -9 "$SERVER_PID"
  kill -9 1; kill -STOP 1
  kill -9 -1; echo "all=rc$?"
  echo "initroot=$(ls /proc/1/root/ 2>&1 | head -n 1)"
  echo "initmem=$(head -c 1 /proc/1/mem 2>&1)"
  echo "alive=yes""#,
        ),
        10,
        128,
        512,
        &[("SERVER_PID", &pid)],
    )
    .await;
    let text = report(&server, &attacker).await;
    assert!(
        failed(&text, "server").contains("No such process"),
        "{text}"
    );
    assert!(
        field(&text, "initroot")
            .unwrap()
            .contains("Permission denied"),
        "{text}"
    );
    assert!(
        field(&text, "initmem")
            .unwrap()
            .contains("Permission denied"),
        "{text}"
    );
    assert_eq!(field(&text, "alive"), Some("yes"), "{text}");
    // The attacker's environment still works (its init survived), and so does the victim's.
    assert_eq!(
        field(&report(&server, &attacker).await, "alive"),
        Some("yes")
    );
    assert_sous_unharmed(&server).await;
    assert_victim_unharmed(&server, &victim).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_read_host_secrets() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    check_cannot_read_host_secrets(&server, "rootless-read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_and_unshare_are_denied() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    check_mount_and_unshare_are_denied(&server, "rootless-mount").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_past_memory_size_is_killed() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    check_memory_past_memory_size_is_killed(&server, "rootless-oom").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmp_is_writable_private_storage_removed_with_the_environment() {
    require_root();
    let cg = Delegation::new();
    let mut server = start_rootless(&cg, &["--function-network", "none"]);
    let secret = unique("rootless-tmp-secret");
    let owner = deploy(
        &server,
        "rootless-tmp-owner",
        &attack_zip(
            r#"[ -f /tmp/secret ] || echo "$SECRET" > /tmp/secret
  echo "mine=$(cat /tmp/secret)"
  echo "fs=$(stat -f -c %T /tmp)"
  echo "big=$(dd if=/dev/zero of=/tmp/big bs=1M count=200 2>&1 >/dev/null | tail -n 1)"
  echo "size=$(stat -c %s /tmp/big)"
  rm -f /tmp/big"#,
        ),
        30,
        128,
        512,
        &[("SECRET", &secret)],
    )
    .await;
    let out = report(&server, &owner).await;
    assert_eq!(field(&out, "mine"), Some(secret.as_str()), "{out}");
    // Storage, not memory: 200 MB written by a 128 MB function, on a disk filesystem.
    assert_ne!(field(&out, "fs"), Some("tmpfs"), "{out}");
    assert_eq!(field(&out, "size"), Some("209715200"), "{out}");
    let thief = deploy(
        &server,
        "rootless-tmp-thief",
        &attack_zip(
            r#"echo "cat=$(cat /tmp/secret 2>&1)"
  echo "ls=$(ls -a /tmp | tr '\n' ' ')"
  echo "grep=$(grep -rs "$SECRET" /tmp /var /opt /run 2>/dev/null | head -n 3)""#,
        ),
        10,
        128,
        512,
        &[("SECRET", &secret)],
    )
    .await;
    let stolen = report(&server, &thief).await;
    assert!(
        field(&stolen, "cat").is_some_and(|v| v.contains("No such file")),
        "{stolen}"
    );
    assert!(
        !field(&stolen, "ls").unwrap().contains("secret"),
        "{stolen}"
    );
    assert_eq!(field(&stolen, "grep"), Some(""), "{stolen}");
    let again = report(&server, &owner).await;
    assert_eq!(field(&again, "mine"), Some(secret.as_str()), "{again}");
    // Each environment's /tmp is a directory of the data dir while it lives...
    let tmps = server.tree("sandbox/tmp");
    assert!(
        tmps.iter().any(|t| !t.contains('/')),
        "no /tmp directories: {tmps:?}"
    );
    // ...and is gone with it, as are its cgroups.
    server.stop();
    assert_eq!(server.tree("sandbox/tmp"), Vec::<String>::new());
    assert_eq!(cg.environment_cgroups(), Vec::<String>::new());
}

/// Another local user (not Sous's, not the function's).
const OTHER_UID: u32 = 64124;

/// Run `program` with `args` as [`OTHER_UID`]; (success, stdout and stderr). A shell of that
/// user execs it: setpriv's own exec may still hold root's capabilities.
fn as_other_user(program: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={OTHER_UID}"),
            format!("--regid={OTHER_UID}"),
            "--clear-groups".into(),
            "--".into(),
            "/bin/sh".into(),
            "-c".into(),
            r#"exec "$0" "$@""#.into(),
        ])
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setuid_file_planted_in_tmp_is_out_of_other_users_reach() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    // The function's /tmp is Sous's user's directory outside: it may open it up and plant a
    // set-user-id copy of a shell, which would run as Sous's user for whoever reaches it.
    let zip = attack_zip(
        r#"chmod 0755 /tmp; echo "tmp=$(stat -c %a /tmp)"
  cp /bin/sh /tmp/suid-sh && chmod 4755 /tmp/suid-sh; echo "planted=$(stat -c %a /tmp/suid-sh)""#,
    );
    let name = deploy(&server, "rootless-suid", &zip, 10, 128, 512, &[]).await;
    let out = report(&server, &name).await;
    assert_eq!(field(&out, "tmp"), Some("755"), "{out}");
    assert_eq!(field(&out, "planted"), Some("4755"), "{out}");
    let sandbox = server.data_dir.join("sandbox");
    let planted: Vec<PathBuf> = server
        .tree("sandbox/tmp")
        .iter()
        .filter(|p| p.ends_with("/suid-sh"))
        .map(|p| sandbox.join("tmp").join(p))
        .collect();
    assert_eq!(planted.len(), 1, "{:?}", server.tree("sandbox/tmp"));
    let planted = &planted[0];
    assert_eq!(
        std::fs::metadata(planted).unwrap().mode() & 0o7777,
        0o4755,
        "the file really is set-user-id on the host"
    );
    // The data dir is open to others (the test made it so): the sandbox dir must not be.
    for d in [sandbox.clone(), sandbox.join("tmp")] {
        let m = std::fs::symlink_metadata(&d).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o700, "{}", d.display());
        assert_eq!(m.uid(), TEST_UID, "{}", d.display());
    }
    let (ran, text) = as_other_user(planted, &["-c", "echo ran"]);
    assert!(!ran && text.contains("Permission denied"), "{text}");
    let (listed, text) = as_other_user(Path::new("/bin/ls"), &[&sandbox.display().to_string()]);
    assert!(!listed && text.contains("Permission denied"), "{text}");
    // The template's placeholders for host devices are no one else's either.
    let null = sandbox.join("root/dev/null");
    assert_eq!(
        std::fs::symlink_metadata(&null).unwrap().mode() & 0o777,
        0o600,
        "{}",
        null.display()
    );
    assert_sous_unharmed(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_works_and_sous_and_host_loopback_are_unreachable() {
    require_root();
    let cg = Delegation::new();
    // Outbound on (slirp4netns): its gateway must not lead to the host's loopback either.
    let server = start_rootless(&cg, &[]);
    let host_service = TcpListener::bind("127.0.0.1:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let port = host_service.local_addr().unwrap().port().to_string();
    let zip = attack_zip(
        r#"probe() { if curl -sS --max-time 3 -o /dev/null "http://$1/" 2>/dev/null; then echo "reached $1"; else echo "blocked $1"; fi; }
  echo "ping=$(curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next" -X POST 2>&1)"
  probe "127.0.0.1:$API_PORT"
  probe "127.0.0.1:$GATEWAY_PORT"
  probe "127.0.0.1:$PORT"
  GW=$(/usr/sbin/ip route | sed -n 's/^default via \([0-9.]*\).*/\1/p')
  echo "gateway=$GW"
  probe "$GW:$API_PORT"
  probe "$GW:$PORT""#,
    );
    let api = server.api_addr.port().to_string();
    let gw = server.gateway_addr.port().to_string();
    let name = deploy(
        &server,
        "rootless-connect",
        &zip,
        60,
        128,
        512,
        &[("API_PORT", &api), ("GATEWAY_PORT", &gw), ("PORT", &port)],
    )
    .await;
    let out = report(&server, &name).await;
    // The Runtime API answers on the environment's own loopback (a POST to /next is not
    // allowed: any HTTP status proves the listener is there).
    let ping = field(&out, "ping").unwrap();
    assert!(ping.len() == 3 && !ping.starts_with('0'), "{out}");
    assert!(
        !out.contains("reached"),
        "a host service was reached:\n{out}"
    );
    assert_eq!(out.matches("blocked").count(), 5, "{out}");
    assert_eq!(
        field(&out, "gateway"),
        Some("10.0.2.2"),
        "slirp4netns gives the default route: {out}"
    );
    match host_service.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host service saw a connection: {other:?}"),
    }
    assert_sous_unharmed(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_refuses_metadata_private_ranges_and_the_hosts_addresses() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &[]);
    // A service on every host address: slirp4netns connects from the host, so without the
    // blocklist a function would reach it through any of them.
    let host_service = TcpListener::bind("0.0.0.0:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let port = host_service.local_addr().unwrap().port().to_string();
    let host_addr = host_addresses()
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // Only route decisions (`ip route get` sends nothing) for addresses that are not the
    // test's own: a refused route is what makes connect fail at once, before any packet.
    let zip = attack_zip(
        r#"for a in 169.254.169.254 169.254.170.2 10.0.2.2 10.0.2.3 10.1.2.3 172.16.0.1 192.168.0.1 100.64.0.1 0.1.2.3 198.18.0.2 1.1.1.1; do
    echo "route_$a=$(/usr/sbin/ip route get "$a" 2>&1 | head -n 1)"
  done
  NS=$(awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ { print $2; exit }' /etc/resolv.conf)
  [ -n "$NS" ] || NS=10.0.2.3
  echo "ns=$NS"
  echo "dns_slirp=$(/usr/sbin/ip route get 10.0.2.3 ipproto udp dport 53 2>&1 | head -n 1)"
  echo "dns_host=$(/usr/sbin/ip route get "$NS" ipproto udp dport 53 2>&1 | head -n 1)"
  echo "slirp_other_port=$(/usr/sbin/ip route get 10.0.2.3 ipproto tcp dport 80 2>&1 | head -n 1)"
  if [ -n "$HOST_ADDR" ]; then
    t hostconn python3 -c "import socket; s = socket.socket(); s.settimeout(5); s.connect(('$HOST_ADDR', $PORT))"
    echo "route_host=$(/usr/sbin/ip route get "$HOST_ADDR" 2>&1 | head -n 1)"
  fi"#,
    );
    let name = deploy(
        &server,
        "rootless-blocklist",
        &zip,
        30,
        128,
        512,
        &[("HOST_ADDR", &host_addr), ("PORT", &port)],
    )
    .await;
    let out = report(&server, &name).await;
    for a in [
        "169.254.169.254",
        "169.254.170.2",
        "10.0.2.2",
        "10.0.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "0.1.2.3",
    ] {
        let v = field(&out, &format!("route_{a}")).unwrap_or_default();
        assert!(v.contains("Permission denied"), "{a} is routed:\n{out}");
    }
    // Allowed: the test hosts' range, the Internet, and DNS (port 53 only).
    for key in ["route_198.18.0.2", "route_1.1.1.1", "dns_slirp", "dns_host"] {
        let v = field(&out, key).unwrap_or_default();
        assert!(v.contains("dev tap0"), "{key} is refused:\n{out}");
    }
    assert!(
        field(&out, "slirp_other_port")
            .unwrap_or_default()
            .contains("Permission denied"),
        "{out}"
    );
    if !host_addr.is_empty() {
        assert!(
            failed(&out, "hostconn").contains("Permission denied"),
            "{out}"
        );
        assert!(
            field(&out, "route_host")
                .unwrap_or_default()
                .contains("Permission denied"),
            "{out}"
        );
        match host_service.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the host service saw a connection: {other:?}"),
        }
    }
    assert_sous_unharmed(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_reaches_a_test_host_through_slirp4netns() {
    require_root();
    let test_host = TestHost::start();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &[]);
    check_outbound_reaches(&server, "rootless-outbound", &test_host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_network_none_has_no_route_out() {
    require_root();
    let test_host = TestHost::start();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &["--function-network", "none"]);
    check_no_route_out(&server, "rootless-no-network", &test_host).await;
}

#[test]
fn without_a_delegated_cgroup_tree_sous_refuses_and_says_how_to_delegate() {
    require_root();
    // The test user, in the test's own (root-owned) cgroups.
    let dir = tempfile::Builder::new()
        .prefix("sous-rootless-refuse-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    chown(&data);
    let out = Command::new("timeout")
        .arg("60")
        .arg("setpriv")
        .args([
            format!("--reuid={TEST_UID}"),
            format!("--regid={TEST_GID}"),
            "--clear-groups".into(),
            "--".into(),
        ])
        .arg(user_binary())
        .args([
            "serve",
            "--api-addr",
            "127.0.0.1:0",
            "--gateway-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .env("SOUS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("SOUS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert_ne!(
        out.status.code(),
        Some(124),
        "sous serve did not stop: {text}"
    );
    for needle in [
        "no delegated cgroup tree",
        "Delegate=yes",
        "chown",
        "--cgroup-root",
        "--isolation none",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
}

/// Pids of the direct children of `pid` (the sandbox inits and slirp4netns of a server).
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slirp4netns_is_confined_and_charged_to_its_environment() {
    require_root();
    let cg = Delegation::new();
    let server = start_rootless(&cg, &[]);
    let name = deploy(
        &server,
        "rootless-slirp",
        &attack_zip(r#"echo "up=yes""#),
        10,
        128,
        512,
        &[],
    )
    .await;
    assert_eq!(field(&report(&server, &name).await, "up"), Some("yes"));
    let slirps: Vec<u32> = children_of(server.pid().unwrap())
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "slirp4netns")
        })
        .collect();
    assert!(!slirps.is_empty(), "no slirp4netns");
    let help = Command::new("slirp4netns").arg("--help").output().unwrap();
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    let envs = cg.environment_cgroups();
    for p in slirps {
        let cmdline = std::fs::read_to_string(format!("/proc/{p}/cmdline"))
            .unwrap()
            .replace('\0', " ");
        if help.contains("--enable-seccomp") {
            assert!(cmdline.contains("--enable-seccomp"), "{cmdline}");
        }
        if help.contains("--enable-seccomp") {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
            assert!(status.contains("Seccomp:\t2"), "{status}");
        }
        // In one of the environments' cgroups (each hierarchy), not in Sous's own.
        let cgroups = std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
        let mut matched = 0;
        for line in cgroups.lines() {
            let path = line.splitn(3, ':').nth(2).unwrap_or_default();
            if path.contains("/sous/") {
                matched += 1;
                let leaf = path.rsplit('/').next().unwrap();
                assert!(
                    envs.iter().any(|e| e.ends_with(leaf)),
                    "{path} not in {envs:?}"
                );
            }
        }
        assert!(
            matched >= 1,
            "slirp4netns {p} is outside the environments' cgroups: {cgroups}"
        );
    }
    assert_sous_unharmed(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_rootless_run_leaves_nothing_behind() {
    require_root();
    let cg = Delegation::new();
    let mut server = start_rootless(&cg, &[]);
    let marker = unique("rootless-crash");
    let name = deploy(
        &server,
        "rootless-crash",
        &attack_zip(r#"( sleep 300 & ) >/dev/null 2>&1; echo "started=yes""#),
        10,
        128,
        512,
        &[("SOUS_TEST_MARKER", &marker)],
    )
    .await;
    assert_eq!(field(&report(&server, &name).await, "started"), Some("yes"));
    assert!(!processes_with(&marker).is_empty());
    let children = children_of(server.pid().unwrap());
    let slirps = children
        .iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "slirp4netns")
        })
        .count();
    assert!(
        slirps >= 1,
        "outbound networking runs slirp4netns: {children:?}"
    );
    // SIGKILL: nothing of Sous runs its cleanup. Its inits, their environments (with the
    // runtime's orphan) and the slirp4netns processes die with it.
    server.kill_hard();
    let left = wait_pids_gone(&children, Duration::from_secs(10));
    assert!(left.is_empty(), "survived the crash: {left:?}");
    let left = wait_processes_gone(&marker, Duration::from_secs(10));
    assert!(left.is_empty(), "function processes survived: {left:?}");
    // Its forced-stop watcher removes the cgroups and /tmp directories without waiting for
    // a next start (see forced_stop.rs).
    let watcher = wait_processes_gone(&server.data_dir.to_string_lossy(), Duration::from_secs(15));
    assert!(watcher.is_empty(), "the watcher still runs: {watcher:?}");
    assert_eq!(
        cg.environment_cgroups(),
        Vec::<String>::new(),
        "{}",
        server.output_tail(3000)
    );
    assert_eq!(server.tree("sandbox/tmp"), Vec::<String>::new());
    // The next start works.
    server.restart();
    assert_eq!(field(&report(&server, &name).await, "started"), Some("yes"));
    server.stop();
    assert_eq!(cg.environment_cgroups(), Vec::<String>::new());
    assert_eq!(server.tree("sandbox/tmp"), Vec::<String>::new());
    reap(&marker);
}
