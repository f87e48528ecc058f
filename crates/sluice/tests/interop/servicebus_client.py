#!/usr/bin/env python3
"""A small command-line client on PyPI's azure-servicebus, for Sluice's `$cbs` tests.

The Service Bus SDK itself (ServiceBusClient, its senders and receivers), not pyamqp's links:
it authenticates with SASL ANONYMOUS, then sends a SAS token for each entity to the `$cbs` node
(put-token) before it attaches. Run it with the virtualenv scripts/test.sh installs the pinned
azure-servicebus into:

    target/pyamqp-venv/bin/python servicebus_client.py send    127.0.0.1:5672 myqueue 10
                     --key-name NAME --key KEY
    target/pyamqp-venv/bin/python servicebus_client.py receive 127.0.0.1:5672 myqueue 10
                     --key-name NAME --key KEY [--wait S]
    ... --sas-for QUEUE   instead of signing for each entity, use one SAS token signed with
                          the key for QUEUE (a connection string's SharedAccessSignature)
    ... --declare-sastoken  put each SAS token with type "servicebus.windows.net:sastoken"
    ... --bare-address    attach to QUEUE itself, not to the SDK's amqps://HOST:PORT/QUEUE
    receive ... --receive-and-delete   the SDK's RECEIVE_AND_DELETE mode: nothing to complete

The client is made by ServiceBusClient.from_connection_string with
`Endpoint=sb://HOST:PORT/;SharedAccessKeyName=NAME;SharedAccessKey=KEY;UseDevelopmentEmulator=true`
(with --sas-for: `SharedAccessSignature=TOKEN` in place of the key): the emulator flag makes the
SDK connect without TLS and keep the port. Retries are off (retry_total=0), so a refusal is
reported at once.

As shipped, the SDK's pyamqp transport puts a SAS token on `$cbs` with type "jwt" (in
_transport/_pyamqp_transport.py, create_token_auth drops the SAS token type when
update_token is set, which it is for every SAS credential); Azure Service Bus goes by the
token's own form. --declare-sastoken makes the SDK pass the type through instead (the
one-line difference of its other branch), for tests of what comes after the token's type.

The SDK's links name their entity as a URI, `amqps://HOST:PORT/QUEUE` (a sender's target, a
receiver's source), even without TLS; --bare-address makes them name QUEUE alone (the handler's
_entity_uri, set before the link is made), for tests of what comes after the address. Every subcommand prints one JSON object on stdout and exits:

send     Sends COUNT messages one by one (send_messages with one ServiceBusMessage each; the
         body "msg-<i>"). Prints {"sent"}; exits 0.
receive  Receives in peek-lock mode until COUNT messages came or --wait seconds (default:
         --timeout) passed without one, completing each (complete_message, which waits for the
         broker to settle). Prints {"received", "completed", "bodies"}; exits 0 if COUNT came,
         else 2. With --receive-and-delete the messages come settled and are not completed.

The whole run is bounded by --timeout: past it, the run stops where it is (SIGALRM) and reports
{"error": "Deadline", ...}. Any failure prints {"error": TYPE, "message": TEXT, "auth_error":
BOOL, and the progress so far: "sent", or "received", "completed" and "bodies"} and exits 1; auth_error says whether the SDK raised one of its
authentication or authorization errors (ServiceBusAuthenticationError,
ServiceBusAuthorizationError, azure.core's ClientAuthenticationError).
"""

import argparse
import json
import signal
import sys
import time

from azure.core.exceptions import ClientAuthenticationError
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusReceiveMode
from azure.servicebus._pyamqp.utils import generate_sas_token
from azure.servicebus.exceptions import (
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
)

AUTH_ERRORS = (ServiceBusAuthenticationError, ServiceBusAuthorizationError,
               ClientAuthenticationError)
EXIT_TIMEOUT = 2


class Deadline(Exception):
    """--timeout passed."""


def on_alarm(_signum, _frame):
    raise Deadline("no result within --timeout")


def emit(summary, code=0):
    print(json.dumps(summary), flush=True)
    return code


def connection_string(args):
    endpoint = "Endpoint=sb://%s/" % args.host
    if args.sas_for is not None:
        # The SDK's own signing, for a resource of our choosing.
        resource = "sb://%s/%s" % (args.host, args.sas_for)
        token = generate_sas_token(resource, args.key_name, args.key,
                                   int(time.time()) + 3600)
        credential = "SharedAccessSignature=%s" % token
    else:
        credential = "SharedAccessKeyName=%s;SharedAccessKey=%s" % (args.key_name, args.key)
    return "%s;%s;UseDevelopmentEmulator=true" % (endpoint, credential)


