#!/usr/bin/python3
"""The bookkeeping of benches/compare: records each run, judges it, and writes the table and the plot.

    report.py env    OUT CMDLINE DURATION WARMUP SEARCH_DURATION PEERS WORKLOADS
    report.py record OUT run PEER WL KIND TAG RC TIMED_OUT WALL_S TARGET DRAIN_S CMD   (prints a verdict)
    report.py record OUT na PEER WL REASON
    report.py record OUT note PEER KEY VALUE
    report.py max    OUT PEER WL        (the peer's best valid rate for WL, or nothing)
    report.py table  OUT                (markdown on stdout; OUT/summary.json)
    report.py svg    OUT                (OUT/compare.svg)

OUT/runs.jsonl holds one line per record; OUT/runs/PEER.WL.TAG.json is the harness's own JSON.
Only the standard library: Debian's /usr/bin/python3 runs it as is.
"""

import datetime
import html
import json
import math
import os
import platform
import re
import subprocess
import sys

PEERS = ["p2p", "sluice", "ramqp", "rabbitmq", "proton"]
PEER_NAMES = {
    "p2p": "peer-to-peer ceiling",
    "sluice": "Sluice",
    "ramqp": "ramqp-brokerd 0.9.5",
    "rabbitmq": "RabbitMQ 3.10",
    "proton": "Proton C example broker",
}
COLOURS = {"p2p": "#9e9e9e", "sluice": "#1f77b4", "ramqp": "#ff7f0e", "rabbitmq": "#2ca02c", "proton": "#d62728"}
WORKLOADS = ["a", "b1k", "b64k", "c", "d", "e", "f10", "f50", "g", "g10"]
WL_NAMES = {
    "a": "(a) 1 pair, queue, 100 B",
    "b1k": "(b) 1 pair, queue, 1 KiB",
    "b64k": "(b) 1 pair, queue, 64 KiB",
    "c": "(c) 10 pairs, 10 queues, 100 B",
    "d": "(d) anycast, 1 pair, 100 B",
    "e": "(e) topic, 1 sender, 4 subscribers",
    "f10": "(f) fixed rate, 10 % of (a)",
    "f50": "(f) fixed rate, 50 % of (a)",
    "g": "(g) durable messages, 1 pair, queue",
    "g10": "(g) durable messages, 10 pairs, one queue",
}
# Durable workloads: their notes give the confirm latency beside the disk's own sync time.
DURABLE = {"g", "g10"}
# A fixed-rate search step passes when the peer keeps up: every message accepted and received,
# the end-to-end rate at least this share of the target, and p99 under this bound.
KEEP_UP = 0.95
P99_BOUND_US = 100_000
# Deliveries per message sent (benches/compare's wl_args: workload e has 4 subscribers, --fanout).
FANOUT = {"e": 4}


