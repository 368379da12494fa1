//! Per-environment network namespaces, and outbound access through a veth pair and NAT.
//!
//! Each environment gets its own network namespace with loopback up, and the worker's Runtime
//! API listener bound inside it on 127.0.0.1:9001: a short-lived thread unshares a new
//! namespace (for itself only), brings `lo` up, opens `/proc/thread-self/ns/net` (which keeps
//! the namespace alive) and binds the socket (which stays in that namespace for its whole
//! life). The function reaches its Runtime API on loopback; the host's loopback is not its
//! loopback, so Sous's API and the host's loopback services are out of reach.
//!
//! With outbound networking ([`Outbound`], `--function-network outbound`, the default), the
//! same thread also gives the namespace one side of a veth pair:
//!
//! ```text
//!  environment netns                         host netns
//!  eth0  198.19.S.2/30 ──── veth ──── sousSSSS  198.19.S.1/30
//!  default via 198.19.S.1                    table ip sous-<tag>: input / forward / postrouting
//! ```
//!
//! where slot `S` (0..16384) picks the /30 `198.19.0.0/16 + 4·S` and names the host side
//! `sous%04x`. The name is the host-wide lock on the slot: creating the pair fails with
//! `EEXIST` when another Sous on the host holds it, and the next slot is tried. IPv6 is off on
//! both ends (no link-local path to the host). The host forwards (`ip_forward`) and
//! masquerades what the range sends out, and drops everything else ([`nft::RULES`], installed
//! by [`Outbound::setup`] as an nftables table of Sous's own through netlink, no `nft` or
//! `iptables` process; the same rules as iptables chains ([`FIREWALL`]) only where nf_tables is
//! unusable and iptables is installed):
//! - anything from an environment to the host itself (`input`, `iifname sous*`: every host
//!   address, the gateway included, so no host service is reachable whatever address it
//!   binds);
//! - environment to environment (`forward`, `iifname sous* oifname sous*`);
//! - to link-local addresses (169.254.0.0/16: cloud instance metadata);
//! - new connections into an environment (`oifname sous*` that is not a reply).
//!
//! The nftables table belongs to the netlink socket [`Outbound`] holds: the kernel deletes it
//! when Sous exits, however it exits; a new start replaces it atomically.
//!
//! Links, addresses and routes are made with rtnetlink directly (no `ip` processes), so a
//! namespace with its veth costs about a millisecond and the pool ([`crate::Sandbox`]) makes
//! them ahead of cold starts. The pair dies with the namespace (the kernel deletes both ends);
//! [`Veth`]'s drop deletes it at once, and [`Outbound::setup`] deletes pairs a crashed earlier
//! run of the same data dir left (recognized by their `ifalias`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

use crate::syscalls;

pub mod iptables;
pub mod nft;

pub use iptables::FIREWALL;

/// Where the Runtime API listens inside every environment (`AWS_LAMBDA_RUNTIME_API`).
pub const RUNTIME_API_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9001));

/// The range environments' /30s are taken from: the upper half of 198.18.0.0/15 (RFC 2544,
/// reserved for benchmarking; never assigned on real networks, not used by container tools or
/// VPNs by default).
pub const ENV_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 19, 0, 0), 16);
/// Number of /30 slots in [`ENV_RANGE`].
pub const SLOTS: u32 = 1 << (32 - 16 - 2);
/// Host-side veth names are this prefix and the slot in 4 hex digits; the firewall matches
/// `sous+`, so no other interface on the host should start with it.
pub const HOST_IF_PREFIX: &str = "sous";
/// The environment's side of the pair.
pub const ENV_IF: &str = "eth0";

/// A network namespace and the Runtime API socket listening inside it.
#[derive(Debug)]
pub struct NetNs {
    pub ns: OwnedFd,
    pub listener: TcpListener,
    /// Listeners on the further addresses given to [`create`], in their order.
    pub services: Vec<TcpListener>,
    /// The veth pair, with outbound networking.
    pub veth: Option<Veth>,
}

