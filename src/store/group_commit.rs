//! Group commit on SQLite: the writes of the hot path (reserving an attempt, consuming a
//! code with the reset of the failure counts, the audit entry) from every request in flight share one
//! transaction, and so one fsync, instead of one each.
//!
//! SQLite makes a commit durable with an fsync of its write-ahead log, and a disk manages
//! a few thousand fsyncs a second; one writer connection applying whatever has queued
//! while the previous commit was being synced turns that into a few thousand *batches* a
//! second. Durability is unchanged (`synchronous = FULL`): a caller gets its answer only
//! after the commit that holds its write has returned, so an accepted code is on disk
//! before anyone is told it was accepted. A power loss can lose only writes whose callers
//! had no answer yet (at most one batch in progress).
//!
//! Each write is still its own conditional statement, applied in arrival order inside
//! the batch, so the rules hold exactly as before: of two consumes of one code in one
//! batch, the second finds the counter moved and changes nothing. There is no delay to
//! wait for company: a batch is what queued during the previous commit.
//!
//! The runner knows nothing of users, devices or audit entries: each aggregate of the store
//! hands it a write (a closure over the batch's connection) with its own typed answer
//! ([`GroupCommit::run`]), so the writes of the hot path live beside the rest of their
//! aggregate's SQL.
//!
//! PostgreSQL does not use this (each statement commits on its own; the server groups
//! concurrent commits itself).

use std::future::Future;
use std::pin::Pin;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreResult};

/// The most writes in one transaction (a bound on the latency of a batch).
const MAX_BATCH: usize = 512;

/// Writes waiting for the writer; callers wait when it is full (back-pressure).
const QUEUE: usize = 8192;

/// A future borrowing the batch's connection.
pub(super) type Step<'c, T> = Pin<Box<dyn Future<Output = T> + Send + 'c>>;

/// Answers the caller of a write once its batch is over: `true` if the batch committed
/// (the write's own result stands), `false` if not (nothing of it holds).
type Answer = Box<dyn FnOnce(bool) + Send>;

/// A write of the batch: applies itself on the batch's connection, and gives back how to
/// answer its caller after the commit.
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> Step<'c, Answer> + Send>;

/// The handle the store writes through; cheap to clone.
#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on `pool`; it ends when every handle is gone.
    pub(super) fn start(pool: AnyPool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, queue));
        Self { jobs }
    }

    /// Applies `write` in the next batch (in arrival order, inside the batch's
    /// transaction) and returns its result once that batch is committed. A failed write
    /// fails only its own caller; a failed commit fails every caller of the batch.
    pub(super) async fn run<T, W>(&self, write: W) -> StoreResult<T>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(&'c mut AnyConnection) -> Step<'c, StoreResult<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let answer: Answer = Box::new(move |committed| {
                    let _ = reply.send(match committed {
                        true => result,
                        false => Err(StoreError::Database(
                            "the write could not be committed".into(),
                        )),
                    });
                });
                answer
            })
        });
        self.jobs.send(job).await.map_err(|_| stopped())?;
        // A write dropped unrun (no connection, no transaction) was not committed.
        answer
            .await
            .map_err(|_| StoreError::Database("the write could not be committed".into()))?
    }
}

fn stopped() -> StoreError {
    StoreError::Database("the database writer has stopped".into())
}

/// Takes what has queued (at least one write), applies it in one transaction, commits,
/// then answers every caller of the batch. The writer keeps its connection while writes
/// keep coming (taking it from the pool and giving it back costs a round trip to the
/// connection's thread each) and gives it back when the queue is empty.
async fn writer(pool: AnyPool, mut queue: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut held: Option<PoolConnection<Any>> = None;
    while let Some(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let conn = match held.take() {
            Some(conn) => Ok(conn),
            None => pool.acquire().await.map_err(StoreError::from),
        };
        match conn {
            Ok(mut conn) => {
                let (answers, committed) = apply(&mut conn, batch.drain(..)).await;
                // A connection whose batch failed goes back to the pool, which tests it.
                if committed && !queue.is_empty() {
                    held = Some(conn);
                }
                for answer in answers {
                    answer(committed);
                }
            }
            Err(error) => {
                tracing::error!(%error, writes = batch.len(), "no connection for a batch of writes");
                // Dropped unrun, each write answers "not committed".
                batch.clear();
            }
        }
    }
}

/// One transaction for the batch: each write applied in order, then the commit. The
/// answers of the writes that ran, and whether the batch committed.
async fn apply(conn: &mut AnyConnection, jobs: impl Iterator<Item = Job>) -> (Vec<Answer>, bool) {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(error) => {
            tracing::error!(%error, "a batch of writes could not begin");
            return (Vec::new(), false);
        }
    };
    let mut answers = Vec::new();
    for job in jobs {
        answers.push(job(&mut tx).await);
    }
    match tx.commit().await {
        Ok(()) => (answers, true),
        Err(error) => {
            tracing::error!(%error, writes = answers.len(), "a batch of writes failed");
            (answers, false)
        }
    }
}
