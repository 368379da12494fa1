//! Sous's firewall and NAT as an nftables table, programmed through `NETLINK_NETFILTER` (no
//! `nft` or `iptables` process).
//!
//! The rules are [`RULES`] (data, shared with the iptables fallback, which renders the same
//! list as `iptables-restore` text). They go into a table of Sous's own, `ip sous-<tag>`, with
//! three base chains (`input`, `forward`: filter at priority 0; `postrouting`: nat at
//! priority 100), so no other table is read or changed. The whole table is replaced in one
//! netlink batch (new table, delete it, new table, its chains and rules: the kernel applies a
//! batch all at once or not at all), so a table a crashed earlier run left is replaced, never
//! doubled.
//!
//! The table is created with `NFT_TABLE_F_OWNER` (Linux 5.12+): it belongs to the netlink
//! socket that made it, which [`Firewall`] keeps open, and the kernel deletes it when that
//! socket closes, that is when Sous exits, however it exits. On older kernels the flag is
//! refused and the table is made without it; [`Firewall`]'s drop deletes it then.
//!
//! Encoding: each message is a `struct nlmsghdr`, a `struct nfgenmsg` (family, version 0,
//! resource id big-endian) and netlink attributes; nftables' integers are big-endian
//! (`include/uapi/linux/netfilter/nf_tables.h`), registers hold data in host order.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

use super::{align4, attr, ENV_RANGE, HOST_IF_PREFIX, NLMSG_HDRLEN};

// --- the rules ------------------------------------------------------------------------------

/// The chain a rule is in: Sous's own, hooked where iptables' built-in chain of the same name
/// is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Input,
    Forward,
    Postrouting,
}

/// What a matching packet gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    /// A TCP reset (the sender sees "connection refused" at once).
    RejectTcpReset,
    /// ICMP destination unreachable, "communication administratively prohibited".
    RejectProhibited,
    /// Source NAT to the outgoing interface's address.
    Masquerade,
}

/// One firewall rule: every condition given must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub chain: Chain,
    /// `Some(true)`: arrives on an environment's veth (a name starting with
    /// [`HOST_IF_PREFIX`]); `Some(false)`: on any other interface.
    pub from_env: Option<bool>,
    /// The same for the interface it leaves by.
    pub to_env: Option<bool>,
    /// Source address in this prefix.
    pub src: Option<(Ipv4Addr, u8)>,
    /// Destination address in this prefix.
    pub dst: Option<(Ipv4Addr, u8)>,
    /// TCP only.
    pub tcp: bool,
    /// Replies only: connection tracking state `established` or `related`.
    pub reply: bool,
    pub action: Action,
}

const ANY: Rule = Rule {
    chain: Chain::Forward,
    from_env: None,
    to_env: None,
    src: None,
    dst: None,
    tcp: false,
    reply: false,
    action: Action::Accept,
};

/// Link-local addresses (cloud instance metadata).
const LINK_LOCAL: (Ipv4Addr, u8) = (Ipv4Addr::new(169, 254, 0, 0), 16);

/// The firewall and NAT of outbound networking, in order (first match wins within a chain):
/// - from an environment to the host itself: refused (a TCP reset, else ICMP prohibited),
///   whatever host address it targets, the gateway included;
/// - from an environment to another environment, to link-local addresses (instance
///   metadata) or into the environments' range: refused;
/// - from an environment with a source address of the range: forwarded; anything else from
///   an environment: dropped (no spoofed sources);
/// - into an environment: only replies of connections it opened;
/// - from the range out of any interface but the environments': masqueraded.
pub const RULES: &[Rule] = &[
    Rule {
        chain: Chain::Input,
        from_env: Some(true),
        tcp: true,
        action: Action::RejectTcpReset,
        ..ANY
    },
    Rule {
        chain: Chain::Input,
        from_env: Some(true),
        action: Action::RejectProhibited,
        ..ANY
    },
    Rule {
        from_env: Some(true),
        to_env: Some(true),
        action: Action::RejectProhibited,
        ..ANY
    },
    Rule {
        from_env: Some(true),
        dst: Some(LINK_LOCAL),
        action: Action::RejectProhibited,
        ..ANY
    },
    Rule {
        from_env: Some(true),
        dst: Some(ENV_RANGE),
        action: Action::RejectProhibited,
        ..ANY
    },
    Rule {
        from_env: Some(true),
        src: Some(ENV_RANGE),
        action: Action::Accept,
        ..ANY
    },
    Rule {
        from_env: Some(true),
        action: Action::Drop,
        ..ANY
    },
    Rule {
        to_env: Some(true),
        reply: true,
        action: Action::Accept,
        ..ANY
    },
    Rule {
        to_env: Some(true),
        action: Action::Drop,
        ..ANY
    },
    Rule {
        chain: Chain::Postrouting,
        src: Some(ENV_RANGE),
        to_env: Some(false),
        action: Action::Masquerade,
        ..ANY
    },
];