/// One environment's veth pair. Dropping it deletes the pair.
#[derive(Debug)]
pub struct Veth {
    pub slot: u32,
    /// Host-side interface name (`sous%04x`).
    pub host_if: String,
    /// The host side's address: the environment's default gateway.
    pub gateway: Ipv4Addr,
    /// The environment's `eth0` address.
    pub address: Ipv4Addr,
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes both. Gone already (the namespace died first) is fine.
        let _ = delete_link(&self.host_if);
    }
}

/// Outbound networking for the environments of one `sous serve`.
#[derive(Debug)]
pub struct Outbound {
    /// Written to the host side's `ifalias`, to recognize this data dir's leftovers.
    alias: String,
    /// Next slot to try.
    next: AtomicU32,
    /// Sous's firewall and NAT; the nftables table goes with it.
    firewall: Firewall,
}

/// The /30 of `slot`: (gateway, environment address).
pub fn slot_addresses(slot: u32) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(ENV_RANGE.0) + 4 * (slot % SLOTS);
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// The host-side interface name of `slot`.
pub fn host_if_name(slot: u32) -> String {
    format!("{HOST_IF_PREFIX}{:04x}", slot % SLOTS)
}

fn program(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// What the firewall and NAT of outbound networking are made with.
#[derive(Debug)]
pub enum Firewall {
    /// Sous's own nftables table, programmed through netlink ([`nft`]).
    Nftables(nft::Firewall),
    /// Sous's own iptables chains (the fallback where nf_tables is unusable: [`iptables`]).
    Iptables,
}

impl std::fmt::Display for Firewall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Firewall::Nftables(n) => write!(f, "nftables table ip {}", n.table()),
            Firewall::Iptables => f.write_str("iptables chains SOUS-*"),
        }
    }
}

impl Outbound {
    /// Make the host ready: install the firewall and NAT (Sous's own nftables table
    /// `ip sous-<tag>` through netlink; where that fails, Sous's iptables chains if iptables
    /// is installed), turn on IPv4 forwarding, and delete veth pairs an earlier run with the
    /// same `tag` left. The error names what is missing and the fix.
    pub fn setup(tag: &str) -> Result<Outbound, String> {
        let firewall = match nft::Firewall::install(&nft::table_name(tag)) {
            Ok(f) => Firewall::Nftables(f),
            Err(e) if iptables::available() => {
                iptables::install().map_err(|ipt| {
                    format!("the firewall: nftables through netlink failed ({e}), and iptables too: {ipt}")
                })?;
                Firewall::Iptables
            }
            Err(e) => {
                return Err(format!(
                    "the firewall and NAT cannot be installed: nftables through netlink failed \
                     ({e}) and iptables is not installed. Outbound networking as root needs the \
                     kernel's nf_tables (modules nf_tables, nft_chain_nat, nft_masq, nft_reject, \
                     nft_ct) or the iptables programs (Debian: apt-get install iptables)"
                ))
            }
        };
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| {
            format!(
                "enable IPv4 forwarding (/proc/sys/net/ipv4/ip_forward): {e}; as root on the \
                 host: sysctl -w net.ipv4.ip_forward=1"
            )
        })?;
        let alias = veth_alias(tag);
        cleanup_links(&alias);
        let mut h: u32 = 2166136261;
        for b in tag.bytes() {
            h = (h ^ b as u32).wrapping_mul(16777619);
        }
        Ok(Outbound {
            alias,
            next: AtomicU32::new(h % SLOTS),
            firewall,
        })
    }

    /// The firewall and NAT in use.
    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }
}

/// The `ifalias` of the host-side veths of the data dir tagged `tag`.
pub fn veth_alias(tag: &str) -> String {
    format!("sous-{tag}")
}

