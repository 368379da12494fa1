//! The iptables fallback of Sous's firewall and NAT, for kernels without nf_tables: the same
//! [`RULES`](super::nft::RULES), loaded with `iptables-restore --noflush` into Sous's own chains
//! (`SOUS-INPUT`, `SOUS-FORWARD`, `SOUS-POSTROUTING`) and jumped to from the built-in ones.
//! It needs the `iptables` and `iptables-restore` programs (Debian package `iptables`). The
//! chains are shared by every Sous on the host (same content) and stay after exit.

use std::process::{Command, Stdio};

use super::nft::{Action, Chain, Rule};
use super::{program, HOST_IF_PREFIX};

/// The firewall rules, in `iptables-restore --noflush` form: loading it replaces the content
/// of Sous's own chains atomically (per table) and touches no other chain.
pub const FIREWALL: &str = "\
*filter
:SOUS-INPUT - [0:0]
:SOUS-FORWARD - [0:0]
-A SOUS-INPUT -i sous+ -p tcp -j REJECT --reject-with tcp-reset
-A SOUS-INPUT -i sous+ -j REJECT --reject-with icmp-admin-prohibited
-A SOUS-FORWARD -i sous+ -o sous+ -j REJECT --reject-with icmp-admin-prohibited
-A SOUS-FORWARD -i sous+ -d 169.254.0.0/16 -j REJECT --reject-with icmp-admin-prohibited
-A SOUS-FORWARD -i sous+ -d 198.19.0.0/16 -j REJECT --reject-with icmp-admin-prohibited
-A SOUS-FORWARD -i sous+ -s 198.19.0.0/16 -j ACCEPT
-A SOUS-FORWARD -i sous+ -j DROP
-A SOUS-FORWARD -o sous+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A SOUS-FORWARD -o sous+ -j DROP
COMMIT
*nat
:SOUS-POSTROUTING - [0:0]
-A SOUS-POSTROUTING -s 198.19.0.0/16 ! -o sous+ -j MASQUERADE
COMMIT
";

/// The jumps from the built-in chains into Sous's: (table, chain, target).
const JUMPS: &[(&str, &str, &str)] = &[
    ("filter", "INPUT", "SOUS-INPUT"),
    ("filter", "FORWARD", "SOUS-FORWARD"),
    ("nat", "POSTROUTING", "SOUS-POSTROUTING"),
];

/// [`RULES`] as `iptables-restore` text: [`FIREWALL`].
pub fn render(rules: &[Rule]) -> String {
    let mut filter = String::from("*filter\n:SOUS-INPUT - [0:0]\n:SOUS-FORWARD - [0:0]\n");
    let mut nat = String::from("*nat\n:SOUS-POSTROUTING - [0:0]\n");
    let iface = |flag: &str, env: bool| {
        let not = if env { "" } else { "! " };
        format!(" {not}{flag} {HOST_IF_PREFIX}+")
    };
    for r in rules {
        let (chain, out) = match r.chain {
            Chain::Input => ("SOUS-INPUT", &mut filter),
            Chain::Forward => ("SOUS-FORWARD", &mut filter),
            Chain::Postrouting => ("SOUS-POSTROUTING", &mut nat),
        };
        let mut line = format!("-A {chain}");
        if let Some(env) = r.from_env {
            line.push_str(&iface("-i", env));
        }
        if let Some((net, len)) = r.src {
            line.push_str(&format!(" -s {net}/{len}"));
        }
        if let Some((net, len)) = r.dst {
            line.push_str(&format!(" -d {net}/{len}"));
        }
        if let Some(env) = r.to_env {
            line.push_str(&iface("-o", env));
        }
        if r.tcp {
            line.push_str(" -p tcp");
        }
        if r.reply {
            line.push_str(" -m conntrack --ctstate RELATED,ESTABLISHED");
        }
        line.push_str(match r.action {
            Action::Accept => " -j ACCEPT",
            Action::Drop => " -j DROP",
            Action::RejectTcpReset => " -j REJECT --reject-with tcp-reset",
            Action::RejectProhibited => " -j REJECT --reject-with icmp-admin-prohibited",
            Action::Masquerade => " -j MASQUERADE",
        });
        out.push_str(&line);
        out.push('\n');
    }
    format!("{filter}COMMIT\n{nat}COMMIT\n")
}

fn run(cmd: &mut Command, input: Option<&str>) -> Result<(), String> {
    use std::io::Write;
    let what = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("run {what}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("write to {what}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether the iptables programs are installed.
pub fn available() -> bool {
    program("iptables").is_some() && program("iptables-restore").is_some()
}

/// Install [`FIREWALL`] and the jumps to its chains.
pub fn install() -> Result<(), String> {
    let missing = || "iptables (and iptables-restore) not found".to_string();
    let iptables = program("iptables").ok_or_else(missing)?;
    let restore = program("iptables-restore").ok_or_else(missing)?;
    run(
        Command::new(&restore).args(["--noflush", "--wait"]),
        Some(FIREWALL),
    )
    .map_err(|e| format!("install the firewall chains: {e}"))?;
    for (table, chain, target) in JUMPS {
        let present = run(
            Command::new(&iptables).args(["-w", "-t", table, "-C", chain, "-j", target]),
            None,
        )
        .is_ok();
        if !present {
            run(
                Command::new(&iptables).args(["-w", "-t", table, "-I", chain, "1", "-j", target]),
                None,
            )
            .map_err(|e| format!("add the jump to {target}: {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::nft::RULES;

    #[test]
    fn the_fallback_loads_the_same_rules_as_nftables() {
        assert_eq!(render(RULES), FIREWALL);
    }
}
