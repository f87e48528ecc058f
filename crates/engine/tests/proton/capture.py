#!/usr/bin/python3
"""Record reference AMQP 1.0 byte streams produced by Qpid Proton.

What this is
------------
A generator for golden test vectors used by the ``sluice-engine`` tests.  It
drives Qpid Proton's in-memory engine (``proton.Transport`` /
``proton.Connection`` / ``proton.SASL`` / ``proton.Collector``; no sockets, no
reactor) with a proton CLIENT transport wired to a proton SERVER transport
(``Transport(Transport.SERVER)``), pumping bytes between them with
``pending()`` / ``peek()`` / ``pop()`` / ``push()`` until quiescent.

Every byte the client writes is appended, in order, to
``<scenario>.client.bin``; every byte the server writes to
``<scenario>.server.bin``.  ``scenarios.json`` describes each scenario: what the
client did, the ordered frames each side sent as decoded by proton's own frame
trace (``Transport.TRACE_FRM`` with a ``tracer`` callback), the raw trace
lines, and a byte layout (offset/length/name of every header and frame) that
this script derives independently by splitting the recorded bytes and decoding
each performative descriptor with ``proton.Data``; the script asserts the two
agree.

All ids, names, tags and timer values are fixed, so reruns are byte-identical.

How to rerun
------------
Needs Debian's ``python3-qpid-proton`` (0.37); the interpreter must be the
system one because other ``python3`` binaries on PATH may lack proton::

    /usr/bin/python3 crates/engine/tests/proton/capture.py

Output is written next to this script (overwriting previous files).

Scenario notes
--------------
* ``plain-receive``: Debian's proton is built without Cyrus SASL
  (``SASL.extended()`` is False).  Its built-in server SASL only ever offers
  ANONYMOUS (and EXTERNAL with TLS) and would fail a PLAIN sasl-init; a proton
  client restricted to PLAIN therefore aborts on receiving
  ``sasl-mechanisms [ANONYMOUS]`` without ever sending sasl-init.  To still
  record proton's PLAIN sasl-init, the server side of the SASL layer in that
  scenario is a tiny shim in this script (``PlainSaslShim``): it answers the
  SASL protocol header with the SASL header + ``sasl-mechanisms [PLAIN]``
  (encoded with ``proton.Data``), checks the client's sasl-init (mechanism
  PLAIN, response ``\\0alice\\0secret``) and answers ``sasl-outcome ok``.
  Everything after that (from the client's AMQP header on) is handled by a
  real proton server transport without a SASL layer.  The client bytes are
  100% proton; the first 3 server "frames" (SASL header, mechanisms,
  outcome) are the shim's.
* ``pipelined``: only the client is allowed to run; nothing from the server is
  pushed into it.  ``.client.bin`` is everything it emits on its own.  Those
  bytes are then pushed in one go into a fresh proton server and
  ``.server.bin`` is that server's entire reply (never fed back).
"""

import hashlib
import json
import os
import struct
import sys

from proton import (
    Collector,
    Condition,
    Connection,
    Data,
    Delivery,
    Endpoint,
    Event,
    Message,
    SASL,
    Transport,
    VERSION,
)

HERE = os.path.dirname(os.path.abspath(__file__))

CLIENT_CONTAINER = "proton-client"
SERVER_CONTAINER = "proton-server"
HOSTNAME = "localhost"

# Descriptor codes -> names (AMQP 1.0 sections 2.7, 5.3).
PERFORMATIVES = {
    0x10: "open", 0x11: "begin", 0x12: "attach", 0x13: "flow",
    0x14: "transfer", 0x15: "disposition", 0x16: "detach", 0x17: "end",
    0x18: "close",
    0x40: "sasl-mechanisms", 0x41: "sasl-init", 0x42: "sasl-challenge",
    0x43: "sasl-response", 0x44: "sasl-outcome",
}
SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"


# --------------------------------------------------------------------------
# Recording helpers
# --------------------------------------------------------------------------