/// The name of the table of the Sous whose sandbox tag is `tag`.
pub fn table_name(tag: &str) -> String {
    format!("sous-{tag}")
}

// --- netlink constants (linux/netfilter/nfnetlink.h, nf_tables.h, netfilter.h) ---------------

const NLA_F_NESTED: u16 = 0x8000;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
/// `NFPROTO_IPV4`: the table's family.
const FAMILY_IP: u8 = 2;

const NFT_MSG_NEWTABLE: u8 = 0;
const NFT_MSG_GETTABLE: u8 = 1;
const NFT_MSG_DELTABLE: u8 = 2;
const NFT_MSG_NEWCHAIN: u8 = 3;
const NFT_MSG_GETCHAIN: u8 = 4;
const NFT_MSG_NEWRULE: u8 = 6;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
/// The table belongs to the netlink socket that made it and goes when that socket closes.
const NFT_TABLE_F_OWNER: u32 = 2;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NF_INET_LOCAL_IN: u32 = 1;
const NF_INET_FORWARD: u32 = 2;
const NF_INET_POST_ROUTING: u32 = 4;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;

/// The 16-byte register 1 (`NFT_REG_1`); `NFT_REG_VERDICT` is 0.
const REG_1: u32 = 1;
const REG_VERDICT: u32 = 0;

const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;

const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
/// Offsets of the addresses in the IPv4 header.
const IPV4_SADDR: u32 = 12;
const IPV4_DADDR: u32 = 16;

const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;

const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;

const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
/// `NF_CT_STATE_BIT(IP_CT_ESTABLISHED)` and `NF_CT_STATE_BIT(IP_CT_RELATED)`.
const CT_ESTABLISHED_OR_RELATED: u32 = (1 << 1) | (1 << 2);

const NFTA_REJECT_TYPE: u16 = 1;
const NFTA_REJECT_ICMP_CODE: u16 = 2;
const NFT_REJECT_ICMP_UNREACH: u32 = 0;
const NFT_REJECT_TCP_RST: u32 = 1;
/// `ICMP_PKT_FILTERED`: "communication administratively prohibited" (code 13).
const ICMP_PKT_FILTERED: u8 = 13;

// --- encoding -------------------------------------------------------------------------------

/// Append a nested attribute (flagged `NLA_F_NESTED`, as nftables expects).
fn nest(buf: &mut Vec<u8>, ty: u16, f: impl FnOnce(&mut Vec<u8>)) {
    super::nested(buf, ty | NLA_F_NESTED, f);
}

fn be32(buf: &mut Vec<u8>, ty: u16, v: u32) {
    attr(buf, ty, &v.to_be_bytes());
}

fn string(buf: &mut Vec<u8>, ty: u16, s: &str) {
    attr(buf, ty, &super::cstr(s));
}

/// A batch of nftables messages, framed by `NFNL_MSG_BATCH_BEGIN` and `_END`.
#[derive(Debug)]
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Sequence numbers of the messages that ask for an acknowledgement.
    acked: Vec<u32>,
}

impl Batch {
    fn new(first_seq: u32) -> Batch {
        let mut b = Batch {
            buf: Vec::new(),
            seq: first_seq,
            acked: Vec::new(),
        };
        b.message(NFNL_MSG_BATCH_BEGIN, 0, 0, NFNL_SUBSYS_NFTABLES, |_| {});
        b
    }

