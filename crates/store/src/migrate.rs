//! Applies the ordered SQL migrations of `schema/`, each in its own transaction.
//!
//! The files are compiled into the binary so that a deployed `onshi` carries exactly the schema it
//! was built for. An advisory lock keeps two servers starting at once from racing. They run as the
//! schema's owner (`migration_database_url`); the server itself connects as the application role
//! `onshi_app`, which each migration grants what it needs on the tables it creates.

use anyhow::Context;
use tokio_postgres::Client;

/// `(version, file name, SQL)`, in the order they must be applied.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "0001_core.sql", include_str!("../schema/0001_core.sql")),
    (
        2,
        "0002_audit.sql",
        include_str!("../schema/0002_audit.sql"),
    ),
    (3, "0003_card.sql", include_str!("../schema/0003_card.sql")),
    (
        4,
        "0004_health_ids.sql",
        include_str!("../schema/0004_health_ids.sql"),
    ),
    (
        5,
        "0005_self_challenges.sql",
        include_str!("../schema/0005_self_challenges.sql"),
    ),
    (
        6,
        "0006_party_certificates.sql",
        include_str!("../schema/0006_party_certificates.sql"),
    ),
    (
        8,
        "0008_audit_keys_roles.sql",
        include_str!("../schema/0008_audit_keys_roles.sql"),
    ),
    (
        9,
        "0009_shared_limits.sql",
        include_str!("../schema/0009_shared_limits.sql"),
    ),
    (
        10,
        "0010_card_unlink.sql",
        include_str!("../schema/0010_card_unlink.sql"),
    ),
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

/// Applies every migration not yet recorded in `schema_migrations`; returns how many ran.
///
/// # Errors
/// Fails when the database is unreachable or a migration's SQL fails; a failed migration is rolled
/// back whole and the ones after it are not attempted.
pub async fn run(client: &mut Client) -> anyhow::Result<usize> {
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
    let result = match client.batch_execute(ENSURE_APP_ROLE).await {
        Ok(()) => apply_pending(client).await,
        Err(e) => Err(anyhow::Error::new(e).context("creating the application role")),
    };
    client
        .execute("select pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .context("releasing the migration lock")?;
    result
}

async fn apply_pending(client: &mut Client) -> anyhow::Result<usize> {
    let applied: Vec<i32> = client
        .query("select version from schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut count = 0;
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying migration {name}"))?;
        tx.execute(
            "insert into schema_migrations (version, name) values ($1, $2)",
            &[&version, &name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(migration = name, "applied");
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_are_strictly_increasing_and_match_file_names() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].1, pair[1].1);
        }
        for (version, name, _) in MIGRATIONS {
            assert!(name.starts_with(&format!("{version:04}_")), "{name}");
        }
    }
}
