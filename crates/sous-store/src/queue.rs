//! The asynchronous invocation queue.
//!
//! What we store, and why: every accepted `Event` invocation, from the moment Invoke answers
//! 202 until its delivery is finished (succeeded, or failed for good with its destinations
//! and dead-letter target enqueued in the same transaction that removes it).
//!
//! Durability: every write of the queue goes through [`Store::write_queue`] on the queue
//! writer connection, in WAL mode with `synchronous=NORMAL`: `COMMIT` returns once the
//! transaction's frames are written to the WAL file (in the kernel's page cache), so it
//! survives a kill of the process, and the next open recovers it from the WAL; only an OS
//! crash or power loss can lose it. An accepted event must survive those too: before Invoke
//! answers 202, [`Store::sync_queue`] fsyncs the WAL, which makes every transaction committed
//! so far durable. Outcomes of deliveries are not fsynced on their own: one lost to a power
//! loss only makes its event run again (WAL recovery keeps a prefix of the commits, and the
//! removal of an event and the records it sends on are one transaction). So one thread (the
//! group commit of `sous-invoke`) applies the writes waiting at one moment in one
//! transaction, without waiting for a disk, and another fsyncs for the acceptances among
//! them. Nothing marks an event as in flight on disk: after a restart every remaining event
//! is due again, which is where duplicates (at-least-once) arise: an attempt that was running
//! at a kill runs again (see `sous-invoke`'s `queue.rs`).

use rusqlite::{params, TransactionBehavior};

use crate::db::{Store, StoreError};

/// An asynchronous invocation to put on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub request_id: String,
    pub function_name: String,
    /// `None` = unqualified (`$LATEST`).
    pub qualifier: Option<String>,
    pub payload: Vec<u8>,
    /// When the event was accepted (epoch ms).
    pub received_ms: i64,
    pub trace_id: Option<String>,
}

/// An asynchronous invocation on the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub id: i64,
    pub event: NewEvent,
    /// Attempts that ran the function (throttled attempts are not counted).
    pub attempts: u32,
    /// Consecutive throttled or failed-to-start attempts (for the backoff).
    pub throttles: u32,
    pub next_attempt_ms: i64,
}

/// One change to the asynchronous invocation queue, for [`Store::write_queue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueWrite {
    /// Put an accepted event on the queue.
    Enqueue(NewEvent),
    /// Finish an event: remove it and enqueue what its outcome sends on (destination
    /// records, the dead-letter copy).
    Complete { id: i64, follow_ups: Vec<NewEvent> },
    /// Put an event back for a later attempt.
    Reschedule {
        id: i64,
        attempts: u32,
        throttles: u32,
        next_attempt_ms: i64,
    },
}

/// Size and age of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    pub depth: u64,
    /// Acceptance time of the oldest queued event (epoch ms).
    pub oldest_received_ms: Option<i64>,
}

impl Store {
    /// Commit an event to the queue, durably (it survives an OS crash).
    pub fn enqueue_event(&self, e: &NewEvent) -> Result<(), StoreError> {
        self.write_queue(&[QueueWrite::Enqueue(e.clone())])?;
        self.sync_queue()
    }

