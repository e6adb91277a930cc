//! Routing an update, once it is stored, to what handles it: commands, buttons, ordinary
//! messages. A dptree, as in teloxide's examples.

use super::commands::{self, Command};
use super::ctx::Ctx;
use super::replies;
use crate::store::MessageRef;
use prometheus_client::metrics::gauge::Gauge;
use std::time::Instant;
use teloxide::dispatching::{DpHandlerDescription, HandlerExt, UpdateFilterExt};
use teloxide::prelude::*;

/// The routing of updates; built once per run.
pub type Tree = Handler<'static, anyhow::Result<()>, DpHandlerDescription>;

/// Builds the routing of updates to handlers.
pub fn tree() -> Tree {
    dptree::entry()
        .branch(
            Update::filter_message()
                .branch(
                    dptree::entry()
                        .filter_command::<Command>()
                        .endpoint(commands::handle),
                )
                // Unknown commands and commands for other bots are ignored, not sent to an LLM.
                .branch(
                    dptree::filter(|m: Message| m.text().is_some_and(|t| t.starts_with('/')))
                        .endpoint(|| async { Ok(()) }),
                )
                .endpoint(replies::on_message),
        )
        .branch(Update::filter_callback_query().endpoint(commands::on_button))
}

/// Runs the handlers for one update (`stored`: its message as the batch stored it); errors are
/// counted and logged, never fatal.
pub async fn dispatch(
    ctx: Ctx,
    tree: Tree,
    update: Update,
    stored: Option<MessageRef>,
    received: Instant,
) {
    let _running = InFlight::new(&ctx.metrics.handlers_in_flight);
    let me = ctx.me.clone();
    let deps = dptree::deps![ctx.clone(), me, update, stored, received];
    if let std::ops::ControlFlow::Break(Err(e)) = tree.dispatch(deps).await {
        ctx.note_error(format!("handling an update: {e:#}"));
    }
}

/// Counts a running handler; the count drops even if the handler panics or is cancelled.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
