//! Group commit of accepted asynchronous events.
//!
//! Every accepted event must be on disk (`synchronous=FULL`) before Invoke answers 202. One
//! fsync per event caps acceptance at the disk's sync rate; instead one writer thread takes
//! every event waiting at that moment and commits them in one transaction, then answers all
//! their callers. Under load, batches grow and the fsync cost is shared; alone, an event is
//! committed at once.

use std::sync::mpsc;
use std::sync::Arc;

use sous_store::{NewEvent, Store};
use tokio::sync::oneshot;

/// The most events in one transaction.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<(), String>>;

/// Handle to the writer thread.
pub struct GroupCommit {
    tx: mpsc::Sender<(NewEvent, Reply)>,
}

impl GroupCommit {
    /// Start the writer thread for `store`. It ends when the handle is dropped.
    pub fn start(store: Arc<Store>) -> Self {
        let (tx, rx) = mpsc::channel::<(NewEvent, Reply)>();
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
                    let (events, replies): (Vec<NewEvent>, Vec<Reply>) = batch.into_iter().unzip();
                    let result = store.enqueue_events(&events).map_err(|e| e.to_string());
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                }
            })
            .expect("start the queue's commit thread");
        Self { tx }
    }

    /// Commit `event` durably (returns once it is on disk).
    pub async fn commit(&self, event: NewEvent) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.tx
            .send((event, reply))
            .map_err(|_| "the commit thread has stopped".to_string())?;
        done.await
            .map_err(|_| "the commit thread has stopped".to_string())?
    }
}
