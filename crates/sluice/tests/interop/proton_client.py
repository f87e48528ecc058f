#!/usr/bin/python3
"""A small AMQP 1.0 command-line client on Qpid Proton, for Sluice's interop tests.

Run it with Debian's Python, which has the binding (package python3-qpid-proton):

    /usr/bin/python3 proton_client.py send    amqp://127.0.0.1:5672 myqueue 100 [--size N]
                     [--ttl MS] [--prefix TEXT] [--announce]
    /usr/bin/python3 proton_client.py receive amqp://127.0.0.1:5672 myqueue 100 [--name LINK]
                     [--outcome accept|release|reject|modify-failed|modify-undeliverable[,...]]
    /usr/bin/python3 proton_client.py attach  amqp://127.0.0.1:5672 nowhere --role sender
    /usr/bin/python3 proton_client.py hold    amqp://127.0.0.1:5672 myqueue 10
    /usr/bin/python3 proton_client.py links   amqp://127.0.0.1:5672 myqueue 1000
    /usr/bin/python3 proton_client.py relay   amqp://127.0.0.1:5672 --to myqueue --count 5
    /usr/bin/python3 proton_client.py temporary amqp://127.0.0.1:5672 1 --address-file FILE
    /usr/bin/python3 proton_client.py tx      amqp://127.0.0.1:5672 myqueue --send 10

Credentials in the URL (amqp://user:pass@host:port) make Proton use SASL PLAIN; without them it
uses ANONYMOUS. Every subcommand also takes these connection options:

  --user U --password P  SASL credentials (as in the URL; Proton then picks PLAIN)
  --mech NAMES           the only SASL mechanisms Proton may choose (its allowed_mechs,
                         space-separated, e.g. "PLAIN" or "EXTERNAL")
  --ca FILE              TLS: trust only this CA (PEM) and verify the server's host name
  --cert FILE --key FILE TLS: present this client certificate (PEM chain and key)
  --hostname NAME        TLS: the name sent as SNI and verified against the certificate
                         (default: the URL's host)

An amqps:// URL connects with TLS first; --ca with an amqp:// URL does too. Every subcommand
prints one JSON object on stdout and exits:

send     Sends COUNT messages, unsettled, pipelined, then waits for every disposition.
         Message i has the string body "msg-<i>", or with --size N a binary (data section) body
         of N bytes that starts with b"msg-<i>:". Prints {"sent", "accepted", "outcomes",
         "sha256"} (sha256: hex digest of each body, with --size); exits 0 if all were accepted.
         --ttl MS sets each message's header TTL (milliseconds); --durable marks each
         message durable. --prefix TEXT replaces "msg-" in
         the bodies ("<TEXT><i>", or with --size b"<TEXT><i>:"). --announce prints "attached" on
         stderr once the broker has answered the attach, before any message is sent (so a test
         can start something else while the sender waits for credit). A failure to get every
         disposition within --timeout is reported as any other failure ({"error": "Timeout: ..."},
         exit 1).
receive  Grants exactly COUNT credit (no refill, so competing receivers split a queue
         predictably), receives COUNT messages and accepts each (a delivery that arrives
         settled, as multicast's do, is not settled again). Prints {"received", "bodies",
         "headers", "presettled"}: a string body as itself, a binary body as {"size": N,
         "sha256": HEX}; each header as {"delivery_count", "first_acquirer"} (from the
         message's header section); presettled: how many deliveries arrived settled.
         Prints "ready" on stderr once the link is attached and the broker has its credit (a
         session begun after the flow was answered, so the flow was read first: a multicast
         sender started after "ready" cannot overtake it). --name LINK sets the link name
         (default: Proton's, "<container id>-<address>", so two receivers on one address of
         one container would share it). Exits 2 on
         timeout (the JSON then has "error" and the bodies received so far).
         --outcome LIST: the disposition to settle each unsettled delivery with, instead of
         accepted: accept, release, reject, modify-failed (modified, delivery-failed) or
         modify-undeliverable (modified, delivery-failed and undeliverable-here). A
         comma-separated list gives message i the i-th outcome, the last one repeating (e.g.
         "release,accept": release the first, accept the rest).
hold     Like receive, but never settles: grants COUNT credit, receives COUNT messages, prints
         {"held", "bodies", "headers"} on stdout and "held" on stderr, then keeps the connection
         serviced (and the deliveries unsettled) until it is killed. Exits 2 on timeout.
attach   Attaches a link and prints {"attached": true, "address"} (exit 0), or, when the peer
         refuses it (a null terminus then a detach, or closing the connection),
         {"attached": false, "condition": NAME, "description": TEXT} (exit 3), e.g.
         NAME = "amqp:not-found".

links    Attaches COUNT sender links to ADDRESS on one connection (one session), all pipelined,
         then sends one message on each ("link-<i>" on link i) and waits for every disposition.
         Prints {"links", "attached", "refused", "sent", "accepted", "outcomes", "seconds",
         "condition"} (condition: the first refusal's, or null); exits 0 if every link attached
         and every message was accepted.

manage   An AMQP Management request to $management: application properties operation
         (--operation PURGE|MOVE|READ|...), type (--type, default sluice.queue), name (the
         ADDRESS), and for MOVE optional to (--to) and max (--max); message-id "req-1". The
         answer comes on a receiver from $management (--reply link, the default) or a dynamic
         receiver set as reply-to (--reply dynamic). Prints {"status", "description", "body",
         "correlation_id"} (statusCode, statusDescription, the map body, the answer's
         correlation-id) of the last answer; exits 0 once the answers arrived, whatever their
         status. A comma-separated --operation sends each in turn on the same links, and
         "statuses" lists every answer's statusCode.

relay    Attaches one sender link with a null target (the anonymous relay) and sends, pipelined
         and unsettled, COUNT messages to each --to ADDRESS in turn (repeat --to ADDR --count N;
         a missing --count is 1), each with `to` (Proton's `address`) set and the string body
         "msg-<i>" (i counts within its address), then waits for every disposition. Prints
         {"capabilities", "anonymous_relay", "sent", "outcomes", "deliveries"}: capabilities, the
         server's offered capabilities from its open; anonymous_relay, whether they include
         ANONYMOUS-RELAY; outcomes, a count per outcome name; deliveries, one {"to", "body",
         "outcome", "condition", "description"} per message in sending order (condition and
         description from a rejection's error, else null). Exits 0 once every message has an
         outcome, whatever it is.

temporary  Attaches a dynamic receiver (the broker makes a temporary queue), writes the
         address the broker gave it to --address-file FILE, prints "ready" on stderr, then
         receives and accepts COUNT messages like receive ({"address", "received", "bodies"}).

watch    Opens, on one connection, a sender to each --sender ADDR and a receiver (credit 10)
         from each --receiver ADDR (both repeatable), and with --keep ADDR one more receiver
         (credit 1) from ADDR. Prints "ready" on stderr once every link is attached and the
         credit read, then waits until --detached N of the --sender/--receiver links have been
         detached by the broker (a detach is recorded, never raised), prints "detached" on
         stderr, and with --keep then receives and accepts one message on the kept receiver.
         Prints {"links": [{"role", "address", "detached", "condition", "description"}],
         "kept": BODY or null, "connection_open"} (connection_open: whether the broker's side of
         the connection is still open at the end); exits 0, or 2 on timeout (the JSON so far).
credit   Attaches a sender to ADDRESS and waits for the broker's first credit. Prints
         {"attached": true, "credit": N} (N: the link's credit once a round trip has passed),
         or {"attached": false, "condition", "description"} (exit 3) when it is refused.
open-info  Opens a connection and prints what the broker's open said: {"remote_idle_timeout":
         SECONDS (Proton's Transport.remote_idle_timeout, 0 when none), "remote_container",
         "remote_max_frame_size"}.
fill     Sends up to COUNT messages to ADDRESS one at a time (each waits for its outcome), of
         binary bodies of --size N bytes (b"msg-<i>:" first), with --durable marked durable,
         stopping at the first one not accepted. Prints {"accepted": K, "refused": null or
         {"outcome", "condition", "description", "detached"}}: the refusal's outcome name, the
         condition and description of the rejection or of the detach that ended the link, and
         whether the link was detached. Exits 0 once it stops, whatever the outcome.
tx       Local transactions: sends and accepts under transactions, then commits, aborts or
         holds them (see proton_tx.py, which implements it on Proton's reactor API).

Any other failure prints {"error": ...} and exits 1. When the connection itself failed (SASL,
TLS, or the broker's close) or a link was detached, the JSON also has "condition" and
"description" (the transport's, the close's or the detach's error) and "sasl_outcome" (null, "ok", "auth", "sys", "sys-perm" or "sys-temp").
"""