def trace_to_name(line):
    """Map one outgoing proton TRACE_FRM line to a frame name (or None)."""
    body = line.split("->", 1)[1].strip()
    if body == "SASL":
        return "sasl-header"
    if body == "AMQP":
        return "amqp-header"
    if body == "EOS":
        return None  # end of output stream, not bytes on the wire
    if body.startswith("(EMPTY FRAME)"):
        return "empty"
    if body.startswith("@"):
        return body[1:].split("(", 1)[0]
    raise ValueError("unrecognised trace line: %r" % line)


class Side:
    """One proton transport + connection (+ collector) and its recording."""

    def __init__(self, label, server, container, sasl_mechs=None,
                 insecure=False, user=None, password=None, idle=None,
                 hostname=None):
        self.label = label
        self.out = bytearray()
        self.trace = []
        self.connection = Connection()
        self.connection.container = container
        if hostname is not None:
            self.connection.hostname = hostname
        if user is not None:
            self.connection.user = user
        if password is not None:
            self.connection.password = password
        self.collector = Collector()
        self.connection.collect(self.collector)
        self.transport = Transport(Transport.SERVER) if server else Transport()
        self.transport.tracer = self._tracer
        self.transport.trace(Transport.TRACE_FRM)
        if idle is not None:
            self.transport.idle_timeout = idle
        if sasl_mechs is not None:
            sasl = self.transport.sasl()
            sasl.allowed_mechs(sasl_mechs)
            if insecure:
                sasl.allow_insecure_mechs = True
        self.transport.bind(self.connection)

    def _tracer(self, transport, message):
        msg = message
        if msg.startswith("FRAME:"):
            msg = msg[len("FRAME:"):]
        self.trace.append(msg.strip())

    # byte-pipe interface used by pump()
    def pending(self):
        return self.transport.pending()

    def take(self, n):
        data = self.transport.peek(n)
        self.transport.pop(n)
        self.out += data
        return data

    def push(self, data):
        self.transport.push(data)

    def frames(self):
        names = []
        for line in self.trace:
            if "->" in line:
                name = trace_to_name(line)
                if name is not None:
                    names.append(name)
        return names

    def events(self):
        while True:
            ev = self.collector.peek()
            if ev is None:
                return
            self.collector.pop()
            yield ev


def auto_server(side, credit=10):
    """Minimal broker behaviour for the proton server side."""
    for ev in side.events():
        t = ev.type
        if t == Event.CONNECTION_REMOTE_OPEN:
            if ev.connection.state & Endpoint.LOCAL_UNINIT:
                ev.connection.open()
        elif t == Event.SESSION_REMOTE_OPEN:
            if ev.session.state & Endpoint.LOCAL_UNINIT:
                ev.session.open()
        elif t == Event.LINK_REMOTE_OPEN:
            link = ev.link
            if link.state & Endpoint.LOCAL_UNINIT:
                link.source.copy(link.remote_source)
                link.target.copy(link.remote_target)
                link.open()
                if link.is_receiver:
                    link.flow(credit)
        elif t == Event.DELIVERY:
            dlv = ev.delivery
            if dlv.link.is_receiver and dlv.readable and not dlv.partial:
                dlv.link.recv(dlv.pending)
                dlv.link.advance()
                dlv.update(Delivery.ACCEPTED)
                dlv.settle()
        elif t == Event.LINK_REMOTE_CLOSE:
            if not ev.link.state & Endpoint.LOCAL_CLOSED:
                ev.link.close()
        elif t == Event.SESSION_REMOTE_CLOSE:
            if not ev.session.state & Endpoint.LOCAL_CLOSED:
                ev.session.close()
        elif t == Event.CONNECTION_REMOTE_CLOSE:
            if not ev.connection.state & Endpoint.LOCAL_CLOSED:
                ev.connection.close()


def pump(client, server, server_logic=auto_server):
    """Shuttle bytes both ways until neither side has anything to say."""
    while True:
        server_logic(server)
        moved = False
        for src, dst in ((client, server), (server, client)):
            n = src.pending()
            if n > 0:
                dst.push(src.take(n))
                moved = True
        if not moved:
            server_logic(server)
            if client.pending() <= 0 and server.pending() <= 0:
                return


def drain_client(client):
    for _ in client.events():
        pass


# --------------------------------------------------------------------------
# SASL PLAIN shim (see module docstring)
# --------------------------------------------------------------------------