    /// Append one message: header, `nfgenmsg`, and the attributes `f` writes.
    fn message(
        &mut self,
        ty: u16,
        flags: u16,
        family: u8,
        res_id: u16,
        f: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        let seq = self.seq;
        self.seq += 1;
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf
            .extend_from_slice(&(flags | libc::NLM_F_REQUEST as u16).to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        f(&mut self.buf);
        align4(&mut self.buf);
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        seq
    }

    /// An nftables message with `NLM_F_ACK`.
    fn nft(&mut self, msg: u8, flags: u16, f: impl FnOnce(&mut Vec<u8>)) {
        let ty = (NFNL_SUBSYS_NFTABLES << 8) | msg as u16;
        let seq = self.message(ty, flags | libc::NLM_F_ACK as u16, FAMILY_IP, 0, f);
        self.acked.push(seq);
    }

    fn finish(mut self) -> (Vec<u8>, Vec<u32>) {
        self.message(NFNL_MSG_BATCH_END, 0, 0, NFNL_SUBSYS_NFTABLES, |_| {});
        (self.buf, self.acked)
    }
}

/// The batch that replaces table `table` with [`RULES`] (owned by the sending socket when
/// `owned`).
fn replace_batch(table: &str, owned: bool, first_seq: u32) -> (Vec<u8>, Vec<u32>) {
    let create = libc::NLM_F_CREATE as u16;
    let mut b = Batch::new(first_seq);
    // Adding an existing table is no error; deleting it then removes whatever it held.
    b.nft(NFT_MSG_NEWTABLE, create, |m| {
        string(m, NFTA_TABLE_NAME, table)
    });
    b.nft(NFT_MSG_DELTABLE, 0, |m| string(m, NFTA_TABLE_NAME, table));
    b.nft(NFT_MSG_NEWTABLE, create, |m| {
        string(m, NFTA_TABLE_NAME, table);
        if owned {
            be32(m, NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
        }
    });
    for chain in [Chain::Input, Chain::Forward, Chain::Postrouting] {
        b.nft(NFT_MSG_NEWCHAIN, create, |m| chain_attrs(m, table, chain));
    }
    for rule in RULES {
        let flags = create | libc::NLM_F_APPEND as u16;
        b.nft(NFT_MSG_NEWRULE, flags, |m| rule_attrs(m, table, rule));
    }
    b.finish()
}

/// The batch that deletes table `table`.
fn delete_batch(table: &str, first_seq: u32) -> (Vec<u8>, Vec<u32>) {
    let mut b = Batch::new(first_seq);
    b.nft(NFT_MSG_DELTABLE, 0, |m| string(m, NFTA_TABLE_NAME, table));
    b.finish()
}

impl Chain {
    fn name(self) -> &'static str {
        match self {
            Chain::Input => "input",
            Chain::Forward => "forward",
            Chain::Postrouting => "postrouting",
        }
    }
}

/// A base chain: its hook, priority (filter 0, source NAT 100), type, and policy accept (what
/// no rule drops passes on to the host's other tables).
fn chain_attrs(m: &mut Vec<u8>, table: &str, chain: Chain) {
    let (hook, priority, ty) = match chain {
        Chain::Input => (NF_INET_LOCAL_IN, 0i32, "filter"),
        Chain::Forward => (NF_INET_FORWARD, 0, "filter"),
        Chain::Postrouting => (NF_INET_POST_ROUTING, 100, "nat"),
    };
    string(m, NFTA_CHAIN_TABLE, table);
    string(m, NFTA_CHAIN_NAME, chain.name());
    nest(m, NFTA_CHAIN_HOOK, |h| {
        be32(h, NFTA_HOOK_HOOKNUM, hook);
        be32(h, NFTA_HOOK_PRIORITY, priority as u32);
    });
    be32(m, NFTA_CHAIN_POLICY, NF_ACCEPT);
    string(m, NFTA_CHAIN_TYPE, ty);
}

fn rule_attrs(m: &mut Vec<u8>, table: &str, rule: &Rule) {
    string(m, NFTA_RULE_TABLE, table);
    string(m, NFTA_RULE_CHAIN, rule.chain.name());
    nest(m, NFTA_RULE_EXPRESSIONS, |e| expressions(e, rule));
}

/// One expression: its name and the attributes `f` writes.
fn expr(e: &mut Vec<u8>, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
    nest(e, NFTA_LIST_ELEM, |el| {
        string(el, NFTA_EXPR_NAME, name);
        nest(el, NFTA_EXPR_DATA, f);
    });
}

/// Compare register 1 with `data` (its first `data.len()` bytes).
fn cmp(e: &mut Vec<u8>, op: u32, data: &[u8]) {
    expr(e, "cmp", |d| {
        be32(d, NFTA_CMP_SREG, REG_1);
        be32(d, NFTA_CMP_OP, op);
        nest(d, NFTA_CMP_DATA, |v| attr(v, NFTA_DATA_VALUE, data));
    });
}

fn meta(e: &mut Vec<u8>, key: u32) {
    expr(e, "meta", |d| {
        be32(d, NFTA_META_DREG, REG_1);
        be32(d, NFTA_META_KEY, key);
    });
}

/// Register 1 = (register 1 & `mask`) ^ 0.
fn mask(e: &mut Vec<u8>, mask: &[u8]) {
    expr(e, "bitwise", |d| {
        be32(d, NFTA_BITWISE_SREG, REG_1);
        be32(d, NFTA_BITWISE_DREG, REG_1);
        be32(d, NFTA_BITWISE_LEN, mask.len() as u32);
        nest(d, NFTA_BITWISE_MASK, |v| attr(v, NFTA_DATA_VALUE, mask));
        nest(d, NFTA_BITWISE_XOR, |v| {
            attr(v, NFTA_DATA_VALUE, &vec![0; mask.len()])
        });
    });
}

/// The interface name starts (or, `equal` false, does not start) with [`HOST_IF_PREFIX`]:
/// the comparison covers only the prefix's bytes (as `nft`'s `"sous*"`).
fn ifname(e: &mut Vec<u8>, key: u32, equal: bool) {
    meta(e, key);
    let op = if equal { NFT_CMP_EQ } else { NFT_CMP_NEQ };
    cmp(e, op, HOST_IF_PREFIX.as_bytes());
}

/// The IPv4 address at `offset` of the header is in `net/len`: the whole bytes of the prefix
/// are loaded, a partial last byte is masked.
fn prefix(e: &mut Vec<u8>, offset: u32, (net, len): (Ipv4Addr, u8)) {
    let bytes = usize::from(len.min(32)).div_ceil(8);
    expr(e, "payload", |d| {
        be32(d, NFTA_PAYLOAD_DREG, REG_1);
        be32(d, NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER);
        be32(d, NFTA_PAYLOAD_OFFSET, offset);
        be32(d, NFTA_PAYLOAD_LEN, bytes as u32);
    });
    let m = (u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0))
    .to_be_bytes();
    let m = &m[..bytes];
    if len % 8 != 0 {
        mask(e, m);
    }
    let net: Vec<u8> = net.octets()[..bytes]
        .iter()
        .zip(m)
        .map(|(a, b)| a & b)
        .collect();
    cmp(e, NFT_CMP_EQ, &net);
}

