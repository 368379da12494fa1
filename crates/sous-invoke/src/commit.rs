//! Group commit of the asynchronous invocation queue.
//!
//! Every accepted event must be on disk (`synchronous=FULL`) before Invoke answers 202. One
//! fsync per event caps acceptance at the disk's sync rate; instead one writer thread takes
//! every queue write waiting at that moment (acceptances, and the outcomes of deliveries:
//! removals with their destination records, reschedules) and applies them in one
//! transaction, then answers all their callers. Under load, batches grow and the fsync cost
//! is shared; alone, a write is committed at once. Being the queue's only writer, the thread
//! never waits for SQLite's write lock over queue traffic (a busy wait would sleep
//! milliseconds at a time, and a delivery holding the main connection meanwhile would stall
//! the Invoke calls that read through it).

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
    /// Start the writer thread for `store`, and the thread that checkpoints what it writes.
    /// Both end when the handle is dropped.
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
                    let (writes, replies): (Vec<QueueWrite>, Vec<Reply>) =
                        batch.into_iter().unzip();
                    let result = store.write_queue(&writes).map_err(|e| e.to_string());
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                    let _ = wrote.send(());
                }
            })
            .expect("start the queue's commit thread");
        Self { tx }
    }

    /// Commit `event` to the queue durably (returns once it is on disk).
    pub async fn enqueue(&self, event: NewEvent) -> Result<(), String> {
        self.write(QueueWrite::Enqueue(event)).await
    }

    /// Apply one write to the queue (returns once it is committed).
    pub async fn write(&self, write: QueueWrite) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((write, reply))
            .map_err(|_| "the commit thread has stopped".to_string())?;
        done.await
            .map_err(|_| "the commit thread has stopped".to_string())?
    }
}