import argparse
import hashlib
import json
import sys
import time

from proton import SASL, Delivery, Endpoint, Message, SSLDomain, Timeout
from proton.utils import BlockingConnection, ConnectionClosed, LinkDetached

import proton_tx

EXIT_TIMEOUT = 2
EXIT_REFUSED = 3


def body_for(index, size, prefix="msg-"):
    """The body of message `index`: "msg-<i>", or `size` bytes starting with b"msg-<i>:" (with
    another `prefix` in place of "msg-")."""
    if size is None:
        return "%s%d" % (prefix, index)
    prefix = b"%s%d:" % (prefix.encode(), index)
    filler = bytes(range(256)) * (size // 256 + 1)
    return (prefix + filler)[:size]


def describe(body):
    """A JSON-friendly view of a body: strings as themselves, binaries as size and digest."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return body


def outcome_name(state):
    names = {
        Delivery.ACCEPTED: "accepted",
        Delivery.REJECTED: "rejected",
        Delivery.RELEASED: "released",
        Delivery.MODIFIED: "modified",
        Delivery.RECEIVED: "received",
    }
    return names.get(state, "none" if not state else str(state))


def emit(summary, code=0):
    print(json.dumps(summary), flush=True)
    return code


SASL_OUTCOMES = {0: "ok", 1: "auth", 2: "sys", 3: "sys-perm", 4: "sys-temp"}

# How the connection failed, recorded when its transport closed (see `failure_fields`).
FAILURE = {}


def _keep_detach_description(init):
    """LinkDetached keeps the condition's name only, and the link is freed by the time the
    exception reaches `main`: keep the description too, read when it is raised."""
    def wrapped(self, link):
        condition = link.remote_condition
        self.description = condition.description if condition else None
        init(self, link)
    return wrapped


LinkDetached.__init__ = _keep_detach_description(LinkDetached.__init__)


class RecordingConnection(BlockingConnection):
    """A BlockingConnection that remembers why its transport closed: the exception Proton
    raises for a SASL or TLS failure carries only text."""

    def on_connection_remote_close(self, event):
        condition = event.connection.remote_condition
        if condition and "condition" not in FAILURE:
            FAILURE["condition"] = condition.name
            FAILURE["description"] = condition.description
        super().on_connection_remote_close(event)

    def on_transport_closed(self, event):
        transport = event.transport
        condition = transport.condition
        # Proton keeps its SASL layer in _sasl once enabled; never create one here.
        sasl = SASL(transport) if transport._sasl is not None else None
        if condition and "condition" not in FAILURE:
            FAILURE["condition"] = condition.name
            FAILURE["description"] = condition.description
        if sasl is not None and "sasl_outcome" not in FAILURE:
            FAILURE["sasl_outcome"] = SASL_OUTCOMES.get(sasl.outcome)
        super().on_transport_closed(event)


def ssl_domain(args):
    """The TLS client configuration of --ca/--cert/--key, or None for Proton's default."""
    if not (args.ca or args.cert):
        return None
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    if args.ca:
        domain.set_trusted_ca_db(args.ca)
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME, args.ca)
    if args.cert:
        domain.set_credentials(args.cert, args.key, None)
    return domain


