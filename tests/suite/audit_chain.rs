//! The audit log's hash chain (SPEC section 16): an untouched log verifies; editing,
//! deleting or swapping one row directly in the database makes `audit verify` name that
//! entry, on SQLite and PostgreSQL; two instances writing 2,000 entries at once verify.

use twostep::domain::audit_chain::Break;
use twostep::domain::AuditEvent;
use twostep::service::audit_chain::verify;
use twostep::store::{KeySource, NewAuditEntry, Store};

use crate::cli::twostep_with;
use crate::helpers::TestDb;
use crate::store::on_both_engines;

const NOW: twostep::clock::Timestamp = twostep::clock::Timestamp::from_millis(1_800_000_000_000);

fn entry(i: usize) -> NewAuditEntry {
    NewAuditEntry {
        event: AuditEvent::SignInFailed,
        actor: None,
        subject: Some(format!("user{}", i % 7)),
        client_ip: (i % 3 != 0).then(|| "192.0.2.7".to_owned()),
        detail: format!("wrong password #{i}"),
    }
}

/// A store with `count` entries, written one after the other and all sealed.
async fn sealed_log(db: &TestDb, count: usize) -> Store {
    let store = db.open().await;
    for i in 0..count {
        store.audit(&entry(i), NOW).await.unwrap();
    }
    store.seal_all_audit().await.unwrap();
    store
}

/// Drops the triggers that keep the log append-only, as someone with the database's
/// owner rights could, so that rows can be changed behind the service's back.
async fn unguard(db: &TestDb) {
    let drops: &[&str] = if db.url.starts_with("sqlite") {
        &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ]
    } else {
        &["DROP TRIGGER audit_log_no_update ON audit_log"]
    };
    for sql in drops {
        db.raw_execute(sql).await.unwrap();
    }
}

/// The id of the entry with sequence number `seq`.
async fn id_of(db: &TestDb, seq: i64) -> i64 {
    db.raw_count(&format!("SELECT id FROM audit_log WHERE seq = {seq}"))
        .await
}

on_both_engines!(
    an_untouched_log_verifies,
    an_edited_entry_is_named,
    a_deleted_entry_is_named,
    swapped_entries_are_named,
    removing_the_newest_entries_is_seen,
    two_instances_writing_2000_entries_at_once_verify,
);

async fn an_untouched_log_verifies(db: &TestDb) {
    let store = sealed_log(db, 40).await;
    let report = verify(&store, None).await.unwrap();
    assert_eq!(
        (report.checked, report.unsealed, report.broken),
        (40, 0, None)
    );
    // New entries wait to be sealed, and are counted as such.
    store.audit(&entry(40), NOW).await.unwrap();
    let report = verify(&store, None).await.unwrap();
    assert_eq!((report.checked, report.unsealed), (40, 1));
    store.seal_all_audit().await.unwrap();
    assert_eq!(verify(&store, None).await.unwrap().checked, 41);
    // From a sequence number on.
    let report = verify(&store, Some(30)).await.unwrap();
    assert_eq!((report.checked, report.broken), (12, None));
    // Sealing twice changes nothing.
    assert_eq!(store.seal_all_audit().await.unwrap(), 0);
    // The triggers keep it append-only: a sealed entry is neither changed, re-sealed nor
    // removed.
    for sql in [
        "UPDATE audit_log SET detail = 'x' WHERE seq = 3",
        "UPDATE audit_log SET seq = 99 WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 3",
    ] {
        assert!(db.raw_execute(sql).await.is_err(), "{sql}");
    }
    assert_eq!(verify(&store, None).await.unwrap().broken, None);
    store.close().await;
}

async fn an_edited_entry_is_named(db: &TestDb) {
    let store = sealed_log(db, 20).await;
    unguard(db).await;
    let id = id_of(db, 7).await;
    for (column, value) in [
        ("detail", "'right password'"),
        ("actor", "'admin'"),
        ("at", "at + 1"),
    ] {
        db.raw_execute(&format!(
            "UPDATE audit_log SET {column} = {value} WHERE seq = 7"
        ))
        .await
        .unwrap();
        let broken = verify(&store, None).await.unwrap().broken.expect(column);
        assert_eq!(
            (broken.id, broken.seq, broken.why),
            (id, 7, Break::Content),
            "{column}"
        );
        // Put back: the chain verifies again, so each column is caught on its own.
        let undo = match column {
            "detail" => "detail = 'wrong password #6'".to_owned(),
            "actor" => "actor = NULL".to_owned(),
            _ => "at = at - 1".to_owned(),
        };
        db.raw_execute(&format!("UPDATE audit_log SET {undo} WHERE seq = 7"))
            .await
            .unwrap();
        assert_eq!(verify(&store, None).await.unwrap().broken, None, "{column}");
    }
    store.close().await;
}

async fn a_deleted_entry_is_named(db: &TestDb) {
    let store = sealed_log(db, 20).await;
    unguard(db).await;
    let next = id_of(db, 10).await;
    db.raw_execute("DELETE FROM audit_log WHERE seq = 9")
        .await
        .unwrap();
    let report = verify(&store, None).await.unwrap();
    let broken = report.broken.unwrap();
    assert_eq!(
        (broken.id, broken.seq, broken.why),
        (next, 10, Break::Gap { expected: 9 })
    );
    assert_eq!(report.checked, 8);
    // Renumbered to hide the gap: the link to the entry before tells.
    db.raw_execute("UPDATE audit_log SET seq = seq - 1 WHERE seq >= 10")
        .await
        .unwrap();
    let broken = verify(&store, None).await.unwrap().broken.unwrap();
    assert_eq!((broken.id, broken.why), (next, Break::PreviousHash));
    store.close().await;
}

