#!/usr/bin/env python3
"""A small AMQP 1.0 command-line client on pyamqp, for Sluice's interop tests.

pyamqp is the pure-Python AMQP 1.0 stack inside PyPI's azure-servicebus (the module
azure.servicebus._pyamqp, which the Azure SDKs for Python run on). scripts/test.sh installs a
pinned azure-servicebus into target/pyamqp-venv; run this script with that virtualenv's Python:

    target/pyamqp-venv/bin/python pyamqp_client.py send    amqp://127.0.0.1:5672 myqueue 100
                     [--settle-second] [--anonymous]
    target/pyamqp-venv/bin/python pyamqp_client.py receive amqp://127.0.0.1:5672 myqueue 100
                     [--name LINK] [--selector EXPR]

Only pyamqp's own Connection, Session and Link classes are used: its SendClient and ReceiveClient
take settlement modes and filters from Service Bus defaults, and nothing here needs Service Bus
itself (no CBS: Sluice has no $cbs node). Credentials in the URL (amqp://user:pass@host:port) make
it authenticate with SASL PLAIN; without them with ANONYMOUS. Every subcommand prints one JSON
object on stdout and exits:

send     Attaches a sender link to ADDRESS and sends COUNT messages, unsettled, the way pyamqp's
         SendClient does (queued with send_async, then written as the link's credit allows),
         and waits for every disposition. Message i has the string body "msg-<i>" (an amqp-value
         section) and the application properties {index: i, colour: green for even i, red for
         odd}. --settle-second asks for rcv-settle-mode second in the attach, as the Azure
         SDKs' senders do by default. --anonymous attaches with a null target address instead
         (the anonymous relay) and sets each message's `to` to ADDRESS. Prints {"sent",
         "accepted", "outcomes", "remote"}: outcomes, a count per outcome name; remote, what the
         broker's attach said ({"rcv_settle_mode", "source", "target"}, the terminii as pyamqp
         decoded them: a list of their fields, or null). Exits 0 if every message was accepted.
         If the link never becomes attached within --timeout (pyamqp drops an attach whose
         source or target it reads as empty), prints {"error", "state", "remote"} and exits 2.
         If the broker refuses it (a detach with an error), prints {"error": "refused",
         "condition", "description", "state", "remote"} and exits 3. The same holds for receive.
receive  Attaches a receiver link granting exactly COUNT credit (no refill), receives COUNT
         messages and accepts each (a delivery that arrives settled is not settled again).
         Prints "ready" on stderr once the link is attached and the broker has read its credit
         (a session begun after the flow and answered, so the flow was read first). Prints
         {"received", "bodies", "presettled", "remote"}: remote as for send, plus "filters",
         the filter set of the source the broker answered with (a map of name to value, or
         null). --name LINK sets the link name (default: a fresh UUID). --selector EXPR puts an
         `apache.org:selector-filter:string` filter with EXPR in the source. Exits 2 on timeout
         (the JSON then has "error" and the bodies received so far).

Any other failure prints {"error": ...} and exits 1.
"""

import argparse
import json
import logging
import sys
import time
import uuid
from urllib.parse import unquote, urlparse

from azure.servicebus._pyamqp import Connection
from azure.servicebus._pyamqp.constants import (
    INCOMING_WINDOW,
    OUTGOING_WINDOW,
    LinkDeliverySettleReason,
    LinkState,
    ReceiverSettleMode,
    SenderSettleMode,
    SessionState,
)
from azure.servicebus._pyamqp.endpoints import Source, Target
from azure.servicebus._pyamqp.message import Message, Properties
from azure.servicebus._pyamqp.outcomes import Accepted
from azure.servicebus._pyamqp.sasl import SASLAnonymousCredential, SASLPlainCredential

EXIT_TIMEOUT = 2
EXIT_REFUSED = 3

SELECTOR_FILTER = b"apache.org:selector-filter:string"
# How long one read of the socket may block while the client waits for something.
POLL_SECONDS = 0.05


class Timeout(Exception):
    pass


def emit(summary, code=0):
    print(json.dumps(summary), flush=True)
    return code