def connect(args):
    options = {}
    if args.user is not None:
        options["user"] = args.user
    if args.password is not None:
        options["password"] = args.password
    if args.mech:
        options["allowed_mechs"] = args.mech
    if args.hostname:
        options["sni"] = args.hostname  # Proton verifies the certificate against it too
    url = args.url
    if (args.ca or args.cert) and url.startswith("amqp://"):
        url = "amqps://" + url[len("amqp://"):]
    return RecordingConnection(url, timeout=args.timeout, ssl_domain=ssl_domain(args), **options)


def failure_fields(error):
    """The condition of a failed connection, for the JSON of any failure."""
    fields = dict(FAILURE)
    if isinstance(error, LinkDetached) and "condition" not in fields:
        fields["condition"] = error.condition
        fields["description"] = error.description
    fields.setdefault("condition", None)
    fields.setdefault("description", None)
    fields.setdefault("sasl_outcome", None)
    return fields


def close_quietly(conn):
    """Close the connection; a failure here must not hide the summary already printed."""
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


def cmd_send(args):
    conn = connect(args)
    try:
        sender = conn.create_sender(args.address)
        if args.announce:
            print("attached", file=sys.stderr, flush=True)
        deliveries = []
        digests = []
        for i in range(args.count):
            body = body_for(i, args.size, args.prefix)
            message = Message(body=body)
            if args.ttl is not None:
                message.ttl = args.ttl / 1000.0  # Proton's ttl is in seconds
            if args.durable:
                message.durable = True
            if args.size is not None:
                message.inferred = True  # a binary body goes out as a data section
                digests.append(hashlib.sha256(body).hexdigest())
            # Proton buffers the transfer until the broker grants credit.
            deliveries.append(sender.link.send(message))
        conn.wait(
            lambda: all(d.remote_state or d.settled for d in deliveries),
            msg="waiting for the dispositions of %d messages" % len(deliveries),
        )
        outcomes = {}
        for d in deliveries:
            name = outcome_name(d.remote_state)
            outcomes[name] = outcomes.get(name, 0) + 1
            d.settle()
        accepted = outcomes.get("accepted", 0)
        summary = {"sent": len(deliveries), "accepted": accepted, "outcomes": outcomes}
        if args.size is not None:
            summary["sha256"] = digests
        sender.close()
        return emit(summary, 0 if accepted == args.count else 1)
    finally:
        close_quietly(conn)


