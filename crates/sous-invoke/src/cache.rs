//! The invoker's in-memory copy of what invocations resolve.
//!
//! Every invocation resolves its function: an alias's routing, the version's configuration
//! and code, the environment spec built from them, and (asynchronous ones) the event invoke
//! configuration. Reading those from SQLite on every invocation put blocking work on the
//! async threads and cost more than the rest of a warm invoke; they change only through the
//! control plane. So they are kept here, tagged with the store's
//! [configuration generation](sous_store::Store::generation), which the store bumps inside
//! every transaction that can change them.
//!
//! The rule that makes this correct: read the generation *before* reading the store, and
//! keep what was read only under the generation read then. A copy is served only while the
//! store's generation still equals the copy's: a write committed after the read bumped it,
//! so the copy is never served again, whichever task or connection made the write. A write
//! that has returned to its caller has bumped the generation, so an invocation that starts
//! after an UpdateFunctionConfiguration answered sees the new configuration. Nothing is
//! evicted piecemeal: any write empties the cache (writes are rare, reads constant), and
//! only what exists is cached (a name that resolves to nothing is read again each time, so
//! requests for random names cannot grow it).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sous_types::alias::AliasConfiguration;
use sous_types::event_invoke::FunctionEventInvokeConfig;
use sous_worker::EnvSpec;

use sous_store::StoredFunction;

/// A function version as invocations use it.
#[derive(Debug)]
pub struct Resolved {
    pub stored: StoredFunction,
    /// What its environments run; built once, on the first invocation that needs it (it
    /// needs the code extracted, which is file system work).
    pub spec: OnceLock<Arc<EnvSpec>>,
}

/// (function name, version or alias or qualifier).
type Key = (String, String);

#[derive(Default)]
struct Maps {
    /// The generation everything below was read under.
    generation: u64,
    versions: HashMap<Key, Arc<Resolved>>,
    aliases: HashMap<Key, Arc<AliasConfiguration>>,
    event_configs: HashMap<Key, Arc<FunctionEventInvokeConfig>>,
}

impl Maps {
    /// Bring the maps to `generation`: a newer one empties them. Returns whether the maps
    /// now hold `generation` (false when the caller's generation is older than what the
    /// maps already hold, i.e. its read may predate a write).
    fn at(&mut self, generation: u64) -> bool {
        if generation > self.generation {
            self.versions.clear();
            self.aliases.clear();
            self.event_configs.clear();
            self.generation = generation;
        }
        generation == self.generation
    }
}

/// The cache (see the module docs).
#[derive(Default)]
pub struct ConfigCache {
    maps: Mutex<Maps>,
}

fn key(a: &str, b: &str) -> Key {
    (a.to_string(), b.to_string())
}

impl ConfigCache {
    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get<V: Clone>(
        &self,
        generation: u64,
        map: impl FnOnce(&Maps) -> &HashMap<Key, V>,
        k: &Key,
    ) -> Option<V> {
        let mut m = self.lock();
        if !m.at(generation) {
            return None;
        }
        map(&m).get(k).cloned()
    }

    fn put<V>(
        &self,
        generation: u64,
        map: impl FnOnce(&mut Maps) -> &mut HashMap<Key, V>,
        k: Key,
        v: V,
    ) where
        Key: Eq + Hash,
    {
        let mut m = self.lock();
        if m.at(generation) {
            map(&mut m).insert(k, v);
        }
    }

    /// The cached version `(function, version)`, if current at `generation`.
    pub fn version(&self, generation: u64, function: &str, version: &str) -> Option<Arc<Resolved>> {
        self.get(generation, |m| &m.versions, &key(function, version))
    }

    /// Keep `resolved`, read under `generation` (ignored if a write happened since).
    pub fn put_version(&self, generation: u64, resolved: Arc<Resolved>) {
        let c = &resolved.stored.config;
        let k = key(&c.function_name, &c.version);
        self.put(generation, |m| &mut m.versions, k, resolved);
    }

    pub fn alias(
        &self,
        generation: u64,
        function: &str,
        alias: &str,
    ) -> Option<Arc<AliasConfiguration>> {
        self.get(generation, |m| &m.aliases, &key(function, alias))
    }

    pub fn put_alias(&self, generation: u64, function: &str, alias: Arc<AliasConfiguration>) {
        let k = key(function, &alias.name);
        self.put(generation, |m| &mut m.aliases, k, alias);
    }

    pub fn event_config(
        &self,
        generation: u64,
        function: &str,
        qualifier: &str,
    ) -> Option<Arc<FunctionEventInvokeConfig>> {
        self.get(generation, |m| &m.event_configs, &key(function, qualifier))
    }

    pub fn put_event_config(
        &self,
        generation: u64,
        function: &str,
        qualifier: &str,
        config: Arc<FunctionEventInvokeConfig>,
    ) {
        self.put(
            generation,
            |m| &mut m.event_configs,
            key(function, qualifier),
            config,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(version: &str) -> Arc<AliasConfiguration> {
        Arc::new(AliasConfiguration {
            alias_arn: "arn".into(),
            name: "live".into(),
            function_version: version.into(),
            description: String::new(),
            routing_config: None,
            revision_id: "r".into(),
        })
    }

    #[test]
    fn a_copy_is_served_only_under_the_generation_it_was_read_at() {
        let c = ConfigCache::default();
        c.put_alias(1, "f", alias("1"));
        assert_eq!(c.alias(1, "f", "live").unwrap().function_version, "1");
        // A write happened: the copy is gone.
        assert!(c.alias(2, "f", "live").is_none());
        // A read that started before that write finishes late: not kept.
        c.put_alias(1, "f", alias("1"));
        assert!(c.alias(2, "f", "live").is_none());
        c.put_alias(2, "f", alias("2"));
        assert_eq!(c.alias(2, "f", "live").unwrap().function_version, "2");
        // An older generation is never served what a newer read kept.
        assert!(c.alias(1, "f", "live").is_none());
    }
}