fn verdict(e: &mut Vec<u8>, code: u32) {
    expr(e, "immediate", |d| {
        be32(d, 1, REG_VERDICT); // NFTA_IMMEDIATE_DREG
        nest(d, 2, |v| {
            // NFTA_IMMEDIATE_DATA
            nest(v, NFTA_DATA_VERDICT, |vd| be32(vd, NFTA_VERDICT_CODE, code));
        });
    });
}

/// A rule's expressions: its matches, then its action.
fn expressions(e: &mut Vec<u8>, r: &Rule) {
    if let Some(from) = r.from_env {
        ifname(e, NFT_META_IIFNAME, from);
    }
    if let Some(p) = r.src {
        prefix(e, IPV4_SADDR, p);
    }
    if let Some(p) = r.dst {
        prefix(e, IPV4_DADDR, p);
    }
    if let Some(to) = r.to_env {
        ifname(e, NFT_META_OIFNAME, to);
    }
    if r.tcp {
        meta(e, NFT_META_L4PROTO);
        cmp(e, NFT_CMP_EQ, &[libc::IPPROTO_TCP as u8]);
    }
    if r.reply {
        expr(e, "ct", |d| {
            be32(d, NFTA_CT_DREG, REG_1);
            be32(d, NFTA_CT_KEY, NFT_CT_STATE);
        });
        mask(e, &CT_ESTABLISHED_OR_RELATED.to_ne_bytes());
        cmp(e, NFT_CMP_NEQ, &[0; 4]);
    }
    match r.action {
        Action::Accept => verdict(e, NF_ACCEPT),
        Action::Drop => verdict(e, NF_DROP),
        Action::RejectTcpReset => expr(e, "reject", |d| {
            be32(d, NFTA_REJECT_TYPE, NFT_REJECT_TCP_RST);
        }),
        Action::RejectProhibited => expr(e, "reject", |d| {
            be32(d, NFTA_REJECT_TYPE, NFT_REJECT_ICMP_UNREACH);
            attr(d, NFTA_REJECT_ICMP_CODE, &[ICMP_PKT_FILTERED]);
        }),
        Action::Masquerade => expr(e, "masq", |_| {}),
    }
}

// --- the socket -----------------------------------------------------------------------------

/// A `NETLINK_NETFILTER` socket.
#[derive(Debug)]
struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    fn open() -> io::Result<Socket> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )?;
        Ok(Socket { fd, seq: 1 })
    }

    /// Send a batch made by `make` (given the first sequence number) and wait for the
    /// acknowledgement of each of its messages; the first error the kernel reports fails it.
    fn send_batch(&mut self, make: impl FnOnce(u32) -> (Vec<u8>, Vec<u32>)) -> io::Result<()> {
        let (msg, mut pending) = make(self.seq);
        self.seq += pending.len() as u32 + 2;
        let sent = socket::send(self.fd.as_raw_fd(), &msg, MsgFlags::empty())?;
        if sent != msg.len() {
            return Err(io::Error::other("short send to the netfilter socket"));
        }
        // An error carries the failed message whole: room for the largest rule.
        let mut buf = vec![0u8; 1 << 16];
        while !pending.is_empty() {
            let n = match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r?,
            };
            for (seq, code) in acks(&buf[..n])? {
                pending.retain(|&s| s != seq);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
        }
        Ok(())
    }
}

