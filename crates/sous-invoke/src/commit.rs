//! Group commit of the asynchronous invocation queue.
//!
//! Every accepted event must be on disk before Invoke answers 202; the outcome of a delivery
//! must be committed as soon as it is known (before the attempt's `END` line: see
//! `queue.rs`), so that a restart does not run a finished attempt again, but it needs no
//! fsync (a kill of the process does not undo a commit in WAL mode; an OS crash that undoes
//! one only makes its event run again). One writer thread takes every queue write waiting at
//! that moment (acceptances, and outcomes: removals with their destination records,
//! reschedules) and commits them in one transaction without fsync
//! (`synchronous=NORMAL`), then answers the outcomes at once and hands the acceptances to a
//! second thread, which fsyncs the WAL once for all the acceptances waiting at that moment
//! and then answers them. So an outcome never waits for a disk flush, not even one made for
//! acceptances, and under load the fsync cost of acceptances is shared. Being the queue's
//! only writer, the thread never waits for SQLite's write lock over queue traffic (a busy
//! wait would sleep milliseconds at a time, and a delivery holding the main connection
//! meanwhile would stall the Invoke calls that read through it).

use std::sync::mpsc;
use std::sync::Arc;

use sous_store::{NewEvent, QueueWrite, Store};
use tokio::sync::oneshot;

/// The most writes in one transaction.
const MAX_BATCH: usize = 512;
/// How often the WAL is checkpointed while the queue is written (the writer itself never
/// checkpoints: see `Store::checkpoint_queue`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

type Reply = oneshot::Sender<Result<(), String>>;

/// Handle to the writer thread.
pub struct GroupCommit {
    tx: mpsc::Sender<(QueueWrite, Reply)>,
}

impl GroupCommit {
    /// Start the writer thread for `store`, the thread that fsyncs for acceptances and the
    /// thread that checkpoints what it writes. They end when the handle is dropped.
    pub fn start(store: Arc<Store>) -> Self {
        let (tx, rx) = mpsc::channel::<(QueueWrite, Reply)>();
        let (wrote, written) = mpsc::channel::<()>();
        let checkpoints = store.clone();
        std::thread::Builder::new()
            .name("sous-queue-checkpoint".into())
            .spawn(move || {
                // Wait for a commit, then for the interval, then checkpoint everything
                // committed meanwhile; ends when the writer thread does.
                while written.recv().is_ok() {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    while written.try_recv().is_ok() {}
                    if let Err(e) = checkpoints.checkpoint_queue() {
                        tracing::warn!(error = %e, "checkpoint the queue's WAL");
                    }
                }
            })
            .expect("start the queue's checkpoint thread");
        let (to_sync, syncs) = mpsc::channel::<Vec<Reply>>();
        let syncer = store.clone();
        std::thread::Builder::new()
            .name("sous-queue-sync".into())
            .spawn(move || {
                // One fsync for every batch of acceptances committed meanwhile.
                while let Ok(mut waiting) = syncs.recv() {
                    while let Ok(more) = syncs.try_recv() {
                        waiting.extend(more);
                    }
                    let result = syncer.sync_queue().map_err(|e| e.to_string());
                    for reply in waiting {
                        let _ = reply.send(result.clone());
                    }
                }
            })
            .expect("start the queue's sync thread");
        std::thread::Builder::new()
            .name("sous-queue-commit".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let mut writes = Vec::with_capacity(batch.len());
                    let mut replies = Vec::with_capacity(batch.len());
                    for (write, reply) in batch {
                        replies.push((matches!(write, QueueWrite::Enqueue(_)), reply));
                        writes.push(write);
                    }
                    let result = store.write_queue(&writes).map_err(|e| e.to_string());
                    let mut acceptances = Vec::new();
                    for (acceptance, reply) in replies {
                        if result.is_ok() && acceptance {
                            acceptances.push(reply);
                        } else {
                            let _ = reply.send(result.clone());
                        }
                    }
                    if !acceptances.is_empty() {
                        if let Err(mpsc::SendError(replies)) = to_sync.send(acceptances) {
                            for reply in replies {
                                let _ = reply.send(Err("the sync thread has stopped".into()));
                            }
                        }
                    }
                    let _ = wrote.send(());
                }
            })
            .expect("start the queue's commit thread");
        Self { tx }
    }

    /// Commit `event` to the queue durably (returns once the WAL holding it is fsynced).
    pub async fn enqueue(&self, event: NewEvent) -> Result<(), String> {
        self.write(QueueWrite::Enqueue(event)).await
    }

    /// Apply one write to the queue (returns once it is committed; an `Enqueue` once it is
    /// also fsynced).
    pub async fn write(&self, write: QueueWrite) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((write, reply))
            .map_err(|_| "the commit thread has stopped".to_string())?;
        done.await
            .map_err(|_| "the commit thread has stopped".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            request_id: id.into(),
            function_name: "f".into(),
            qualifier: None,
            payload: b"{}".to_vec(),
            received_ms: 1,
            trace_id: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acceptances_and_outcomes_from_many_callers_all_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let commits = Arc::new(GroupCommit::start(store.clone()));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let commits = commits.clone();
            tasks.push(tokio::spawn(async move {
                commits.enqueue(event(&format!("e{i}"))).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let due = store.due_events(10, 1000, &Default::default()).unwrap();
        assert_eq!(due.len(), 200);
        // Outcomes (removals, reschedules) interleaved with more acceptances.
        let mut tasks = Vec::new();
        for (n, e) in due.into_iter().enumerate() {
            let commits = commits.clone();
            tasks.push(tokio::spawn(async move {
                let outcome = if n % 2 == 0 {
                    QueueWrite::Complete {
                        id: e.id,
                        follow_ups: Vec::new(),
                    }
                } else {
                    QueueWrite::Reschedule {
                        id: e.id,
                        attempts: 1,
                        throttles: 0,
                        next_attempt_ms: 50,
                    }
                };
                commits.write(outcome).await?;
                commits.enqueue(event(&format!("late{n}"))).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = store.queue_stats().unwrap();
        assert_eq!(stats.depth, 100 + 200);
        let rescheduled = store
            .due_events(1000, 1000, &Default::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.attempts == 1)
            .count();
        assert_eq!(rescheduled, 100);
    }
}
