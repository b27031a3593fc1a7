//! Shared test helpers.

use std::path::PathBuf;

/// The path of an external program the tests need. Outside CI a missing program skips the
/// calling test with a message; with `CI` set it fails the test, so CI never skips silently.
pub fn require_program(name: &str, install_hint: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("`{name}` is required in CI but is not installed ({install_hint})")
        }
        None => {
            eprintln!("SKIPPED: `{name}` is not installed ({install_hint}); CI runs this test");
            None
        }
    }
}

/// A fresh database for one test: a SQLite file in a temp folder, or a fresh PostgreSQL
/// schema that is dropped afterwards. The server key is random per test.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub key: twostep::store::KeySource,
    /// PostgreSQL: (server URL, schema name) to drop the schema when done.
    pg_schema: Option<(String, String)>,
}

/// The PostgreSQL server for tests.
pub fn pg_url() -> String {
    std::env::var("TWOSTEP_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl TestDb {
    fn new_key() -> twostep::store::KeySource {
        twostep::store::KeySource::Hex(
            twostep::crypto::MasterKey::generate(&mut rand::rngs::OsRng).to_hex(),
        )
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("twostep.db").display());
        Self {
            dir,
            url,
            key: Self::new_key(),
            pg_schema: None,
        }
    }

    /// `None` (test skipped, with a message) when PostgreSQL is unreachable outside CI;
    /// in CI an unreachable PostgreSQL fails the test.
    pub async fn postgres() -> Option<Self> {
        use sqlx::Connection;
        let server = pg_url();
        let mut admin = match sqlx::PgConnection::connect(&server).await {
            Ok(conn) => conn,
            Err(error) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL is required in CI but {server} is unreachable: {error}")
            }
            Err(error) => {
                eprintln!(
                    "SKIPPED: PostgreSQL at {server} is unreachable ({error}); CI runs this test"
                );
                return None;
            }
        };
        let schema = format!(
            "twostep_test_{}",
            rand::RngCore::next_u64(&mut rand::rngs::OsRng)
        );
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .expect("create schema");
        admin.close().await.ok();
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{schema}");
        Some(Self {
            dir: tempfile::tempdir().expect("temp dir"),
            url,
            key: Self::new_key(),
            pg_schema: Some((server, schema)),
        })
    }

    pub async fn open(&self) -> twostep::store::Store {
        self.open_with(self.key.clone()).await.expect("store opens")
    }

    pub async fn open_with(
        &self,
        key: twostep::store::KeySource,
    ) -> Result<twostep::store::Store, twostep::store::StoreError> {
        twostep::store::Store::open(&twostep::store::StoreOptions {
            database_url: self.url.clone(),
            key,
            max_connections: 8,
        })
        .await
    }

    async fn raw(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("raw connection")
    }

    /// Runs SQL around the store, as an attacker or a careless script would.
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let mut conn = self.raw().await;
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .map(|done| done.rows_affected())
    }

    pub async fn raw_bytes(&self, sql: &str) -> Vec<u8> {
        let mut conn = self.raw().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("raw bytes")
    }

    pub async fn raw_count(&self, sql: &str) -> i64 {
        let mut conn = self.raw().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("raw count")
    }

    /// Drops the PostgreSQL schema (the temp folder goes with `self`).
    pub async fn finish(mut self) {
        if let Some((server, schema)) = self.pg_schema.take() {
            drop_schema(&server, &schema).await;
        }
    }
}

async fn drop_schema(server: &str, schema: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut admin)
            .await;
        admin.close().await.ok();
    }
}

impl Drop for TestDb {
    /// A test that panicked before `finish` still drops its schema.
    fn drop(&mut self) {
        if let Some((server, schema)) = self.pg_schema.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(drop_schema(&server, &schema));
                }
            })
            .join();
        }
    }
}
