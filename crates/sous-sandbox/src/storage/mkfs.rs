//! An empty ext4 filesystem (without journal), formatted in memory: what `mkfs.ext4 -m 0 -O
//! ^has_journal` writes, made by Sous itself so that no host program is needed.
//!
//! The result is the list of the filesystem's non-zero blocks ([`Formatted::extents`]):
//! written into a zero-filled (sparse) file of [`Formatted::bytes`], they make the whole
//! filesystem; everything else (most of the inode tables, all the data blocks) is zeros.
//!
//! The layout is ext4's classic one, kept to the features the kernel's ext4 driver and
//! `e2fsck` have long handled: 4 KiB blocks, 32768 blocks per group (one bitmap block), one
//! inode per 16 KiB of space (as `mkfs.ext4` for 512 MiB and more), 256-byte inodes, superblock
//! backups in groups 0, 1 and the powers of 3, 5 and 7 (`sparse_super`), no reserved blocks,
//! no reserved descriptor blocks (the images are never resized), no checksums. The root
//! directory (and, when asked, `lost+found`) is a one-extent directory in the first data
//! blocks of group 0; files the kernel creates later get extents (`extent` feature).
//!
//! The on-disk format is the kernel's Documentation/filesystems/ext4 (superblock, group
//! descriptors, bitmaps, inode table, directory entries); every offset below is named there.

use std::collections::BTreeMap;

/// Bytes per block.
pub const BLOCK_SIZE: u64 = 4096;
/// Blocks per group: the bits of one bitmap block.
const BLOCKS_PER_GROUP: u64 = BLOCK_SIZE * 8;
const INODE_SIZE: u64 = 256;
/// Space per inode (`mkfs.ext4`'s `inode_ratio` for filesystems of 512 MiB and more).
const BYTES_PER_INODE: u64 = 16384;
/// Inodes 1..=10 are reserved; the first ordinary one is 11.
const FIRST_INO: u32 = 11;
const ROOT_INO: u32 = 2;
const LOST_FOUND_INO: u32 = 11;
/// Blocks of `lost+found` (16 KiB, as `mkfs.ext4` makes it, so that `e2fsck` can link
/// orphans into it without allocating).
const LOST_FOUND_BLOCKS: u64 = 4;
/// A group must keep at least this many data blocks beyond its own metadata; a last
/// partial group that cannot is left out (as `mkfs.ext4` does).
const MIN_GROUP_DATA: u64 = 64;
/// Bytes of the inode beyond the 128 of the original format that this format uses
/// (`i_extra_isize`: up to the creation time and the project id).
const EXTRA_ISIZE: u16 = 32;

const GROUP_DESC_SIZE: u64 = 32;

const MAGIC: u16 = 0xEF53;
const EXTENT_MAGIC: u16 = 0xF30A;

const COMPAT_EXT_ATTR: u32 = 0x0008;
const COMPAT_DIR_INDEX: u32 = 0x0020;
const INCOMPAT_FILETYPE: u32 = 0x0002;
const INCOMPAT_EXTENTS: u32 = 0x0040;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
const RO_COMPAT_DIR_NLINK: u32 = 0x0020;
const RO_COMPAT_EXTRA_ISIZE: u32 = 0x0040;

/// `s_default_mount_opts`: user extended attributes and POSIX ACLs (as `mkfs.ext4` sets).
const DEFM_XATTR_USER_ACL: u32 = 0x0004 | 0x0008;
/// `s_flags`: how directory hashes treat `char` (the kernel's, which is this machine's).
const FLAGS_SIGNED_HASH: u32 = 0x0001;
const FLAGS_UNSIGNED_HASH: u32 = 0x0002;
/// `s_def_hash_version`: half MD4.
const HASH_HALF_MD4: u8 = 1;

const S_IFDIR: u16 = 0o040000;
const EXTENTS_FL: u32 = 0x0008_0000;
const FT_DIR: u8 = 2;

/// What to format.
#[derive(Debug, Clone)]
pub struct Options {
    /// Size of the device; the filesystem covers whole blocks of it.
    pub bytes: u64,
    /// Permission bits of the root directory (e.g. `0o1777`).
    pub root_mode: u16,
    /// Whether to make `/lost+found` (`e2fsck` recreates it when needed).
    pub lost_found: bool,
    /// The creation time written in the superblock and the inodes (Unix seconds).
    pub now: u32,
    /// The filesystem's UUID.
    pub uuid: [u8; 16],
    /// The seed of the directory-index hash.
    pub hash_seed: [u8; 16],
}