def cmd_receive(args):
    conn = connect(args)
    bodies = []
    headers = []
    try:
        # credit=0: no prefetch window that refills itself; we grant exactly COUNT below.
        receiver = conn.create_receiver(args.address, credit=0, name=args.name)
        fetcher = receiver.fetcher
        receiver.link.flow(args.count)
        round_trip(conn)  # the flow is written and read before "ready"
        print("ready", file=sys.stderr, flush=True)
        presettled = 0
        deadline = time.monotonic() + args.timeout
        while len(bodies) < args.count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout("receive timed out")
            conn.wait(lambda: fetcher.has_message, timeout=remaining,
                      msg="receiving message %d of %d" % (len(bodies) + 1, args.count))
            message = fetcher.pop()
            if fetcher.unsettled:
                settle_with(fetcher, args.outcome, len(bodies))
            else:
                presettled += 1  # it came settled: there is nothing to accept
            bodies.append(describe(message.body))
            headers.append(header_of(message))
        receiver.close()
        return emit({"received": len(bodies), "bodies": bodies, "headers": headers,
                     "presettled": presettled})
    except Timeout as e:
        return emit({"received": len(bodies), "bodies": bodies, "headers": headers,
                     "error": "timeout: %s" % e}, EXIT_TIMEOUT)
    finally:
        close_quietly(conn)


OUTCOMES = ["accept", "release", "reject", "modify-failed", "modify-undeliverable"]


def outcome_list(text):
    """--outcome: one outcome name, or several separated by commas."""
    names = text.split(",")
    for name in names:
        if name not in OUTCOMES:
            raise argparse.ArgumentTypeError(
                "unknown outcome %r (expected one of %s)" % (name, ", ".join(OUTCOMES)))
    return names


def settle_with(fetcher, outcomes, index):
    """Settles the delivery just popped with outcome `index` of `outcomes` (the last repeats)."""
    name = outcomes[min(index, len(outcomes) - 1)]
    if name == "accept":
        fetcher.settle(Delivery.ACCEPTED)
    elif name == "release":
        fetcher.settle(Delivery.RELEASED)
    elif name == "reject":
        fetcher.settle(Delivery.REJECTED)
    else:
        delivery = fetcher.unsettled[0]  # the one `settle` takes next
        delivery.local.failed = True
        delivery.local.undeliverable = name == "modify-undeliverable"
        fetcher.settle(Delivery.MODIFIED)


def round_trip(conn):
    """Begins a session and waits for the broker's begin, then ends it. The broker reads a
    connection's frames in order, so once its begin is here every frame written before ours
    (e.g. a flow) has been read and acted on."""
    session = conn.conn.session()
    session.open()
    conn.wait(lambda: session.state & Endpoint.REMOTE_ACTIVE,
              msg="waiting for the begin of a round-trip session")
    session.close()


def header_of(message):
    """The header fields a redelivery changes."""
    return {"delivery_count": message.delivery_count,
            "first_acquirer": bool(message.first_acquirer)}


def cmd_hold(args):
    conn = connect(args)
    bodies = []
    headers = []
    try:
        receiver = conn.create_receiver(args.address, credit=0)
        fetcher = receiver.fetcher
        receiver.link.flow(args.count)
        print("ready", file=sys.stderr, flush=True)
        deadline = time.monotonic() + args.timeout
        while len(bodies) < args.count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout("hold timed out")
            conn.wait(lambda: fetcher.has_message, timeout=remaining,
                      msg="receiving message %d of %d" % (len(bodies) + 1, args.count))
            message = fetcher.pop()  # left unsettled: never accepted, released or rejected
            bodies.append(describe(message.body))
            headers.append(header_of(message))
        emit({"held": len(bodies), "bodies": bodies, "headers": headers})
        print("held", file=sys.stderr, flush=True)
        while True:  # keep servicing the connection until killed
            try:
                conn.wait(lambda: False, timeout=1.0)
            except Timeout:
                pass
    except Timeout as e:
        return emit({"held": len(bodies), "bodies": bodies, "headers": headers,
                     "error": "timeout: %s" % e}, EXIT_TIMEOUT)
    finally:
        close_quietly(conn)


