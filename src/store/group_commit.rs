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
//! PostgreSQL does not use this (each statement commits on its own; the server groups
//! concurrent commits itself).

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};

use super::audit::{insert_audit, NewAuditEntry};
use super::devices::{consume, reserve_and_read, UserDeviceRow};
use super::users::{update_release, update_reserve, update_unlock, Reservation};
use super::{Backend, StoreError, StoreResult};
use crate::clock::Timestamp;
use crate::domain::{DeviceId, DeviceState, DeviceUse, UserId};

/// The most writes in one transaction (a bound on the latency of a batch).
const MAX_BATCH: usize = 512;

/// Writes waiting for the writer; callers wait when it is full (back-pressure).
const QUEUE: usize = 8192;

/// A write that may share its transaction with others.
#[derive(Debug)]
pub(super) enum Write {
    /// Consumes a code; when accepted, `audit` is appended and the failure counts of
    /// `reset` start again, in the same transaction.
    Consume {
        device: DeviceId,
        used: DeviceUse,
        state: DeviceState,
        audit: Option<(NewAuditEntry, Timestamp)>,
        reset: Option<UserId>,
    },
    Audit {
        entry: NewAuditEntry,
        at: Timestamp,
    },
    /// Counts an attempt before its credential is checked (or refuses it).
    Reserve {
        user: UserId,
        now: Timestamp,
        threshold: u32,
        lock_until: Timestamp,
    },
    /// The hot path of an OTP check: reserves the attempt of the user named `username`
    /// and reads them with their device and the settings.
    ReserveAndRead {
        username: String,
        now: Timestamp,
    },
    /// Gives a granted attempt back.
    Release {
        user: UserId,
        threshold: u32,
    },
    Unlock {
        user: UserId,
    },
}

/// What a write did.
#[derive(Debug)]
pub(super) enum Written {
    /// A consume: whether the code was accepted (the conditional update changed a row).
    Consumed(bool),
    Reserved(Reservation),
    /// Boxed: a row is large beside the other answers.
    ReservedRow(Option<Box<UserDeviceRow>>),
    /// An audit entry, a release or an unlock; `false`: the row to change did not exist.
    Done(bool),
}

struct Job {
    write: Write,
    reply: oneshot::Sender<StoreResult<Written>>,
}

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

    /// Applies `write` in the next batch and returns once that batch is committed.
    pub(super) async fn write(&self, write: Write) -> StoreResult<Written> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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
        let outcome = match conn {
            Ok(mut conn) => {
                let outcome = apply(&mut conn, &batch).await;
                // A connection whose batch failed goes back to the pool, which tests it.
                if outcome.is_ok() && !queue.is_empty() {
                    held = Some(conn);
                }
                outcome
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(results) => {
                for (job, result) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, writes = batch.len(), "a batch of writes failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(StoreError::Database(
                        "the write could not be committed".into(),
                    )));
                }
            }
        }
    }
}

/// One transaction for the batch; each write's own result (a failed statement fails only
/// its own caller). `Err`: the transaction itself failed, nothing of it holds.
async fn apply(conn: &mut AnyConnection, batch: &[Job]) -> StoreResult<Vec<StoreResult<Written>>> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let result = match &job.write {
            Write::Consume {
                device,
                used,
                state,
                audit,
                reset,
            } => {
                let audit = audit.as_ref().map(|(entry, at)| (entry, *at));
                consume(
                    &mut tx,
                    Backend::Sqlite,
                    *device,
                    *used,
                    *state,
                    audit,
                    *reset,
                )
                .await
                .map(Written::Consumed)
            }
            Write::Audit { entry, at } => insert_audit(&mut tx, entry, *at)
                .await
                .map(|()| Written::Done(true)),
            Write::Reserve {
                user,
                now,
                threshold,
                lock_until,
            } => update_reserve(&mut tx, *user, *now, *threshold, *lock_until)
                .await
                .map(Written::Reserved),
            Write::ReserveAndRead { username, now } => reserve_and_read(&mut tx, username, *now)
                .await
                .map(|row| Written::ReservedRow(row.map(Box::new))),
            Write::Release { user, threshold } => update_release(&mut tx, *user, *threshold)
                .await
                .map(Written::Done),
            Write::Unlock { user } => update_unlock(&mut tx, *user).await.map(Written::Done),
        };
        results.push(result);
    }
    tx.commit().await?;
    Ok(results)
}
