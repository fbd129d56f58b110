//! Applies the ordered SQL migrations of `crates/store/schema/`, each in its own transaction
//! unless it is marked otherwise.
//!
//! The files are compiled into the binary so that a deployed `onshi` carries exactly the schema it
//! was built for. An advisory lock keeps two servers starting at once from racing. They run as the
//! schema's owner (`migration_database_url`); the server itself connects as the application role
//! `onshi_app`, which each migration grants what it needs on the tables it creates.
//!
//! **Checksums.** `schema_migrations` keeps the SHA-256 of every file it applied. A file edited
//! after it was applied is refused (the database would no longer be what the file says), naming
//! the file: restore it and put the change in a new migration. Rows from before checksums were
//! kept take the checksum of the file as it is the first time this version runs.
//!
//! **Outside a transaction.** A file whose first line is [`NO_TRANSACTION`] runs on its own,
//! outside any transaction (for `create index concurrently`, which refuses to run in one). Such a
//! file holds one statement (PostgreSQL runs several statements sent at once as one transaction),
//! which should be safe to run again (`if not exists`): if the session fails between the
//! statement and its record, the next start runs it again.

use anyhow::Context;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// The first line of a migration that runs outside a transaction.
pub const NO_TRANSACTION: &str = "-- onshi: no-transaction";

/// One migration: its version, file name and SQL.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }

    fn in_transaction(&self) -> bool {
        self.sql.lines().next().map(str::trim) != Some(NO_TRANSACTION)
    }
}

/// A [`Migration`] from its version and the name of its file in `schema/`.
macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../schema/", $name)),
        }
    };
}

/// The migrations, in the order they must be applied.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_core.sql"),
    migration!(2, "0002_audit.sql"),
    migration!(3, "0003_card.sql"),
    migration!(4, "0004_health_ids.sql"),
    migration!(5, "0005_self_challenges.sql"),
    migration!(6, "0006_party_certificates.sql"),
    migration!(8, "0008_audit_keys_roles.sql"),
    migration!(9, "0009_shared_limits.sql"),
    migration!(10, "0010_card_unlink.sql"),
    migration!(11, "0011_audit_lane_seq.sql"),
    migration!(14, "0014_answer_details.sql"),
    migration!(15, "0015_public_expense.sql"),
    migration!(16, "0016_proof_keys.sql"),
    migration!(17, "0017_bulk_inquiries.sql"),
    migration!(18, "0018_bulk_idempotency.sql"),
    migration!(19, "0019_bulk_idempotency_index.sql"),
    migration!(20, "0020_consents_giving.sql"),
];

/// Creates the application role before any migration runs, so that every migration's guarded
/// `grant ... to onshi_app` finds it (0008 creates it too, for a database migrated by hand).
/// Roles are cluster-wide and other databases may be migrating at the same moment: a concurrent
/// creation is not an error. A migrating role without CREATEROLE, where the operator has not
/// created the role, is left to 0008 to report.
const ENSURE_APP_ROLE: &str = "
do $$
begin
    if not exists (select 1 from pg_roles where rolname = 'onshi_app') then
        create role onshi_app nologin;
    end if;
exception
    when duplicate_object or unique_violation or insufficient_privilege then null;
end
$$";

/// An arbitrary constant shared by every onshi process: the key of the migration lock.
const MIGRATION_LOCK: i64 = 0x6f6e_7368_695f_6d69;

/// Applies every migration of this binary not yet recorded in `schema_migrations`; returns how
/// many ran.
///
/// # Errors
/// Fails when the database is unreachable, an applied file was edited since, or a migration's SQL
/// fails; a failed migration is rolled back whole and the ones after it are not attempted.
pub async fn run(client: &mut Client) -> anyhow::Result<usize> {
    apply(client, MIGRATIONS).await
}