/// Delete the host-side veths whose `ifalias` is `alias`; returns their names.
pub(crate) fn cleanup_links(alias: &str) -> Vec<String> {
    let mut deleted = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return deleted;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(HOST_IF_PREFIX) {
            continue;
        }
        let a = std::fs::read_to_string(e.path().join("ifalias")).unwrap_or_default();
        if a.trim() == alias && delete_link(&name).is_ok() {
            deleted.push(name);
        }
    }
    deleted
}

/// Create a network namespace with loopback up and a listener on `addr` inside it (and one on
/// each of `services`), plus a veth pair to the host when `outbound` is given.
pub fn create(
    addr: SocketAddr,
    services: &[SocketAddr],
    outbound: Option<&Outbound>,
) -> io::Result<NetNs> {
    let first_slot = outbound.map(|o| o.next.fetch_add(1, Ordering::Relaxed));
    let services = services.to_vec();
    type Made = (OwnedFd, TcpListener, Vec<TcpListener>, Option<u32>);
    let (ns, listener, services, slot) = std::thread::Builder::new()
        .name("sous-netns".into())
        .spawn(move || -> io::Result<Made> {
            // The host's namespace, to put the pair's host side in.
            let host_ns = match first_slot {
                Some(_) => Some(OwnedFd::from(std::fs::File::open(
                    "/proc/thread-self/ns/net",
                )?)),
                None => None,
            };
            // This thread alone moves; it ends right after, so no other work runs in the
            // namespace by accident.
            syscalls::unshare_net_thread()?;
            let ns = OwnedFd::from(std::fs::File::open("/proc/thread-self/ns/net")?);
            syscalls::set_link_up("lo")?;
            let listener = TcpListener::bind(addr)?;
            let services = services
                .iter()
                .map(|a| {
                    TcpListener::bind(a).map_err(|e| {
                        io::Error::new(e.kind(), format!("listen on {a} for a service: {e}"))
                    })
                })
                .collect::<io::Result<Vec<_>>>()?;
            let slot = match (first_slot, host_ns) {
                (Some(first), Some(host_ns)) => Some(env_side(first, &host_ns)?),
                _ => None,
            };
            Ok((ns, listener, services, slot))
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))??;
    let veth = match (slot, outbound) {
        (Some(slot), Some(o)) => {
            // Past the slot just used, so the next environment starts on a free one.
            let _ = o.next.fetch_max(slot + 1, Ordering::Relaxed);
            let (gateway, address) = slot_addresses(slot);
            let veth = Veth {
                slot,
                host_if: host_if_name(slot),
                gateway,
                address,
            };
            host_side(&veth, &o.alias)?;
            Some(veth)
        }
        _ => None,
    };
    Ok(NetNs {
        ns,
        listener,
        services,
        veth,
    })
}