#[derive(Debug, thiserror::Error)]
pub enum MkfsError {
    #[error("an ext4 filesystem of {bytes} bytes is too small: at least {min} are needed")]
    TooSmall { bytes: u64, min: u64 },
    #[error("an ext4 filesystem of {bytes} bytes is too large for this format (at most {max})")]
    TooLarge { bytes: u64, max: u64 },
}

/// A formatted filesystem.
#[derive(Debug)]
pub struct Formatted {
    /// Size of the filesystem in bytes (whole groups, so possibly less than asked).
    pub bytes: u64,
    /// Its non-zero bytes, as (byte offset, data), in order and not overlapping.
    pub extents: Vec<(u64, Vec<u8>)>,
}

/// The geometry: how many blocks, groups, inodes, and where each group's metadata is.
#[derive(Debug, Clone, Copy)]
struct Layout {
    blocks: u64,
    groups: u64,
    inodes_per_group: u64,
    itable_blocks: u64,
    gdt_blocks: u64,
}

/// Whether group `g` holds a superblock backup (`sparse_super`: 0, 1, and the powers of 3,
/// 5 and 7).
fn has_super(g: u64) -> bool {
    if g <= 1 {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            p *= base;
        }
        p == g
    })
}

impl Layout {
    fn new(bytes: u64) -> Result<Layout, MkfsError> {
        // Block numbers and inode counts are 32-bit in this format (no `64bit` feature).
        let max = u64::from(u32::MAX) / 2 * BLOCK_SIZE;
        if bytes > max {
            return Err(MkfsError::TooLarge { bytes, max });
        }
        let mut blocks = bytes / BLOCK_SIZE;
        loop {
            let groups = blocks.div_ceil(BLOCKS_PER_GROUP);
            if groups == 0 {
                break;
            }
            let per_group = (blocks * BLOCK_SIZE / BYTES_PER_INODE).div_ceil(groups);
            let inodes_per_block = BLOCK_SIZE / INODE_SIZE;
            let inodes_per_group = per_group
                .max(u64::from(FIRST_INO) + 1)
                .next_multiple_of(inodes_per_block)
                .min(BLOCK_SIZE * 8);
            let l = Layout {
                blocks,
                groups,
                inodes_per_group,
                itable_blocks: inodes_per_group * INODE_SIZE / BLOCK_SIZE,
                gdt_blocks: (groups * GROUP_DESC_SIZE).div_ceil(BLOCK_SIZE),
            };
            let last = groups - 1;
            let needed = l.overhead(last)
                + MIN_GROUP_DATA
                + if last == 0 { 1 + LOST_FOUND_BLOCKS } else { 0 };
            if l.group_blocks(last) >= needed {
                return Ok(l);
            }
            if last == 0 {
                break;
            }
            blocks = last * BLOCKS_PER_GROUP;
        }
        let min = Layout {
            blocks: 0,
            groups: 1,
            inodes_per_group: 16,
            itable_blocks: 1,
            gdt_blocks: 1,
        }
        .overhead(0)
            + MIN_GROUP_DATA
            + 1
            + LOST_FOUND_BLOCKS;
        Err(MkfsError::TooSmall {
            bytes,
            min: min * BLOCK_SIZE,
        })
    }

    fn group_start(&self, g: u64) -> u64 {
        g * BLOCKS_PER_GROUP
    }

    fn group_blocks(&self, g: u64) -> u64 {
        (self.blocks - self.group_start(g)).min(BLOCKS_PER_GROUP)
    }

    /// Superblock and descriptor copy of group `g`, in blocks.
    fn super_blocks(&self, g: u64) -> u64 {
        if has_super(g) {
            1 + self.gdt_blocks
        } else {
            0
        }
    }

    fn block_bitmap(&self, g: u64) -> u64 {
        self.group_start(g) + self.super_blocks(g)
    }

    fn inode_bitmap(&self, g: u64) -> u64 {
        self.block_bitmap(g) + 1
    }

    fn inode_table(&self, g: u64) -> u64 {
        self.block_bitmap(g) + 2
    }

    /// Blocks of group `g` taken by metadata (all at the start of the group).
    fn overhead(&self, g: u64) -> u64 {
        self.super_blocks(g) + 2 + self.itable_blocks
    }
}