def cmd_links(args):
    started = time.monotonic()
    conn = connect(args)
    try:
        # Raw links (not BlockingSender, which waits for each attach in turn): every attach is
        # pipelined on the connection's default session.
        links = [conn.container.create_sender(conn.conn, args.address, name="link-%d" % i)
                 for i in range(args.count)]
        deliveries = [link.send(Message(body="link-%d" % i)) for i, link in enumerate(links)]

        def refused():
            return [link for link in links if link.state & Endpoint.REMOTE_CLOSED]

        conn.wait(
            lambda: refused() or all(d.remote_state or d.settled for d in deliveries),
            msg="waiting for %d links to attach and settle one message each" % args.count,
        )
        attached = sum(1 for link in links if link.state & Endpoint.REMOTE_ACTIVE)
        closed = refused()
        condition = closed[0].remote_condition if closed else None
        outcomes = {}
        for d in deliveries:
            name = outcome_name(d.remote_state)
            outcomes[name] = outcomes.get(name, 0) + 1
        accepted = outcomes.get("accepted", 0)
        for d in deliveries:
            d.settle()
        for link in links:
            if not link.state & Endpoint.REMOTE_CLOSED:
                link.close()
        conn.wait(lambda: all(link.state & Endpoint.REMOTE_CLOSED for link in links),
                  msg="waiting for %d detaches" % args.count)
        ok = attached == args.count and accepted == args.count
        return emit({
            "links": args.count,
            "attached": attached,
            "refused": len(closed),
            "sent": len(deliveries),
            "accepted": accepted,
            "outcomes": outcomes,
            "condition": ("%s: %s" % (condition.name, condition.description)
                          if condition else None),
            "seconds": round(time.monotonic() - started, 3),
        }, 0 if ok else 1)
    finally:
        close_quietly(conn)


def symbols(field):
    """A `multiple` symbol field as a list of strings: AMQP lets one value go alone, not in an
    array, and Proton then hands back the bare symbol."""
    if not field:
        return []
    if isinstance(field, str):  # proton.symbol is a str
        return [str(field)]
    return [str(s) for s in field]


def cmd_relay(args):
    conn = connect(args)
    try:
        capabilities = symbols(conn.conn.remote_offered_capabilities)
        # A null target: the broker routes each message by its `to`.
        sender = conn.create_sender(None, name="relay")
        counts = args.count or []
        plan = [(to, counts[i] if i < len(counts) else 1) for i, to in enumerate(args.to)]
        sent = []
        for to, count in plan:
            for i in range(count):
                body = "msg-%d" % i
                sent.append((to, body, sender.link.send(Message(address=to, body=body))))
        conn.wait(
            lambda: all(d.remote_state or d.settled for _, _, d in sent),
            msg="waiting for the dispositions of %d relayed messages" % len(sent),
        )
        outcomes = {}
        deliveries = []
        for to, body, d in sent:
            name = outcome_name(d.remote_state)
            outcomes[name] = outcomes.get(name, 0) + 1
            condition = d.remote.condition
            deliveries.append({
                "to": to,
                "body": body,
                "outcome": name,
                "condition": condition.name if condition else None,
                "description": condition.description if condition else None,
            })
            d.settle()
        sender.close()
        return emit({
            "capabilities": capabilities,
            "anonymous_relay": "ANONYMOUS-RELAY" in capabilities,
            "sent": len(sent),
            "outcomes": outcomes,
            "deliveries": deliveries,
        })
    finally:
        close_quietly(conn)


def cmd_request_reply(args):
    """A client and a service on one connection: the client's dynamic receiver gets a
    temporary reply address; the request goes to ADDRESS with that reply-to; the service
    answers through a null-target (anonymous) sender to the request's reply-to."""
    conn = connect(args)
    try:
        replies = conn.create_receiver(None, dynamic=True, credit=10, name="replies")
        reply_to = replies.link.remote_source.address
        conn.create_sender(args.address, name="requests").send(
            Message(body="ping", reply_to=reply_to))
        service = conn.create_receiver(args.address, credit=10, name="service")
        request = service.receive(timeout=args.timeout)
        service.accept()
        conn.create_sender(None, name="answers").send(
            Message(address=request.reply_to, body="pong for " + request.body))
        reply = replies.receive(timeout=args.timeout)
        replies.accept()
        replies.close()
        # The temporary queue went with its link: a late reply is refused.
        late = conn.create_sender(None, name="late").link.send(
            Message(address=reply_to, body="late"))
        conn.wait(lambda: late.remote_state or late.settled, msg="waiting for the late reply's outcome")
        condition = late.remote.condition
        return emit({
            "reply_to": reply_to,
            "request_reply_to": request.reply_to,
            "reply": reply.body,
            "late_outcome": outcome_name(late.remote_state),
            "late_condition": condition.name if condition else None,
        })
    finally:
        close_quietly(conn)


def cmd_manage(args):
    conn = connect(args)
    try:
        if args.reply == "dynamic":
            replies = conn.create_receiver(None, dynamic=True, credit=1, name="manage-replies")
            reply_to = replies.link.remote_source.address
        else:
            replies = conn.create_receiver("$management", credit=1, name="manage-replies")
            reply_to = "manage-replies"
        sender = conn.create_sender("$management", name="manage-requests")
        statuses = []
        for operation in args.operation.split(","):
            properties = {"operation": operation, "type": args.type, "name": args.address}
            if args.to is not None:
                properties["to"] = args.to
            if args.max is not None:
                properties["max"] = args.max
            sender.send(Message(id="req-1", reply_to=reply_to, properties=properties),
                        timeout=args.timeout)
            answer = replies.receive(timeout=args.timeout)
            if args.reply == "dynamic":
                replies.accept()  # from a queue; answers on $management's receiver come settled
            answered = answer.properties or {}
            statuses.append(answered.get("statusCode"))
        return emit({
            "status": answered.get("statusCode"),
            "description": answered.get("statusDescription"),
            "body": dict(answer.body) if isinstance(answer.body, dict) else answer.body,
            "correlation_id": answer.correlation_id,
            "statuses": statuses,
        })
    finally:
        close_quietly(conn)


