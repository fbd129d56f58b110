//! `onshi`: wires configuration, logging and the command line; the work is in the library.

use clap::Parser;
use onshi::cli::{Cli, Command};
use onshi::config::Settings;
use onshi::startup::Application;

/// jemalloc rather than glibc's malloc: the server's memory follows its open connections (tens of
/// KiB each), and glibc kept what a burst of connections had used after they closed (resident
/// memory stepped up with each burst of load and stayed there, with `MALLOC_ARENA_MAX=2` too);
/// jemalloc's background thread hands the freed pages back within seconds.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("onshi: configuration: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    onshi::telemetry::init(settings.log_format);
    let result = match cli.command {
        Command::Serve => serve(&settings).await,
        command => onshi::cli::run(command, &settings).await,
    };
    match result {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("onshi: {}", onshi::store::errors::describe(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<i32> {
    let app = Application::build(settings).await?;
    if cfg!(feature = "unguarded-bench") {
        tracing::error!(
            "this onshi was built with the unguarded-bench feature: no authentication, no rate \
             limits and NO AUDIT RECORDS; it is for benchmarks only"
        );
    }
    tracing::info!(port = app.port(), "serving");
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(0)
}