def encode_frame(descriptor, fields_writer, frame_type=1, channel=0):
    d = Data()
    d.put_described()
    d.enter()
    d.put_ulong(descriptor)
    d.put_list()
    d.enter()
    fields_writer(d)
    d.exit()
    d.exit()
    body = d.encode()
    return struct.pack(">IBBH", 8 + len(body), 2, frame_type, channel) + body


def sasl_mechanisms_plain():
    def w(d):
        d.put_array(False, Data.SYMBOL)
        d.enter()
        d.put_symbol("PLAIN")
        d.exit()
    return encode_frame(0x40, w)


def sasl_outcome_ok():
    def w(d):
        d.put_ubyte(0)  # code = ok
    return encode_frame(0x44, w)


def decode_performative(body):
    d = Data()
    d.decode(body)
    d.rewind()
    d.next()
    return d.get_object()


class PlainSaslShim:
    """Server-side SASL layer that offers PLAIN, fronting a proton server
    transport that has no SASL layer."""

    def __init__(self, inner):
        self.inner = inner
        self.out = bytearray()
        self.pending_out = bytearray()
        self.inbuf = bytearray()
        self.state = "header"
        self.trace = []
        self.sasl_init = None

    # delegate event processing to the real server
    def events(self):
        return self.inner.events()

    def push(self, data):
        if self.state == "passthrough":
            self.inner.push(data)
            return
        self.inbuf += data
        while True:
            if self.state == "header" and len(self.inbuf) >= 8:
                hdr = bytes(self.inbuf[:8])
                del self.inbuf[:8]
                assert hdr == SASL_HEADER, hdr
                self.trace.append("<- SASL")
                self.pending_out += SASL_HEADER
                self.trace.append("-> SASL")
                self.pending_out += sasl_mechanisms_plain()
                self.trace.append("0 -> @sasl-mechanisms(64) "
                                  "[sasl-server-mechanisms=@<symbol>[:PLAIN]] "
                                  "(shim, encoded with proton.Data)")
                self.state = "init"
            elif self.state == "init" and len(self.inbuf) >= 4:
                size = struct.unpack(">I", self.inbuf[:4])[0]
                if len(self.inbuf) < size:
                    return
                frame = bytes(self.inbuf[:size])
                del self.inbuf[:size]
                doff = frame[4] * 4
                init = decode_performative(frame[doff:])
                assert int(init.descriptor) == 0x41, init
                mech = str(init.value[0])
                resp = bytes(init.value[1])
                host = init.value[2] if len(init.value) > 2 else None
                assert mech == "PLAIN", mech
                assert resp == b"\x00alice\x00secret", resp
                self.sasl_init = {"mechanism": mech,
                                  "initial-response": resp.decode(),
                                  "hostname": None if host is None else str(host)}
                self.trace.append("0 <- @sasl-init(65) mechanism=PLAIN "
                                  "initial-response=\\x00alice\\x00secret")
                self.pending_out += sasl_outcome_ok()
                self.trace.append("0 -> @sasl-outcome(68) [code=0] (shim)")
                self.state = "passthrough"
                rest = bytes(self.inbuf)
                self.inbuf.clear()
                if rest:
                    self.inner.push(rest)
                return
            else:
                return

    def pending(self):
        if self.pending_out:
            return len(self.pending_out)
        if self.state != "passthrough":
            return 0
        return self.inner.pending()

    def take(self, n):
        if self.pending_out:
            data = bytes(self.pending_out[:n])
            del self.pending_out[:n]
        else:
            data = self.inner.take(n)
        self.out += data
        return data

    def frames(self):
        names = ["sasl-header", "sasl-mechanisms", "sasl-outcome"]
        return names + self.inner.frames()

    def full_trace(self):
        return ["[shim] " + t for t in self.trace] + self.inner.trace


# --------------------------------------------------------------------------
# Independent byte-level splitter (cross-checks the proton trace)
# --------------------------------------------------------------------------