def cmd_temporary(args):
    conn = connect(args)
    bodies = []
    try:
        receiver = conn.create_receiver(None, dynamic=True, credit=args.count, name="temporary")
        address = receiver.link.remote_source.address
        with open(args.address_file, "w") as f:
            f.write(address)
        print("ready", file=sys.stderr, flush=True)
        while len(bodies) < args.count:
            message = receiver.receive(timeout=args.timeout)
            receiver.accept()
            bodies.append(describe(message.body))
        receiver.close()
        return emit({"address": address, "received": len(bodies), "bodies": bodies})
    except Timeout as e:
        return emit({"received": len(bodies), "bodies": bodies, "error": "timeout: %s" % e},
                    EXIT_TIMEOUT)
    finally:
        close_quietly(conn)


def cmd_attach(args):
    conn = connect(args)
    try:
        # The raw link, not BlockingSender/BlockingReceiver: those turn a refusal (an attach
        # with a null terminus, then a detach with the error) into an exception without it.
        if args.role == "sender":
            link = conn.container.create_sender(conn.conn, args.address)
        else:
            link = conn.container.create_receiver(conn.conn, args.address)
            link.flow(0)

        def terminus():
            remote = link.remote_target if args.role == "sender" else link.remote_source
            return remote.address

        def refused(closed_by):
            endpoint = link if closed_by == "link" else conn.conn
            condition = endpoint.remote_condition
            return emit({
                "attached": False,
                "closed": closed_by,
                "condition": condition.name if condition else None,
                "description": condition.description if condition else None,
            }, EXIT_REFUSED)

        try:
            conn.wait(lambda: not (link.state & Endpoint.REMOTE_UNINIT),
                      msg="waiting for the attach of %s" % args.address)
            if terminus() is None:
                # A refusal: the detach that carries the error follows the attach.
                conn.wait(lambda: link.state & Endpoint.REMOTE_CLOSED,
                          msg="waiting for the detach after a null terminus")
            elif not link.state & Endpoint.REMOTE_CLOSED:
                link.close()
                return emit({"attached": True, "address": terminus()})
        except LinkDetached:
            pass
        except ConnectionClosed:
            return refused("connection")
        return refused("link")
    finally:
        close_quietly(conn)


class TolerantConnection(RecordingConnection):
    """A RecordingConnection on which a link the broker detaches is closed on our side too
    but raises nothing, so a client can watch several links and report each detach."""

    def on_link_remote_close(self, event):
        if event.link.state & Endpoint.LOCAL_ACTIVE:
            event.link.close()


def connect_tolerant(args):
    """Like `connect`, on a TolerantConnection."""
    options = {}
    if args.user is not None:
        options["user"] = args.user
    if args.password is not None:
        options["password"] = args.password
    if args.mech:
        options["allowed_mechs"] = args.mech
    return TolerantConnection(args.url, timeout=args.timeout, ssl_domain=ssl_domain(args),
                              **options)


def condition_of(endpoint):
    condition = endpoint.remote_condition
    return (condition.name if condition else None,
            condition.description if condition else None)


def cmd_watch(args):
    conn = connect_tolerant(args)
    watched = []
    try:
        for i, address in enumerate(args.sender or []):
            link = conn.container.create_sender(conn.conn, address, name="watch-send-%d-%s" % (i, address))
            watched.append(("sender", address, link))
        for i, address in enumerate(args.receiver or []):
            link = conn.container.create_receiver(conn.conn, address, name="watch-recv-%d-%s" % (i, address))
            link.flow(10)
            watched.append(("receiver", address, link))
        keep = None
        if args.keep:
            keep = conn.create_receiver(args.keep, credit=0, name="watch-keep-%s" % args.keep)
            keep.link.flow(1)
        conn.wait(lambda: all(not (link.state & Endpoint.REMOTE_UNINIT) for _, _, link in watched),
                  msg="waiting for %d attaches" % len(watched))
        round_trip(conn)
        refused = [(role, address) for role, address, link in watched
                   if link.state & Endpoint.REMOTE_CLOSED]
        if refused:
            return emit({"error": "refused at attach: %s" % refused}, 1)
        print("ready", file=sys.stderr, flush=True)

        def report():
            links = []
            for role, address, link in watched:
                detached = bool(link.state & Endpoint.REMOTE_CLOSED)
                condition, description = condition_of(link) if detached else (None, None)
                links.append({"role": role, "address": address, "detached": detached,
                              "condition": condition, "description": description})
            return links

        def detached():
            return sum(1 for _, _, link in watched if link.state & Endpoint.REMOTE_CLOSED)

        kept = None
        try:
            conn.wait(lambda: detached() >= args.detached,
                      msg="waiting for %d detaches" % args.detached)
            print("detached", file=sys.stderr, flush=True)
            if keep is not None:
                fetcher = keep.fetcher
                conn.wait(lambda: fetcher.has_message, msg="receiving on the kept link")
                kept = describe(fetcher.pop().body)
                fetcher.settle(Delivery.ACCEPTED)
                round_trip(conn)
        except Timeout as e:
            return emit({"links": report(), "kept": kept, "error": "timeout: %s" % e},
                        EXIT_TIMEOUT)
        connection_open = bool(conn.conn.state & Endpoint.REMOTE_ACTIVE)
        return emit({"links": report(), "kept": kept, "connection_open": connection_open})
    finally:
        close_quietly(conn)