/// In the new namespace: IPv6 off, the pair (trying slots from `first` while their host name
/// is taken), `eth0` addressed and up, the default route. Returns the slot.
fn env_side(first: u32, host_ns: &OwnedFd) -> io::Result<u32> {
    // New interfaces of this namespace get no IPv6 (no link-local path to the host).
    for p in ["all", "default"] {
        match std::fs::write(format!("/proc/sys/net/ipv6/conf/{p}/disable_ipv6"), "1") {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    let mut nl = Netlink::open()?;
    let mut slot = None;
    for i in 0..256 {
        let s = (first + i) % SLOTS;
        match nl.new_veth(ENV_IF, &host_if_name(s), host_ns.as_raw_fd()) {
            Ok(()) => {
                slot = Some(s);
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(ctx("create the veth pair", e)),
        }
    }
    let slot = slot.ok_or_else(|| io::Error::other("no free veth slot in 256 tries"))?;
    let (gateway, address) = slot_addresses(slot);
    let index = if_index(ENV_IF)?;
    nl.new_addr(index, address, 30)
        .map_err(|e| ctx("address eth0", e))?;
    syscalls::set_link_up(ENV_IF)?;
    nl.default_route(index, gateway)
        .map_err(|e| ctx("add the default route", e))?;
    Ok(slot)
}

/// On the host: mark the host side as ours, IPv6 off, address, up.
fn host_side(v: &Veth, alias: &str) -> io::Result<()> {
    let name = &v.host_if;
    std::fs::write(format!("/sys/class/net/{name}/ifalias"), alias)
        .map_err(|e| ctx("set ifalias", e))?;
    match std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1") {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ctx("disable IPv6", e)),
        _ => {}
    }
    let mut nl = Netlink::open()?;
    nl.new_addr(if_index(name)?, v.gateway, 30)
        .map_err(|e| ctx(&format!("address {name}"), e))?;
    syscalls::set_link_up(name)
}

fn ctx(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Delete a link (and, for a veth, its peer) of the calling thread's namespace.
pub fn delete_link(name: &str) -> io::Result<()> {
    let mut nl = Netlink::open()?;
    let mut body = ifinfomsg(0);
    attr(&mut body, libc::IFLA_IFNAME, &cstr(name));
    nl.request(libc::RTM_DELLINK, 0, &body)
}

fn if_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| ctx(&format!("interface {name}"), e.into()))
}

// --- rtnetlink ------------------------------------------------------------------------------

/// A NETLINK_ROUTE socket of the calling thread's network namespace.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

const NLMSG_HDRLEN: usize = 16;
const VETH_INFO_PEER: u16 = 1;

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn align4(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// Append a netlink attribute.
fn attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = (4 + payload.len()) as u16;
    buf.extend_from_slice(&len.to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    align4(buf);
}

/// Append a nested attribute whose content `f` writes.
fn nested(buf: &mut Vec<u8>, ty: u16, f: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&ty.to_ne_bytes());
    f(buf);
    align4(buf);
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// `struct ifinfomsg` (16 bytes) for AF_UNSPEC and `index`.
fn ifinfomsg(index: i32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // flags
    b.extend_from_slice(&0u32.to_ne_bytes()); // change
    b
}

impl Netlink {
    fn open() -> io::Result<Netlink> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// Send one request with `NLM_F_ACK` and wait for its acknowledgement.
    fn request(&mut self, ty: u16, flags: u16, body: &[u8]) -> io::Result<()> {
        self.seq += 1;
        let flags = flags | libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        msg.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // Without a destination address a netlink socket sends to the kernel.
        socket::send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        let mut buf = [0u8; 4096];
        loop {
            let n = match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r?,
            };
            let reply = &buf[..n];
            let mut off = 0;
            while off + NLMSG_HDRLEN <= reply.len() {
                let word = |at: usize| {
                    u32::from_ne_bytes([reply[at], reply[at + 1], reply[at + 2], reply[at + 3]])
                };
                let len = word(off) as usize;
                let ty = u16::from_ne_bytes([reply[off + 4], reply[off + 5]]);
                let seq = word(off + 8);
                if len < NLMSG_HDRLEN || off + len > reply.len() {
                    return Err(io::Error::other("malformed netlink reply"));
                }
                if seq == self.seq && ty == libc::NLMSG_ERROR as u16 && len >= NLMSG_HDRLEN + 4 {
                    let code = word(off + NLMSG_HDRLEN) as i32;
                    return match code {
                        0 => Ok(()),
                        c => Err(io::Error::from_raw_os_error(-c)),
                    };
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// A veth pair: `local` here, `peer` in the namespace `peer_ns`.
    fn new_veth(&mut self, local: &str, peer: &str, peer_ns: i32) -> io::Result<()> {
        let mut body = ifinfomsg(0);
        attr(&mut body, libc::IFLA_IFNAME, &cstr(local));
        nested(&mut body, libc::IFLA_LINKINFO, |b| {
            attr(b, libc::IFLA_INFO_KIND, b"veth");
            nested(b, libc::IFLA_INFO_DATA, |b| {
                nested(b, VETH_INFO_PEER, |b| {
                    b.extend_from_slice(&ifinfomsg(0));
                    attr(b, libc::IFLA_IFNAME, &cstr(peer));
                    attr(b, libc::IFLA_NET_NS_FD, &(peer_ns as u32).to_ne_bytes());
                });
            });
        });
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.request(libc::RTM_NEWLINK, flags, &body)
    }

    /// Add `addr/prefix` to interface `index`.
    fn new_addr(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut body = vec![libc::AF_INET as u8, prefix, 0, 0];
        body.extend_from_slice(&index.to_ne_bytes());
        attr(&mut body, libc::IFA_LOCAL, &addr.octets());
        attr(&mut body, libc::IFA_ADDRESS, &addr.octets());
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.request(libc::RTM_NEWADDR, flags, &body)
    }

    /// A policy routing rule (IPv4) at `priority` for destinations `dst`, optionally only
    /// for `proto` to port `dport`, with `action` (`FR_ACT_*`; `table` for `FR_ACT_TO_TBL`).
    fn new_rule(
        &mut self,
        priority: u32,
        dst: (Ipv4Addr, u8),
        port: Option<(u8, u16)>,
        action: u8,
        table: u8,
    ) -> io::Result<()> {
        // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags.
        let mut body = vec![libc::AF_INET as u8, dst.1, 0, 0, table, 0, 0, action];
        body.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut body, FRA_PRIORITY, &priority.to_ne_bytes());
        if dst.1 > 0 {
            attr(&mut body, FRA_DST, &dst.0.octets());
        }
        if let Some((proto, dport)) = port {
            attr(&mut body, FRA_IP_PROTO, &[proto]);
            let mut range = dport.to_ne_bytes().to_vec();
            range.extend_from_slice(&dport.to_ne_bytes());
            attr(&mut body, FRA_DPORT_RANGE, &range);
        }
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.request(RTM_NEWRULE, flags, &body)
    }

    /// The default route via `gateway` on interface `index`.
    fn default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        let mut body = vec![
            libc::AF_INET as u8,
            0, // dst_len
            0, // src_len
            0, // tos
            libc::RT_TABLE_MAIN,
            libc::RTPROT_BOOT,
            libc::RT_SCOPE_UNIVERSE,
            libc::RTN_UNICAST,
        ];
        body.extend_from_slice(&0u32.to_ne_bytes()); // flags
        attr(&mut body, libc::RTA_GATEWAY, &gateway.octets());
        attr(&mut body, libc::RTA_OIF, &index.to_ne_bytes());
        let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        self.request(libc::RTM_NEWROUTE, flags, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_disjoint_30s_in_the_range() {
        assert_eq!(
            slot_addresses(0),
            (Ipv4Addr::new(198, 19, 0, 1), Ipv4Addr::new(198, 19, 0, 2))
        );
        assert_eq!(
            slot_addresses(SLOTS - 1),
            (
                Ipv4Addr::new(198, 19, 255, 253),
                Ipv4Addr::new(198, 19, 255, 254)
            )
        );
        assert_eq!(slot_addresses(SLOTS), slot_addresses(0));
        assert_eq!(host_if_name(0x3fff), "sous3fff");
        assert!(host_if_name(SLOTS - 1).len() <= 15);
    }

    #[test]
    fn nested_attributes_carry_their_padded_length() {
        let mut b = Vec::new();
        nested(&mut b, 18, |b| attr(b, 1, b"veth"));
        assert_eq!(b.len(), 12);
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 12);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 8);
        let mut c = Vec::new();
        attr(&mut c, 3, &cstr("eth0"));
        // 4 header + 5 payload, padded to 8 + 4.
        assert_eq!(c.len(), 12);
        assert_eq!(u16::from_ne_bytes([c[0], c[1]]), 9);
    }

    #[test]
    fn the_rootless_blocklist_covers_private_ranges_and_the_host_but_keeps_dns() {
        let host = [
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(203, 0, 113, 9),
            Ipv4Addr::LOCALHOST,
        ];
        let ns = [
            Ipv4Addr::new(10, 255, 255, 53),
            Ipv4Addr::new(127, 0, 0, 53),
        ];
        let b = Blocklist::for_host(&host, &ns);
        let refused = |a: Ipv4Addr| b.blocked.iter().any(|&(n, l)| in_prefix(a, n, l));
        for a in [
            [169, 254, 169, 254],
            [10, 0, 2, 2],
            [10, 0, 2, 3],
            [172, 31, 0, 1],
            [192, 168, 1, 1],
            [100, 100, 100, 200],
            [203, 0, 113, 9],
        ] {
            assert!(refused(Ipv4Addr::from(a)), "{a:?}");
        }
        for a in [
            [198, 18, 0, 2],
            [1, 1, 1, 1],
            [172, 32, 0, 1],
            [100, 128, 0, 1],
        ] {
            assert!(!refused(Ipv4Addr::from(a)), "{a:?}");
        }
        // The host address already in 10/8 adds no rule; loopback is never a rule.
        assert_eq!(b.blocked.len(), BLOCKED_RANGES.len() + 1);
        assert_eq!(b.dns, vec![SLIRP_DNS, Ipv4Addr::new(10, 255, 255, 53)]);
        assert_eq!(
            nameservers("# x\nnameserver 10.0.0.2\nnameserver ::1\nsearch a\n"),
            vec![Ipv4Addr::new(10, 0, 0, 2)]
        );
    }

    #[test]
    fn slirp_args_carry_the_hardening_before_the_target() {
        let a = slirp_args(42, 5, 6, &["--enable-seccomp".to_string()]);
        assert!(a.contains(&"--disable-host-loopback".to_string()));
        let at = |x: &str| a.iter().position(|y| y == x).unwrap();
        assert!(at("--enable-seccomp") < at("42"));
        assert_eq!(&a[a.len() - 2..], ["42", "tap0"]);
    }

    #[test]
    fn the_firewall_matches_the_range_and_prefix() {
        let range = format!("{}/{}", ENV_RANGE.0, ENV_RANGE.1);
        assert!(FIREWALL.contains(&range));
        assert!(FIREWALL.contains(&format!("{HOST_IF_PREFIX}+")));
    }
}

// --- rootless outbound networking -----------------------------------------------------------

/// Rootless outbound networking for one environment: a `slirp4netns` (a user-mode TCP/IP
/// stack; Debian package `slirp4netns`) attached to the namespaces of the environment's init,
/// where it makes `tap0` (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3) and turns the
/// environment's connections into ordinary sockets of Sous's user on the host. With
/// `--disable-host-loopback` the gateway does not lead to the host's loopback, so Sous's API
/// and loopback services stay out of reach. It runs as Sous's user, in the environment's
/// cgroups (charged to it, killed with it), confined by its own `--enable-seccomp` when it
/// has it (see [`slirp_hardening`]), and ends with the environment (dropping this kills
/// it; its exit descriptor also ends it if Sous dies).
#[derive(Debug)]
pub struct Slirp {
    child: std::process::Child,
    /// slirp4netns exits when this, the write end of its `--exit-fd` pipe, closes.
    _exit: OwnedFd,
}

/// The device slirp4netns opens to make `tap0` (it must be usable by Sous's user).
pub const TUN_DEVICE: &str = "/dev/net/tun";

/// How long a `slirp4netns` gets to configure the namespace.
const SLIRP_READY: std::time::Duration = std::time::Duration::from_secs(10);

/// The `slirp4netns` program, when installed.
pub fn slirp_program() -> Option<std::path::PathBuf> {
    program("slirp4netns")
}

/// The confinement options of `slirp4netns` its `--help` lists, asked once at start:
/// `--enable-seccomp` (a system call filter). Older versions lack it and run unconfined.
/// `--enable-sandbox` (its own mount namespace with an empty root) is not used: run by an
/// unprivileged user it switches to uid 0 of the environment's user namespace to make that
/// mount namespace, and the environment's user namespace maps no uid 0 (only the function's
/// 993: nothing inside may become root), so slirp4netns fails ("setegid(0)").
pub fn slirp_hardening(program: &Path) -> Vec<String> {
    let help = Command::new(program)
        .arg("--help")
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let mut t = String::from_utf8_lossy(&o.stdout).into_owned();
            t.push_str(&String::from_utf8_lossy(&o.stderr));
            t
        })
        .unwrap_or_default();
    ["--enable-seccomp"]
        .into_iter()
        .filter(|o| help.contains(o))
        .map(String::from)
        .collect()
}

/// The arguments of a `slirp4netns` for the namespaces of process `pid`, with `hardening`
/// (from [`slirp_hardening`]).
pub fn slirp_args(pid: u32, ready_fd: i32, exit_fd: i32, hardening: &[String]) -> Vec<String> {
    let mut args = vec![
        "--configure".into(),
        "--mtu=65520".into(),
        "--disable-host-loopback".into(),
    ];
    args.extend(hardening.iter().cloned());
    args.extend([
        format!("--ready-fd={ready_fd}"),
        format!("--exit-fd={exit_fd}"),
        pid.to_string(),
        "tap0".into(),
    ]);
    args
}

/// What a rootless environment may not reach through slirp4netns, as IPv4 prefixes: cloud
/// instance metadata and every link-local address, the private ranges (RFC 1918, which also
/// hold slirp4netns's own gateway 10.0.2.2 and DNS forwarder 10.0.2.3), shared address space
/// (RFC 6598, 100.64.0.0/10: carrier and cloud internal networks), and "this network".
/// [`Blocklist::for_host`] adds the host's own addresses.
pub const BLOCKED_RANGES: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
];