def layout(data):
    """Split a recorded stream into protocol headers and frames."""
    out = []
    pos = 0
    data = bytes(data)
    while pos < len(data):
        if data[pos:pos + 4] == b"AMQP":
            hdr = data[pos:pos + 8]
            name = {SASL_HEADER: "sasl-header", AMQP_HEADER: "amqp-header"}[hdr]
            out.append({"offset": pos, "length": 8, "name": name})
            pos += 8
            continue
        size, doff, ftype, chan = struct.unpack(">IBBH", data[pos:pos + 8])
        assert size >= 8 and pos + size <= len(data), (pos, size, len(data))
        body = data[pos + doff * 4:pos + size]
        if not body:
            name = "empty"
        else:
            perf = decode_performative(body)
            name = PERFORMATIVES[int(perf.descriptor)]
        entry = {"offset": pos, "length": size, "name": name,
                 "frame-type": ftype, "channel": chan}
        out.append(entry)
        pos += size
    return out


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

def hello_message():
    return Message(body="hello", durable=True, id=1, address="queue1")


def scenario_anonymous_send():
    client = Side("client", False, CLIENT_CONTAINER, sasl_mechs="ANONYMOUS",
                  hostname=HOSTNAME)
    server = Side("server", True, SERVER_CONTAINER, sasl_mechs="ANONYMOUS")
    conn = client.connection
    conn.open()
    ssn = conn.session()
    ssn.open()
    snd = ssn.sender("sender")
    snd.target.address = "queue1"
    snd.open()
    pump(client, server)
    assert snd.credit > 0, "server did not grant credit"
    dlv = snd.delivery("delivery-1")
    snd.send(hello_message().encode())
    snd.advance()
    pump(client, server)
    assert dlv.remote_state == Delivery.ACCEPTED
    assert dlv.settled  # proton: settled == settled by the remote peer
    snd.close()
    pump(client, server)
    ssn.close()
    pump(client, server)
    conn.close()
    pump(client, server)
    drain_client(client)
    return client, server, {
        "description": (
            "SASL ANONYMOUS (client allowed_mechs ANONYMOUS, proton server "
            "allows ANONYMOUS and succeeds). Client container-id "
            "'proton-client', hostname 'localhost'. Client opens the "
            "connection, begins a session, attaches sender 'sender' to target "
            "'queue1' and waits (pump) for the server's attach+flow(10 "
            "credit). It then sends one unsettled message (delivery-tag "
            "'delivery-1', header durable=true, properties message-id=1 "
            "(ulong) to='queue1', body amqp-value 'hello'); the server "
            "accepts and settles it. Then, pumping between each step, the "
            "client detaches the link (closed=true), ends the session and "
            "closes the connection; the server mirrors each."),
        "server": "proton Transport(Transport.SERVER) with SASL ANONYMOUS",
    }


def scenario_plain_receive():
    client = Side("client", False, CLIENT_CONTAINER, sasl_mechs="PLAIN",
                  insecure=True, user="alice", password="secret",
                  hostname=HOSTNAME)
    inner = Side("server", True, SERVER_CONTAINER)  # no SASL layer
    server = PlainSaslShim(inner)
    conn = client.connection
    conn.open()
    ssn = conn.session()
    ssn.open()
    rcv = ssn.receiver("receiver")
    rcv.source.address = "queue1"
    rcv.open()
    rcv.flow(10)
    pump(client, server)
    assert client.transport.sasl().outcome == SASL.OK
    assert rcv.state & Endpoint.REMOTE_ACTIVE
    conn.condition = Condition("amqp:connection:forced", "test")
    conn.close()
    pump(client, server)
    drain_client(client)
    return client, server, {
        "description": (
            "SASL PLAIN (client allowed_mechs PLAIN, allow_insecure_mechs, "
            "user 'alice', password 'secret'), container-id 'proton-client', "
            "hostname 'localhost'. Client opens the connection, begins a "
            "session, attaches receiver 'receiver' with source 'queue1', "
            "grants credit 10 (receiver.flow(10)), all before any server "
            "byte is processed; pumps until quiescent, then closes the "
            "connection with error condition amqp:connection:forced "
            "description 'test' (without detaching/ending first)."),
        "server": (
            "SASL layer is a shim in capture.py (Debian's proton has no "
            "Cyrus SASL; its built-in server SASL cannot offer or verify "
            "PLAIN): the shim sends the SASL header + sasl-mechanisms "
            "[PLAIN] (encoded by proton.Data), asserts the client's "
            "sasl-init is mechanism PLAIN with initial-response "
            "'\\x00alice\\x00secret', sends sasl-outcome code=ok, then "
            "forwards everything else to a proton "
            "Transport(Transport.SERVER) without SASL. Server-side "
            "frames 'sasl-header', 'sasl-mechanisms', 'sasl-outcome' come "
            "from the shim; the rest from proton."),
        "sasl-init-seen-by-shim": server.sasl_init,
    }


