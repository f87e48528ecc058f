//! A new configuration applied to a running core: what stays, what goes, what waits.
use super::*;
use crate::plan::{self, Storage};

const PLANS: &str = "\
apiVersion: admin.enmasse.io/v1beta1
kind: AuthenticationService
metadata: {name: none}
spec: {type: none}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressSpacePlan
metadata: {name: plan}
spec:
  addressSpaceType: standard
  addressPlans: [queue, topic, anycast]
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: queue}
spec: {addressType: queue, resources: {broker: 0.1}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: topic}
spec: {addressType: topic, resources: {broker: 0.1}}
---
apiVersion: admin.enmasse.io/v1beta2
kind: AddressPlan
metadata: {name: anycast}
spec: {addressType: anycast}
---
apiVersion: enmasse.io/v1beta1
kind: AddressSpace
metadata: {name: s}
spec: {type: standard, plan: plan, authenticationService: {name: none}}
";

/// The address space with these addresses (`address:type`, `queue` with a TTL maximum when
/// written `address:queue:TTL`).
fn space(addresses: &[&str]) -> sluice_config::ResolvedAddressSpace {
    let mut yaml = PLANS.to_string();
    for a in addresses {
        let mut parts = a.split(':');
        let address = parts.next().unwrap();
        let kind = parts.next().unwrap();
        let ttl = parts
            .next()
            .map(|t| format!(", messageTtl: {{maximum: {t}}}"))
            .unwrap_or_default();
        yaml.push_str(&format!(
            "---\napiVersion: enmasse.io/v1beta1\nkind: Address\nmetadata: {{name: s.{address}}}\nspec: {{address: {address}, type: {kind}, plan: {kind}{ttl}}}\n"
        ));
    }
    let checked = sluice_config::check(&[sluice_config::Source::new("space.yaml", yaml)]);
    assert!(checked.is_valid(), "{:?}", checked.diagnostics);
    checked.config.address_space("s").unwrap().clone()
}

const DAY: i64 = 86_400_000;

/// A harness serving `addresses` as the broker would at start.
fn serving(addresses: &[&str]) -> (Harness, sluice_router::AddressTable) {
    let plan = plan::plan(&space(addresses), Storage::default()).unwrap();
    let mut h = Harness::new(Vec::new());
    h.core = Core::new(plan.nodes);
    h.core.set_configured(plan.specs);
    for conn in 1..=4 {
        h.conn(conn);
    }
    (h, plan.table)
}

fn reload(h: &mut Harness, addresses: &[&str], grace: i64) -> sluice_router::AddressTable {
    let done = h
        .core
        .reload(&space(addresses), Storage::default(), grace, h.now)
        .unwrap();
    h.flush();
    done.table
}

fn id(table: &sluice_router::AddressTable, address: &str) -> NodeId {
    table.node(address).unwrap().id
}

#[test]
fn an_address_that_stays_keeps_its_node_and_messages_and_takes_its_new_plan() {
    let (mut h, table) = serving(&["orders:queue"]);
    let q = id(&table, "orders");
    h.publish(1, 0, Route::to(q), "kept", 0);
    let table = reload(&mut h, &["orders:queue:5000", "invoices:queue"], DAY);
    assert_eq!(id(&table, "orders"), q, "the same node serves it");
    assert_eq!(h.queue(q).queue().depth(), 1);
    assert_eq!(h.queue(q).queue().policy().ttl.maximum_ms, Some(5000));
    let invoices = id(&table, "invoices");
    assert_ne!(invoices, q);
    h.receive(2, 0, from(invoices, Filter::All), 10);
    h.publish(1, 1, Route::to(invoices), "new", 1);
    assert_eq!(h.texts(2), vec!["new"]);
}

