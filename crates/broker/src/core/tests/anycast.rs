//! Anycast: credit from receivers to senders, round robin, outcomes passed back.

use super::topic::rejected_with;
use super::*;

fn attach_sender(h: &mut Harness, conn: ConnId, handle: u32) {
    h.run(
        conn,
        Command::AttachSender {
            link: link(handle),
            node: at(0),
        },
    );
}

#[test]
fn anycast_grants_senders_only_what_receivers_granted() {
    let mut h = Harness::new(vec![anycast()]);
    let a = at(0);
    h.conn(1);
    h.conn(2);
    attach_sender(&mut h, 1, 9);
    assert!(h.answers(1).is_empty(), "no receiver, no credit");
    h.receive(2, 1, from(a, Filter::All), 3);
    match h.answers(1).as_slice() {
        [ToConn::Credit { more: 3, .. }] => {}
        other => panic!("{other:?}"),
    }
    h.publish(1, 9, Route::to(a), "one", 0);
    h.publish(1, 9, Route::to(a), "two", 1);
    let got = h.delivered(2);
    assert_eq!(
        got.iter().map(|(_, _, t)| t.as_str()).collect::<Vec<_>>(),
        vec!["one", "two"]
    );
    assert!(
        published(&h.answers(1)).is_empty(),
        "outcomes wait for the receiver"
    );

    // The receiver's outcomes go back to the sender as they are.
    h.settle(2, 1, got[0].1, DeliveryState::Accepted(Accepted {}));
    h.settle(2, 1, got[1].1, rejected_with("app:bad"));
    assert_eq!(
        published(&h.answers(1)),
        vec![(0, "accepted".into()), (1, "rejected app:bad".into())]
    );
}

#[test]
fn anycast_round_robins_and_returns_what_a_leaving_receiver_held() {
    let mut h = Harness::new(vec![anycast()]);
    let a = at(0);
    h.conn(1);
    h.conn(2);
    h.conn(3);
    attach_sender(&mut h, 1, 9);
    h.receive(2, 1, from(a, Filter::All), 10);
    h.receive(3, 1, from(a, Filter::All), 10);
    for i in 0..4 {
        h.publish(1, 9, Route::to(a), &format!("m{i}"), i);
    }
    let to_two = h.delivered(2);
    let to_three = h.delivered(3);
    assert_eq!((to_two.len(), to_three.len()), (2, 2));
    // Receiver 3's connection goes with both unsettled: the sender hears they failed.
    h.answers(1);
    h.run(3, Command::Gone);
    let answers = published(&h.answers(1));
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|(_, s)| s == "modified"), "{answers:?}");
    // With no receiver left, a relayed message is released back to its sender.
    h.run(2, Command::Detach { link: link(1) });
    h.answers(1);
    h.publish(1, 5, Route::to(a), "nobody", 7);
    assert_eq!(published(&h.answers(1)), vec![(7, "released".into())]);
}

#[test]
fn a_message_a_connection_could_not_send_goes_to_the_next_anycast_receiver() {
    let mut h = Harness::new(vec![anycast()]);
    let a = at(0);
    h.conn(1);
    h.conn(2);
    h.conn(3);
    h.receive(2, 1, from(a, Filter::All), 1);
    h.publish(1, 5, Route::to(a), "x", 0);
    let (_, message, _) = h.delivered(2)[0].clone();
    h.receive(3, 1, from(a, Filter::All), 1);
    h.run(
        2,
        Command::Unsent {
            link: link(1),
            message,
        },
    );
    assert_eq!(h.texts(3), vec!["x"]);
}

#[test]
fn deliveries_a_connection_gave_back_go_out_again_in_their_order() {
    let mut h = Harness::new(vec![anycast()]);
    let a = at(0);
    h.conn(1);
    h.conn(2);
    h.receive(2, 1, from(a, Filter::All), 5);
    for i in 0..5 {
        h.publish(1, 5, Route::to(a), &format!("m{i}"), i);
    }
    let got = h.delivered(2);
    // The client's window took only the first: the rest come back in the order sent.
    for (_, message, _) in &got[1..] {
        h.apply(
            2,
            Command::Unsent {
                link: link(1),
                message: *message,
            },
        );
    }
    h.flush();
    h.credit(2, 1, 10);
    assert_eq!(h.texts(2), vec!["m1", "m2", "m3", "m4"]);
}