/// slirp4netns's DNS forwarder inside the environment.
pub const SLIRP_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

const RTM_NEWRULE: u16 = 32;
const FRA_DST: u16 = 1;
const FRA_PRIORITY: u16 = 6;
const FRA_IP_PROTO: u16 = 22;
const FRA_DPORT_RANGE: u16 = 24;
const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_PROHIBIT: u8 = 8;
/// Priority of the first rule [`install_blocklist`] adds (the kernel's own rules are 0, for
/// the local table, and 32766 and 32767, for the main and default tables).
const FIRST_RULE: u32 = 1000;

/// The destinations a rootless environment's own network namespace refuses (see
/// [`install_blocklist`]), computed by Sous for each environment and sent in the init's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Blocklist {
    /// Prefixes no connection may go to.
    pub blocked: Vec<(Ipv4Addr, u8)>,
    /// Name servers the function must still reach on port 53 (TCP and UDP) although they are
    /// in a blocked prefix: those of the environment's `/etc/resolv.conf` and slirp4netns's.
    pub dns: Vec<Ipv4Addr>,
}

impl Blocklist {
    /// [`BLOCKED_RANGES`], the host's own (non-loopback) IPv4 addresses `host`, and port 53
    /// of slirp4netns's forwarder and of the IPv4 `nameservers` the environment is given.
    pub fn for_host(host: &[Ipv4Addr], nameservers: &[Ipv4Addr]) -> Blocklist {
        let mut blocked = BLOCKED_RANGES.to_vec();
        for a in host {
            let covered = blocked.iter().any(|&(net, len)| in_prefix(*a, net, len));
            if !a.is_loopback() && !covered {
                blocked.push((*a, 32));
            }
        }
        let mut dns = vec![SLIRP_DNS];
        for n in nameservers {
            if !n.is_loopback() && !dns.contains(n) {
                dns.push(*n);
            }
        }
        Blocklist { blocked, dns }
    }
}