def cmd_credit(args):
    conn = connect_tolerant(args)
    try:
        link = conn.container.create_sender(conn.conn, args.address, name="credit-%s" % args.address)
        conn.wait(lambda: not (link.state & Endpoint.REMOTE_UNINIT),
                  msg="waiting for the attach of %s" % args.address)
        conn.wait(lambda: link.credit > 0 or link.state & Endpoint.REMOTE_CLOSED,
                  msg="waiting for credit on %s" % args.address)
        if not link.state & Endpoint.REMOTE_CLOSED:
            round_trip(conn)  # any later flow of the broker's has arrived
        if link.state & Endpoint.REMOTE_CLOSED:
            condition, description = condition_of(link)
            return emit({"attached": False, "condition": condition, "description": description},
                        EXIT_REFUSED)
        credit = link.credit
        link.close()
        return emit({"attached": True, "credit": credit})
    finally:
        close_quietly(conn)


def cmd_open_info(args):
    conn = connect(args)
    try:
        transport = conn.conn.transport
        return emit({
            "remote_idle_timeout": transport.remote_idle_timeout,
            "remote_container": conn.conn.remote_container,
            "remote_max_frame_size": transport.remote_max_frame_size,
        })
    finally:
        close_quietly(conn)


def cmd_fill(args):
    conn = connect_tolerant(args)
    try:
        link = conn.container.create_sender(conn.conn, args.address, name="fill-%s" % args.address)
        conn.wait(lambda: not (link.state & Endpoint.REMOTE_UNINIT),
                  msg="waiting for the attach of %s" % args.address)
        accepted = 0
        refused = None
        for i in range(args.count):
            if link.state & Endpoint.REMOTE_CLOSED:
                break
            message = Message(body=body_for(i, args.size))
            message.inferred = True  # a binary body goes out as a data section
            if args.durable:
                message.durable = True
            delivery = link.send(message)
            conn.wait(lambda: delivery.remote_state or delivery.settled
                      or link.state & Endpoint.REMOTE_CLOSED,
                      msg="waiting for the outcome of message %d" % i)
            if delivery.remote_state == Delivery.ACCEPTED:
                accepted += 1
                delivery.settle()
                continue
            refused = {"outcome": outcome_name(delivery.remote_state)}
            condition = delivery.remote.condition if delivery.remote_state else None
            if condition is None and link.state & Endpoint.REMOTE_CLOSED:
                condition = link.remote_condition
            refused["condition"] = condition.name if condition else None
            refused["description"] = condition.description if condition else None
            break
        detached = bool(link.state & Endpoint.REMOTE_CLOSED)
        if refused is None and detached:
            name, description = condition_of(link)
            refused = {"outcome": "none", "condition": name, "description": description}
        if refused is not None:
            refused["detached"] = detached
        return emit({"accepted": accepted, "refused": refused})
    finally:
        close_quietly(conn)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def security(p):
        p.add_argument("--user", default=None, help="SASL username")
        p.add_argument("--password", default=None, help="SASL password")
        p.add_argument("--mech", default=None,
                       help="the SASL mechanisms allowed (space-separated), e.g. PLAIN")
        p.add_argument("--ca", default=None, help="TLS: the CA (PEM) to trust")
        p.add_argument("--cert", default=None, help="TLS: client certificate chain (PEM)")
        p.add_argument("--key", default=None, help="TLS: client private key (PEM)")
        p.add_argument("--hostname", default=None, help="TLS: SNI and verified host name")

    def common(p):
        p.add_argument("url", help="e.g. amqp://127.0.0.1:5672 or amqp://user:pass@host:port")
        p.add_argument("address")
        p.add_argument("--timeout", type=float, default=30.0,
                       help="seconds to wait for the broker (default 30)")
        security(p)

    p = sub.add_parser("send", help="send COUNT messages and wait for their outcomes")
    common(p)
    p.add_argument("count", type=int)
    p.add_argument("--size", type=int, default=None, help="binary bodies of N bytes")
    p.add_argument("--ttl", type=int, default=None, help="each message's TTL, milliseconds")
    p.add_argument("--prefix", default="msg-", help='bodies "<TEXT><i>" (default "msg-")')
    p.add_argument("--announce", action="store_true",
                   help='print "attached" on stderr once the link is attached')
    p.add_argument("--durable", action="store_true", help="mark each message durable")
    p.set_defaults(run=cmd_send)

    p = sub.add_parser("receive", help="receive and accept COUNT messages")
    common(p)
    p.add_argument("count", type=int)
    p.add_argument("--name", default=None, help="the link name (default: Proton's)")
    p.add_argument("--outcome", type=outcome_list, default=["accept"],
                   help="accept|release|reject|modify-failed|modify-undeliverable, or a "
                        "comma-separated list for message 0, 1, ... (the last repeats)")
    p.set_defaults(run=cmd_receive)

    p = sub.add_parser("hold", help="receive COUNT messages, never settle, wait to be killed")
    common(p)
    p.add_argument("count", type=int)
    p.set_defaults(run=cmd_hold)

    p = sub.add_parser("links", help="attach COUNT senders on one connection, one message each")
    common(p)
    p.add_argument("count", type=int)
    p.set_defaults(run=cmd_links)

    p = sub.add_parser("relay", help="send through a null-target link, routed by each `to`")
    p.add_argument("url", help="e.g. amqp://127.0.0.1:5672 or amqp://user:pass@host:port")
    p.add_argument("--to", action="append", required=True, help="a destination (repeatable)")
    p.add_argument("--count", action="append", type=int,
                   help="messages to the --to in the same place (default 1)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the broker (default 30)")
    security(p)
    p.set_defaults(run=cmd_relay)

    p = sub.add_parser("request-reply", help="request/reply over a dynamic receiver")
    common(p)
    p.set_defaults(run=cmd_request_reply)

    p = sub.add_parser("manage", help="an AMQP Management request to $management")
    common(p)
    p.add_argument("--operation", required=True, help="PURGE, MOVE, READ, ...")
    p.add_argument("--type", default="sluice.queue", help="the entity type")
    p.add_argument("--to", default=None, help="MOVE: only messages from this address")
    p.add_argument("--max", type=int, default=None, help="MOVE: at most this many")
    p.add_argument("--reply", choices=["link", "dynamic"], default="link",
                   help="answers on a $management receiver, or a dynamic one as reply-to")
    p.set_defaults(run=cmd_manage)

    p = sub.add_parser("temporary", help="a dynamic receiver: write its address, receive COUNT")
    p.add_argument("url", help="e.g. amqp://127.0.0.1:5672")
    p.add_argument("count", type=int)
    p.add_argument("--address-file", required=True, help="where to write the address")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the broker (default 30)")
    security(p)
    p.set_defaults(run=cmd_temporary)

    p = sub.add_parser("attach", help="attach a link; report whether it was refused")
    common(p)
    p.add_argument("--role", choices=["sender", "receiver"], required=True)
    p.set_defaults(run=cmd_attach)

    p = sub.add_parser("watch", help="hold links on one connection; report the broker's detaches")
    p.add_argument("url", help="e.g. amqp://127.0.0.1:5672")
    p.add_argument("--sender", action="append", help="a sender to this address (repeatable)")
    p.add_argument("--receiver", action="append", help="a receiver from it (repeatable)")
    p.add_argument("--keep", default=None, help="a receiver that should stay, gets one message")
    p.add_argument("--detached", type=int, required=True, help="detaches to wait for")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the broker (default 30)")
    security(p)
    p.set_defaults(run=cmd_watch)

    p = sub.add_parser("credit", help="attach a sender; report the credit the broker gives")
    common(p)
    p.set_defaults(run=cmd_credit)

    p = sub.add_parser("open-info", help="open a connection; report the broker's open")
    p.add_argument("url", help="e.g. amqp://127.0.0.1:5672")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the broker (default 30)")
    security(p)
    p.set_defaults(run=cmd_open_info)

    p = sub.add_parser("fill", help="send one at a time until a message is not accepted")
    common(p)
    p.add_argument("count", type=int)
    p.add_argument("--size", type=int, required=True, help="binary bodies of N bytes")
    p.add_argument("--durable", action="store_true", help="mark each message durable")
    p.set_defaults(run=cmd_fill)

    proton_tx.add_parser(sub, common)

    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    try:
        return args.run(args)
    except Exception as e:  # noqa: BLE001 - one JSON line for the test to show
        summary = {"error": "%s: %s" % (type(e).__name__, e)}
        summary.update(failure_fields(e))
        return emit(summary, 1)


if __name__ == "__main__":
    sys.exit(main())
