//! The migration runner: checksums of applied files, and files run outside a transaction.

use onshi::store::migrate::{self, Migration, MIGRATIONS};

use crate::helpers::{on_database, pg_server};

/// A fresh, empty database, dropped at the end.
struct Database {
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Database {
        let name = format!("onshi_test_{}", uuid::Uuid::new_v4().simple());
        let admin = onshi::store::connect(&on_database(&pg_server(), "postgres"))
            .await
            .expect("the test PostgreSQL must be reachable: run the tests with ops/test");
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .unwrap();
        Database {
            url: on_database(&pg_server(), &name),
            name,
        }
    }

    async fn client(&self) -> tokio_postgres::Client {
        onshi::store::connect(&self.url).await.unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(admin) =
                    onshi::store::connect(&on_database(&pg_server(), "postgres")).await
                {
                    let _ = admin
                        .batch_execute(&format!("drop database if exists {name} with (force)"))
                        .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn an_applied_file_that_was_edited_is_refused_by_name() {
    let db = Database::create().await;
    let mut client = db.client().await;
    assert_eq!(migrate::run(&mut client).await.unwrap(), MIGRATIONS.len());
    assert_eq!(migrate::run(&mut client).await.unwrap(), 0);
    let without: i64 = client
        .query_one(
            "select count(*) from schema_migrations where checksum is null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(without, 0, "every applied file has its checksum");

    // A database migrated before checksums were kept takes the files' checksums as they are.
    client
        .batch_execute("update schema_migrations set checksum = null")
        .await
        .unwrap();
    assert_eq!(migrate::run(&mut client).await.unwrap(), 0);
    let recorded: Vec<u8> = client
        .query_one(
            "select checksum from schema_migrations where version = 3",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded.len(), 32);

    // The file applied as version 3 differs from the one this binary carries.
    client
        .batch_execute(
            "update schema_migrations set checksum = sha256('another file') where version = 3",
        )
        .await
        .unwrap();
    let error = format!("{:#}", migrate::run(&mut client).await.unwrap_err());
    assert!(
        error.contains("0003_card.sql") && error.contains("edited"),
        "{error}"
    );
}

#[tokio::test]
async fn a_marked_file_runs_outside_a_transaction() {
    let db = Database::create().await;
    let mut client = db.client().await;
    migrate::run(&mut client).await.unwrap();
    let index =
        "create index concurrently if not exists coverages_lost_on_test on coverages (lost_on)";

    // Unmarked, PostgreSQL refuses it inside the migration's transaction, and nothing is recorded.
    let unmarked = Migration {
        version: 9001,
        name: "9001_lost_on_index.sql",
        sql:
            "create index concurrently if not exists coverages_lost_on_test on coverages (lost_on)",
    };
    assert_eq!(unmarked.sql, index);
    let mut list: Vec<Migration> = MIGRATIONS.to_vec();
    list.push(unmarked);
    let error = format!(
        "{:#}",
        migrate::apply(&mut client, &list).await.unwrap_err()
    );
    assert!(error.contains("9001_lost_on_index.sql"), "{error}");
    let recorded: i64 = client
        .query_one(
            "select count(*) from schema_migrations where version = 9001",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 0);

    // Marked, it runs on its own and is recorded once built.
    list.pop();
    list.push(Migration {
        version: 9001,
        name: "9001_lost_on_index.sql",
        sql: "-- onshi: no-transaction\ncreate index concurrently if not exists coverages_lost_on_test on coverages (lost_on)",
    });
    assert_eq!(migrate::apply(&mut client, &list).await.unwrap(), 1);
    let valid: bool = client
        .query_one(
            "select indisvalid from pg_index where indexrelid = 'coverages_lost_on_test'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
    assert_eq!(migrate::apply(&mut client, &list).await.unwrap(), 0);
}
