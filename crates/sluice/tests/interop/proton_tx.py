"""The `tx` subcommand of proton_client.py: local transactions (AMQP 1.0 part 4) with Proton's
reactor API (`Container.declare_transaction`, `TransactionHandler`, `Transaction.send`,
`Transaction.accept`, `commit`, `abort`), which its blocking API does not offer.

    proton_client.py tx URL ADDRESS [--transactions T] [--send N] [--accept M] [--size BYTES]
                     [--prefix TEXT] [--durable] [--end commit|abort|hold|unknown-id|twice]

Runs T transactions one after another on one connection. In transaction i it sends N messages
to ADDRESS, message j with the string body "<TEXT><i>-<j>" (default TEXT "t"; with --size, a
binary body of BYTES bytes starting with that text and ":"), and receives and accepts M
messages from ADDRESS, each under the transaction. Once the broker has confirmed every send
and the M messages are in, it ends the transaction as --end says:

  commit      commit it (the default)
  abort       roll it back
  hold        print "held" on stderr and wait, unsettled, to be killed (a connection lost
              mid-transaction)
  unknown-id  discharge a txn-id the broker never gave (the broker must refuse it)
  twice       commit it, then discharge the same txn-id again

Each transaction discharged prints "committed <i>" or "ended <i>" on stderr and adds
{"index", "outcome": "committed" | "aborted" | "failed", "condition", "description"} to the
JSON's "transactions" (condition and description: those of a rejected discharge; --end twice
adds a second entry for the second discharge). The JSON also has "received" (the bodies taken)
and "headers" ({"delivery_count"} of each). Exits 0 once every transaction is discharged,
whatever its outcome; 1 when the connection fails (the JSON then has "error" and what was done
so far); 2 on --timeout.
"""

import json
import sys

from proton import Message
from proton.handlers import MessagingHandler, TransactionHandler
from proton.reactor import Container


def body_of(text, size):
    if size is None:
        return text
    prefix = ("%s:" % text).encode()
    filler = bytes(range(256)) * (size // 256 + 1)
    return (prefix + filler)[:size]


class Tx(MessagingHandler, TransactionHandler):
    def __init__(self, args):
        super().__init__(prefetch=0, auto_accept=False)
        self.args = args
        self.conn = None
        self.sender = None
        self.receiver = None
        self.txn = None
        self.index = 0
        self.sends = []
        self.taken = 0
        self.ended = False
        self.summary = {"transactions": [], "received": [], "headers": []}
        self.code = None

    def finish(self, code, error=None):
        if self.code is not None:
            return
        self.code = code
        if error is not None:
            self.summary["error"] = error
        print(json.dumps(self.summary), flush=True)
        if self.conn is not None:
            self.conn.close()
        self.container.stop()

    def on_start(self, event):
        self.container = event.container
        self.conn = event.container.connect(self.args.url, reconnect=False)
        if self.args.send > 0:
            self.sender = event.container.create_sender(self.conn, self.args.address)
        if self.args.accept > 0:
            self.receiver = event.container.create_receiver(self.conn, self.args.address)
        event.container.schedule(self.args.timeout, self)
        self.declare()

    def on_timer_task(self, event):
        self.finish(2, "Timeout: %s s passed" % self.args.timeout)

    def declare(self):
        self.sends = []
        self.taken = 0
        self.ended = False
        self.container.declare_transaction(self.conn, handler=self)

    def on_transaction_declared(self, event):
        self.txn = event.transaction
        for j in range(self.args.send):
            text = "%s%d-%d" % (self.args.prefix, self.index, j)
            message = Message(body=body_of(text, self.args.size), durable=self.args.durable)
            if self.args.size is not None:
                message.inferred = True
            self.sends.append(self.txn.send(self.sender, message))
        if self.receiver is not None:
            self.receiver.flow(self.args.accept)
        self.maybe_end()

    def on_transaction_declare_failed(self, event):
        self.finish(1, "the declare was refused")

    def on_settled(self, event):
        self.maybe_end()

    def on_message(self, event):
        if self.txn is None or self.taken >= self.args.accept:
            return
        self.summary["received"].append(event.message.body)
        self.summary["headers"].append({"delivery_count": event.message.delivery_count})
        self.txn.accept(event.delivery)
        self.taken += 1
        self.maybe_end()

    def maybe_end(self):
        """Ends the transaction once every send is confirmed and every message taken."""
        if self.txn is None or self.ended or self.taken < self.args.accept:
            return
        if not all(d.remote_state or d.settled for d in self.sends):
            return
        self.ended = True
        end = self.args.end
        if end == "hold":
            print("held", file=sys.stderr, flush=True)
        elif end == "abort":
            self.txn.abort()
        elif end == "unknown-id":
            self.txn.id = b"no-such-txn"
            self.txn.commit()
        else:
            self.txn.commit()

    def record(self, outcome, event=None):
        condition = event.delivery.remote.condition if event is not None else None
        self.summary["transactions"].append({
            "index": self.index,
            "outcome": outcome,
            "condition": condition.name if condition else None,
            "description": condition.description if condition else None,
        })
        word = "committed" if outcome == "committed" else "ended"
        print("%s %d" % (word, self.index), file=sys.stderr, flush=True)

    def on_transaction_committed(self, event):
        self.record("committed")
        if self.args.end == "twice" and len(self.summary["transactions"]) == 1:
            self.txn.discharge(False)
            return
        self.next()

    def on_transaction_aborted(self, event):
        self.record("aborted")
        self.next()

    def on_transaction_commit_failed(self, event):
        self.record("failed", event)
        self.next()

    def next(self):
        self.index += 1
        if self.index < self.args.transactions and self.args.end != "twice":
            self.declare()
        else:
            self.finish(0)

    def on_transport_error(self, event):
        condition = event.transport.condition
        self.finish(1, "ConnectionException: %s" % (condition.description if condition else "lost"))

    def on_disconnected(self, event):
        self.finish(1, "ConnectionException: disconnected")


def cmd_tx(args):
    handler = Tx(args)
    Container(handler).run()
    return handler.code if handler.code is not None else 1


def add_parser(sub, common):
    p = sub.add_parser("tx", help="send and accept under local transactions")
    common(p)
    p.add_argument("--transactions", type=int, default=1)
    p.add_argument("--send", type=int, default=0, help="messages sent in each transaction")
    p.add_argument("--accept", type=int, default=0, help="messages accepted in each")
    p.add_argument("--size", type=int, default=None, help="binary bodies of N bytes")
    p.add_argument("--prefix", default="t", help='bodies "<TEXT><i>-<j>" (default "t")')
    p.add_argument("--durable", action="store_true", help="mark each message durable")
    p.add_argument("--end", default="commit",
                   choices=["commit", "abort", "hold", "unknown-id", "twice"])
    p.set_defaults(run=cmd_tx)
