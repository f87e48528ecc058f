#!/usr/bin/env node
'use strict';
/*
 * A small AMQP 1.0 command-line client on rhea, for Sluice's interop tests
 * (crates/sluice/tests/rhea.rs): the same jobs as ../interop/proton_client.py, through an
 * independent AMQP implementation. Install rhea first with `npm ci` in this folder.
 *
 *   node client.js send    amqp://127.0.0.1:5672 myqueue 100
 *   node client.js receive amqp://127.0.0.1:5672 myqueue 100 [--name LINK]
 *   node client.js attach  amqp://127.0.0.1:5672 nowhere --role sender|receiver
 *   node client.js tx      amqp://127.0.0.1:5672 myqueue 3 --mode send|accept --end commit|abort
 *
 * Every subcommand also takes --timeout SECONDS (default 30): when it runs out the client
 * prints what it has and exits 2. Credentials in the URL (amqp://user:pass@host:port) make
 * rhea use SASL PLAIN; without them it uses SASL ANONYMOUS. Connection options:
 *
 *   --user U --password P   SASL PLAIN with these credentials (as in the URL)
 *   --mech NAME             the one SASL mechanism to use: PLAIN, ANONYMOUS or EXTERNAL
 *                           (EXTERNAL needs --cert over TLS)
 *   --ca FILE               TLS: trust only this CA (PEM); the host name is verified
 *   --cert FILE --key FILE  TLS: present this client certificate
 *   --hostname NAME         TLS: the SNI name, and the name the certificate must be for
 *   --ws                    AMQP over a WebSocket (subprotocol "amqp", the `ws` package);
 *                           a wss:// URL implies it, an amqps:// one becomes wss://
 *
 * An amqps:// URL (or --ca/--cert with amqp://) connects with TLS first. Every subcommand
 * prints one JSON object on stdout and exits:
 *
 * send     Sends COUNT messages, unsettled, as credit allows, and waits for every outcome.
 *          Message i has the string body "msg-<i>" and the application properties
 *          {index: i, colour: "green" for even i, "red" for odd}. Prints {"sent", "accepted", "outcomes"};
 *          exits 0 if all were accepted, 1 otherwise.
 * receive  Grants exactly COUNT credit (no refill), receives COUNT messages and accepts each
 *          (one that arrives settled, as multicast's do, is not settled again). Prints
 *          {"received", "bodies", "presettled"}. Prints "ready" on stderr once the link is
 *          attached and the broker has read its credit (a session begun after the flow was
 *          answered, so the flow was read first). --name LINK sets the link name.
 *          --selector TEXT attaches with a JMS selector (rhea's filter.selector); the JSON then
 *          also has "filters": the filter keys the broker's attach says are in force.
 * tx       A local transaction (AMQP 1.0 part 4), which rhea has no helper for: a sender to a
 *          coordinator target, a declare and a discharge sent as amqp-value bodies, and
 *          transfers and dispositions carrying transactional-state. `tx URL ADDRESS COUNT
 *          --mode send|accept --end commit|abort`: declares a transaction, sends COUNT
 *          messages ("tx-<i>") to ADDRESS under it (send), or receives COUNT from ADDRESS and
 *          accepts them under it (accept), then discharges it as --end says. Prints
 *          {"outcome": "committed"|"aborted"|"failed", "condition", "description",
 *          "bodies"} (bodies: those received); exits 0 once the discharge is answered.
 * manage   An AMQP Management request: `manage URL ADDRESS --operation OP [--type T] [--to A]
 *          [--max N]` sends application properties {operation, type (default sluice.queue),
 *          name: ADDRESS, to, max} with message-id "req-1" to $management, the reply-to being
 *          a dynamic receiver's address. Prints {"status", "description", "body",
 *          "correlation_id"} of the answer; exits 0 once an answer arrived, whatever its status.
 * attach   Attaches a link and prints {"attached": true, "address"} (exit 0), or, when the peer
 *          refuses it (a null terminus then a detach with an error, or closing the connection),
 *          {"attached": false, "closed": "link"|"connection", "condition", "description"}
 *          (exit 3).
 *
 * Any other failure prints {"error": ...} and exits 1. When the connection failed (SASL, TLS,
 * a socket error or the broker's close) the JSON also has "condition" and "description" (the
 * AMQP error, or null and the socket error's message) and "code" (a socket error's code, e.g.
 * ERR_TLS_CERT_ALTNAME_INVALID, else null).
 */

