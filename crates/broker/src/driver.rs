//! The core's driver: the one task that owns the [`Core`], the channels to and from every
//! connection, the clock and the journal. It feeds the core each wake-up's command batches
//! and the time, then hands out what the core produced: records to the journal, answers to
//! connections, holding back those that wait for the journal until it is durable up to them.
//!
//! The channels back to connections are unbounded, but what goes down them is bounded by the
//! link credit the connection granted (deliveries) and by the transfers it read (publish
//! answers), so a connection that stops reading cannot make the core hold more than that.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};

use crate::core::{Command, ConnId, Core, Output, ToConn};
use crate::journal::Journal;

/// The channel a connection receives its batches on.
pub(crate) type ToConnTx = mpsc::UnboundedSender<Vec<ToConn>>;

/// What connections (and the broker's own tasks) send the driver.
#[derive(Debug)]
pub(crate) enum ToCore {
    /// A request of the broker's own tasks: telemetry, reloads. (On the connections'
    /// channel, not one of its own: each channel more is one more poll in every wake-up of
    /// the driver, which showed in the throughput. Those tasks drop their senders at
    /// shutdown, so the driver still ends when the last connection has gone.)
    Control(Control),
    /// A connection starts; its answers go to `tx`.
    Hello { conn: ConnId, tx: ToConnTx },
    /// The commands of one wake-up of a connection.
    Batch {
        conn: ConnId,
        commands: Vec<Command>,
    },
}

/// The sending side connections share.
pub(crate) type CoreTx = mpsc::Sender<ToCore>;

/// What the broker's own tasks (not connections) ask of the core.
#[derive(Debug)]
pub(crate) enum Control {
    /// The figures operators see.
    Stats(oneshot::Sender<crate::core::CoreStats>),
    /// Serve a new configuration.
    Reload(Box<Reload>),
}

/// A reload for the core.
#[derive(Debug)]
pub(crate) struct Reload {
    pub(crate) space: sluice_config::ResolvedAddressSpace,
    pub(crate) storage: crate::plan::Storage,
    /// How long removed queues keep their messages.
    pub(crate) grace_ms: i64,
    pub(crate) answer: oneshot::Sender<Result<crate::core::Reloaded, sluice_router::RouteError>>,
}

/// Batches (one per connection wake-up) handled per core wake-up before the core's work is
/// done: enough to amortise that work on touched nodes, small enough to keep latency low.
const BATCH_MAX: usize = 256;

/// Milliseconds since the Unix epoch, as AMQP timestamps and the store count time.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `core` until every connection's sender is gone; returns the journal to be closed.
pub(crate) async fn run<J: Journal>(
    mut core: Core,
    mut rx: mpsc::Receiver<ToCore>,
    mut journal: J,
) -> J {
    let mut peers: FxHashMap<ConnId, ToConnTx> = FxHashMap::default();
    // Answers waiting for the journal, in the order they were made.
    let mut held: VecDeque<(u64, ConnId, Vec<ToConn>)> = VecDeque::new();
    let mut inbox = Vec::with_capacity(BATCH_MAX);
    loop {
        let next_timer = core.poll_timeout();
        tokio::select! {
            n = rx.recv_many(&mut inbox, BATCH_MAX) => {
                if n == 0 {
                    return journal;
                }
                let now = now_ms();
                for message in inbox.drain(..) {
                    match message {
                        ToCore::Control(request) => control(&mut core, &mut journal, request),
                        message => apply(&mut core, &mut peers, message, now),
                    }
                }
            }
            () = sleep_until_ms(next_timer) => core.handle_timeout(now_ms()),
            () = journal.changed() => {
                let paged = journal.take_paged_in();
                if !paged.is_empty() {
                    let now = now_ms();
                    for p in paged {
                        core.page_in(p.node, p.found, now);
                    }
                }
            }
        }
        while let Some(output) = core.poll_output() {
            match output {
                Output::Journal(records) => journal.write(records),
                Output::Read(reads) => journal.read(reads),
                Output::Conn {
                    conn,
                    answers,
                    after: Some(seq),
                } if seq > journal.durable() => held.push_back((seq, conn, answers)),
                Output::Conn { conn, answers, .. } => send(&peers, conn, answers),
            }
        }
        let durable = journal.durable();
        while held.front().is_some_and(|(seq, ..)| *seq <= durable) {
            if let Some((_, conn, answers)) = held.pop_front() {
                send(&peers, conn, answers);
            }
        }
    }
}

fn control<J: Journal>(core: &mut Core, journal: &mut J, request: Control) {
    match request {
        // The asker may have given up waiting.
        Control::Stats(answer) => {
            let _gone = answer.send(core.stats());
        }
        Control::Reload(r) => {
            let result = core.reload(&r.space, r.storage, r.grace_ms, now_ms());
            let added = core.take_new_durable();
            if !added.is_empty() {
                journal.add_queues(added);
            }
            let _gone = r.answer.send(result);
        }
    }
}

