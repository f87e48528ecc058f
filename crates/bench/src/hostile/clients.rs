//! A group of client connections, each a task driving the engine with a [`Role`], that close
//! together: asked to stop, they send `close` and wait for the broker's; any still open after
//! the grace time are dropped. Dropping the group aborts its tasks, so a scenario that gives up
//! early still leaves no connection behind.

use std::time::{Duration, Instant};

use sluice_engine::Connection;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::driver::{Role, drive};
use crate::run::{client_config, connect};
use crate::url::BenchUrl;

/// How long closing connections may take to hear the broker's `close` before they are dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(10);

pub(crate) struct Clients<R> {
    tasks: JoinSet<R>,
    stop: watch::Sender<bool>,
    /// Connections opened so far.
    pub(crate) opened: usize,
}

impl<R: Role + Send + 'static> Clients<R> {
    pub(crate) fn new() -> Self {
        Clients {
            tasks: JoinSet::new(),
            stop: watch::channel(false).0,
            opened: 0,
        }
    }

    /// Connects to `url` and drives `role` there on a task of its own.
    pub(crate) async fn open(
        &mut self,
        url: &BenchUrl,
        name: String,
        mut role: R,
        timeout: Duration,
    ) -> Result<(), String> {
        let stream = connect(&url.host, url.port, timeout).await?;
        let engine = Connection::client(client_config(name, Some(url), &url.host), Instant::now());
        let stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            drive(stream, engine, &mut role, stop).await;
            role
        });
        self.opened += 1;
        Ok(())
    }

    /// Closes every connection; the roles of those that closed within [`CLOSE_GRACE`] (the
    /// rest are dropped, their sockets with them).
    pub(crate) async fn close(mut self) -> Vec<R> {
        let _ = self.stop.send(true);
        let mut roles = Vec::with_capacity(self.opened);
        let deadline = tokio::time::Instant::now() + CLOSE_GRACE;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(role))) => roles.push(role),
                Ok(Some(Err(_))) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        roles
    }
}
