"""Counting and reporting for bench.delivery: match receipts to sends, the table, the Markdown.

A whisper is identified by the sequence number the sender wrote into its content (with a tag
per setup, so whispers of another setup or run are told apart). Latency is the socket's arrival
stamp minus the sender's stamp taken just before the HTTP POST; both come from time.time_ns()
in the same process.
"""

from __future__ import annotations

import argparse
import math
import platform
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from bench.commit_probe import STALL_MS
from bench.delivery_load import Send, Socket, parse_content
from bench.report import machine

TARGET_P99_MS = 50.0
PEER = 1  # the peer is the setup with one server process


@dataclass
class Setup:
    """What one setup (1 or 2 server processes) produced."""

    processes: int
    sockets: int = 0  # asked for
    opened: int = 0
    open_wall_s: float = 0.0
    open_p50_ms: float = 0.0
    open_max_ms: float = 0.0
    open_failures: Counter[str] = field(default_factory=Counter)
    sent: int = 0  # POSTs answered with a whisper
    send_errors: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    foreign: int = 0  # `next` messages that are not whispers of this setup
    bad_next: int = 0  # `next` messages carrying GraphQL errors
    id_mismatch: int = 0
    latency_ms: list[float] = field(default_factory=list)
    cross_ms: list[float] = field(default_factory=list)  # POSTed to the other process
    local_ms: list[float] = field(default_factory=list)  # POSTed to the recipient's process
    http_ms: list[float] = field(default_factory=list)
    rss_kb: list[tuple[int, int, int]] = field(default_factory=list)  # (before, after, sockets)
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core while sending
    send_wall_s: float = 0.0  # how long the timed sends took, for CPU per whisper
    events: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)  # text / binary, server to client
    lost_examples: list[str] = field(default_factory=list)
    warmup: Setup | None = None  # the discarded warm-up phase, counted the same way
    failure: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. how many content checks ran
    slow: list[tuple[int, int]] = field(default_factory=list)  # (sent, arrived) ns, over target
    probe: list[tuple[int, float]] = field(default_factory=list)  # (started ns, ms) COMMITs

    @property
    def name(self) -> str:
        return f"{self.processes} process" + ("es" if self.processes > 1 else "")

    @property
    def rss_per_socket_kb(self) -> float | None:
        sockets = sum(n for _, _, n in self.rss_kb)
        return sum(a - b for b, a, _ in self.rss_kb) / sockets if sockets else None

    def p(self, q: float, values: list[float] | None = None) -> float | None:
        return percentile(self.latency_ms if values is None else values, q)

    def met(self) -> bool:
        p99 = self.p(99)
        return bool(
            not self.failure
            and self.sent
            and p99 is not None
            and p99 <= TARGET_P99_MS
            and self.lost == 0
            and self.duplicated == 0
            and self.wrong == 0
            and self.opened == self.sockets
            and not self.send_errors
            # Warm-up latencies are discarded, losses are not.
            and (self.warmup is None or self.warmup.intact())
        )

    def intact(self) -> bool:
        """Every whisper answered and delivered exactly once, to the right socket."""
        return not (self.send_errors or self.lost or self.duplicated or self.wrong)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of `values` (sorted or not); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def analyze(
    setup: Setup, tag: str, socks: list[Socket], sends: list[Send], other_phase: str = ""
) -> None:
    """Fill the delivery counts of `setup` from what the sockets heard and the sender sent;
    whispers tagged `other_phase` (the warm-up's, or the timed phase's) are skipped."""
    by_seq = {s.seq: s for s in sends}
    server_of = {s.index: s.server for s in socks}
    setup.sent = sum(1 for s in sends if s.whisper_id)
    setup.send_errors = Counter(s.error for s in sends if s.error)
    setup.http_ms = [(s.done_ns - s.sent_ns) / 1e6 for s in sends if s.whisper_id]
    first: dict[int, int] = {}  # seq -> arrival ns at the right socket
    for sock in socks:
        setup.events.update(e.split(":", 1)[0] for e in sock.events)
        setup.frames.update(text=sock.text_frames, binary=sock.binary_frames)
        for arrived, raw in sock.received:
            msg = orjson.loads(raw)
            payload = msg.get("payload") or {}
            item = (payload.get("data") or {}).get("whisperReceived")
            if payload.get("errors") or not item:
                setup.bad_next += 1
                continue
            parsed = parse_content(item.get("content", ""))
            if parsed is not None and other_phase and parsed[0] == other_phase:
                continue
            if parsed is None or parsed[0] != tag or parsed[1] not in by_seq:
                setup.foreign += 1
                continue
            send = by_seq[parsed[1]]
            if send.recipient != sock.index:
                setup.wrong += 1
                continue
            if send.whisper_id and item.get("id") != send.whisper_id:
                setup.id_mismatch += 1
            if send.seq in first:
                setup.duplicated += 1
                continue
            first[send.seq] = arrived
            ms = (arrived - send.sent_ns) / 1e6
            setup.latency_ms.append(ms)
            if ms > TARGET_P99_MS:
                setup.slow.append((send.sent_ns, arrived))
            (setup.cross_ms if server_of[sock.index] != send.server else setup.local_ms).append(ms)
    setup.delivered = len(first)
    missing = [s for s in sends if s.whisper_id and s.seq not in first]
    setup.lost = len(missing)
    setup.lost_examples = [
        f"seq {s.seq} to socket {s.recipient} (server {server_of.get(s.recipient)}), sent via "
        f"server {s.server}, HTTP {(s.done_ns - s.sent_ns) / 1e6:.1f} ms, id {s.whisper_id}"
        for s in missing[:5]
    ]


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