/// Applies `migrations` (in order) as [`run`] does.
///
/// # Errors
/// As [`run`].
pub async fn apply(client: &mut Client, migrations: &[Migration]) -> anyhow::Result<usize> {
    let exists: bool = client
        .query_one("select to_regclass('schema_migrations') is not null", &[])
        .await
        .context("looking for schema_migrations")?
        .get(0);
    if !exists {
        // Two processes may race here; the loser's error is harmless and says so.
        client
            .batch_execute(
                "create table if not exists schema_migrations (
                     version integer primary key,
                     name text not null,
                     applied_at timestamptz not null default now())",
            )
            .await
            .context("creating schema_migrations")?;
    }
    client
        .execute("select pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("taking the migration lock")?;
    let result = async {
        // Looked up first: only the owner may alter the table, and a session that finds
        // nothing to do needs no more than reading.
        let has_checksums: bool = client
            .query_one(
                "select exists (select 1 from pg_attribute
                                where attrelid = 'schema_migrations'::regclass
                                  and attname = 'checksum' and not attisdropped)",
                &[],
            )
            .await
            .context("looking for the checksum column")?
            .get(0);
        if !has_checksums {
            client
                .batch_execute(
                    "alter table schema_migrations add column if not exists checksum bytea",
                )
                .await
                .context("adding checksums to schema_migrations")?;
        }
        client
            .batch_execute(ENSURE_APP_ROLE)
            .await
            .context("creating the application role")?;
        apply_pending(client, migrations).await
    }
    .await;
    client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .context("releasing the migration lock")?;
    result
}

async fn apply_pending(client: &mut Client, migrations: &[Migration]) -> anyhow::Result<usize> {
    let applied: std::collections::HashMap<i32, Option<Vec<u8>>> = client
        .query("select version, checksum from schema_migrations", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut count = 0;
    for migration in migrations {
        let checksum = migration.checksum();
        match applied.get(&migration.version) {
            Some(Some(stored)) if *stored == checksum => continue,
            Some(Some(_)) => anyhow::bail!(
                "migration {} was edited after it was applied (its checksum differs from the \
                 one recorded): restore the file as applied and put the change in a new migration",
                migration.name
            ),
            Some(None) => {
                client
                    .execute(
                        "update schema_migrations set checksum = $2 where version = $1",
                        &[&migration.version, &checksum],
                    )
                    .await
                    .context("recording a migration's checksum")?;
                continue;
            }
            None => {}
        }
        let record = "insert into schema_migrations (version, name, checksum) values ($1, $2, $3)";
        if migration.in_transaction() {
            let tx = client.transaction().await?;
            tx.batch_execute(migration.sql)
                .await
                .with_context(|| format!("applying migration {}", migration.name))?;
            tx.execute(record, &[&migration.version, &migration.name, &checksum])
                .await?;
            tx.commit().await?;
        } else {
            client.batch_execute(migration.sql).await.with_context(|| {
                format!(
                    "applying migration {} (outside a transaction)",
                    migration.name
                )
            })?;
            client
                .execute(record, &[&migration.version, &migration.name, &checksum])
                .await?;
        }
        tracing::info!(migration = migration.name, "applied");
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::{Migration, MIGRATIONS, NO_TRANSACTION};

    #[test]
    fn versions_are_strictly_increasing_and_match_file_names() {
        for pair in MIGRATIONS.windows(2) {
            assert!(
                pair[0].version < pair[1].version,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for m in MIGRATIONS {
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
        }
    }

    #[test]
    fn every_schema_file_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn the_marker_takes_a_migration_out_of_its_transaction() {
        let plain = Migration {
            version: 1,
            name: "0001_a.sql",
            sql: "create table a (id int);",
        };
        assert!(plain.in_transaction());
        let concurrent = Migration {
            version: 2,
            name: "0002_b.sql",
            sql: concat!(
                "-- onshi: no-transaction\n",
                "create index concurrently b on a (id);"
            ),
        };
        assert!(concurrent.sql.starts_with(NO_TRANSACTION));
        assert!(!concurrent.in_transaction());
        assert_ne!(plain.checksum(), concurrent.checksum());
    }
}