def plain(value):
    """A JSON-friendly view of what pyamqp decoded: bytes as text, tuples as lists."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.hex()
    if isinstance(value, dict):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def connect(args):
    """Opens the connection (SASL PLAIN with the URL's credentials, else ANONYMOUS) and waits
    for the broker's open."""
    url = urlparse(args.url)
    if url.username is not None:
        credential = SASLPlainCredential(unquote(url.username), unquote(url.password or ""))
    else:
        credential = SASLAnonymousCredential()
    conn = Connection(
        "amqp://%s:%d" % (url.hostname, url.port or 5672),
        sasl_credential=credential,
        use_tls=False,  # without it pyamqp ignores the port and dials 5671 with TLS
        container_id="pyamqp-%s" % uuid.uuid4(),
        socket_timeout=POLL_SECONDS,
        network_trace=args.trace,
    )
    conn.open()
    return conn


def pump(conn, done, deadline, what):
    """Reads and handles frames until `done()` holds; Timeout once `deadline` passes."""
    while not done():
        if time.monotonic() > deadline:
            raise Timeout(what)
        conn.listen(wait=False)


def begin_session(conn, deadline, incoming_window=None):
    # The windows pyamqp's clients (AMQPClient) open sessions with, unless told otherwise; its
    # Session's own default is 1.
    session = conn.create_session(incoming_window=incoming_window or INCOMING_WINDOW,
                                  outgoing_window=OUTGOING_WINDOW)
    session.begin()
    pump(conn, lambda: session.state == SessionState.MAPPED, deadline,
         "waiting for the broker's begin")
    return session


def watch_attach(link, remote):
    """Records the broker's attach in `remote` before pyamqp handles it: pyamqp drops an attach
    whose source or target decodes as empty without calling its on_attach callback."""
    handle = link._incoming_attach  # pylint: disable=protected-access

    def incoming_attach(frame):
        remote["rcv_settle_mode"] = frame[4]
        remote["source"] = plain(frame[5])
        remote["target"] = plain(frame[6])
        return handle(frame)

    link._incoming_attach = incoming_attach  # pylint: disable=protected-access


def attach_or_refusal(conn, link, deadline, remote):
    """Waits until `link` is attached (None) or refused, or --timeout passes: then prints the
    summary and returns the exit code."""
    try:
        pump(conn, lambda: link.state in (LinkState.ATTACHED, LinkState.ERROR), deadline,
             "waiting for the link to attach")
    except Timeout as e:
        return emit({"error": "timeout: %s" % e, "state": str(link.state), "remote": remote},
                    EXIT_TIMEOUT)
    if link.state == LinkState.ATTACHED:
        return None
    error = link._error  # pylint: disable=protected-access
    return emit({"error": "refused", "state": str(link.state),
                 "condition": plain(getattr(error, "condition", None)),
                 "description": plain(getattr(error, "description", None)),
                 "remote": remote}, EXIT_REFUSED)


def close_quietly(conn):
    """Close the connection; a failure here must not hide the summary already printed."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


def cmd_send(args):
    deadline = time.monotonic() + args.timeout
    conn = connect(args)
    remote = {"rcv_settle_mode": None, "source": None, "target": None}
    try:
        session = begin_session(conn, deadline)
        link = session.create_sender_link(
            Target(address=None) if args.anonymous else args.address,
            send_settle_mode=SenderSettleMode.Unsettled,
            rcv_settle_mode=(ReceiverSettleMode.Second if args.settle_second
                             else ReceiverSettleMode.First),
        )
        watch_attach(link, remote)
        link.attach()
        refused = attach_or_refusal(conn, link, deadline, remote)
        if refused is not None:
            return refused

        outcomes = {}

        def settled(reason, state):
            if reason == LinkDeliverySettleReason.DISPOSITION_RECEIVED and state:
                name = next(iter(state))
            else:
                name = str(reason)
            outcomes[name] = outcomes.get(name, 0) + 1

        for i in range(args.count):
            properties = Properties(to=args.address) if args.anonymous else None
            # Properties to select on: index, and colour green for even i, red for odd.
            colour = "green" if i % 2 == 0 else "red"
            message = Message(value="msg-%d" % i, properties=properties,
                              application_properties={"index": i, "colour": colour})
            # As SendClient does: queued, then written by update_pending_deliveries.
            link.send_transfer(message, send_async=True, settled=False,
                               on_send_complete=settled)

        def all_settled():
            link.update_pending_deliveries()
            return sum(outcomes.values()) == args.count or link.state != LinkState.ATTACHED

        pump(conn, all_settled, deadline,
             "waiting for the dispositions of %d messages" % args.count)
        accepted = outcomes.get("accepted", 0)
        link.detach(close=True)
        return emit({"sent": args.count, "accepted": accepted, "outcomes": outcomes,
                     "remote": remote}, 0 if accepted == args.count else 1)
    except Timeout as e:
        return emit({"error": "Timeout: %s" % e, "remote": remote}, 1)
    finally:
        close_quietly(conn)


def cmd_receive(args):
    deadline = time.monotonic() + args.timeout
    conn = connect(args)
    remote = {"rcv_settle_mode": None, "source": None, "target": None, "filters": None}
    bodies = []
    presettled = [0]
    try:
        session = begin_session(conn, deadline, args.window)

        unsettled = []

        def on_transfer(frame, message):
            bodies.append(plain(message.value))
            if frame[4]:  # settled: it came pre-settled, there is nothing to accept
                presettled[0] += 1
            else:
                unsettled.append(frame)  # (a returned Accepted() is an empty, falsy tuple
                # that pyamqp would not send: settle as ReceiveClient.settle_messages does)
            return None

        def accept_received():
            while unsettled:
                frame = unsettled.pop(0)
                link.send_disposition(first_delivery_id=frame[1], delivery_tag=frame[2],
                                      settled=True, delivery_state=Accepted())
            return len(bodies) >= args.count

        def on_attach(attach):
            # The broker's attach, with its source as a Source named tuple: the filters it
            # says are in force.
            source = attach.source
            remote["filters"] = plain(source.filters) if source else None

        filters = None
        if args.selector is not None:
            filters = {SELECTOR_FILTER: (SELECTOR_FILTER, args.selector)}
        link = session.create_receiver_link(
            Source(address=args.address, filters=filters),
            name=args.name,
            link_credit=args.count,  # granted once, in the flow after the attach
            rcv_settle_mode=ReceiverSettleMode.First,
            on_transfer=on_transfer,
            on_attach=on_attach,
        )
        watch_attach(link, remote)
        link.attach()
        refused = attach_or_refusal(conn, link, deadline, remote)
        if refused is not None:
            return refused
        # The flow went out with pyamqp's reply to the attach; a session begun now and
        # answered means the broker has read it.
        begin_session(conn, deadline)
        print("ready", file=sys.stderr, flush=True)
        pump(conn, accept_received, deadline,
             "receiving message %d of %d" % (len(bodies) + 1, args.count))
        link.detach(close=True)
        return emit({"received": len(bodies), "bodies": bodies,
                     "presettled": presettled[0], "remote": remote})
    except Timeout as e:
        return emit({"received": len(bodies), "bodies": bodies, "remote": remote,
                     "error": "timeout: %s" % e}, EXIT_TIMEOUT)
    finally:
        close_quietly(conn)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("url", help="e.g. amqp://127.0.0.1:5672 or amqp://user:pass@host:port")
        p.add_argument("address")
        p.add_argument("count", type=int)
        p.add_argument("--timeout", type=float, default=30.0,
                       help="seconds to wait for the broker (default 30)")
        p.add_argument("--trace", action="store_true",
                       help="log every frame pyamqp sends and receives on stderr")

    p = sub.add_parser("send", help="send COUNT messages and wait for their outcomes")
    common(p)
    p.add_argument("--settle-second", action="store_true",
                   help="ask for rcv-settle-mode second in the attach")
    p.add_argument("--anonymous", action="store_true",
                   help="attach with a null target and send with `to` set to ADDRESS")
    p.set_defaults(run=cmd_send)

    p = sub.add_parser("receive", help="receive and accept COUNT messages")
    common(p)
    p.add_argument("--name", default=None, help="the link name (default: a fresh UUID)")
    p.add_argument("--selector", default=None,
                   help="an apache.org:selector-filter:string filter for the source")
    p.add_argument("--window", type=int, default=None,
                   help="the session's incoming window (pyamqp's Session default is 1)")
    p.set_defaults(run=cmd_receive)

    args = parser.parse_args(argv)
    if args.trace:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(relativeCreated)6d %(message)s")
    try:
        return args.run(args)
    except Exception as e:  # noqa: BLE001 - one JSON line for the test to show
        return emit({"error": "%s: %s" % (type(e).__name__, e)}, 1)


if __name__ == "__main__":
    sys.exit(main())