/// The acknowledgements (`NLMSG_ERROR`: sequence number, 0 or a negative errno) in a reply.
fn acks(reply: &[u8]) -> io::Result<Vec<(u32, i32)>> {
    let word =
        |at: usize| u32::from_ne_bytes([reply[at], reply[at + 1], reply[at + 2], reply[at + 3]]);
    let mut out = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= reply.len() {
        let len = word(off) as usize;
        if len < NLMSG_HDRLEN || off + len > reply.len() {
            return Err(io::Error::other("malformed netlink reply"));
        }
        let ty = u16::from_ne_bytes([reply[off + 4], reply[off + 5]]);
        if ty == libc::NLMSG_ERROR as u16 && len >= NLMSG_HDRLEN + 4 {
            out.push((word(off + 8), word(off + NLMSG_HDRLEN) as i32));
        }
        off += (len + 3) & !3;
    }
    Ok(out)
}

/// Whether the `ip` table `name` exists (in the calling thread's network namespace).
pub fn table_exists(name: &str) -> io::Result<bool> {
    let mut socket = Socket::open()?;
    let seq = socket.seq;
    socket.seq += 1;
    let mut b = Batch {
        buf: Vec::new(),
        seq,
        acked: Vec::new(),
    };
    // A lookup is not part of a batch: one message, acknowledged after its answer.
    b.nft(NFT_MSG_GETTABLE, 0, |m| string(m, NFTA_TABLE_NAME, name));
    socket::send(socket.fd.as_raw_fd(), &b.buf, MsgFlags::empty())?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match socket::recv(socket.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r?,
        };
        if let Some(&(_, code)) = acks(&buf[..n])?.iter().find(|(s, _)| *s == seq) {
            return match code {
                0 => Ok(true),
                c if -c == libc::ENOENT => Ok(false),
                c => Err(io::Error::from_raw_os_error(-c)),
            };
        }
    }
}

/// The netlink attributes in `b`: (type without its flags, payload).
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        if len < 4 || len > b.len() {
            break;
        }
        out.push((u16::from_ne_bytes([b[2], b[3]]) & 0x3fff, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

fn be32_of(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.get(..4)?.try_into().ok()?))
}

/// The base chains of other tables than Sous's (IPv4 or `inet`) on the forward hook whose policy is
/// drop, as `family table chain`: they drop what Sous's table lets through (in nftables an
/// accept ends only its own chain), so environments' outbound traffic dies there unless they
/// accept it. Docker sets such a policy (`iptables -P FORWARD DROP`, seen here when its
/// iptables is the nft variant). Chains of iptables-legacy are not seen.
pub fn forward_drop_policies() -> io::Result<Vec<String>> {
    let mut socket = Socket::open()?;
    let mut b = Batch {
        buf: Vec::new(),
        seq: socket.seq,
        acked: Vec::new(),
    };
    socket.seq += 1;
    let dump = (libc::NLM_F_ROOT | libc::NLM_F_MATCH) as u16;
    b.message(
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN as u16,
        dump,
        0,
        0,
        |_| {},
    );
    socket::send(socket.fd.as_raw_fd(), &b.buf, MsgFlags::empty())?;
    let mut found = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match socket::recv(socket.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r?,
        };
        let reply = &buf[..n];
        let mut off = 0;
        while off + NLMSG_HDRLEN <= reply.len() {
            let len =
                u32::from_ne_bytes([reply[off], reply[off + 1], reply[off + 2], reply[off + 3]])
                    as usize;
            if len < NLMSG_HDRLEN || off + len > reply.len() {
                return Err(io::Error::other("malformed netlink reply"));
            }
            let ty = u16::from_ne_bytes([reply[off + 4], reply[off + 5]]);
            let msg = &reply[off..off + len];
            off += (len + 3) & !3;
            match ty {
                t if t == libc::NLMSG_DONE as u16 => return Ok(found),
                t if t == libc::NLMSG_ERROR as u16 => {
                    let code = acks(msg)?.first().map_or(0, |a| a.1);
                    return Err(io::Error::from_raw_os_error(-code));
                }
                t if t == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN as u16 => {
                    if let Some(c) = forward_drop_chain(msg) {
                        found.push(c);
                    }
                }
                _ => {}
            }
        }
    }
}

