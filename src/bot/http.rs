//! `/healthz` and `/metrics` on a local address, for Prometheus and uptime checks.

use super::ctx::Ctx;
use super::metrics::{self, Scraped};
use anyhow::Context as _;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Unit;

/// Binds the configured address and serves until shutdown. Binding errors are returned (a
/// second instance on the same port should fail loudly, not run without metrics).
pub async fn serve(ctx: Ctx) -> anyhow::Result<()> {
    let address = ctx.config.metrics.address.clone();
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on metrics.address {address}: is another chatkeeper running? \
                 Change metrics.address or set metrics.enabled = false"
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, "metrics endpoint");
    let mut shutdown = ctx.shutdown.clone();
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(ctx);
    tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.wait_for(|&stop| stop).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    Ok(())
}

async fn healthz(State(ctx): State<Ctx>) -> impl IntoResponse {
    if *ctx.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn metrics(State(ctx): State<Ctx>) -> impl IntoResponse {
    // The store's size walks its files: not on the async runtime.
    let figures = ctx.blocking(|ctx| Ok((ctx.store.health(), ctx.store.global_stats())));
    let Ok((health, global)) = figures.await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            String::from("reading the store's figures failed\n"),
        );
    };
    let analysis = ctx.analysis.stats();
    let offline = ctx.responder.offline();
    let body = ctx.metrics.render(vec![
        (
            "chatkeeper_store",
            "Size of the store on disk",
            Scraped::Gauge(health.size_on_disk as f64, Some(Unit::Bytes)),
        ),
        (
            "chatkeeper_store_messages",
            "Messages in the store that count for users",
            Scraped::Gauge(global.total_messages as f64, None),
        ),
        (
            "chatkeeper_store_commits",
            "Group commits since start",
            Scraped::Counter(health.commits),
        ),
        (
            "chatkeeper_store_last_commit",
            "Duration of the last group commit",
            Scraped::Gauge(health.last_commit_micros as f64 / 1e6, Some(Unit::Seconds)),
        ),
        (
            "chatkeeper_offline_models",
            "Per-chat offline reply models in memory",
            Scraped::Gauge(offline.models() as f64, None),
        ),
        (
            "chatkeeper_offline_model",
            "Memory of the offline reply models in memory",
            Scraped::Gauge(offline.model_bytes() as f64, Some(Unit::Bytes)),
        ),
        (
            "chatkeeper_analysis_cache_hits",
            "Analyses answered from memory since start",
            Scraped::Counter(analysis.hits),
        ),
        (
            "chatkeeper_analysis_cache_misses",
            "Texts analysed since start",
            Scraped::Counter(analysis.misses),
        ),
        (
            "chatkeeper_analysis_cache_entries",
            "Analyses in memory",
            Scraped::Gauge(analysis.entries as f64, None),
        ),
        (
            "chatkeeper_uptime",
            "Time since the bot started",
            Scraped::Gauge(ctx.started.elapsed().as_secs_f64(), Some(Unit::Seconds)),
        ),
    ]);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        body,
    )
}