def load_runs(out):
    path = os.path.join(out, "runs.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append(out, record):
    with open(os.path.join(out, "runs.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


def read_json(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f.read().replace("\r", "\n").splitlines() if l.strip()]
        return lines[-1] if lines else ""
    except OSError:
        return ""


def judge(rec, data):
    """(ok, hint_rate, reason) for one run."""
    kind, target = rec["kind"], rec.get("target")
    if data is None:
        if rec["timed_out"]:
            return False, 0, f"still not done {rec['drain_s']} s after sending stopped (stopped; no report)"
        tail = last_line(rec["log"])
        return False, 0, f"the harness exited {rec['rc']} without a report" + (f": {tail}" if tail else "")
    fan = FANOUT.get(rec["workload"], 1)
    e2e = data.get("end_to_end_rate") or 0
    # A rate to start a search from, in messages sent a second: what got through, or else what
    # the broker took in.
    hint = max(e2e / fan, data.get("sender_rate") or 0)
    errors = data.get("errors") or []
    if rec["timed_out"]:
        return False, hint, f"still not done {rec['drain_s']} s after sending stopped"
    if errors or rec["rc"] != 0:
        return False, hint, "; ".join(errors) if errors else f"the harness exited {rec['rc']}"
    if kind == "search":
        if e2e < KEEP_UP * target * fan:
            return False, hint, f"kept up with {e2e:,.0f} of {target * fan:,} msg/s" + (
                f" ({fan} deliveries a message)" if fan > 1 else "")
        p99 = (data.get("latency_us") or {}).get("p99")
        if p99 is None or p99 > P99_BOUND_US:
            return False, hint, f"p99 {p99:,} µs over {P99_BOUND_US // 1000} ms: a backlog grows"
    return True, e2e / fan, ""


def cmd_record(out, what, args):
    if what == "run":
        peer, wl, kind, tag, rc, timed_out, wall, target, drain, cmd = args
        rec = {
            "type": "run", "peer": peer, "workload": wl, "kind": kind, "tag": tag,
            "rc": int(rc), "timed_out": timed_out == "1", "wall_s": int(wall),
            "target": int(target) if target else None, "drain_s": int(drain), "cmd": cmd,
            "json": os.path.join(out, "runs", f"{peer}.{wl}.{tag}.json"),
            "log": os.path.join(out, "logs", f"{peer}.{wl}.{tag}.log"),
        }
        data = read_json(rec["json"])
        ok, hint, reason = judge(rec, data)
        rec.update(ok=ok, reason=reason)
        append(out, rec)
        if ok:
            lat = (data.get("latency_us") or {}) if data else {}
            p99 = lat.get("p99")
            # An all-out run whose p99 passed the bound built a backlog: the broker did not hold
            # the sender back. Its highest sustained rate is worth knowing too.
            backlog = " backlog" if kind == "max" and (p99 is None or p99 > P99_BOUND_US) else ""
            print(f"ok {hint:.0f}{backlog} — {data.get('end_to_end_rate', 0):,.0f} msg/s end to end, "
                  f"p50 {lat.get('p50', '?')} µs, p99 {p99} µs")
        else:
            print(f"fail {hint:.0f} {reason}")
    elif what == "na":
        peer, wl, reason = args
        append(out, {"type": "na", "peer": peer, "workload": wl, "reason": reason})
    elif what == "note":
        peer, key, value = args
        append(out, {"type": "note", "peer": peer, "key": key, "value": value})
    else:
        sys.exit(f"report.py record: unknown kind {what}")


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def cmd_env(out, cmdline, duration, warmup, search_duration, peers, workloads):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            cpu = m.group(1).strip() if m else "?"
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(re.search(r"MemTotal:\s*(\d+)", f.read()).group(1))
            mem = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(root) if os.path.basename(root) == "benches" else root
    rev = sh("git", "-C", root, "rev-parse", "--short", "HEAD")
    dirty = sh("git", "-C", root, "status", "--porcelain", "--untracked-files=no")
    debian = ""
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        pass

    def deb(pkg):
        return sh("dpkg-query", "-W", "-f", "${Version}", pkg)

    env = {
        "type": "env",
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cmdline": cmdline,
        "duration_s": int(duration), "warmup_s": int(warmup), "search_duration_s": int(search_duration),
        "peers": peers.split(), "workloads": workloads.split(),
        "cpu": cpu, "vcpus": os.cpu_count(), "memory": mem,
        "os": f"Debian {debian}" if debian else platform.platform(),
        "kernel": platform.release(),
        "rustc": sh("rustc", "--version"),
        "sluice_rev": rev + ("+uncommitted changes" if dirty else ""),
        "rabbitmq": deb("rabbitmq-server"), "erlang": deb("erlang-base"),
        "proton": deb("libqpid-proton11"),
        "loadavg_start": loadavg(),
    }
    append(out, env)


def runs_of(records, peer, wl):
    return [r for r in records if r.get("type") == "run" and r["peer"] == peer and r["workload"] == wl]


def best(records, peer, wl):
    """(main_run, main_data, sustained_run, sustained_data) for one peer and workload."""
    runs = runs_of(records, peer, wl)
    main = next((r for r in runs if r["kind"] in ("max", "fixed")), None)
    passing = [r for r in runs if r["kind"] == "search" and r["ok"]]
    sustained = max(passing, key=lambda r: r["target"]) if passing else None
    return (main, read_json(main["json"]) if main else None,
            sustained, read_json(sustained["json"]) if sustained else None)


def best_rate(records, peer, wl):
    """(rate, how): the higher of the valid all-out run's rate and the highest sustained rate."""
    main, mdata, sus, sdata = best(records, peer, wl)
    found = []
    if main and main["ok"] and mdata:
        found.append((mdata.get("end_to_end_rate") or 0, "max"))
    if sus and sdata:
        found.append((sdata.get("end_to_end_rate") or 0, "sustained"))
    return max(found) if found else (None, None)


def cmd_max(out, peer, wl):
    rate, _ = best_rate(load_runs(out), peer, wl)
    if rate:
        print(int(rate))


def fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_lat(data, key):
    lat = (data or {}).get("latency_us") or {}
    return fmt_int(lat.get(key))


def fmt_confirm(data):
    """The confirm latency and the disk's own sync time (`--sync-probe`), as notes."""
    out = []
    c = data.get("confirm_us") or {}
    if c.get("p50") is not None:
        out.append(f"confirm p50 {c['p50']:,} µs, p99 {c['p99']:,} µs")
    if data.get("disk_sync_p50_us") is not None:
        out.append(f"disk sync p50 {data['disk_sync_p50_us']:,} µs, p99 {data['disk_sync_p99_us']:,} µs")
    return out


def fmt_broker(data, peer):
    b = (data or {}).get("broker")
    if peer == "p2p":
        return "—", "—"
    if not b:
        return "?", "?"
    return f"{b.get('cpu_percent', 0):.0f}", f"{b.get('peak_rss_mib', 0):,.1f}"


def cmd_table(out):
    records = load_runs(out)
    env = next((r for r in records if r.get("type") == "env"), {})
    notes = {(r["peer"], r["key"]): r["value"] for r in records if r.get("type") == "note"}
    nas = {(r["peer"], r["workload"]): r["reason"] for r in records if r.get("type") == "na"}
    peers = [p for p in PEERS if p in env.get("peers", PEERS)]
    wls = [w for w in WORKLOADS if w in env.get("workloads", WORKLOADS)]
    footnotes = []

    def foot(text):
        text = text if len(text) <= 400 else text[:397] + "..."
        if text not in footnotes:
            footnotes.append(text)
        return f"[{footnotes.index(text) + 1}]"

    lines = []
    w = lines.append
    w(f"Date: {env.get('date', '?')}. Machine: {env.get('vcpus', '?')} vCPUs ({env.get('cpu', '?')}), "
      f"{env.get('memory', '?')}, {env.get('os', '?')}, Linux {env.get('kernel', '?')}; the harness and "
      "each broker share the cores, and only one broker runs at a time.")
    w(f"Command: `{env.get('cmdline', 'benches/compare')}` ({env.get('duration_s', '?')} s of sending per run "
      f"after {env.get('warmup_s', '?')} s of warm-up; rate-search steps {env.get('search_duration_s', '?')} s). "
      f"Sluice {env.get('sluice_rev', '?')}, {env.get('rustc', '?')}.")
    w("")
    w("Every run: `sluice bench`, credit 1,000, unsettled sends with the receiver accepting each message "
      "(unless noted), rates end to end in messages a second, latency from send to receipt in µs "
      "(the warm-up excluded), broker CPU in % of one core (200 % = both) and peak RSS sampled from /proc "
      "during the run. Sluice ÷ peer is Sluice's rate over the peer's for the same workload.")
    w("")
    w("| workload | peer | msg/s | p50 µs | p99 µs | p99.9 µs | broker CPU % | broker peak RSS MiB | Sluice ÷ peer | notes |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    summary = {"env": env, "results": {}}
    for wl in wls:
        first = True
        sluice_rate, sluice_how = best_rate(records, "sluice", wl)
        for peer in peers:
            label = WL_NAMES[wl] if first else ""
            first = False
            name = PEER_NAMES[peer]
            if (peer, wl) in nas:
                w(f"| {label} | {name} | n/a | | | | | | | {nas[(peer, wl)]} |")
                summary["results"].setdefault(wl, {})[peer] = {"na": nas[(peer, wl)]}
                continue
            main, mdata, sus, sdata = best(records, peer, wl)
            if main is None:
                continue
            rate, how = best_rate(records, peer, wl)
            # The ratio stands on the row whose figure it uses (the higher valid one).
            ratio = "—"
            if peer != "sluice" and not wl.startswith("f") and sluice_rate and rate:
                ratio = f"{sluice_rate / rate:.2f}×"
                if sluice_how == "sustained":
                    ratio += " " + foot("Sluice's figure here is its sustained rate: its all-out run failed.")
            main_ratio = ratio if how != "sustained" else "—"
            sus_ratio = ratio if how == "sustained" else "—"
            note = []
            if main["kind"] == "fixed" and main.get("target"):
                note.append(f"target {main['target']:,} msg/s")
            if wl == "e" and mdata and mdata.get("sent"):
                fan = (mdata.get("received") or 0) / mdata["sent"]
                if fan > 1.5:
                    note.append(f"each message to {fan:.0f} subscribers; rates count deliveries")
                else:
                    note.append(foot("Here every message was received once (received = sent): no fan-out."))
            if wl in DURABLE and mdata:
                note.extend(fmt_confirm(mdata))
            if not main["ok"]:
                note.append("✗ " + foot(main["reason"]))
            cpu, rss = fmt_broker(mdata, peer)
            shown_rate = fmt_int((mdata or {}).get("end_to_end_rate")) if mdata else "—"
            if not main["ok"]:
                shown_rate = f"✗ {shown_rate}"
            w(f"| {label} | {name} | {shown_rate} | {fmt_lat(mdata, 'p50')} | {fmt_lat(mdata, 'p99')} | "
              f"{fmt_lat(mdata, 'p999')} | {cpu} | {rss} | {main_ratio} | "
              f"{'; '.join(note)} |")
            entry = {"main": {"ok": main["ok"], "reason": main["reason"], "data": mdata, "cmd": main["cmd"]}}
            searched = [r for r in runs_of(records, peer, wl) if r["kind"] == "search"]
            if searched:
                tried = ", ".join(f"{r['target']:,}{'' if r['ok'] else ' ✗'}" for r in searched)
                if sus:
                    cpu, rss = fmt_broker(sdata, peer)
                    w(f"| | {name}, sustained | {fmt_int(sdata.get('end_to_end_rate'))} | {fmt_lat(sdata, 'p50')} | "
                      f"{fmt_lat(sdata, 'p99')} | {fmt_lat(sdata, 'p999')} | {cpu} | {rss} | {sus_ratio} | "
                      f"highest fixed rate kept up with; tried {tried} msg/s |")
                    entry["sustained"] = {"rate": sus["target"], "data": sdata}
                else:
                    w(f"| | {name}, sustained | none | | | | | | | no fixed rate kept up with; tried {tried} msg/s |")
            summary["results"].setdefault(wl, {})[peer] = entry
    w("")
    if footnotes:
        for i, text in enumerate(footnotes, 1):
            w(f"{i}. {text}")
        w("")

    # The targets issue 5 sets Sluice.
    goals = []
    a_s, _ = best_rate(records, "sluice", "a")
    a_r, _ = best_rate(records, "ramqp", "a")
    a_p, _ = best_rate(records, "p2p", "a")
    d_s, _ = best_rate(records, "sluice", "d")
    d_p, _ = best_rate(records, "p2p", "d")
    if a_s and a_r:
        goals.append(f"(a) Sluice ÷ ramqp-brokerd = {a_s / a_r:.2f} (target ≥ 2): {'met' if a_s >= 2 * a_r else 'not met'}")
    if a_s and a_p:
        goals.append(f"(a) Sluice ÷ ceiling = {a_s / a_p:.0%} (target ≥ 75 %): {'met' if a_s >= 0.75 * a_p else 'not met'}")
    main, mdata, _, _ = best(records, "sluice", "f50")
    if mdata and (mdata.get("latency_us") or {}).get("p99") is not None:
        p99 = mdata["latency_us"]["p99"]
        goals.append(f"(f) Sluice p99 at 50 % of its maximum = {p99:,} µs (target < 1,000): {'met' if p99 < 1000 else 'not met'}")
    if d_s and d_p:
        goals.append(f"(d) Sluice anycast ÷ ceiling = {d_s / d_p:.0%} (target ≥ 85 %): {'met' if d_s >= 0.85 * d_p else 'not met'}")
    if goals:
        w("Issue 5's targets for Sluice: " + "; ".join(goals) + ".")
        w("")

    w("Peers as run:")
    if "p2p" in peers:
        w("- Peer-to-peer ceiling: the harness's senders connected straight to its own receivers, no broker.")
    if "sluice" in peers:
        w("- Sluice: `sluice serve --config benches/compare.d/sluice.yaml` (release build; queues q0..q9, "
          "anycast a0, topic t0, authentication none); a fresh process for every run. Workloads g and g10 "
          "on queue dq0 with a fresh `--data-dir` per run (until the journal lands it only locks the "
          "directory: messages stay in memory).")
    if "ramqp" in peers:
        w("- ramqp-brokerd 0.9.5: `cargo install ramqp-broker --locked` (default features, jemalloc), transient "
          "auto-declared queues `/queues/qN`; workloads g and g10 with a `--features store-redb` build, `--data-dir` and "
          "`/durable/q0` (fsync group commit); a fresh process for every run.")
    if "rabbitmq" in peers:
        w(f"- RabbitMQ {env.get('rabbitmq', '?')} on Erlang {env.get('erlang', '?')}, "
          f"{notes.get(('rabbitmq', 'schedulers'), '?')} schedulers online, started as a background process "
          "with its own node name, ports and directories; AMQP 1.0 plugin (in 3.x it proxies AMQP 1.0 "
          "through AMQP 0.9.1 channels), management off, `collect_statistics = none` "
          "(benches/compare.d/rabbitmq.conf); classic non-durable queues q0..q9 pre-declared and used as "
          "`/amq/queue/qN` (durable dq0 for g and g10, persistent messages); topic `/topic/t0` (amq.topic, a private "
          "queue per subscriber); a fresh node for every workload and after a run it could not finish, its "
          "queues deleted and re-declared before every run.")
    if "proton" in peers:
        w(f"- Qpid Proton C example broker (libqpid-proton {env.get('proton', '?')}): examples/c/broker.c as "
          "installed, built with its incoming credit WINDOW raised from 5 to 1000, 4 proactor threads as "
          "shipped. It accepts and settles every incoming message as it arrives and refills the sender's "
          "credit at once (consumers never hold senders back), and forwards to consumers **pre-settled** "
          "(at most once: the harness's accepts are not needed), so its figures are not at-least-once end "
          "to end. Its queue pops with a memmove of the whole queue, so a backlog drains ever slower.")
    w(f"- A peer whose all-out run failed, or built a backlog (p99 over {P99_BOUND_US // 1000} ms: nothing "
      "held the sender back), gets a second row: the highest fixed rate it kept up with (every message "
      f"accepted and received, end-to-end rate ≥ {KEEP_UP:.0%} of the target, p99 < {P99_BOUND_US // 1000} ms) "
      "in a short doubling-then-bisecting search. Of a peer's two rows, the ratio stands on the one with the "
      "higher valid figure. (f) runs each peer at 10 % and 50 % of its own best (a) figure.")
    w(f"- Load average (1, 5, 15 min) before the run: {env.get('loadavg_start', '?')} (the run itself keeps "
      "both cores busy; anything else running skews every figure).")
    wall = notes.get(("all", "wall_s"))
    if wall:
        w(f"- Total run time: {int(wall) // 60} min {int(wall) % 60} s.")
    text = "\n".join(lines)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(text)


# ---------------------------------------------------------------------------------------------
# The plot: plain SVG, no plotting library.

def svg_bar_panel(parts, x0, y0, width, height, title, groups, series, unit):
    """groups: [(label, [(peer, value or None, style)])]; log scale."""
    values = [v for _, bars in groups for _, v, _ in bars if v]
    if not values:
        return
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    plot_x, plot_w = x0 + 70, width - 80
    plot_y, plot_h = y0 + 30, height - 90

    def y_of(v):
        return plot_y + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h

    p = parts.append
    p(f'<text x="{x0 + width / 2}" y="{y0 + 16}" text-anchor="middle" font-size="15" font-weight="bold">{html.escape(title)}</text>')
    d = lo
    while d <= hi * 1.0001:
        y = y_of(d)
        p(f'<line x1="{plot_x}" y1="{y:.1f}" x2="{plot_x + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        label = f"{d:,.0f}" if d >= 1 else f"{d:g}"
        p(f'<text x="{plot_x - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
        d *= 10
    p(f'<text x="{x0 + 14}" y="{plot_y + plot_h / 2}" font-size="12" transform="rotate(-90 {x0 + 14} {plot_y + plot_h / 2})" text-anchor="middle">{html.escape(unit)}</text>')
    gw = plot_w / max(1, len(groups))
    for gi, (label, bars) in enumerate(groups):
        gx = plot_x + gi * gw
        bw = (gw - 16) / max(1, len(bars))
        for bi, (peer, v, style) in enumerate(bars):
            bx = gx + 8 + bi * bw
            if v:
                y = y_of(v)
                fill = COLOURS.get(peer, "#555")
                extra = ' fill-opacity="0.45"' if style == "light" else ""
                extra += ' stroke="#000" stroke-dasharray="3,2"' if style == "sustained" else ""
                p(f'<rect x="{bx:.1f}" y="{y:.1f}" width="{max(1, bw - 2):.1f}" height="{plot_y + plot_h - y:.1f}" fill="{fill}"{extra}>'
                  f'<title>{html.escape(PEER_NAMES.get(peer, peer))}: {v:,.0f} {html.escape(unit)}</title></rect>')
            else:
                p(f'<text x="{bx + bw / 2:.1f}" y="{plot_y + plot_h - 4}" font-size="9" text-anchor="middle" '
                  f'transform="rotate(-90 {bx + bw / 2:.1f} {plot_y + plot_h - 4})" fill="#888" dx="3" dy="3">n/a</text>')
        p(f'<text x="{gx + gw / 2:.1f}" y="{plot_y + plot_h + 16}" text-anchor="middle" font-size="11">{html.escape(label)}</text>')
    p(f'<line x1="{plot_x}" y1="{plot_y + plot_h}" x2="{plot_x + plot_w}" y2="{plot_y + plot_h}" stroke="#000"/>')
    lx = plot_x
    for peer, text, style in series:
        fill = COLOURS.get(peer, "#555")
        extra = ' fill-opacity="0.45"' if style == "light" else ""
        p(f'<rect x="{lx}" y="{plot_y + plot_h + 30}" width="12" height="12" fill="{fill}"{extra}/>')
        p(f'<text x="{lx + 16}" y="{plot_y + plot_h + 40}" font-size="11">{html.escape(text)}</text>')
        lx += 16 + 7 * len(text) + 14


def cmd_svg(out):
    records = load_runs(out)
    env = next((r for r in records if r.get("type") == "env"), {})
    peers = [p for p in PEERS if p in env.get("peers", PEERS)]
    rate_wls = [w for w in ["a", "b1k", "b64k", "c", "d", "e", "g", "g10"] if w in env.get("workloads", WORKLOADS)]
    lat_wls = [w for w in ["a", "f10", "f50"] if w in env.get("workloads", WORKLOADS)]
    width, height = 1100, 900
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">',
             f'<rect width="{width}" height="{height}" fill="#fff"/>']
    groups = []
    for wl in rate_wls:
        bars = []
        for peer in peers:
            rate, how = best_rate(records, peer, wl)
            bars.append((peer, rate, "sustained" if how == "sustained" else "solid"))
        groups.append((WL_NAMES[wl].split(" ", 1)[0] + " " + {"a": "100 B", "b1k": "1 KiB", "b64k": "64 KiB",
                       "c": "10 pairs", "d": "anycast", "e": "topic ×4", "g": "durable",
                       "g10": "durable ×10"}[wl], bars))
    series = [(p, PEER_NAMES[p], "solid") for p in peers]
    svg_bar_panel(parts, 10, 10, width - 20, 430,
                  f"End-to-end rate per workload (log scale; dashed outline: sustained fixed rate) — {env.get('date', '')}",
                  groups, series, "messages / s")
    groups = []
    for wl in lat_wls:
        bars = []
        for peer in peers:
            main, mdata, _, _ = best(records, peer, wl)
            lat = (mdata or {}).get("latency_us") or {}
            ok = bool(main and (main["ok"] or wl.startswith("f")))
            bars.append((peer, lat.get("p50") if ok else None, "solid"))
            bars.append((peer, lat.get("p99") if ok else None, "light"))
        label = {"a": "(a) all out", "f10": "(f) 10 % of max", "f50": "(f) 50 % of max"}[wl]
        groups.append((label, bars))
    series = [(p, PEER_NAMES[p], "solid") for p in peers]
    svg_bar_panel(parts, 10, 460, width - 20, 430, "Latency per peer: p50 (solid) and p99 (light), µs, log scale",
                  groups, series, "µs")
    parts.append("</svg>")
    with open(os.path.join(out, "compare.svg"), "w") as f:
        f.write("\n".join(parts) + "\n")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, out, rest = argv[1], argv[2], argv[3:]
    if cmd == "env":
        cmd_env(out, *rest)
    elif cmd == "record":
        cmd_record(out, rest[0], rest[1:])
    elif cmd == "max":
        cmd_max(out, *rest)
    elif cmd == "table":
        cmd_table(out)
    elif cmd == "svg":
        cmd_svg(out)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