def scenario_no_sasl_idle():
    client = Side("client", False, CLIENT_CONTAINER, idle=2.0,
                  hostname=HOSTNAME)
    server = Side("server", True, SERVER_CONTAINER)
    conn = client.connection
    conn.open()
    pump(client, server)
    # Fixed fake clock (seconds) so the heartbeat is deterministic: the
    # server owes the client traffic at least every 2s and proton emits an
    # empty frame at half that interval.
    t0 = 1000.0
    for t in (t0, t0 + 1.0):
        server.transport.tick(t)
        client.transport.tick(t)
        pump(client, server)
    conn.close()
    pump(client, server)
    drain_client(client)
    return client, server, {
        "description": (
            "No SASL on either side. Client container-id 'proton-client', "
            "hostname 'localhost', transport.idle_timeout = 2.0 s (advertised "
            "as idle-time-out=1000 ms in open: proton advertises half its "
            "local value) set before open. Client opens; after the open "
            "exchange both transports are ticked with a fake clock at "
            "t=1000.0 s and t=1001.0 s (the second tick makes the proton "
            "server emit one empty heartbeat frame); then the client "
            "closes."),
        "server": "proton Transport(Transport.SERVER), no SASL, no idle timeout",
    }


def scenario_pipelined():
    client = Side("client", False, CLIENT_CONTAINER, sasl_mechs="ANONYMOUS",
                  hostname=HOSTNAME)
    conn = client.connection
    conn.open()
    ssn = conn.session()
    ssn.open()
    snd = ssn.sender("sender")
    snd.target.address = "queue1"
    snd.open()
    snd.delivery("delivery-1")
    snd.send(hello_message().encode())
    snd.advance()
    # Let the client write everything it is willing to write unprompted.
    while client.pending() > 0:
        client.take(client.pending())
    assert bytes(client.out) == SASL_HEADER, bytes(client.out)  # see description
    # Then give all of it, in one push, to a fresh proton server and record
    # that server's whole reply (never delivered back to the client).
    server = Side("server", True, SERVER_CONTAINER, sasl_mechs="ANONYMOUS")
    server.push(bytes(client.out))
    while True:
        auto_server(server)
        if server.pending() <= 0:
            break
        server.take(server.pending())
    drain_client(client)
    return client, server, {
        "description": (
            "Client (SASL ANONYMOUS, container-id 'proton-client', hostname "
            "'localhost') does connection open + session begin + attach "
            "sender 'sender' (target 'queue1') + queues one message "
            "(delivery-tag 'delivery-1', same message as anonymous-send) "
            "before any server byte is pushed into it; the client transport "
            "is drained until it has nothing more to write. client.bin is "
            "exactly that output. Proton only writes the SASL protocol "
            "header and then waits for sasl-mechanisms: nothing else is "
            "pipelined. server.bin is the reply of a fresh proton server "
            "(SASL ANONYMOUS) after those client bytes were pushed into it "
            "in one go; it is never fed back to the client."),
        "server": "proton Transport(Transport.SERVER) with SASL ANONYMOUS; only receives client.bin",
    }


def scenario_pipelined_no_sasl():
    client = Side("client", False, CLIENT_CONTAINER, hostname=HOSTNAME)
    conn = client.connection
    conn.open()
    ssn = conn.session()
    ssn.open()
    snd = ssn.sender("sender")
    snd.target.address = "queue1"
    snd.open()
    snd.delivery("delivery-1")
    snd.send(hello_message().encode())
    snd.advance()
    while client.pending() > 0:
        client.take(client.pending())
    server = Side("server", True, SERVER_CONTAINER)
    server.push(bytes(client.out))
    while True:
        auto_server(server)
        if server.pending() <= 0:
            break
        server.take(server.pending())
    drain_client(client)
    return client, server, {
        "description": (
            "Extra (not in the original brief): same as 'pipelined' but with "
            "no SASL layer on either side, to show what proton pipelines at "
            "the AMQP layer: header + open + begin + attach, all written "
            "before reading anything. The queued transfer is NOT written "
            "because the link has no credit yet. server.bin is a fresh proton "
            "server's reply to client.bin pushed in one go (includes flow "
            "granting 10 credits); never fed back."),
        "server": "proton Transport(Transport.SERVER), no SASL; only receives client.bin",
    }