/// `family table chain` when the NEWCHAIN message `msg` is a forward-hook base chain with
/// policy drop of an IPv4 or `inet` table that is not a Sous's (see [`table_name`]).
fn forward_drop_chain(msg: &[u8]) -> Option<String> {
    let family = match *msg.get(NLMSG_HDRLEN)? {
        FAMILY_IP => "ip",
        1 => "inet",
        _ => return None,
    };
    let (mut table, mut name, mut hook, mut policy) = (None, None, None, None);
    let text =
        |p: &[u8]| String::from_utf8_lossy(p.split(|&c| c == 0).next().unwrap_or(p)).into_owned();
    for (ty, payload) in attributes(msg.get(NLMSG_HDRLEN + 4..)?) {
        match ty {
            NFTA_CHAIN_TABLE => table = Some(text(payload)),
            NFTA_CHAIN_NAME => name = Some(text(payload)),
            NFTA_CHAIN_POLICY => policy = be32_of(payload),
            NFTA_CHAIN_HOOK => {
                hook = attributes(payload)
                    .into_iter()
                    .find(|(t, _)| *t == NFTA_HOOK_HOOKNUM)
                    .and_then(|(_, p)| be32_of(p))
            }
            _ => {}
        }
    }
    let table = table?;
    let ours = table.starts_with(&table_name(""));
    (hook == Some(NF_INET_FORWARD) && policy == Some(NF_DROP) && !ours)
        .then(|| format!("{family} {table} {}", name.unwrap_or_default()))
}

/// Sous's nftables table, installed; it goes when this is dropped (or Sous exits).
#[derive(Debug)]
pub struct Firewall {
    /// The socket that owns the table (with `NFT_TABLE_F_OWNER`).
    socket: Socket,
    table: String,
    /// Whether the kernel deletes the table when `socket` closes.
    owned: bool,
}