HEADERS = [
    "setup",
    "sockets",
    "sent",
    "delivered",
    "lost",
    "dup",
    "wrong",
    "p50",
    "p95",
    "p99",
    "max",
    "HTTP p50",
    "RSS/socket",
    "p99 × 1 proc",
    "target",
]


def _cells(setup: Setup, peer_p99: float | None) -> list[str]:
    if setup.failure:
        return [setup.name, str(setup.sockets), *["—"] * 12, "failed"]
    p99 = setup.p(99)
    rss = setup.rss_per_socket_kb
    ratio = f"{p99 / peer_p99:.2f}×" if p99 is not None and peer_p99 else "n/a"
    return [
        setup.name,
        f"{setup.opened}/{setup.sockets}",
        f"{setup.sent}"
        + (f" (+{sum(setup.send_errors.values())} err)" if setup.send_errors else ""),
        str(setup.delivered),
        str(setup.lost),
        str(setup.duplicated),
        str(setup.wrong),
        _ms(setup.p(50)),
        _ms(setup.p(95)),
        _ms(p99),
        _ms(setup.p(100)),
        _ms(percentile(setup.http_ms, 50)),
        "—" if rss is None else f"{rss:.1f} kB",
        ratio,
        "met" if setup.met() else "NOT met",
    ]


def _rows(setups: list[Setup]) -> list[list[str]]:
    peer = next((s for s in setups if s.processes == PEER and not s.failure), None)
    peer_p99 = peer.p(99) if peer else None
    return [_cells(s, peer_p99) for s in setups]