    /// Apply `writes` in one transaction on the queue writer connection, while the main
    /// connection keeps serving reads. It survives a kill of the process once this returns,
    /// an OS crash once [`Store::sync_queue`] has run after it.
    pub fn write_queue(&self, writes: &[QueueWrite]) -> Result<(), StoreError> {
        let mut conn = self.queue_writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO async_events (request_id, function_name, qualifier, payload, received_ms, next_attempt_ms, trace_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM async_events WHERE id = ?1")?;
            let mut reschedule = tx.prepare_cached(
                "UPDATE async_events SET attempts = ?2, throttles = ?3, next_attempt_ms = ?4 WHERE id = ?1",
            )?;
            let mut enqueue = |e: &NewEvent| {
                insert.execute(params![
                    e.request_id,
                    e.function_name,
                    e.qualifier,
                    e.payload,
                    e.received_ms,
                    e.trace_id
                ])
            };
            for w in writes {
                match w {
                    QueueWrite::Enqueue(e) => {
                        enqueue(e)?;
                    }
                    QueueWrite::Complete { id, follow_ups } => {
                        delete.execute(params![id])?;
                        for e in follow_ups {
                            enqueue(e)?;
                        }
                    }
                    QueueWrite::Reschedule {
                        id,
                        attempts,
                        throttles,
                        next_attempt_ms,
                    } => {
                        reschedule.execute(params![
                            id,
                            i64::from(*attempts),
                            i64::from(*throttles),
                            next_attempt_ms
                        ])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Make every queue write committed so far survive an OS crash or power loss: fsync the
    /// WAL file. It may run while the queue writer commits more (those may or may not be
    /// included); it does not take the writer's lock.
    pub fn sync_queue(&self) -> Result<(), StoreError> {
        let wal = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&self.wal_path)
            .and_then(|f| f.sync_data());
        wal.map_err(|source| StoreError::Sync {
            path: self.wal_path.clone(),
            source,
        })
    }

    /// Copy what the WAL holds into the database without blocking the queue writer
    /// (a passive checkpoint); returns the WAL's size in pages and how many were copied. The
    /// queue writer does not checkpoint on its own, so call this regularly while it writes.
    pub fn checkpoint_queue(&self) -> Result<(i64, i64), StoreError> {
        let conn = self.checkpointer.lock().unwrap_or_else(|p| p.into_inner());
        Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })?)
    }

    /// Up to `limit` events due at `now_ms` (oldest due first), leaving out `skip` (events
    /// being delivered).
    pub fn due_events(
        &self,
        now_ms: i64,
        limit: usize,
        skip: &std::collections::HashSet<i64>,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, request_id, function_name, qualifier, payload, received_ms, attempts, throttles, next_attempt_ms, trace_id
             FROM async_events WHERE next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2",
        )?;
        let want = i64::try_from(limit + skip.len()).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![now_ms, want], |r| {
                Ok(QueuedEvent {
                    id: r.get(0)?,
                    event: NewEvent {
                        request_id: r.get(1)?,
                        function_name: r.get(2)?,
                        qualifier: r.get(3)?,
                        payload: r.get(4)?,
                        received_ms: r.get(5)?,
                        trace_id: r.get(9)?,
                    },
                    attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    throttles: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                    next_attempt_ms: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .filter(|e| !skip.contains(&e.id))
            .take(limit)
            .collect())
    }

    /// The earliest next attempt time of the queue's events, if any.
    pub fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        Ok(
            conn.query_row("SELECT MIN(next_attempt_ms) FROM async_events", [], |r| {
                r.get(0)
            })?,
        )
    }

    /// Depth of the queue and the age of its oldest event.
    pub fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let conn = self.conn();
        let (depth, oldest): (i64, Option<i64>) = conn.query_row(
            "SELECT COUNT(*), MIN(received_ms) FROM async_events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(QueueStats {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest_received_ms: oldest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;

    #[test]
    fn queue_survives_reopen_and_completes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.enqueue_event(&ev("a", 10)).unwrap();
            store.enqueue_event(&ev("b", 20)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let none = std::collections::HashSet::new();
        assert!(store.due_events(5, 10, &none).unwrap().is_empty());
        let due = store.due_events(100, 10, &none).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(due[0].event.request_id, "a");
        let skip: std::collections::HashSet<i64> = [due[0].id].into();
        let rest = store.due_events(100, 10, &skip).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].event.request_id, "b");
        store
            .write_queue(&[QueueWrite::Reschedule {
                id: due[0].id,
                attempts: 1,
                throttles: 0,
                next_attempt_ms: 500,
            }])
            .unwrap();
        assert_eq!(store.next_due_ms().unwrap(), Some(20));
        let stats = store.queue_stats().unwrap();
        assert_eq!(stats.depth, 2);
        assert_eq!(stats.oldest_received_ms, Some(10));
        store
            .write_queue(&[QueueWrite::Complete {
                id: rest[0].id,
                follow_ups: vec![ev("c", 30)],
            }])
            .unwrap();
        let due = store.due_events(1000, 10, &none).unwrap();
        let ids: Vec<_> = due.iter().map(|e| e.event.request_id.as_str()).collect();
        assert_eq!(ids, ["c", "a"]);
        assert_eq!(due[1].attempts, 1);
    }

    #[test]
    fn queue_writes_commit_without_fsync_and_sync_queue_fsyncs_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // The writer commits with `synchronous=NORMAL` (1): no fsync inside a commit.
        let level: i64 = store
            .queue_writer
            .lock()
            .unwrap()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 1);
        store
            .write_queue(&[QueueWrite::Enqueue(ev("a", 10))])
            .unwrap();
        // Committed: another connection sees it at once, before any fsync.
        assert_eq!(store.queue_stats().unwrap().depth, 1);
        store.sync_queue().unwrap();
        std::fs::remove_file(dir.path().join("sous.db-wal")).unwrap();
        let err = store.sync_queue().unwrap_err();
        assert!(matches!(err, StoreError::Sync { .. }), "{err}");
    }

    #[test]
    fn checkpoint_queue_copies_what_the_queue_writer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let events: Vec<_> = (0..2000)
            .map(|i| QueueWrite::Enqueue(ev(&format!("r{i}"), i)))
            .collect();
        store.write_queue(&events).unwrap();
        let (wal, copied) = store.checkpoint_queue().unwrap();
        assert!(wal > 0 && copied == wal, "{wal} {copied}");
        assert_eq!(store.queue_stats().unwrap().depth, 2000);
    }

    #[test]
    fn one_queue_write_batch_mixes_acceptances_and_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.enqueue_event(&ev("a", 10)).unwrap();
        store.enqueue_event(&ev("b", 10)).unwrap();
        let due = store.due_events(100, 10, &Default::default()).unwrap();
        store
            .write_queue(&[
                QueueWrite::Complete {
                    id: due[0].id,
                    follow_ups: vec![ev("a-destination", 15)],
                },
                QueueWrite::Enqueue(ev("c", 20)),
                QueueWrite::Reschedule {
                    id: due[1].id,
                    attempts: 1,
                    throttles: 0,
                    next_attempt_ms: 30,
                },
            ])
            .unwrap();
        let left = store.due_events(100, 10, &Default::default()).unwrap();
        let ids: Vec<_> = left.iter().map(|e| e.event.request_id.as_str()).collect();
        assert_eq!(ids, ["a-destination", "c", "b"]);
    }
}
