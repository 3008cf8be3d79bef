#!/usr/bin/env python3
"""The tables of docs/performance.md, from the JSON lines of one `scripts/perf.sh` run.

    scripts/perf.sh | tee docs/perf-DATE.jsonl
    scripts/perf-table.py docs/perf-DATE.jsonl
"""
import json
import sys


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def find(rows, test, label, **match):
    for r in rows:
        if r.get("test") == test and r.get("label") == label and all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def before_socket(rows, senders, test="room-socket"):
    """A socket test's row and the REST row of the same test (the last one before it)."""
    for i, r in enumerate(rows):
        if r.get("test") == test and r["senders"] == senders:
            rest = [x for x in rows[:i] if x.get("test") == "room" and x["label"] == "ours" and x["senders"] == senders]
            return (rest[-1] if rest else None), r
    return None, None


def answer(r):
    a = r.get("answer_ms")
    return f"{a['p50']:.1f} / {a['p99']:.1f} ms" if a else "—"


def k(n):
    return f"{n / 1000:,.1f} k" if n >= 1000 else f"{n:,.0f}"


def kb(b):
    return f"{b / 1000:.1f} KB" if b is not None else "—"


def ratio(a, b):
    return f"**{a / b * 100:.0f} %**" if a and b else "—"


def cpu(r):
    w = r.get("server_per_msg")
    return f"{w['user_us']:.0f} + {w['sys_us']:.0f} µs, {w['context_switches']:.2f} switches" if w else "—"


def cpu_total(r):
    w = r.get("server_per_msg")
    return w["user_us"] + w["sys_us"] if w else None


def clean(r):
    return r is not None and r["lost"] == 0 and r["duplicates"] == 0


