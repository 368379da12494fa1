//! Deployment packages built from arbitrary entries (names made of `..`, `.`, empty and
//! ordinary components, absolute and drive-letter names, symlinks to anywhere, odd modes,
//! duplicates, stored or deflated data), so the fuzzer spends its time on the package rules
//! rather than on getting a zip's checksums right. Each is stored with
//! `CodeStore::put_zip` and checked as `zip_bytes` checks it (`sous_fuzz::check_put_zip`).
#![no_main]

use std::io::{Cursor, Write as _};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

#[derive(Arbitrary, Debug)]
enum Component {
    Name(u8),
    Dot,
    DotDot,
    Empty,
    Drive,
    Backslashed,
    Raw(String),
}

impl Component {
    fn text(&self) -> String {
        match self {
            Component::Name(n) => {
                ["a", "b", "lib", "node_modules", "x.py", "A"][*n as usize % 6].into()
            }
            Component::Dot => ".".into(),
            Component::DotDot => "..".into(),
            Component::Empty => String::new(),
            Component::Drive => "C:".into(),
            Component::Backslashed => "..\\..".into(),
            Component::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct PathSpec {
    absolute: bool,
    components: Vec<Component>,
    trailing_slash: bool,
}

impl PathSpec {
    fn text(&self) -> String {
        let joined: Vec<String> = self.components.iter().map(Component::text).collect();
        let mut s = joined.join("/");
        if self.absolute {
            s.insert(0, '/');
        }
        if self.trailing_slash {
            s.push('/');
        }
        s
    }
}

#[derive(Arbitrary, Debug)]
enum Kind {
    File { data: Vec<u8>, deflate: bool },
    Dir,
    Symlink(PathSpec),
}

#[derive(Arbitrary, Debug)]
struct Entry {
    path: PathSpec,
    mode: Option<u32>,
    kind: Kind,
}

fn build(entries: &[Entry]) -> zip::result::ZipResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for e in entries {
        let name = e.path.text();
        let mut options = SimpleFileOptions::default();
        if let Some(mode) = e.mode {
            options = options.unix_permissions(mode);
        }
        match &e.kind {
            Kind::File { data, deflate } => {
                let method = if *deflate {
                    CompressionMethod::Deflated
                } else {
                    CompressionMethod::Stored
                };
                w.start_file(name, options.compression_method(method))?;
                w.write_all(data)?;
            }
            Kind::Dir => w.add_directory(name, options)?,
            Kind::Symlink(target) => w.add_symlink(name, target.text(), options)?,
        }
    }
    Ok(w.finish()?.into_inner())
}

fuzz_target!(|entries: Vec<Entry>| {
    // The writer refuses some (duplicate names, for one): those are no packages.
    if let Ok(bytes) = build(&entries) {
        sous_fuzz::check_put_zip(&bytes);
    }
});