impl Firewall {
    /// Replace table `table` (of family `ip`) with [`RULES`].
    pub fn install(table: &str) -> io::Result<Firewall> {
        let mut socket = Socket::open()?;
        let owned = match socket.send_batch(|seq| replace_batch(table, true, seq)) {
            Ok(()) => true,
            // Before Linux 5.12 the owner flag is unknown. The failed batch's other replies
            // may still be queued: start over on a new socket.
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                socket = Socket::open()?;
                socket.send_batch(|seq| replace_batch(table, false, seq))?;
                false
            }
            Err(e) => return Err(e),
        };
        Ok(Firewall {
            socket,
            table: table.to_string(),
            owned,
        })
    }

    /// The table's name (family `ip`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Whether the table goes away with this process even if it is killed.
    pub fn owned_by_process(&self) -> bool {
        self.owned
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if !self.owned {
            let table = self.table.clone();
            let _ = self.socket.send_batch(|seq| delete_batch(&table, seq));
        }
        // Owned: closing the socket deletes the table.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The messages of a batch: (type, flags, seq, family, res_id, attributes).
    fn messages(b: &[u8]) -> Vec<(u16, u16, u32, u8, u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < b.len() {
            let len = u32_at(b, off) as usize;
            out.push((
                u16_at(b, off + 4),
                u16_at(b, off + 6),
                u32_at(b, off + 8),
                b[off + 16],
                u16::from_be_bytes([b[off + 18], b[off + 19]]),
                b[off + 20..off + len].to_vec(),
            ));
            off += (len + 3) & !3;
        }
        out
    }

    #[test]
    fn a_delete_batch_is_framed_and_encoded_byte_for_byte() {
        let (b, acked) = delete_batch("sous-ab", 7);
        let ne16 = |v: u16| v.to_ne_bytes();
        let ne32 = |v: u32| v.to_ne_bytes();
        let mut want = Vec::new();
        // Batch begin: 20 bytes, type 0x10, NLM_F_REQUEST, seq 7, AF_UNSPEC, v0, res_id 10.
        want.extend(ne32(20));
        want.extend(ne16(0x10));
        want.extend(ne16(0x1));
        want.extend(ne32(7));
        want.extend(ne32(0));
        want.extend([0, 0, 0, 10]);
        // DELTABLE: 20 + attribute (4 + "sous-ab\0" = 12) = 32 bytes; type 10 << 8 | 2,
        // NLM_F_REQUEST | NLM_F_ACK, seq 8, NFPROTO_IPV4, v0, res_id 0.
        want.extend(ne32(32));
        want.extend(ne16(0x0a02));
        want.extend(ne16(0x5));
        want.extend(ne32(8));
        want.extend(ne32(0));
        want.extend([2, 0, 0, 0]);
        want.extend(ne16(12));
        want.extend(ne16(1));
        want.extend(b"sous-ab\0");
        // Batch end.
        want.extend(ne32(20));
        want.extend(ne16(0x11));
        want.extend(ne16(0x1));
        want.extend(ne32(9));
        want.extend(ne32(0));
        want.extend([0, 0, 0, 10]);
        assert_eq!(b, want);
        assert_eq!(acked, vec![8]);
    }

    #[test]
    fn a_prefix_match_loads_the_prefix_bytes_and_masks_a_partial_byte() {
        let mut e = Vec::new();
        prefix(&mut e, IPV4_DADDR, (Ipv4Addr::new(169, 254, 0, 0), 16));
        // payload (4 u32 attributes) then cmp with the 2 bytes 169.254: no bitwise.
        let text = String::from_utf8_lossy(&e).into_owned();
        assert!(text.contains("payload") && text.contains("cmp") && !text.contains("bitwise"));
        assert!(e.windows(2).any(|w| w == [169, 254]));
        // The payload expression loads 2 bytes (NFTA_PAYLOAD_LEN, big-endian) at offset 16.
        let attr_be = |ty: u16, v: u32| -> Vec<u8> {
            [8u16.to_ne_bytes(), ty.to_ne_bytes()]
                .concat()
                .into_iter()
                .chain(v.to_be_bytes())
                .collect()
        };
        assert!(e.windows(8).any(|w| w == attr_be(NFTA_PAYLOAD_OFFSET, 16)));
        assert!(e.windows(8).any(|w| w == attr_be(NFTA_PAYLOAD_LEN, 2)));
        let mut f = Vec::new();
        prefix(&mut f, IPV4_SADDR, (Ipv4Addr::new(10, 64, 0, 0), 10));
        let text = String::from_utf8_lossy(&f).into_owned();
        assert!(text.contains("bitwise"));
        // Mask 255.192, network 10.64.
        assert!(f.windows(2).any(|w| w == [255, 192]));
        assert!(f.windows(2).any(|w| w == [10, 64]));
    }

    #[test]
    fn the_replace_batch_recreates_the_table_then_its_chains_and_rules() {
        let (b, acked) = replace_batch("sous-1", true, 1);
        let m = messages(&b);
        let types: Vec<u16> = m.iter().map(|x| x.0).collect();
        let nft = |t: u8| (NFNL_SUBSYS_NFTABLES << 8) | t as u16;
        let mut want = vec![
            NFNL_MSG_BATCH_BEGIN,
            nft(NFT_MSG_NEWTABLE),
            nft(NFT_MSG_DELTABLE),
            nft(NFT_MSG_NEWTABLE),
            nft(NFT_MSG_NEWCHAIN),
            nft(NFT_MSG_NEWCHAIN),
            nft(NFT_MSG_NEWCHAIN),
        ];
        want.extend(RULES.iter().map(|_| nft(NFT_MSG_NEWRULE)));
        want.push(NFNL_MSG_BATCH_END);
        assert_eq!(types, want);
        // Sequence numbers run on; every nftables message asks for an ack.
        let seqs: Vec<u32> = m.iter().map(|x| x.2).collect();
        assert_eq!(seqs, (1..=want.len() as u32).collect::<Vec<_>>());
        assert_eq!(acked, seqs[1..seqs.len() - 1].to_vec());
        // The second NEWTABLE carries the owner flag (attribute 2, big-endian 2).
        let owner = [8, 0, 2, 0, 0, 0, 0, 2];
        let owner: Vec<u8> = [8u16.to_ne_bytes(), 2u16.to_ne_bytes()]
            .concat()
            .into_iter()
            .chain(owner[4..].iter().copied())
            .collect();
        assert!(m[3].5.ends_with(&owner));
        assert!(!m[1].5.ends_with(&owner));
        // The postrouting chain: nat, hook 4, priority 100.
        let post = &m[6].5;
        assert!(post.windows(4).any(|w| w == b"nat\0"));
        assert!(post.windows(4).any(|w| w == 100u32.to_be_bytes()));
        // Every rule names the table and a chain; the last masquerades.
        for r in &m[7..m.len() - 1] {
            assert!(r.5.windows(7).any(|w| w == b"sous-1\0"));
        }
        assert!(m[m.len() - 2].5.windows(5).any(|w| w == b"masq\0"));
    }

    #[test]
    fn acks_are_read_with_their_sequence_numbers_and_errors() {
        let mut reply = Vec::new();
        for (seq, code) in [(5u32, 0i32), (6, -libc::EPERM)] {
            reply.extend(36u32.to_ne_bytes());
            reply.extend((libc::NLMSG_ERROR as u16).to_ne_bytes());
            reply.extend(0u16.to_ne_bytes());
            reply.extend(seq.to_ne_bytes());
            reply.extend(0u32.to_ne_bytes());
            reply.extend(code.to_ne_bytes());
            reply.extend([0; 16]);
        }
        assert_eq!(acks(&reply).unwrap(), vec![(5, 0), (6, -libc::EPERM)]);
        assert_eq!(acks(&reply[..36]).unwrap(), vec![(5, 0)]);
        assert!(acks(&reply[..30]).is_err());
        let mut bad = reply.clone();
        bad[0] = 200;
        assert!(acks(&bad).is_err());
    }

    /// The kernel takes the batch: in a network namespace of its own (so the host's tables
    /// are untouched), the table appears, a second install replaces it, and it goes when its
    /// owner is dropped. Needs root (CAP_NET_ADMIN), as `sous serve` with outbound does.
    #[test]
    fn the_kernel_takes_the_table_and_removes_it_with_its_owner() {
        assert_eq!(
            crate::syscalls::geteuid(),
            0,
            "this test programs nftables in a new network namespace: run it as root"
        );
        std::thread::spawn(|| {
            crate::syscalls::unshare_net_thread().unwrap();
            let name = table_name("unit-test");
            assert!(!table_exists(&name).unwrap());
            let fw = Firewall::install(&name).unwrap();
            assert!(fw.owned_by_process(), "Linux 5.12+ takes NFT_TABLE_F_OWNER");
            assert!(table_exists(&name).unwrap());
            drop(fw);
            assert!(!table_exists(&name).unwrap());
            // Unowned (as on older kernels): replaced in place, deleted by the drop.
            let mut s = Socket::open().unwrap();
            s.send_batch(|seq| replace_batch(&name, false, seq))
                .unwrap();
            s.send_batch(|seq| replace_batch(&name, false, seq))
                .unwrap();
            assert!(table_exists(&name).unwrap());
            drop(Firewall {
                socket: s,
                table: name.clone(),
                owned: false,
            });
            assert!(!table_exists(&name).unwrap());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_forward_chain_with_policy_drop_of_another_table_is_found() {
        // A NEWCHAIN message as the kernel dumps it: header, nfgenmsg, attributes.
        let chain = |family: u8, table: &str, hook: u32, policy: u32| {
            let mut b = Batch {
                buf: Vec::new(),
                seq: 1,
                acked: Vec::new(),
            };
            b.message(0x0a03, 0, family, 0, |m| {
                string(m, NFTA_CHAIN_TABLE, table);
                string(m, NFTA_CHAIN_NAME, "FORWARD");
                nest(m, NFTA_CHAIN_HOOK, |h| {
                    be32(h, NFTA_HOOK_HOOKNUM, hook);
                    be32(h, NFTA_HOOK_PRIORITY, 0);
                });
                be32(m, NFTA_CHAIN_POLICY, policy);
                string(m, NFTA_CHAIN_TYPE, "filter");
            });
            b.buf
        };
        let f = forward_drop_chain;
        assert_eq!(
            f(&chain(2, "filter", NF_INET_FORWARD, NF_DROP)).as_deref(),
            Some("ip filter FORWARD")
        );
        assert_eq!(
            f(&chain(1, "fw", NF_INET_FORWARD, NF_DROP)).as_deref(),
            Some("inet fw FORWARD")
        );
        assert_eq!(f(&chain(2, "filter", NF_INET_FORWARD, NF_ACCEPT)), None);
        assert_eq!(f(&chain(2, "filter", NF_INET_LOCAL_IN, NF_DROP)), None);
        assert_eq!(f(&chain(10, "filter", NF_INET_FORWARD, NF_DROP)), None);
        assert_eq!(f(&chain(2, "sous-1", NF_INET_FORWARD, NF_DROP)), None);
    }

    /// Against the kernel, in a namespace of its own: Sous's own table (policy accept) is
    /// not reported, another table's forward chain with policy drop is.
    #[test]
    fn the_kernel_dump_of_chains_is_read() {
        assert_eq!(crate::syscalls::geteuid(), 0, "run this test as root");
        std::thread::spawn(|| {
            crate::syscalls::unshare_net_thread().unwrap();
            assert_eq!(forward_drop_policies().unwrap(), Vec::<String>::new());
            let fw = Firewall::install("sous-x").unwrap();
            assert_eq!(forward_drop_policies().unwrap(), Vec::<String>::new());
            // Another table's forward chain with policy drop (as Docker's FORWARD) is found.
            let mut s = Socket::open().unwrap();
            s.send_batch(|seq| {
                let mut b = Batch::new(seq);
                let create = libc::NLM_F_CREATE as u16;
                b.nft(NFT_MSG_NEWTABLE, create, |m| {
                    string(m, NFTA_TABLE_NAME, "filter")
                });
                b.nft(NFT_MSG_NEWCHAIN, create, |m| {
                    string(m, NFTA_CHAIN_TABLE, "filter");
                    string(m, NFTA_CHAIN_NAME, "FORWARD");
                    nest(m, NFTA_CHAIN_HOOK, |h| {
                        be32(h, NFTA_HOOK_HOOKNUM, NF_INET_FORWARD);
                        be32(h, NFTA_HOOK_PRIORITY, 0);
                    });
                    be32(m, NFTA_CHAIN_POLICY, NF_DROP);
                    string(m, NFTA_CHAIN_TYPE, "filter");
                });
                b.finish()
            })
            .unwrap();
            assert_eq!(
                forward_drop_policies().unwrap(),
                vec!["ip filter FORWARD".to_string()]
            );
            drop(fw);
        })
        .join()
        .unwrap();
    }
}
