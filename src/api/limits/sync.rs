//! Keeps this server's caches in step with the others': a session listens for revoked parties
//! and for flags raised or cleared, and applies them at once (within milliseconds of the commit
//! that announced them).
//!
//! While that session is down, nothing announced can be trusted to have arrived: the credential
//! cache is bypassed (every request reads its party from the database) until the session is
//! back, and then emptied and the flags reloaded, since notices may have been missed meanwhile.

use std::time::Duration;

use actix_web::web;

use crate::api::AppState;
use crate::store::limits::{self as store, Notice};

/// How long to wait before listening again after the session failed.
const RETRY: Duration = Duration::from_millis(250);

/// Starts the listening task; it ends with the runtime.
pub fn start(config: crate::store::Connector, state: web::Data<AppState>) {
    tokio::spawn(async move {
        loop {
            if let Err(error) = listen_once(&config, &state).await {
                tracing::debug!(error = format!("{error:#}"), "notification session failed");
            }
            state.auth.set_live(false);
            tokio::time::sleep(RETRY).await;
        }
    });
}

async fn listen_once(config: &crate::store::Connector, state: &AppState) -> anyhow::Result<()> {
    let (client, mut notices) = store::listen(config).await?;
    // Anything announced before this point may have been missed.
    state.auth.clear();
    state
        .limits
        .replace_flags(store::active_flags(&client).await?);
    state.auth.set_live(true);
    while let Some(notice) = notices.recv().await {
        match notice {
            Notice::Party(id) => state.auth.forget_party(id),
            Notice::Flag(id) => {
                let flagged = store::is_flagged(&client, id).await?;
                state.limits.set_flagged(id, flagged);
            }
        }
    }
    anyhow::bail!("the notification session ended")
}