fn apply(core: &mut Core, peers: &mut FxHashMap<ConnId, ToConnTx>, message: ToCore, now: i64) {
    match message {
        ToCore::Hello { conn, tx } => {
            peers.insert(conn, tx);
            core.handle(conn, Command::Connected, now);
        }
        // Handled by `control`.
        ToCore::Control(_) => {}
        ToCore::Batch { conn, commands } => {
            for command in commands {
                let gone = matches!(command, Command::Gone);
                core.handle(conn, command, now);
                if gone {
                    peers.remove(&conn);
                }
            }
        }
    }
}

/// Sends a connection its batch; one that has gone gets nothing.
fn send(peers: &FxHashMap<ConnId, ToConnTx>, conn: ConnId, answers: Vec<ToConn>) {
    if let Some(tx) = peers.get(&conn) {
        // A closed channel is a connection on its way out: its `Gone` follows.
        let _closing = tx.send(answers);
    }
}

async fn sleep_until_ms(at_ms: Option<i64>) {
    match at_ms {
        Some(at) => {
            let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use sluice_codec::Encode;
    use sluice_codec::messaging::{Body, Header, Message, ScannedMessage};
    use sluice_engine::{LinkId, SessionId};
    use sluice_router::NodeId;
    use sluice_store::QueuePolicy;
    use tokio::sync::{Notify, mpsc};

    use super::*;
    use crate::core::{Node, QueueNode, QueuePlan, Record, Route};

    /// A journal that is durable only as far as the test says.
    #[derive(Clone, Default)]
    struct Gate {
        written: Arc<AtomicU64>,
        durable: Arc<AtomicU64>,
        moved: Arc<Notify>,
    }

    impl Journal for Gate {
        fn write(&mut self, records: Vec<Record>) {
            if let Some(last) = records.last() {
                self.written.store(last.seq, Ordering::SeqCst);
            }
        }
        fn durable(&self) -> u64 {
            self.durable.load(Ordering::SeqCst)
        }
        fn read(&mut self, _reads: Vec<crate::core::PageRead>) {}
        fn take_paged_in(&mut self) -> Vec<crate::journal::PagedIn> {
            Vec::new()
        }
        async fn changed(&mut self) {
            self.moved.notified().await;
        }
    }

    fn publish(durable: bool, id: u32) -> Command {
        let raw: Bytes = Message {
            header: Some(Header {
                durable,
                ..Default::default()
            }),
            body: Body::Data(vec![Bytes::from_static(b"m")]),
            ..Default::default()
        }
        .to_bytes()
        .freeze();
        Command::Publish {
            link: LinkId {
                session: SessionId(0),
                handle: 0,
            },
            route: Route::to(NodeId::first(0)),
            message: Box::new(ScannedMessage::scan(raw).unwrap()),
            settle: Some((SessionId(0), id)),
        }
    }

    #[tokio::test]
    async fn an_answer_that_needs_the_journal_waits_until_it_is_durable() {
        let queue = Node::Queue(QueueNode::new(QueuePlan {
            address: "q".into(),
            policy: QueuePolicy {
                durable: true,
                ..QueuePolicy::default()
            },
            dead_letter: None,
            expiry: None,
            max_consumers: None,
            full: crate::core::AddressFullPolicy::Block,
            reject_retries: false,
        }));
        let core = Core::new(vec![(NodeId::first(0), queue)]);
        let gate = Gate::default();
        let (tx, rx) = mpsc::channel(8);
        let driver = tokio::spawn(run(core, rx, gate.clone()));
        let (to_conn, mut answers) = mpsc::unbounded_channel();
        tx.send(ToCore::Hello {
            conn: 1,
            tx: to_conn,
        })
        .await
        .unwrap();
        let batch = ToCore::Batch {
            conn: 1,
            commands: vec![publish(true, 0), publish(false, 1)],
        };
        tx.send(batch).await.unwrap();
        // The message that is not durable is answered at once; the durable one waits.
        let first = answers.recv().await.unwrap();
        assert!(
            matches!(
                first.as_slice(),
                [ToConn::Published {
                    settle: Some((_, 1)),
                    ..
                }]
            ),
            "{first:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            answers.try_recv().is_err(),
            "answered before the journal was durable"
        );
        assert_eq!(gate.written.load(Ordering::SeqCst), 1);
        gate.durable.store(1, Ordering::SeqCst);
        gate.moved.notify_one();
        let second = tokio::time::timeout(Duration::from_secs(5), answers.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(
                second.as_slice(),
                [ToConn::Published {
                    settle: Some((_, 0)),
                    ..
                }]
            ),
            "{second:?}"
        );
        drop(tx);
        let _gate = driver.await.unwrap();
    }
}
