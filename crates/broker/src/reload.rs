//! The task that applies new configurations while the broker runs: the core re-plans its
//! nodes (on its own task, the one owner of them), then connections get the new address
//! table and limits, and operators the new status. A configuration reaches here valid as a
//! whole (the binary checks it); one the core still cannot serve is refused and the old one
//! keeps serving. Users come first, on the security's own watch; connections look at them
//! when the serving watch changes, so a reload costs their loop one branch, not two.

use std::sync::Arc;

use sluice_config::ResolvedAddressSpace;
use tokio::sync::{mpsc, oneshot, watch};

use crate::connection::Serving;
use crate::driver::{Control, CoreTx, Reload, ToCore};
use crate::plan::Storage;
use crate::telemetry::Telemetry;

pub(crate) struct Reloader {
    pub(crate) reloads: mpsc::Receiver<ResolvedAddressSpace>,
    pub(crate) core: CoreTx,
    pub(crate) serving: watch::Sender<Arc<Serving>>,
    pub(crate) telemetry: Telemetry,
    pub(crate) storage: Storage,
    pub(crate) grace_ms: i64,
    pub(crate) container_id: Arc<str>,
}

pub(crate) async fn run(mut r: Reloader) {
    while let Some(space) = r.reloads.recv().await {
        let (answer, result) = oneshot::channel();
        let reload = Reload {
            space: space.clone(),
            storage: r.storage,
            grace_ms: r.grace_ms,
            answer,
        };
        if r.core
            .send(ToCore::Control(Control::Reload(Box::new(reload))))
            .await
            .is_err()
        {
            return;
        }
        let Ok(result) = result.await else {
            return;
        };
        match result {
            Ok(done) => {
                tracing::info!(
                    addresses = space.addresses.len(),
                    added = done.added,
                    removed = done.removed,
                    kept_for_grace = done.retiring,
                    "configuration reloaded"
                );
                let serving = crate::serving(&space, done.table, &r.container_id);
                r.serving.send_replace(Arc::new(serving));
                r.telemetry.set_space(&space);
                r.telemetry.reloaded(true);
            }
            Err(e) => {
                tracing::error!(
                    "the configuration is not reloaded: {e}; the one before keeps serving"
                );
                r.telemetry.reloaded(false);
                // Its users were applied (they were valid): connections check their links.
                r.serving.send_modify(|_| {});
            }
        }
    }
}