async fn swapped_entries_are_named(db: &TestDb) {
    let store = sealed_log(db, 20).await;
    unguard(db).await;
    let third = id_of(db, 3).await;
    // The contents of entries 3 and 4 trade places (their chain columns stay).
    db.raw_execute(
        "UPDATE audit_log SET detail = CASE seq WHEN 3 THEN 'wrong password #3' \
         ELSE 'wrong password #2' END WHERE seq IN (3, 4)",
    )
    .await
    .unwrap();
    let broken = verify(&store, None).await.unwrap().broken.unwrap();
    assert_eq!(
        (broken.id, broken.seq, broken.why),
        (third, 3, Break::Content)
    );
    store.close().await;
}

async fn removing_the_newest_entries_is_seen(db: &TestDb) {
    let store = sealed_log(db, 20).await;
    unguard(db).await;
    db.raw_execute("DELETE FROM audit_log WHERE seq >= 18")
        .await
        .unwrap();
    let report = verify(&store, None).await.unwrap();
    let broken = report.broken.expect("the head is sealed at 20");
    assert_eq!(broken.seq, 18);
    assert_eq!(report.checked, 17);
    store.close().await;
}

async fn two_instances_writing_2000_entries_at_once_verify(db: &TestDb) {
    let before = db.open().await;
    before.close().await;
    let a = db.open().await;
    let b = db.open().await;
    let mut tasks = Vec::new();
    for (n, store) in [a.clone(), b.clone()].into_iter().enumerate() {
        // Each instance: 1,000 entries from 10 writers, and its sealer running meanwhile.
        for writer in 0..10 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    store
                        .audit(&entry(n * 1000 + writer * 100 + i), NOW)
                        .await
                        .unwrap();
                    if i % 25 == 0 {
                        store.seal_audit().await.unwrap();
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    a.seal_all_audit().await.unwrap();
    b.seal_all_audit().await.unwrap();
    let report = verify(&a, None).await.unwrap();
    assert_eq!(
        (report.checked, report.unsealed, report.broken),
        (2000, 0, None)
    );
    assert_eq!(
        db.raw_count("SELECT COUNT(DISTINCT seq) FROM audit_log")
            .await,
        2000
    );
    a.close().await;
    b.close().await;
}

/// `twostep audit verify` exits 0 on an untouched log and 1 naming the broken entry.
#[tokio::test]
async fn the_command_names_the_first_broken_entry() {
    let db = TestDb::sqlite().await;
    let store = db.open().await;
    // The command needs a database `serve` set up.
    store
        .bootstrap("$argon2id$fake-admin-hash", true, NOW)
        .await
        .unwrap();
    for i in 0..12 {
        store.audit(&entry(i), NOW).await.unwrap();
    }
    store.seal_all_audit().await.unwrap();
    let total = verify(&store, None).await.unwrap().checked;
    store.close().await;
    unguard(&db).await;
    let KeySource::Hex(key) = &db.key else {
        panic!("a hex key")
    };
    let env = [("TWOSTEP_KEY", key.as_str())];
    let run = twostep_with(&["audit", "verify", "--database", &db.url], &env, None).await;
    assert_eq!(
        run.ok(),
        format!("the audit chain verifies: {total} entries\n")
    );
    let id = id_of(&db, 5).await;
    db.raw_execute("UPDATE audit_log SET subject = 'someone else' WHERE seq = 5")
        .await
        .unwrap();
    let run = twostep_with(&["audit", "verify", "--database", &db.url], &env, None).await;
    run.refused(&format!(
        "the audit chain is broken at entry {id} (sequence number 5): hash does not match \
         its content: the entry was changed (4 entries before it verify)"
    ));
    let run = twostep_with(
        &["audit", "verify", "--from", "6", "--database", &db.url],
        &env,
        None,
    )
    .await;
    assert_eq!(
        run.ok(),
        format!("the audit chain verifies: {} entries\n", total - 5)
    );
    db.finish().await;
}

/// A running instance seals what is written (within a second), and the entries a
/// database held before the chain existed are sealed first, in their order.
#[tokio::test]
async fn a_running_instance_seals_new_entries_by_itself() {
    let app = crate::helpers::spawn_app().await;
    let (status, _) = app
        .post(
            "/api/v1/signin",
            serde_json::json!({"username": "nobody", "password": "wrong password"}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let report = verify(&app.store, None).await.unwrap();
        if report.unsealed == 0 && report.checked > 0 {
            assert_eq!(report.broken, None);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not sealed within 10 s: {report:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let first = app
        .store
        .audit_chain_page(1, 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let oldest = db_oldest_id(&app).await;
    assert_eq!(first.0.id, oldest, "sequence 1 is the oldest entry");
    app.stop().await;
}

async fn db_oldest_id(app: &crate::helpers::TestApp) -> i64 {
    let entries = app
        .store
        .audit_entries(&twostep::store::AuditQuery {
            limit: 100_000,
            ..Default::default()
        })
        .await
        .unwrap();
    entries.last().unwrap().id
}