def main(path):
    rows = load(path)
    out = []
    add = out.append
    add("| test | ceiling | ours | ours ÷ ceiling | target |")
    add("|---|---|---|---|---|")
    c, o = find(rows, "room", "ceiling", senders=4), find(rows, "room", "ours", senders=4)
    if c and o:
        add(f"| room fan-out, 2 000 members × 200 messages, 4 REST senders | {k(c['deliveries_per_s'])} deliveries/s | {k(o['deliveries_per_s'])} deliveries/s | {ratio(o['deliveries_per_s'], c['deliveries_per_s'])} | ≥ 90 % |")
    c, o = find(rows, "private", "ceiling"), find(rows, "private", "ours")
    if c and o:
        add(f"| private, 1 000 users, 20 000 messages, 32 senders | {k(c['deliveries_per_s'])} msgs/s | {k(o['deliveries_per_s'])} msgs/s | {ratio(o['deliveries_per_s'], c['deliveries_per_s'])} | ≥ 90 % |")
        add(f"| the same: server CPU per message, user + kernel, and context switches | {cpu(c)} | {cpu(o)} | {ratio(cpu_total(o), cpu_total(c))} of its CPU | — |")
    c, o = find(rows, "room", "ceiling", senders=1), find(rows, "room", "ours", senders=1)
    if c and o:
        lc, lo = c["latency_ms"], o["latency_ms"]
        add(f"| room latency, 1 000 members at 20 msgs/s: p50 / p99 | {lc['p50']:.1f} / {lc['p99']:.1f} ms | {lo['p50']:.1f} / {lo['p99']:.1f} ms | p99 {lo['p99'] / lc['p99'] * 100:.0f} % | — |")
    c, o = find(rows, "idle", "ceiling"), find(rows, "idle", "ours")
    if c and o:
        add(f"| idle, 15 000 connections: RSS per connection | {kb(c['rss_per_conn_bytes'])} | {kb(o['rss_per_conn_bytes'])} | {ratio(o['rss_per_conn_bytes'], c['rss_per_conn_bytes'])} of its memory | ≤ 8 KB |")
    v2 = find(rows, "idle-v2", "ours")
    if v2:
        add(f"| idle, 15 000 protocol-v2 connections in 4 rooms each: RSS per connection | (v1 only) | {kb(v2['rss_per_conn_bytes'])} | — | ≤ 8 KB |")
    c, o = find(rows, "room", "ceiling", senders=4), find(rows, "room", "ours", senders=4)
    if c and o:
        add(f"| RSS per user: register + login + connect, 2 000 users (the room test), from before the first registration | {kb(c['rss_per_user_bytes'])} | {kb(o['rss_per_user_bytes'])} | {ratio(o['rss_per_user_bytes'], c['rss_per_user_bytes'])} of its memory | ≤ 12 KB |")
    add("")
    for test, what in [("room-socket", "the posting socket in the room too"), ("room-post-socket", "a socket that only posts")]:
        if not before_socket(rows, 4, test)[1]:
            continue
        add(f"| posting, same room: {what} | REST (`/push/pushRoom`) | v2 socket (op 3, each awaiting its reply) | socket ÷ REST |")
        add("|---|---|---|---|")
        r, s = before_socket(rows, 4, test)
        if r and s:
            add(f"| 2 000 members × 200 messages, 4 senders: deliveries/s | {k(r['deliveries_per_s'])} | {k(s['deliveries_per_s'])} | {ratio(s['deliveries_per_s'], r['deliveries_per_s'])} |")
            add(f"| same: post → delivery p50 / p99 | {r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f} ms | {s['latency_ms']['p50']:.1f} / {s['latency_ms']['p99']:.1f} ms | |")
            add(f"| same: post → answer at the sender p50 / p99 | {answer(r)} | {answer(s)} | |")
        r, s = before_socket(rows, 1, test)
        if r and s:
            add(f"| 1 000 members at 20 msgs/s: post → delivery p50 / p99 | {r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f} ms | {s['latency_ms']['p50']:.1f} / {s['latency_ms']['p99']:.1f} ms | |")
        add("")
    add("")
    rec = find(rows, "recovery", "ours")
    if rec:
        add("| recovery | result |")
        add("|---|---|")
        add(f"| clients, each missing | {rec['users']:,}, {rec['messages']} messages posted while the server was down |")
        add(f"| caught up | {rec['caught_up']:,} of {rec['users']:,}; {rec['delivered']:,} delivered of {rec['expected']:,}, {rec['lost']} lost, {rec['duplicates']} duplicates |")
        add(f"| from the server's return until the last one caught up | {rec['elapsed_s']:.2f} s ({k(rec['deliveries_per_s'])} replayed messages/s) |")
        add(f"| server RSS: before the restart (old process, clients connected) → peak during recovery (new process) | {rec['rss_before_kb'] / 1024:.0f} MB → {rec['rss_after_kb'] / 1024:.0f} MB |")
        add("")
    m = find(rows, "massive", "distributed")
    if m:
        add(f"| {m['connections']:,} connections, one room | result |")
        add("|---|---|")
        add(f"| connections, connect servers | {m['connections']:,} over {m['connect_servers']} (one load process each, its own 127.0.0.x source) |")
        add(f"| the broadcast | {m['delivered']:,} delivered of {m['expected']:,}; {m['lost']} lost, {m['duplicates']} duplicates, {m['closed']} connections closed |")
        add(f"| time to open them all | {m['connect_all_s']:.1f} s |")
        add(f"| broadcast completion (send → last delivery) | {m['broadcast_complete_s'] * 1000:.0f} ms; p50 {m['latency_p50_ms']:.0f} ms; {k(m['deliveries_per_s'])} deliveries/s |")
        add(f"| connect servers' RSS per connection | {kb(m['rss_per_conn_bytes'])} ({m['connect_rss_before_kb'] / 1024:.0f} → {m['connect_rss_after_kb'] / 1024:.0f} MB in all) |")
        add("")
    st = find(rows, "storm", "distributed")
    if st:
        add(f"| connect storm: {st['connections']:,} at once, Redis frozen {st['redis_stall_s']} s | result |")
        add("|---|---|")
        add(f"| admitted | {st['admitted']:,}, all of them within {st['admitted_by_s']} s of the storm's start |")
        add(f"| refused (1011, their admission was in flight when Redis froze) | {st['refused']:,} |")
        add("")
    matrix = [r for r in rows if r.get("label", "").startswith("connect=")]
    if matrix:
        add("| PostgreSQL cluster | room deliveries/s | room p99 | private msgs/s | private p99 | clean |")
        add("|---|---|---|---|---|---|")
        for label in sorted({r["label"] for r in matrix}):
            room, priv = find(rows, "room", label), find(rows, "private", label)
            cells = []
            for r in (room, priv):
                cells += [k(r["deliveries_per_s"]), f"{r['latency_ms']['p99']:.0f} ms"] if r else ["—", "—"]
            add(f"| {label} | {' | '.join(cells)} | {'yes' if clean(room) and clean(priv) else 'NO'} |")
        add("")
    dist = find(rows, "room", "distributed")
    if dist:
        alone = [r for r in rows if r["test"] == "room" and r["label"] == "ours" and r["senders"] == 4]
        if alone:
            a = alone[-1]
            add(f"Distributed (2 logic, 2 connect, 2 task) room fan-out: {k(dist['deliveries_per_s'])} deliveries/s against {k(a['deliveries_per_s'])} standalone in the same run ({ratio(dist['deliveries_per_s'], a['deliveries_per_s'])}).")
            add("")
    # The history test runs "ours" then "ours-nohistory" for each shape: "on" is the last
    # "ours" row of the same shape before the "off" one (a later test may run "ours" again).
    hist = []
    for t in ("room", "private"):
        off = find(rows, t, "ours-nohistory")
        at = rows.index(off) if off else 0
        ons = [r for r in rows[:at] if r["test"] == t and r["label"] == "ours"]
        hist.append((off, ons))
    if hist[0][0]:
        add("| history | off | on | on ÷ off |")
        add("|---|---|---|---|")
        for (off, ons), name in zip(hist, ("room fan-out, 2 000 × 200", "private, 1 000 users, 32 senders")):
            on = [r for r in ons if r["senders"] == off["senders"] and r["users"] == off["users"]][-1]
            add(f"| {name} | {k(off['deliveries_per_s'])}/s | {k(on['deliveries_per_s'])}/s | {ratio(on['deliveries_per_s'], off['deliveries_per_s'])} |")
        add("")
    bad = [r for r in rows if r.get("test") not in (None, "store") and "lost" in r and (r["lost"] or r["duplicates"])]
    add("Every run: " + ("0 lost, 0 duplicates." if not bad else "LOSS OR DUPLICATES in " + ", ".join(f"{r['test']}/{r['label']}" for r in bad)))
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