/// The filesystem's blocks being written: only the non-zero ones are kept.
#[derive(Default)]
struct Blocks(BTreeMap<u64, Vec<u8>>);

impl Blocks {
    fn block(&mut self, n: u64) -> &mut [u8] {
        self.0
            .entry(n)
            .or_insert_with(|| vec![0; BLOCK_SIZE as usize])
    }

    /// Runs of consecutive blocks, joined.
    fn into_extents(self) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for (n, data) in self.0 {
            let offset = n * BLOCK_SIZE;
            match out.last_mut() {
                Some((start, run)) if *start + run.len() as u64 == offset => {
                    run.extend_from_slice(&data)
                }
                _ => out.push((offset, data)),
            }
        }
        out
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A number known to fit the on-disk field (the layout is bounded in [`Layout::new`]).
fn n32(v: u64) -> u32 {
    u32::try_from(v).expect("bounded by the layout")
}

fn n16(v: u64) -> u16 {
    u16::try_from(v).expect("bounded by the layout")
}

/// Set bits `from..to` of a bitmap block.
fn set_bits(bitmap: &mut [u8], from: u64, to: u64) {
    for bit in from..to {
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
    }
}

/// One directory entry at `at` (`rec_len` bytes long); returns the offset after it.
fn dir_entry(block: &mut [u8], at: usize, inode: u32, rec_len: usize, name: &[u8]) -> usize {
    put32(block, at, inode);
    put16(block, at + 4, n16(rec_len as u64));
    block[at + 6] = name.len() as u8;
    block[at + 7] = if inode == 0 { 0 } else { FT_DIR };
    block[at + 8..at + 8 + name.len()].copy_from_slice(name);
    at + rec_len
}

/// The smallest record of an entry named `name`.
fn rec_len(name: &[u8]) -> usize {
    (8 + name.len()).next_multiple_of(4)
}

/// A directory block holding `entries` (inode, name), the last one taking the rest of the
/// block; no entries: one empty record spanning the block.
fn dir_block(block: &mut [u8], entries: &[(u32, &[u8])]) {
    if entries.is_empty() {
        dir_entry(block, 0, 0, block.len(), b"");
        return;
    }
    let mut at = 0;
    for (i, (inode, name)) in entries.iter().enumerate() {
        let len = if i + 1 == entries.len() {
            block.len() - at
        } else {
            rec_len(name)
        };
        at = dir_entry(block, at, *inode, len, name);
    }
}

/// A directory inode of `links` links whose `len` blocks start at block `first`, as one
/// extent.
fn dir_inode(inode: &mut [u8], mode: u16, links: u16, first: u64, len: u64, now: u32) {
    put16(inode, 0x00, S_IFDIR | mode);
    put32(inode, 0x04, n32(len * BLOCK_SIZE));
    for at in [0x08, 0x0C, 0x10] {
        put32(inode, at, now); // atime, ctime, mtime
    }
    put16(inode, 0x1A, links);
    put32(inode, 0x1C, n32(len * BLOCK_SIZE / 512)); // i_blocks, in 512-byte sectors
    put32(inode, 0x20, EXTENTS_FL);
    // i_block: an extent tree of depth 0 with one extent.
    put16(inode, 0x28, EXTENT_MAGIC);
    put16(inode, 0x2A, 1); // entries
    put16(inode, 0x2C, 4); // room for 4 in i_block
    put16(inode, 0x2E, 0); // depth
    put32(inode, 0x34, 0); // first logical block
    put16(inode, 0x38, n16(len));
    put16(inode, 0x3A, 0); // start, high 16 bits
    put32(inode, 0x3C, n32(first)); // start, low 32 bits
    put16(inode, 0x80, EXTRA_ISIZE);
    put32(inode, 0x90, now); // crtime
}

/// The superblock (1024 bytes) as stored in group `group`.
fn superblock(l: &Layout, o: &Options, group: u64, free_blocks: u64, free_inodes: u64) -> Vec<u8> {
    let mut s = vec![0u8; 1024];
    put32(&mut s, 0x00, n32(l.inodes_per_group * l.groups));
    put32(&mut s, 0x04, n32(l.blocks));
    put32(&mut s, 0x08, 0); // reserved blocks
    put32(&mut s, 0x0C, n32(free_blocks));
    put32(&mut s, 0x10, n32(free_inodes));
    put32(&mut s, 0x14, 0); // first data block (0 with blocks larger than 1 KiB)
    put32(&mut s, 0x18, 2); // block size = 1024 << 2
    put32(&mut s, 0x1C, 2); // cluster size, the same
    put32(&mut s, 0x20, n32(BLOCKS_PER_GROUP));
    put32(&mut s, 0x24, n32(BLOCKS_PER_GROUP));
    put32(&mut s, 0x28, n32(l.inodes_per_group));
    put32(&mut s, 0x30, o.now); // last write
    put16(&mut s, 0x36, 0xFFFF); // no mount-count check
    put16(&mut s, 0x38, MAGIC);
    put16(&mut s, 0x3A, 1); // state: clean
    put16(&mut s, 0x3C, 1); // on errors: continue
    put32(&mut s, 0x40, o.now); // last check
    put32(&mut s, 0x4C, 1); // revision 1: dynamic inode sizes and features
    put32(&mut s, 0x54, FIRST_INO);
    put16(&mut s, 0x58, n16(INODE_SIZE));
    put16(&mut s, 0x5A, n16(group));
    put32(&mut s, 0x5C, COMPAT_EXT_ATTR | COMPAT_DIR_INDEX);
    put32(&mut s, 0x60, INCOMPAT_FILETYPE | INCOMPAT_EXTENTS);
    put32(
        &mut s,
        0x64,
        RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_DIR_NLINK | RO_COMPAT_EXTRA_ISIZE,
    );
    s[0x68..0x78].copy_from_slice(&o.uuid);
    s[0xEC..0xFC].copy_from_slice(&o.hash_seed);
    s[0xFC] = HASH_HALF_MD4;
    put32(&mut s, 0x100, DEFM_XATTR_USER_ACL);
    put32(&mut s, 0x108, o.now); // made
    put16(&mut s, 0x15C, EXTRA_ISIZE); // min extra inode size
    put16(&mut s, 0x15E, EXTRA_ISIZE); // wanted extra inode size
    let signed_char = std::ffi::c_char::MIN != 0;
    put32(
        &mut s,
        0x160,
        if signed_char {
            FLAGS_SIGNED_HASH
        } else {
            FLAGS_UNSIGNED_HASH
        },
    );
    s
}

/// Format an empty filesystem (see the module docs).
pub fn format(o: &Options) -> Result<Formatted, MkfsError> {
    let l = Layout::new(o.bytes)?;
    let mut blocks = Blocks::default();

    // Group 0's first data blocks: the root directory, then lost+found.
    let root_block = l.inode_table(0) + l.itable_blocks;
    let lost_found_block = root_block + 1;
    let dir_blocks = 1 + if o.lost_found { LOST_FOUND_BLOCKS } else { 0 };
    let used_inodes = u64::from(if o.lost_found {
        LOST_FOUND_INO
    } else {
        FIRST_INO - 1
    });
    let dirs = if o.lost_found { 2 } else { 1 };

    let free_blocks =
        |g: u64| l.group_blocks(g) - l.overhead(g) - if g == 0 { dir_blocks } else { 0 };
    let free_inodes = |g: u64| l.inodes_per_group - if g == 0 { used_inodes } else { 0 };

    // Group descriptors (the same table in every copy).
    let mut gdt = vec![0u8; (l.gdt_blocks * BLOCK_SIZE) as usize];
    for g in 0..l.groups {
        let d = &mut gdt[(g * GROUP_DESC_SIZE) as usize..][..GROUP_DESC_SIZE as usize];
        put32(d, 0x00, n32(l.block_bitmap(g)));
        put32(d, 0x04, n32(l.inode_bitmap(g)));
        put32(d, 0x08, n32(l.inode_table(g)));
        put16(d, 0x0C, n16(free_blocks(g)));
        put16(d, 0x0E, n16(free_inodes(g)));
        put16(d, 0x10, if g == 0 { dirs } else { 0 });
    }
    let total_free_blocks: u64 = (0..l.groups).map(free_blocks).sum();
    let total_free_inodes: u64 = (0..l.groups).map(free_inodes).sum();

    for g in 0..l.groups {
        let start = l.group_start(g);
        if has_super(g) {
            let sb = superblock(&l, o, g, total_free_blocks, total_free_inodes);
            // The primary superblock is 1024 bytes into the device; a backup starts its block.
            let at = if g == 0 { 1024 } else { 0 };
            blocks.block(start)[at..at + 1024].copy_from_slice(&sb);
            for (i, chunk) in gdt.chunks(BLOCK_SIZE as usize).enumerate() {
                blocks.block(start + 1 + i as u64).copy_from_slice(chunk);
            }
        }
        // Blocks in use are all at the start of the group; bits past its end are set.
        let used = l.group_blocks(g) - free_blocks(g);
        let bitmap = blocks.block(l.block_bitmap(g));
        set_bits(bitmap, 0, used);
        set_bits(bitmap, l.group_blocks(g), BLOCKS_PER_GROUP);
        let used_inodes = l.inodes_per_group - free_inodes(g);
        let bitmap = blocks.block(l.inode_bitmap(g));
        set_bits(bitmap, 0, used_inodes);
        set_bits(bitmap, l.inodes_per_group, BLOCK_SIZE * 8);
    }

    // The inodes (all in the first block of group 0's table) and the directories.
    let table = l.inode_table(0);
    let inode_at = |ino: u32| {
        let offset = u64::from(ino - 1) * INODE_SIZE;
        (table + offset / BLOCK_SIZE, (offset % BLOCK_SIZE) as usize)
    };
    let (b, at) = inode_at(ROOT_INO);
    dir_inode(
        &mut blocks.block(b)[at..at + INODE_SIZE as usize],
        o.root_mode & 0o7777,
        dirs + 1,
        root_block,
        1,
        o.now,
    );
    let mut root: Vec<(u32, &[u8])> = vec![(ROOT_INO, b"."), (ROOT_INO, b"..")];
    if o.lost_found {
        root.push((LOST_FOUND_INO, b"lost+found"));
        let (b, at) = inode_at(LOST_FOUND_INO);
        dir_inode(
            &mut blocks.block(b)[at..at + INODE_SIZE as usize],
            0o700,
            2,
            lost_found_block,
            LOST_FOUND_BLOCKS,
            o.now,
        );
        dir_block(
            blocks.block(lost_found_block),
            &[(LOST_FOUND_INO, b"."), (ROOT_INO, b"..")],
        );
        for i in 1..LOST_FOUND_BLOCKS {
            dir_block(blocks.block(lost_found_block + i), &[]);
        }
    }
    dir_block(blocks.block(root_block), &root);

    Ok(Formatted {
        bytes: l.blocks * BLOCK_SIZE,
        extents: blocks.into_extents(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn options(bytes: u64, lost_found: bool) -> Options {
        Options {
            bytes,
            root_mode: 0o1777,
            lost_found,
            now: 1_700_000_000,
            uuid: [7; 16],
            hash_seed: [9; 16],
        }
    }

    #[test]
    fn superblock_backups_are_in_groups_0_1_and_powers_of_3_5_7() {
        let with: Vec<u64> = (0..100).filter(|&g| has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }

    #[test]
    fn layouts_cover_the_size_and_leave_out_a_too_small_last_group() {
        // 512 MiB: 4 whole groups of 8192 inodes.
        let l = Layout::new(512 << 20).unwrap();
        assert_eq!((l.blocks, l.groups, l.inodes_per_group), (131072, 4, 8192));
        assert_eq!(l.itable_blocks, 512);
        // 10 GiB: 80 groups, one descriptor block.
        let l = Layout::new(10 << 30).unwrap();
        assert_eq!((l.groups, l.gdt_blocks), (80, 1));
        // 513 MiB: a last group of 256 blocks cannot hold its 514 blocks of metadata.
        let l = Layout::new(513 << 20).unwrap();
        assert_eq!(l.blocks, 131072);
        // 600 MiB: a last group of 22528 blocks is kept.
        assert_eq!(Layout::new(600 << 20).unwrap().blocks, 600 * 256);
        // Small and single-group.
        let l = Layout::new(64 << 20).unwrap();
        assert_eq!((l.blocks, l.groups, l.inodes_per_group), (16384, 1, 4096));
        assert!(matches!(
            Layout::new(64 << 10),
            Err(MkfsError::TooSmall { .. })
        ));
        assert!(matches!(
            Layout::new(1 << 60),
            Err(MkfsError::TooLarge { .. })
        ));
    }

    #[test]
    fn counts_and_bitmaps_agree() {
        let f = format(&options(512 << 20, true)).unwrap();
        assert_eq!(f.bytes, 512 << 20);
        // Extents are ordered, disjoint, block-aligned, inside the device.
        let mut end = 0;
        for (offset, data) in &f.extents {
            assert!(*offset >= end && offset % BLOCK_SIZE == 0);
            assert_eq!(data.len() as u64 % BLOCK_SIZE, 0);
            end = offset + data.len() as u64;
        }
        assert!(end <= f.bytes);
        let read = |offset: u64, len: usize| -> Vec<u8> {
            let (start, data) = f
                .extents
                .iter()
                .find(|(s, d)| *s <= offset && offset + len as u64 <= s + d.len() as u64)
                .expect("written");
            data[(offset - start) as usize..][..len].to_vec()
        };
        let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let sb = read(1024, 1024);
        assert_eq!(u16_at(&sb, 0x38), MAGIC);
        let l = Layout::new(512 << 20).unwrap();
        // Free blocks: the superblock's sum is each group's blocks less its metadata.
        let overhead: u64 = (0..l.groups).map(|g| l.overhead(g)).sum::<u64>() + 1 + 4;
        assert_eq!(u64::from(u32_at(&sb, 0x0C)), l.blocks - overhead);
        assert_eq!(u32_at(&sb, 0x10), 4 * 8192 - 11);
        // Group 1's backup has its own group number.
        let backup = read(BLOCKS_PER_GROUP * BLOCK_SIZE, 1024);
        assert_eq!(u16_at(&backup, 0x5A), 1);
        assert_eq!(backup[..0x5A], sb[..0x5A]);
        // Group 2 has no backup: its block bitmap is its first block, 514 bits set.
        let bitmap = read(2 * BLOCKS_PER_GROUP * BLOCK_SIZE, BLOCK_SIZE as usize);
        let set: u32 = bitmap.iter().map(|b| b.count_ones()).sum();
        assert_eq!(set, 514);
        // The root directory lists ., .. and lost+found.
        let root = read((l.inode_table(0) + l.itable_blocks) * BLOCK_SIZE, 64);
        assert_eq!(u32_at(&root, 0), ROOT_INO);
        assert_eq!(&root[24 + 8..24 + 18], b"lost+found");
    }

    /// `e2fsck`, where this machine has it (the tests use it; Sous does not).
    pub(crate) fn e2fsck() -> Option<std::path::PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|d| d.join("e2fsck"))
            .find(|p| p.is_file())
    }

    /// Write `f` into a sparse file of `bytes` (more than the filesystem: a device may be).
    pub(crate) fn write_image(path: &std::path::Path, bytes: u64, f: &Formatted) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::create(path).unwrap();
        file.set_len(bytes).unwrap();
        for (offset, data) in &f.extents {
            file.write_all_at(data, *offset).unwrap();
        }
    }

    /// `e2fsck -fn` (check everything, change nothing) finds `image` clean.
    pub(crate) fn assert_fsck_clean(e2fsck: &std::path::Path, image: &std::path::Path) {
        let out = std::process::Command::new(e2fsck)
            .arg("-fn")
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck -fn {}: {}\n{}{}",
            image.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn e2fsck_finds_every_size_clean() {
        let Some(e2fsck) = e2fsck() else {
            eprintln!("skipped: no e2fsck on this machine");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        // One group; a dropped last group; 4, 5 and 8 groups; 80 groups (backups in 25, 27,
        // 49); with and without lost+found.
        for (mb, lost_found) in [
            (64, true),
            (64, false),
            (513, false),
            (512, true),
            (600, false),
            (1024, true),
            (10240, false),
            (10240, true),
        ] {
            let f = format(&options(mb << 20, lost_found)).unwrap();
            let image = dir.path().join(format!("{mb}-{lost_found}.img"));
            write_image(&image, mb << 20, &f);
            assert_fsck_clean(&e2fsck, &image);
            std::fs::remove_file(&image).unwrap();
        }
        // The check can fail: one wrong free-block count in group 0's descriptor is found.
        let mut f = format(&options(64 << 20, true)).unwrap();
        let (start, gdt) = f
            .extents
            .iter_mut()
            .find(|(s, d)| *s <= BLOCK_SIZE && BLOCK_SIZE < s + d.len() as u64)
            .unwrap();
        gdt[(BLOCK_SIZE - *start) as usize + 0x0C] ^= 1;
        let image = dir.path().join("wrong.img");
        write_image(&image, 64 << 20, &f);
        let status = std::process::Command::new(&e2fsck)
            .arg("-fn")
            .arg(&image)
            .output()
            .unwrap()
            .status;
        assert!(!status.success(), "e2fsck accepted a wrong count");
    }
}