def declare_sastoken():
    """Makes the SDK put SAS tokens with their own type (see the module doc)."""
    from azure.servicebus._transport._pyamqp_transport import PyamqpTransport

    shipped = PyamqpTransport.create_token_auth

    def create_token_auth(auth_uri, get_token, token_type, config, **kwargs):
        kwargs["update_token"] = False  # the branch that passes token_type on
        return shipped(auth_uri, get_token, token_type, config, **kwargs)

    PyamqpTransport.create_token_auth = staticmethod(create_token_auth)


def client(args):
    if args.declare_sastoken:
        declare_sastoken()
    return ServiceBusClient.from_connection_string(connection_string(args), retry_total=0)


def cmd_send(args, progress):
    with client(args) as sb:
        sender = sb.get_queue_sender(args.queue, socket_timeout=args.timeout)
        if args.bare_address:
            sender._entity_uri = args.queue  # pylint: disable=protected-access
        with sender:
            for i in range(args.count):
                sender.send_messages(ServiceBusMessage("msg-%d" % i), timeout=args.timeout)
                progress["sent"] = i + 1
    return emit({"sent": progress["sent"]})


def body_text(message):
    return b"".join(message.body).decode("utf-8", "replace")


def cmd_receive(args, progress):
    wait = args.wait if args.wait is not None else args.timeout
    bodies = progress["bodies"]
    mode = (ServiceBusReceiveMode.RECEIVE_AND_DELETE if args.receive_and_delete
            else ServiceBusReceiveMode.PEEK_LOCK)
    with client(args) as sb:
        receiver = sb.get_queue_receiver(args.queue, receive_mode=mode, max_wait_time=wait)
        if args.bare_address:
            receiver._entity_uri = args.queue  # pylint: disable=protected-access
        with receiver:
            while len(bodies) < args.count:
                batch = receiver.receive_messages(max_message_count=args.count - len(bodies),
                                                  max_wait_time=wait)
                if not batch:
                    break  # --wait passed without a message
                for message in batch:
                    bodies.append(body_text(message))
                    progress["received"] = len(bodies)
                    if not args.receive_and_delete:
                        receiver.complete_message(message)
                        progress["completed"] += 1
    code = 0 if len(bodies) == args.count else EXIT_TIMEOUT
    return emit(progress, code)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("host", help="HOST:PORT of the broker's plain AMQP port")
        p.add_argument("queue")
        p.add_argument("count", type=int)
        p.add_argument("--key-name", required=True, help="SharedAccessKeyName")
        p.add_argument("--key", required=True, help="SharedAccessKey")
        p.add_argument("--sas-for", default=None,
                       help="sign one SAS token for this queue and use it for every entity")
        p.add_argument("--declare-sastoken", action="store_true",
                       help='put SAS tokens with type "servicebus.windows.net:sastoken", not "jwt"')
        p.add_argument("--bare-address", action="store_true",
                       help="attach to QUEUE, not to amqps://HOST:PORT/QUEUE")
        p.add_argument("--timeout", type=float, default=30.0,
                       help="seconds to wait for the broker (default 30)")

    p = sub.add_parser("send", help="send COUNT messages")
    common(p)
    p.set_defaults(run=cmd_send)

    p = sub.add_parser("receive", help="receive and complete COUNT messages")
    common(p)
    p.add_argument("--wait", type=float, default=None,
                   help="seconds to wait for a message before giving up (default --timeout)")
    p.add_argument("--receive-and-delete", action="store_true",
                   help="receive settled (RECEIVE_AND_DELETE), completing nothing")
    p.set_defaults(run=cmd_receive)

    args = parser.parse_args(argv)
    progress = ({"sent": 0} if args.command == "send"
                else {"received": 0, "completed": 0, "bodies": []})
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(args.timeout)))
    try:
        return args.run(args, progress)
    except Exception as e:  # noqa: BLE001 - one JSON line for the test to show
        summary = {"error": type(e).__name__, "message": str(e),
                   "auth_error": isinstance(e, AUTH_ERRORS)}
        summary.update(progress)
        return emit(summary, 1)


if __name__ == "__main__":
    sys.exit(main())
