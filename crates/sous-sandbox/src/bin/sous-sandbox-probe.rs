//! An attack probe run inside a sandbox by the isolation tests. Each subcommand tries one
//! thing, prints what happened and exits 0 when the attempt *succeeded*.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use sous_sandbox::syscalls::{Kernel, LinuxKernel};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let ok = match arg(0).as_str() {
        "id" => {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("");
            let caps = status
                .lines()
                .find(|l| l.starts_with("CapEff:"))
                .unwrap_or("");
            let nnp = status
                .lines()
                .find(|l| l.starts_with("NoNewPrivs:"))
                .unwrap_or("");
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let cwd = std::env::current_dir().unwrap_or_default();
            println!(
                "{uid}\n{caps}\n{nnp}\nhostname:\t{}\ncwd:\t{}",
                host.trim(),
                cwd.display()
            );
            for (k, v) in std::env::vars() {
                println!("env:\t{k}={v}");
            }
            true
        }
        "exists" => {
            let found = Path::new(&arg(1)).exists();
            println!("{}", if found { "present" } else { "absent" });
            found
        }
        "write" => std::fs::write(arg(1), b"x")
            .map_err(|e| println!("{e}"))
            .is_ok(),
        "fill" => {
            let mb: usize = arg(2).parse().unwrap_or(0);
            let chunk = vec![7u8; 1 << 20];
            let mut written = 0;
            let res = std::fs::File::create(arg(1)).and_then(|mut f| {
                for _ in 0..mb {
                    f.write_all(&chunk)?;
                    written += 1;
                }
                f.sync_all()
            });
            println!("written {written} MB: {res:?}");
            res.is_ok()
        }
        "alloc" => {
            let mb: usize = arg(1).parse().unwrap_or(0);
            let mut v: Vec<Vec<u8>> = Vec::new();
            for _ in 0..mb {
                v.push(vec![1u8; 1 << 20]);
            }
            println!("allocated {} MB", v.len());
            true
        }
        "connect" => match TcpStream::connect_timeout(
            &arg(1).parse().expect("address"),
            Duration::from_secs(5),
        ) {
            Ok(mut s) => {
                let mut buf = String::new();
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.read_to_string(&mut buf);
                println!("connected: {buf}");
                true
            }
            Err(e) => {
                println!("{e}");
                false
            }
        },
        "pids" => {
            let mut pids: Vec<u32> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            pids.sort();
            println!("{pids:?} self={}", std::process::id());
            true
        }
        "unshare" => LinuxKernel
            .unshare(libc::CLONE_NEWNS)
            .map_err(|e| println!("{e}"))
            .is_ok(),
        "mount" => LinuxKernel
            .mount(
                Some(Path::new("tmpfs")),
                Path::new("/tmp"),
                Some("tmpfs"),
                0,
                None,
            )
            .map_err(|e| println!("{e}"))
            .is_ok(),
        "orphan" => {
            // A daemon in its own session, then wait forever.
            let child = std::process::Command::new("/bin/sh")
                .args([
                    "-c",
                    "setsid /bin/sleep 1000 >/dev/null 2>&1 </dev/null & echo $!",
                ])
                .output()
                .expect("spawn");
            println!("ready {}", String::from_utf8_lossy(&child.stdout).trim());
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(1000));
            true
        }
        other => {
            eprintln!("unknown probe {other:?}");
            false
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}