def console_table(setups: list[Setup]) -> str:
    table = [HEADERS, *_rows(setups)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]

    def fmt(line: list[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        return " | ".join([line[0].ljust(widths[0]), *rest])

    return "\n".join([fmt(HEADERS), "-+-".join("-" * w for w in widths), *map(fmt, table[1:])])


def markdown_table(setups: list[Setup]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * (len(HEADERS) - 1)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in _rows(setups)])


def verdicts(setups: list[Setup]) -> list[str]:
    """One line per setup: the target (p99 ≤ 50 ms, nothing lost or duplicated) met or not."""
    lines = []
    for s in setups:
        if s.failure:
            lines.append(f"{s.name}: failed, no figures")
            continue
        why = []
        if (p99 := s.p(99)) is None or p99 > TARGET_P99_MS:
            why.append(f"p99 {_ms(p99)} > {TARGET_P99_MS:.0f} ms")
        why += [f"{n} {what}" for n, what in [(s.lost, "lost"), (s.duplicated, "duplicated")] if n]
        why += [f"{s.wrong} to the wrong recipient"] if s.wrong else []
        why += [f"{s.sockets - s.opened} sockets did not open"] if s.opened < s.sockets else []
        why += [f"{sum(s.send_errors.values())} sends failed"] if s.send_errors else []
        verdict = "target met" if s.met() else "target NOT met: " + ", ".join(why or ["no sends"])
        lines.append(f"{s.name}: {verdict}")
    return lines


def warnings(setups: list[Setup]) -> list[str]:
    """A busy machine and protocol oddities: worth a line beside the table, whatever the
    figures."""
    lines = []
    for s in setups:
        other = s.cpu.get("anything else", 0.0) + s.cpu.get("stolen by the hypervisor", 0.0)
        if other > 0.25:
            lines.append(
                f"{s.name}: other work (or the hypervisor) took {other * 100:.0f}% of a core while "
                "sending (not the servers, not PostgreSQL, not the load generator); the "
                "latencies are skewed by it."
            )
        if (stalls := commit_stalls(s)) and stalls[1]:
            lines.append(
                f"{s.name}: PostgreSQL's durable COMMITs stalled during the sends (longest "
                f"{stalls[2]:.0f} ms): {stalls[1]} of the {len(s.slow)} deliveries over "
                f"{TARGET_P99_MS:.0f} ms were in flight during a stall; see the details."
            )
        if s.frames["binary"]:
            lines.append(
                f"{s.name}: the server sent {s.frames['binary']} of "
                f"{s.frames['binary'] + s.frames['text']} websocket messages as BINARY frames; "
                "graphql-transport-ws messages are JSON text (clients that JSON.parse the frame "
                "get a Blob/ArrayBuffer). Counted here anyway."
            )
    return lines


def _details(s: Setup) -> list[str]:
    cross, local = s.cross_ms, s.local_ms
    lines = [f"### {s.name}", ""]
    if s.failure:
        return [*lines, "```", s.failure[-3000:], "```", ""]
    lines += [
        f"- sockets: {s.opened}/{s.sockets} opened in {s.open_wall_s:.1f} s "
        f"(handshake p50 {s.open_p50_ms:.0f} ms, max {s.open_max_ms:.0f} ms)",
        f"- HTTP sendWhisper: p50 {_ms(percentile(s.http_ms, 50))}, "
        f"p99 {_ms(percentile(s.http_ms, 99))}, max {_ms(percentile(s.http_ms, 100))}",
    ]
    if s.processes > 1:
        lines.append(
            f"- send→receive when the POST went to the recipient's own process: "
            f"p50 {_ms(percentile(local, 50))}, p99 {_ms(percentile(local, 99))} "
            f"({len(local)}); to the other process: p50 {_ms(percentile(cross, 50))}, "
            f"p99 {_ms(percentile(cross, 99))} ({len(cross)})"
        )
    for i, (before, after, n) in enumerate(s.rss_kb):
        lines.append(
            f"- server {i} RSS: {before / 1024:.1f} MB before sockets, {after / 1024:.1f} MB "
            f"with {n} sockets, {(after - before) / max(n, 1):.1f} kB per socket"
        )
    if s.cpu:
        cpu = ", ".join(f"{k} {v * 100:.0f}%" for k, v in s.cpu.items())
        lines.append(f"- CPU while sending (share of one core): {cpu}")
        if per := server_cpu_per_whisper_ms(s):
            # Unlike the latencies, hardly moved by other work on the machine.
            lines.append(f"- server CPU per whisper (its send and its delivery): {per:.2f} ms")
    lines += _probe_lines(s)
    lines.append(f"- frames from the server: {s.frames['text']} text, {s.frames['binary']} binary")
    odd = {
        "socket open failures": dict(s.open_failures),
        "send errors": dict(s.send_errors),
        "socket events other than next/ping/pong": dict(s.events),
        "`next` with errors": s.bad_next,
        "`next` not of this setup": s.foreign,
        "`next` whose id differs from the id sendWhisper answered": s.id_mismatch,
    }
    lines += [f"- {k}: {v}" for k, v in odd.items() if v]
    lines += [f"- lost, e.g.: {e}" for e in s.lost_examples]
    if (w := s.warmup) is not None:
        lines.append(
            f"- warm-up (discarded from the latencies, not from the counts): {w.sent} sent, "
            f"{w.delivered} delivered, {w.lost} lost, {w.duplicated} duplicated, "
            f"{w.wrong} wrong, {sum(w.send_errors.values())} send errors; "
            f"p50 {_ms(w.p(50))}, p99 {_ms(w.p(99))}, max {_ms(w.p(100))}"
        )
        lines += [f"  - warm-up lost, e.g.: {e}" for e in w.lost_examples]
    return [*lines, ""]


def commit_stalls(s: Setup) -> tuple[int, int, float] | None:
    """(probe COMMITs over STALL_MS, slow deliveries in flight during one, longest COMMIT ms),
    or None without probe samples."""
    if not s.probe:
        return None
    stalls = [(t, t + int(ms * 1e6)) for t, ms in s.probe if ms > STALL_MS]
    during = sum(1 for a, b in s.slow if any(x < b and a < y for x, y in stalls))
    return len(stalls), during, max(ms for _, ms in s.probe)


def _probe_lines(s: Setup) -> list[str]:
    found = commit_stalls(s)
    if found is None:
        return []
    stalls, during, longest = found
    ms = [m for _, m in s.probe]
    return [
        f"- durable COMMIT probe (bench/commit_probe.py, one every 20 ms on a connection of its "
        f"own, warm-up and timed sends): {len(ms)} COMMITs, p50 {_ms(percentile(ms, 50))}, "
        f"p99 {_ms(percentile(ms, 99))}, max {_ms(longest)}; {stalls} over {STALL_MS:.0f} ms",
        f"- deliveries over {TARGET_P99_MS:.0f} ms: {len(s.slow)}, of which {during} were in "
        f"flight while a probe COMMIT took over {STALL_MS:.0f} ms",
    ]


def server_cpu_per_whisper_ms(s: Setup) -> float | None:
    servers = sum(v for k, v in s.cpu.items() if k.startswith("server "))
    if not s.sent or not s.send_wall_s:
        return None
    return servers * s.send_wall_s / s.sent * 1000


def write_markdown(
    setups: list[Setup],
    args: argparse.Namespace,
    started: datetime,
    command: str,
    postgres: str,
    loadavg: tuple[float, float, float],
) -> Path:
    """The report as bench/results/delivery-<date>-<time>.md; returns its path."""
    lines = [
        f"# Whisper delivery benchmark (workload C), {started:%Y-%m-%d %H:%M}",
        "",
        f"- command: `.venv/bin/{command}`",
        f"- machine: {machine()}; load average before the run "
        + " / ".join(f"{v:.2f}" for v in loadavg),
        f"- software: Python {platform.python_version()}, PostgreSQL {postgres}",
        f"- load: {args.sockets} subscribed websockets (one per recipient), {args.senders} "
        f"senders, {args.rate:g} whispers/s for {args.duration:g} s to random recipients, "
        f"stragglers awaited {args.wait:g} s; websocket compression "
        + ("on (permessage-deflate)" if args.deflate else "off"),
        "- configuration: "
        + (
            f"production (APP_ENV=production, WeChat configured: every send passes a content "
            f"check answered by bench/fake_wechat.py after {args.wechat_check_ms:g} ms)"
            if args.production
            else "development (no WeChat: no content check)"
        ),
        *[f"- {s.name}: {note}" for s in setups for note in s.notes],
        "",
        markdown_table(setups),
        "",
        *[f"- {v}" for v in verdicts(setups)],
        *[f"- warning: {w}" for w in warnings(setups)],
        "",
        "Latency: from just before the HTTP POST of `sendWhisper` to the `next` message on the "
        "recipient's socket. Lost: answered with a whisper id but never received; dup: received "
        "more than once; wrong: received on another user's socket. RSS/socket: (VmRSS with all "
        "sockets subscribed − VmRSS before any) ÷ sockets, summed over the setup's processes. "
        "× 1 proc: p99 over the p99 of the 1-process peer in this run. Target: p99 ≤ 50 ms, "
        "zero lost, zero duplicated.",
        "",
        "## Details",
        "",
    ]
    for s in setups:
        lines += _details(s)
    directory = Path(__file__).resolve().parent / "results"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"delivery-{started:%Y-%m-%d-%H%M%S}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
