//! Builds the server `onshi serve` runs and the tests spawn: same code, any port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::api::auth::AuthCache;
use crate::api::enrollments::UploadGate;
use crate::api::limits::{LimitSettings, Limits};
use crate::api::{routes, AppState};
use crate::audit::AuditLog;
use crate::card::binding::Origin;
use crate::card::trust::TrustStore;
use crate::clock::Clock;
use crate::config::Settings;

pub struct Application {
    port: u16,
    server: Server,
    audit: AuditLog,
}

/// The origin readers sign into card proofs: `public_origin`, else derived from `listen` and the
/// bound port.
fn public_origin(settings: &Settings, tls: bool, port: u16) -> anyhow::Result<Origin> {
    let text = match &settings.public_origin {
        Some(origin) => origin.clone(),
        None => format!(
            "{}://{}:{port}",
            if tls { "https" } else { "http" },
            settings.listen.host()
        ),
    };
    Origin::parse(&text).with_context(|| format!("public_origin {text:?}"))
}

impl Application {
    /// Migrates the database, then binds `settings.listen` (port 0 picks a free port), with TLS
    /// when `settings.tls` names a certificate and key.
    ///
    /// # Errors
    /// No link key, audit key or proof key, unusable TLS files, an unreachable database, a
    /// failing migration or an unusable address.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::system()).await
    }

    /// [`Application::build`] with the clock the use cases read (a test's own, to let hours
    /// pass).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_clock(settings: &Settings, clock: Clock) -> anyhow::Result<Self> {
        settings.validate()?;
        let link_key = Arc::new(settings.link_key()?);
        // Read before the database is touched, so that a TLS mistake fails the start at once.
        let tls = settings.tls.server_config()?;
        if tls.is_some() {
            tracing::info!(
                client_certificates_required = settings.tls.client_ca_file.is_some(),
                "serving over TLS only"
            );
        }
        let chain = audit_chain(settings)?;
        let proofs = Arc::new(settings.proof.open(&settings.health_id)?);
        let mut client = crate::store::connect(settings.migration_url()).await?;
        crate::store::migrate::run(&mut client).await?;
        drop(client);
        // One parsed URL (with its TLS connector) for the pool and every dedicated session.
        let connector = crate::store::Connector::for_server(&settings.database_url)?;
        let pool = crate::store::pool_with(&connector, settings.pool_size.get())?;
        crate::proof::publish(&pool, &proofs).await?;
        let listener = TcpListener::bind(settings.listen.to_string())
            .with_context(|| format!("listen (ONSHI_LISTEN): binding {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let origin = public_origin(settings, tls.is_some(), port)?;
        let reload = settings.trust_reload_seconds;
        let audit = AuditLog::start(
            &connector,
            settings.audit_writers,
            settings.audit_batch_max,
            chain,
        )?;
        let checks = crate::eligibility::coalesce::Coalescer::start(
            crate::eligibility::coalesce::Answering {
                pool: pool.clone(),
                audit: audit.clone(),
                proofs: proofs.clone(),
                clock: clock.clone(),
            },
            settings.check_lookups.get(),
        );
        let state = web::Data::new(AppState {
            audit: audit.clone(),
            checks,
            pool,
            link_key,
            auth: AuthCache::new(settings.auth_cache_seconds),
            limits: Limits::new(&LimitSettings {
                rate_per_second: settings.rate_per_second,
                rate_burst: settings.rate_burst,
                daily_quota: settings.daily_quota,
                enumeration_misses: settings.enumeration_misses,
                enumeration_retry_after: settings.enumeration_cooloff_seconds,
                trusted_proxies: settings.trusted_proxies.clone(),
            }),
            trust: TrustStore::start(
                settings.jpki_trust_dir.clone(),
                settings.jpki_crl_dir.clone(),
                i64::try_from(settings.crl_grace_seconds.as_secs()).unwrap_or(i64::MAX),
                true,
                reload,
            )?,
            // The anchors of the card's input-assistance data have no CRLs configured.
            surface_trust: TrustStore::start(
                settings.card_surface_trust_dir.clone(),
                None,
                0,
                false,
                reload,
            )?,
            origin,
            upload_idle: settings.upload_idle_seconds,
            uploads: UploadGate::new(
                settings.upload_concurrency,
                settings.upload_per_party,
                settings.upload_wait_seconds,
                settings.upload_deadline_seconds,
                settings.upload_max_bytes.get(),
            ),
            challenge_lifetime: chrono::Duration::from_std(settings.challenge_seconds)
                .context("challenge_seconds is out of range")?,
            health_ids: settings.health_id.open()?.map(Arc::new),
            clock,
            metrics_allow: settings.metrics_allow.clone(),
            proofs,
        });
        crate::api::limits::sync::start(connector.clone(), state.clone());
        if settings.bulk.worker {
            crate::bulk::worker::start(connector.clone(), state.clone(), settings.bulk.clone());
        }
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .wrap_fn(crate::api::metrics::observe)
                .app_data(state.clone())
                .configure(routes)
        })
        .shutdown_timeout(30)
        // Headers must arrive promptly and idle connections are closed, so that slow or idle
        // clients cannot hold the server's connections (bodies have their own deadline).
        .client_request_timeout(Duration::from_secs(10))
        .keep_alive(Duration::from_secs(75))
        // Puts the client certificate (if any) where authentication finds it.
        .on_connect(crate::tls::on_connect);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Application {
            port,
            server,
            audit,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's audit log (to checkpoint it on demand).
    pub fn audit(&self) -> AuditLog {
        self.audit.clone()
    }

    /// Serves until SIGINT/SIGTERM, then stops accepting, lets in-flight requests finish (and
    /// with them their audit records) and signs a last checkpoint of the audit lanes.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Err(error) = self.audit.checkpoint().await {
            tracing::error!(
                error = format!("{error:#}"),
                "the final audit checkpoint could not be witnessed"
            );
        }
        served
    }
}

/// The audit key and witness `serve` requires: without them the audit log could be rewritten
/// unnoticed, so the server does not start.
///
/// # Errors
/// No audit key or witness directory, or either unusable.
fn audit_chain(settings: &Settings) -> anyhow::Result<crate::audit::Chain> {
    let key = settings.audit.open_key(&settings.health_id)?;
    let dir = settings.audit.witness_dir.as_ref().context(
        "no audit witness configured: set ONSHI_AUDIT_WITNESS_DIR to the append-only checkpoint directory",
    )?;
    let witness = crate::audit::witness::DirWitness::open(dir)?;
    Ok(crate::audit::Chain {
        key: Arc::new(key),
        witness: Some(Arc::new(witness)),
        checkpoint_interval: settings.audit.checkpoint_seconds,
    })
}