/// Whether `a` is in `net/len`.
pub fn in_prefix(a: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(net) & mask
}

/// The IPv4 name servers of a resolv.conf.
pub fn nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

/// The host's IPv4 addresses (of the calling thread's network namespace), loopback excluded.
pub fn host_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for ifa in list {
        let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        let a = sin.ip();
        if !a.is_loopback() && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// In the calling thread's network namespace (a rootless environment's, by its init while
/// it holds CAP_NET_ADMIN there, before slirp4netns attaches): policy routing rules that
/// refuse every destination of `b` (`prohibit`: connect and send fail at once with EACCES,
/// no packet leaves the namespace) except port 53 of its name servers. The rules belong to
/// the namespace's user namespace, where the function has no capability: it cannot undo them.
pub fn install_blocklist(b: &Blocklist) -> io::Result<()> {
    let mut nl = Netlink::open()?;
    let mut priority = FIRST_RULE;
    for ns in &b.dns {
        for proto in [libc::IPPROTO_UDP, libc::IPPROTO_TCP] {
            nl.new_rule(
                priority,
                (*ns, 32),
                Some((proto as u8, 53)),
                FR_ACT_TO_TBL,
                libc::RT_TABLE_MAIN,
            )
            .map_err(|e| ctx(&format!("allow DNS to {ns}"), e))?;
            priority += 1;
        }
    }
    for &(net, len) in &b.blocked {
        nl.new_rule(priority, (net, len), None, FR_ACT_PROHIBIT, 0)
            .map_err(|e| ctx(&format!("refuse {net}/{len}"), e))?;
        priority += 1;
    }
    Ok(())
}

impl Slirp {
    /// Start `program` with `hardening` for the network namespace of `pid` (and its user
    /// namespace, which slirp4netns joins: Sous's user owns it) and wait until the interface
    /// is configured. It starts as a member of the environment's cgroups (`cgroup_procs`,
    /// open `cgroup.procs` files): charged to the environment and killed with it.
    pub fn start(
        program: &Path,
        hardening: &[String],
        pid: u32,
        cgroup_procs: &[RawFd],
    ) -> io::Result<Slirp> {
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        let (ready_rd, ready_wr) = syscalls::pipe_cloexec().map_err(io::Error::other)?;
        let (exit_rd, exit_wr) = syscalls::pipe_cloexec().map_err(io::Error::other)?;
        let (r, e) = (ready_wr.as_raw_fd(), exit_rd.as_raw_fd());
        // Its messages go to a memory file, read only when it fails (a pipe nobody reads
        // would block or kill it later).
        let log = syscalls::memfd_with("sous-slirp4netns-log", b"")?;
        let mut cmd = Command::new(program);
        cmd.args(slirp_args(pid, r, e, hardening))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.try_clone()?));
        let procs = cgroup_procs.to_vec();
        // SAFETY: runs in the forked child before exec; it only calls fcntl and write
        // (async-signal-safe) on descriptors the parent holds open until spawn returns, and
        // allocates nothing (`procs` was made before the fork).
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &procs {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                syscalls::clear_cloexec(r)?;
                syscalls::clear_cloexec(e)
            });
        }
        crate::process::detach_with_parent_death(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|err| ctx(&format!("start {}", program.display()), err))?;
        drop(ready_wr);
        drop(exit_rd);
        // slirp4netns writes "1" once tap0 is configured; EOF means it died first.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sous-slirp-ready".into())
            .spawn(move || {
                let mut b = [0u8; 1];
                let _ = tx.send(std::fs::File::from(ready_rd).read(&mut b).ok() == Some(1));
            })?;
        let ready = rx.recv_timeout(SLIRP_READY).unwrap_or(false);
        if !ready {
            let _ = child.kill();
            let _ = child.wait();
            // The child's writes moved the shared offset: read from the start.
            let mut err = String::new();
            let mut f = std::fs::File::from(log);
            let _ = io::Seek::seek(&mut f, io::SeekFrom::Start(0));
            let _ = f.read_to_string(&mut err);
            return Err(io::Error::other(format!(
                "slirp4netns did not configure the environment's network: {}",
                err.trim()
            )));
        }
        Ok(Slirp {
            child,
            _exit: exit_wr,
        })
    }
}

impl Drop for Slirp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