const fs = require('fs');
const rhea = require('rhea');

const EXIT_FAILED = 1;
const EXIT_TIMEOUT = 2;
const EXIT_REFUSED = 3;

const USAGE = 'usage: client.js send|receive URL ADDRESS COUNT [--name LINK] [--timeout S]\n' +
    '       client.js attach URL ADDRESS --role sender|receiver [--timeout S]\n' +
    '       client.js tx URL ADDRESS COUNT --mode send|accept --end commit|abort\n' +
    '  connection options: [--user U --password P] [--mech NAME] [--ca FILE]\n' +
    '                      [--cert FILE --key FILE] [--hostname NAME] [--ws]';

/** The options that take a value. */
const VALUE_OPTIONS = ['--timeout', '--name', '--role', '--user', '--password', '--mech', '--ca',
    '--cert', '--key', '--hostname', '--selector', '--mode', '--end',
    '--operation', '--type', '--to', '--max'];

function parseArgs(argv) {
    const positional = [];
    const options = { timeout: 30, name: undefined, role: undefined, ws: false };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (VALUE_OPTIONS.includes(arg)) {
            if (i + 1 >= argv.length) throw new Error('missing value for ' + arg);
            options[arg.slice(2)] = argv[++i];
        } else if (arg === '--ws') {
            options.ws = true;
        } else if (arg.startsWith('--')) {
            throw new Error('unknown option ' + arg);
        } else {
            positional.push(arg);
        }
    }
    const [command, url, address, count] = positional;
    if (!command || !url || !address) throw new Error(USAGE);
    const timeout = Number(options.timeout);
    if (!(timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
    const args = { command, url, address, timeout, name: options.name, role: options.role };
    for (const name of ['user', 'password', 'mech', 'ca', 'cert', 'key', 'hostname', 'ws', 'selector',
        'mode', 'end', 'operation', 'type', 'to', 'max']) {
        args[name] = options[name];
    }
    if (Boolean(args.cert) !== Boolean(args.key)) throw new Error('--cert and --key go together');
    if (args.mech && !['PLAIN', 'ANONYMOUS', 'EXTERNAL'].includes(args.mech)) {
        throw new Error('--mech must be PLAIN, ANONYMOUS or EXTERNAL, got ' + args.mech);
    }
    if (command === 'send' || command === 'receive' || command === 'tx') {
        if (positional.length !== 4) throw new Error(USAGE);
        args.count = Number.parseInt(count, 10);
        if (!(args.count >= 0) || String(args.count) !== count) {
            throw new Error('COUNT must be a non-negative integer, got ' + count);
        }
        if (command === 'tx' && (!['send', 'accept'].includes(args.mode) ||
            !['commit', 'abort'].includes(args.end))) {
            throw new Error('tx needs --mode send|accept and --end commit|abort');
        }
    } else if (command === 'manage') {
        if (positional.length !== 3 || !args.operation) throw new Error('manage URL ADDRESS --operation OP');
    } else if (command === 'attach') {
        if (positional.length !== 3) throw new Error(USAGE);
        if (args.role !== 'sender' && args.role !== 'receiver') {
            throw new Error('attach needs --role sender or --role receiver');
        }
    } else {
        throw new Error('unknown subcommand ' + command + '\n' + USAGE);
    }
    return args;
}

/** The TLS options (Node's tls.connect) of --ca, --cert/--key and --hostname. */
function tlsOptions(args) {
    const tls = { rejectUnauthorized: true };
    if (args.ca) tls.ca = [fs.readFileSync(args.ca)];
    if (args.cert) {
        tls.cert = fs.readFileSync(args.cert);
        tls.key = fs.readFileSync(args.key);
    }
    if (args.hostname) tls.servername = args.hostname;
    return tls;
}

/** rhea's connect options for an amqp[s]://[user:pass@]host:port or wss://host:port URL. */
function connectOptions(text, args) {
    const url = new URL(text);
    if (!['amqp:', 'amqps:', 'wss:'].includes(url.protocol)) {
        throw new Error('only amqp://, amqps:// and wss:// URLs are supported: ' + text);
    }
    const ws = args.ws || url.protocol === 'wss:';
    const tls = url.protocol !== 'amqp:' || Boolean(args.ca || args.cert);
    const options = {
        host: url.hostname,
        port: url.port ? Number(url.port) : (tls ? 5671 : 5672),
        reconnect: false,
        container_id: 'sluice-rhea-client-' + process.pid,
    };
    if (tls) Object.assign(options, tlsOptions(args));
    if (ws) {
        // `ws` passes the TLS options on to Node's https request.
        const WebSocket = require('ws');
        const target = (tls ? 'wss://' : 'ws://') + url.host + '/';
        const wsOptions = Object.assign({}, tls ? tlsOptions(args) : {});
        options.connection_details = rhea.websocket_connect(WebSocket)(target, ['amqp'], wsOptions);
    } else if (tls) {
        options.transport = 'tls';
    }
    const user = args.user !== undefined ? args.user
        : url.username ? decodeURIComponent(url.username) : undefined;
    const password = args.password !== undefined ? args.password
        : url.password ? decodeURIComponent(url.password) : undefined;
    if (args.mech === 'EXTERNAL') {
        // With no username, rhea offers EXTERNAL alone (it needs the certificate over TLS).
        options.enable_sasl_external = true;
    } else if (args.mech === 'ANONYMOUS' || (!args.mech && user === undefined)) {
        options.username = user || 'anonymous'; // a username without a password: ANONYMOUS
    } else {
        options.username = user;
        options.password = password || '';
    }
    return options;
}

let finished = false;
let connection;

/** Prints the summary once, closes the connection and exits with `code`. */
function finish(summary, code) {
    if (finished) return;
    finished = true;
    process.stdout.write(JSON.stringify(summary) + '\n', () => {
        const exit = () => process.exit(code);
        if (connection && connection.is_open()) {
            // Close cleanly, but never wait long for the broker's close.
            connection.once('connection_close', exit);
            connection.once('disconnected', exit);
            setTimeout(exit, 1000).unref();
            try {
                connection.close();
            } catch (e) {
                exit();
            }
        } else {
            exit();
        }
    });
}

function errorOf(endpoint) {
    const error = endpoint && endpoint.error;
    return {
        condition: error && error.condition !== undefined ? String(error.condition) : null,
        description: error && error.description !== undefined ? String(error.description) : null,
    };
}

/**
 * Why the connection failed, as JSON fields: the AMQP error (SASL failure or close), or the
 * socket's (a TLS verification failure has a code such as ERR_TLS_CERT_ALTNAME_INVALID).
 */
function failureFields(context) {
    const error = (context.connection && context.connection.get_error()) || context.error;
    if (!error) return { condition: null, description: null, code: null };
    if (error.code !== undefined && error.reason !== undefined) {
        // A WebSocket close event.
        return { condition: null, description: 'WebSocket closed: ' + error.code + ' ' +
            String(error.reason), code: String(error.code) };
    }
    return {
        condition: error.condition !== undefined ? String(error.condition) : null,
        description: error.description !== undefined ? String(error.description)
            : String(error.message || error),
        code: error.code !== undefined ? String(error.code) : null,
    };
}

/** What the peer said in its close, or why the socket went. */
function connectionFailure(context) {
    const { condition, description } = errorOf(context.connection);
    if (condition) return condition + ': ' + description;
    if (context.error) return failureFields(context).description;
    return 'the connection closed';
}

function runSend(args, container) {
    const outcomes = {};
    let sent = 0;
    let settled = 0;
    connection = container.connect(connectOptions(args.url, args));
    const sender = connection.open_sender({ target: { address: args.address }, name: args.name });
    const done = () => {
        const accepted = outcomes.accepted || 0;
        finish({ sent, accepted, outcomes }, accepted === args.count ? 0 : EXIT_FAILED);
    };
    const outcome = (name) => () => {
        outcomes[name] = (outcomes[name] || 0) + 1;
        settled++;
        if (settled === args.count) done();
    };
    sender.on('sendable', () => {
        while (sent < args.count && sender.sendable()) {
            const colour = sent % 2 === 0 ? 'green' : 'red';
            sender.send({ body: 'msg-' + sent, application_properties: { index: sent, colour } });
            sent++;
        }
    });
    sender.on('accepted', outcome('accepted'));
    sender.on('rejected', outcome('rejected'));
    sender.on('released', outcome('released'));
    sender.on('modified', outcome('modified'));
    sender.on('sender_error', (context) => {
        const { condition, description } = errorOf(context.sender);
        finish({ sent, accepted: outcomes.accepted || 0, outcomes,
            error: 'the link was detached: ' + condition + ': ' + description }, EXIT_FAILED);
    });
    if (args.count === 0) connection.on('connection_open', done);
    return () => ({ sent, accepted: outcomes.accepted || 0, outcomes });
}

function runReceive(args, container) {
    const bodies = [];
    let presettled = 0;
    connection = container.connect(connectOptions(args.url, args));
    // credit_window 0: no window that refills itself; exactly COUNT is granted below.
    const source = { address: args.address };
    if (args.selector !== undefined) source.filter = rhea.filter.selector(args.selector);
    let filters = null;
    const receiver = connection.open_receiver({
        source,
        name: args.name,
        credit_window: 0,
        autoaccept: false,
    });
    const summary = () => ({ received: bodies.length, bodies, presettled, filters });
    const done = () => finish(summary(), 0);
    receiver.on('receiver_open', () => {
        if (!receiver.source || receiver.source.address == null) {
            return; // a refusal: the detach with the error follows
        }
        filters = receiver.source.filter ? Object.keys(receiver.source.filter) : [];
        receiver.add_credit(args.count);
        // A round trip: the broker reads a connection's frames in order, so once it answers
        // this begin it has read the flow written before it.
        const probe = connection.create_session();
        probe.on('session_open', () => {
            probe.end();
            process.stderr.write('ready\n');
            if (args.count === 0) done();
        });
        probe.on('session_close', () => {});
        probe.begin();
    });
    receiver.on('message', (context) => {
        const delivery = context.delivery;
        if (delivery.remote_settled) {
            presettled++; // it came settled: there is nothing to accept
        } else {
            delivery.accept();
        }
        bodies.push(context.message.body);
        if (bodies.length === args.count) done();
    });
    receiver.on('receiver_error', (context) => {
        const { condition, description } = errorOf(context.receiver);
        finish({ ...summary(), condition, description,
            error: 'the link was detached: ' + condition + ': ' + description }, EXIT_FAILED);
    });
    return summary;
}

/** A described list, as the transaction types of part 4 are. */
function described(code, fields) {
    return rhea.types.described(rhea.types.wrap_ulong(code), rhea.types.wrap_list(fields));
}

/**
 * A message whose amqp-value body is `value`, encoded here: rhea's own wrapping of a described
 * body replaces the value's descriptor with the section's.
 */
function valueMessage(value) {
    const writer = new rhea.types.Writer();
    writer.write(value);
    return Buffer.concat([Buffer.from([0x00, 0x53, 0x77]), writer.toBuffer()]);
}

/** transactional-state (0x34) of `txnId` with the outcome accepted (0x24). */
function transactional(txnId) {
    return described(0x34, [rhea.types.wrap_binary(txnId), described(0x24, [])]);
}

function runTx(args, container) {
    const bodies = [];
    let outcome = null;
    const summary = () => ({ outcome, condition: null, description: null, bodies });
    connection = container.connect(connectOptions(args.url, args));
    // The coordinator target (0x30) with the local-transactions capability, in place of the
    // target rhea would write.
    const coordinator = connection.open_sender({ name: 'txn-ctrl' });
    coordinator.local.attach.target = described(0x30, [
        rhea.types.wrap_array([rhea.types.wrap_symbol('amqp:local-transactions')], 0xa3),
    ]);
    // rhea writes no state on a transfer: a transfer of a delivery marked here gets one.
    const states = new Map();
    const frames = require('rhea/lib/frames.js');
    const transfer = frames.transfer;
    frames.transfer = (fields) => {
        const frame = transfer(fields);
        const state = states.get(fields.delivery_id);
        if (state !== undefined) {
            // Fields 6 and 7: rcv-settle-mode (null) and state (rhea has no setter for it).
            frame.value[6] = rhea.types.Null();
            frame.value[7] = state;
        }
        return frame;
    };
    let txnId = null;
    let declare = null;
    let discharge = null;
    let pending = args.count;
    const end = () => {
        const fail = args.end === 'abort';
        const body = described(0x32, [rhea.types.wrap_binary(txnId), rhea.types.wrap_boolean(fail)]);
        discharge = coordinator.send(valueMessage(body), undefined, 0);
    };
    const work = () => {
        if (args.mode === 'send') {
            const sender = connection.open_sender({ target: { address: args.address } });
            let sent = 0;
            sender.on('sendable', () => {
                while (sent < args.count && sender.sendable()) {
                    const d = sender.send({ body: 'tx-' + sent, durable: true });
                    sent++;
                    states.set(d.id, transactional(txnId));
                }
            });
            // Each transactional send is settled by the broker with its transactional state.
            sender.on('settled', () => {
                pending--;
                if (pending === 0) end();
            });
        } else {
            const receiver = connection.open_receiver({ source: { address: args.address },
                credit_window: 0, autoaccept: false });
            receiver.on('receiver_open', () => receiver.add_credit(args.count));
            receiver.on('message', (context) => {
                bodies.push(context.message.body);
                context.delivery.update(false, transactional(txnId));
            });
            // The broker settles each transactional acceptance once it holds it; rhea writes
            // transfers before dispositions, so the discharge waits for those settlements.
            receiver.on('settled', () => {
                pending--;
                if (pending === 0) end();
            });
        }
    };
    coordinator.on('sendable', () => {
        if (declare === null) declare = coordinator.send(valueMessage(described(0x31, [])), undefined, 0);
    });
    coordinator.on('settled', (context) => {
        const d = context.delivery;
        const state = d.remote_state;
        const code = state && state.descriptor && Number(state.descriptor.value);
        const accepted = state && state.constructor.composite_type === 'accepted';
        if (d === declare) {
            if (code !== 0x33) {
                const error = state && state.error;
                finish({ ...summary(), error: 'the declare was refused: ' +
                    (error ? error.condition + ': ' + error.description : 'no txn-id') }, EXIT_FAILED);
                return;
            }
            txnId = state.value[0].value;
            if (args.count === 0) end();
            else work();
        } else if (d === discharge) {
            if (accepted) {
                outcome = args.end === 'abort' ? 'aborted' : 'committed';
                finish(summary(), 0);
            } else {
                const error = state && state.error;
                finish({ ...summary(), outcome: 'failed',
                    condition: error ? String(error.condition) : null,
                    description: error ? String(error.description) : null }, 0);
            }
        }
    });
    return summary;
}

function runManage(args, container) {
    connection = container.connect(connectOptions(args.url, args));
    const replies = connection.open_receiver({ source: { dynamic: true }, credit_window: 1 });
    replies.on('receiver_open', () => {
        const properties = { operation: args.operation, type: args.type || 'sluice.queue',
            name: args.address };
        if (args.to !== undefined) properties.to = args.to;
        if (args.max !== undefined) properties.max = Number.parseInt(args.max, 10);
        const requests = connection.open_sender({ target: { address: '$management' } });
        requests.once('sendable', () => {
            requests.send({ message_id: 'req-1', reply_to: replies.source.address,
                application_properties: properties });
        });
    });
    replies.on('message', (context) => {
        const answer = context.message;
        const properties = answer.application_properties || {};
        finish({ status: properties.statusCode, description: properties.statusDescription,
            body: answer.body, correlation_id: answer.correlation_id }, 0);
    });
    return () => ({});
}

function runAttach(args, container) {
    connection = container.connect(connectOptions(args.url, args));
    const isSender = args.role === 'sender';
    const link = isSender
        ? connection.open_sender({ target: { address: args.address } })
        : connection.open_receiver({ source: { address: args.address }, credit_window: 0 });
    const prefix = isSender ? 'sender_' : 'receiver_';
    const refused = (closedBy, endpoint) => {
        const { condition, description } = errorOf(endpoint);
        finish({ attached: false, closed: closedBy, condition, description }, EXIT_REFUSED);
    };
    // Set once the peer's attach names the address; the link is then closed by us.
    let attached = null;
    link.on(prefix + 'open', () => {
        const terminus = isSender ? link.target : link.source;
        const address = terminus ? terminus.address : undefined;
        if (address == null) {
            return; // a refusal: the detach with the error follows
        }
        attached = address;
        link.close();
    });
    link.on(prefix + 'error', (context) => refused('link', context[isSender ? 'sender' : 'receiver']));
    link.on(prefix + 'close', (context) => {
        if (attached !== null) finish({ attached: true, address: attached }, 0);
        else refused('link', context[isSender ? 'sender' : 'receiver']);
    });
    connection.on('connection_error', (context) => refused('connection', context.connection));
    return () => ({ attached: false });
}

function main() {
    let args;
    try {
        args = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stdout.write(JSON.stringify({ error: String(e.message) }) + '\n');
        process.exit(EXIT_FAILED);
    }
    const container = rhea.create_container({ id: 'sluice-rhea-client-' + process.pid });
    // Unhandled endpoint errors land here rather than being thrown.
    container.on('error', (e) => finish({ error: 'rhea: ' + String(e && e.message) }, EXIT_FAILED));

    const run = { send: runSend, receive: runReceive, attach: runAttach, tx: runTx,
        manage: runManage }[args.command];
    let progress;
    try {
        progress = run(args, container);
    } catch (e) {
        finish({ error: String(e.message) }, EXIT_FAILED);
        return;
    }

    connection.on('connection_error', (context) => {
        finish(Object.assign(progress(), { error: 'the broker closed the connection: ' +
            connectionFailure(context) }, failureFields(context)), EXIT_FAILED);
    });
    connection.on('connection_close', (context) => {
        finish(Object.assign(progress(), { error: 'the broker closed the connection' },
            failureFields(context)), EXIT_FAILED);
    });
    connection.on('disconnected', (context) => {
        finish(Object.assign(progress(), { error: 'disconnected: ' + connectionFailure(context) },
            failureFields(context)), EXIT_FAILED);
    });

    setTimeout(() => {
        finish(Object.assign(progress(), { error: 'timeout after ' + args.timeout + ' s' }),
            EXIT_TIMEOUT);
    }, args.timeout * 1000);
}

main();