def scenario_heartbeat():
    client = Side("client", False, CLIENT_CONTAINER, hostname=HOSTNAME)
    server = Side("server", True, SERVER_CONTAINER, idle=2.0)
    conn = client.connection
    conn.open()
    pump(client, server)
    t0 = 1000.0
    for t in (t0, t0 + 1.0, t0 + 2.0):
        client.transport.tick(t)
        server.transport.tick(t)
        pump(client, server)
    conn.close()
    pump(client, server)
    drain_client(client)
    return client, server, {
        "description": (
            "Extra (not in the original brief): no SASL; the SERVER sets "
            "idle_timeout=2.0 s (advertises idle-time-out=1000 ms), the "
            "client none. Client opens; both sides are ticked with a fake "
            "clock at t=1000.0, 1001.0, 1002.0 s; the proton client emits "
            "empty frames (heartbeats) that a server must accept and ignore; "
            "then the client closes."),
        "server": "proton Transport(Transport.SERVER), no SASL, idle_timeout=2.0",
    }


SCENARIOS = [
    ("anonymous-send", scenario_anonymous_send),
    ("plain-receive", scenario_plain_receive),
    ("no-sasl-idle", scenario_no_sasl_idle),
    ("pipelined", scenario_pipelined),
    ("pipelined-no-sasl", scenario_pipelined_no_sasl),
    ("heartbeat", scenario_heartbeat),
]


def main():
    results = []
    for name, fn in SCENARIOS:
        client, server, meta = fn()
        cbytes, sbytes = bytes(client.out), bytes(server.out)
        cframes, sframes = client.frames(), server.frames()
        clay, slay = layout(cbytes), layout(sbytes)
        # The proton trace and the byte-level split must agree.
        assert [e["name"] for e in clay] == cframes, (name, clay, cframes)
        assert [e["name"] for e in slay] == sframes, (name, slay, sframes)
        with open(os.path.join(HERE, name + ".client.bin"), "wb") as f:
            f.write(cbytes)
        with open(os.path.join(HERE, name + ".server.bin"), "wb") as f:
            f.write(sbytes)
        strace = server.full_trace() if hasattr(server, "full_trace") else server.trace
        entry = {
            "name": name,
            "client-file": name + ".client.bin",
            "server-file": name + ".server.bin",
        }
        entry.update(meta)
        entry.update({
            "client-frames": cframes,
            "server-frames": sframes,
            "client-bytes": len(cbytes),
            "server-bytes": len(sbytes),
            "client-sha256": hashlib.sha256(cbytes).hexdigest(),
            "server-sha256": hashlib.sha256(sbytes).hexdigest(),
            "client-layout": clay,
            "server-layout": slay,
            "client-trace": client.trace,
            "server-trace": strace,
        })
        results.append(entry)
        print("%-18s client %4d B %s" % (name, len(cbytes), cframes))
        print("%-18s server %4d B %s" % ("", len(sbytes), sframes))
    doc = {
        "generator": "crates/engine/tests/proton/capture.py",
        "rerun": "/usr/bin/python3 crates/engine/tests/proton/capture.py",
        "proton-version": ".".join(str(v) for v in VERSION),
        "python": sys.version.split()[0],
        "frame-names": (
            "'sasl-header' = b'AMQP\\x03\\x01\\x00\\x00', 'amqp-header' = "
            "b'AMQP\\x00\\x01\\x00\\x00', 'empty' = frame with no body "
            "(heartbeat); all other names are performatives. *-frames lists "
            "come from proton's TRACE_FRM output ('->' lines); *-layout is "
            "an independent split of the recorded bytes, asserted equal."),
        "scenarios": results,
    }
    with open(os.path.join(HERE, "scenarios.json"), "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main()