#[test]
fn a_removed_queue_with_messages_waits_out_its_grace_refusing_publishes_and_comes_back_whole() {
    let (mut h, table) = serving(&["orders:queue", "other:queue"]);
    let q = id(&table, "orders");
    h.publish(1, 0, Route::to(q), "one", 0);
    h.publish(1, 0, Route::to(q), "two", 1);
    h.answers(1);
    // A consumer holding one unsettled: it is unbound, and its delivery goes back.
    h.receive(2, 0, from(q, Filter::All), 1);
    assert_eq!(h.texts(2), vec!["one"]);
    let table = reload(&mut h, &["other:queue"], DAY);
    assert!(table.node("orders").is_none());
    assert_eq!(h.core.retiring().len(), 1);
    assert_eq!(h.queue(q).queue().depth(), 2, "nothing is lost");
    h.publish(1, 0, Route::to(q), "late", 2);
    assert_eq!(
        published(&h.answers(1)),
        vec![(2, "rejected amqp:not-found".to_string())]
    );
    h.run(
        3,
        Command::AttachReceiver {
            link: link(0),
            source: from(q, Filter::All),
        },
    );
    assert!(matches!(
        h.answers(3).as_slice(),
        [ToConn::Attached { result: Err(_), .. }]
    ));
    // Back within the grace: the same node, both messages, in order.
    let table = reload(&mut h, &["other:queue", "orders:queue"], DAY);
    assert_eq!(id(&table, "orders"), q);
    assert!(h.core.retiring().is_empty());
    h.receive(4, 0, from(q, Filter::All), 10);
    assert_eq!(h.texts(4), vec!["one", "two"]);
}

#[test]
fn after_the_grace_the_messages_are_removed_from_the_journal_and_the_node_goes() {
    let (mut h, table) = serving(&["orders:queue"]);
    let q = id(&table, "orders");
    h.publish_bytes(1, 0, Route::to(q), durable_body("durable"), 0);
    reload(&mut h, &[], 1000);
    assert_eq!(h.core.poll_timeout(), Some(h.now + 1000));
    h.now += 1000;
    h.core.handle_timeout(h.now);
    h.flush();
    assert!(h.core.retiring().is_empty());
    assert!(
        h.journal
            .iter()
            .any(|r| r.node == q && matches!(r.change, Change::Removed { .. })),
        "the journal is told: {:?}",
        h.journal
    );
    assert!(h.core.nodes.get(q).is_none());
    // Configured again, it is a new, empty queue.
    let table = reload(&mut h, &["orders:queue"], 1000);
    let again = id(&table, "orders");
    h.receive(2, 0, from(again, Filter::All), 10);
    assert!(h.texts(2).is_empty());
}

#[test]
fn an_empty_removed_queue_and_a_removed_topic_go_at_once_and_durable_queues_added_are_named() {
    let (mut h, table) = serving(&["orders:queue", "news:topic", "rpc:anycast"]);
    let news = id(&table, "news");
    h.receive(2, 0, from(news, Filter::All), 10);
    let table = reload(&mut h, &["fresh:queue"], DAY);
    assert!(h.core.retiring().is_empty(), "nothing held: nothing kept");
    assert!(h.core.nodes.get(news).is_none());
    assert_eq!(h.core.stats().nodes.len(), 1);
    let added = h.core.take_new_durable();
    assert_eq!(added, vec![(id(&table, "fresh"), "fresh".into())]);
    assert!(h.core.take_new_durable().is_empty());
    // The receiver's link was unbound: its detach later finds nothing to undo.
    h.run(2, Command::Detach { link: link(0) });
    h.run(2, Command::Gone);
    assert_eq!(h.core.held_for_clients(), None);
}

#[test]
fn an_address_that_changes_type_is_a_new_node_and_the_old_queue_retires() {
    let (mut h, table) = serving(&["x:queue"]);
    let old = id(&table, "x");
    h.publish(1, 0, Route::to(old), "queued", 0);
    let table = reload(&mut h, &["x:anycast"], DAY);
    assert_ne!(id(&table, "x"), old);
    assert_eq!(h.core.retiring().len(), 1);
    // Back to a queue: the retired one, with its message.
    let table = reload(&mut h, &["x:queue"], DAY);
    assert_eq!(id(&table, "x"), old);
    h.receive(2, 0, from(old, Filter::All), 10);
    assert_eq!(h.texts(2), vec!["queued"]);
}

#[test]
fn journaled_messages_of_an_unconfigured_address_are_kept_as_a_retired_queue() {
    let (mut h, _) = serving(&["other:queue"]);
    h.core.retire_unconfigured("gone", DAY, h.now);
    let retiring = h.core.retiring();
    assert_eq!(retiring.len(), 1);
    assert_eq!(retiring[0], "gone");
    assert!(h.core.durable_queues().iter().any(|(_, a)| &**a == "gone"));
    let table = reload(&mut h, &["other:queue", "gone:queue"], DAY);
    assert!(h.core.retiring().is_empty());
    assert!(
        h.core
            .durable_queues()
            .iter()
            .any(|(n, a)| &**a == "gone" && *n == id(&table, "gone"))
    );
}
