//! Deployment packages as bytes: `CodeStore::put_zip` (full validation, then extraction into
//! the cache), as CreateFunction and UpdateFunctionCode run it on `ZipFile`.
//!
//! Properties (`sous_fuzz::check_put_zip`): no panic; nothing written outside the data dir;
//! a refused package leaves nothing behind and is refused for what it is (never an I/O
//! error, which a client would see as a 500); an accepted one is one blob and one extraction
//! of files, dirs and symlinks that resolve inside it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sous_fuzz::check_put_zip(data);
});
