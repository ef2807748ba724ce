"""The report: latency statistics per phase and request kind, the issue's targets, and the markdown tables."""
from __future__ import annotations

import numpy as np

from .drivers import PhaseResult
from .server import Target
from .workload import KINDS


def latency_stats(result: PhaseResult, mask: np.ndarray) -> dict[str, float]:
    """Requests, errors, answered per second and latency percentiles (ms) of the selected requests."""
    status = result.status[mask]
    ok = (status >= 200) & (status < 300)
    answered = result.latency[mask][ok] * 1000
    stats = {"requests": int(mask.sum()), "errors": int((~ok).sum()),
             "rps": float(ok.sum() / result.wall_s) if result.wall_s else 0.0}
    for name, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        stats[name] = float(np.percentile(answered, q)) if len(answered) else float("nan")
    stats["error_statuses"] = {str(code): int(n) for code, n in zip(*np.unique(status[~ok], return_counts=True))}
    return stats


def summarise(server: Target, result: PhaseResult, memory_end: dict[str, int], mode: str) -> dict:
    """One phase's row: its statistics overall and by request kind, startup, memory and CPU shares."""
    overall = latency_stats(result, np.ones(len(result.status), dtype=bool))
    by_kind = {kind: latency_stats(result, result.kinds == code) for code, kind in enumerate(KINDS)
               if (result.kinds == code).any()}
    return {
        "server": server.name, "url": server.url, "mode": mode, "wall_s": result.wall_s,
        "startup_s": server.startup_s,
        "rss_ready_mib": server.memory_ready.get("VmRSS", 0) / 1024 if server.memory_ready else None,
        "rss_end_mib": memory_end.get("VmRSS", 0) / 1024 if memory_end else None,
        "anon_end_mib": memory_end.get("RssAnon", 0) / 1024 if memory_end else None,
        "memory_ready_kib": server.memory_ready, "memory_end_kib": memory_end,
        "client_cpu_share": result.client_cpu_s / result.wall_s,
        "server_cpu_share": result.server_cpu_s / result.wall_s if result.server_cpu_s is not None else None,
        "machine_cpu_share": result.machine_cpu_s / result.wall_s,
        "overall": overall, "by_kind": by_kind,
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


TARGETS = (  # the targets for the service on this 2-core machine with a full-size bundle
    ("startup < 10 s", lambda s: s["startup_s"] is not None and s["startup_s"] < 10),
    ("RSS after startup < 1.5 GiB", lambda s: s["rss_ready_mib"] is not None and s["rss_ready_mib"] < 1536),
    (">= 2,000 req/s", lambda s: s["overall"]["rps"] >= 2000 * 0.99),  # 1% slack: the last send is at ~duration
    ("p99 <= 20 ms", lambda s: s["overall"]["p99"] <= 20),
    ("zero errors", lambda s: s["overall"]["errors"] == 0),
)


def verdicts(summary: dict) -> str:
    """Which targets an open-loop run met (the throughput target only means something at --rate >= 2000)."""
    return "; ".join(f"{name}: {'met' if check(summary) else 'MISSED'}" for name, check in TARGETS)


def percent(share: float | None) -> str:
    """A CPU share as percent of one core (2 cores: up to 200%)."""
    return "-" if share is None else f"{100 * share:.0f}%"


def markdown(summaries: list[dict]) -> str:
    """The comparison table, then one latency table per server by request kind."""
    lines = ["CPU in % of one core (2 cores: 200%); machine CPU above server + client is other processes' load. "
             "RSS counts the mapped bundle pages a server touched (page cache, reclaimable); anon is its own heap.", "",
             "| server | load | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | startup s | RSS ready MiB "
             "| RSS end MiB (anon) | server CPU | client CPU | machine CPU |", "|" + " --- |" * 14]
    for s in summaries:
        o = s["overall"]
        cells = [s["server"], s["mode"], fmt(o["rps"]), *(fmt(o[q], 2) for q in ("p50", "p95", "p99")),
                 fmt(o["max"]), f"{o['errors']} / {o['requests']:,}", fmt(s["startup_s"], 2),
                 fmt(s["rss_ready_mib"], 0), f"{fmt(s['rss_end_mib'], 0)} ({fmt(s['anon_end_mib'], 0)})",
                 percent(s["server_cpu_share"]), percent(s["client_cpu_share"]), percent(s["machine_cpu_share"])]
        lines.append("| " + " | ".join(cells) + " |")
    for s in summaries:
        if s["mode"].startswith("open loop"):
            lines += ["", f"{s['server']} targets: {verdicts(s)}"]
    for s in summaries:
        lines += ["", f"{s['server']} ({s['mode']}), by request kind:", "",
                  "| kind | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |", "|" + " --- |" * 8]
        for kind, k in s["by_kind"].items():
            lines.append(f"| {kind} | {k['requests']:,} | {fmt(k['rps'])} | {fmt(k['p50'], 2)} | {fmt(k['p95'], 2)} "
                         f"| {fmt(k['p99'], 2)} | {fmt(k['max'], 1)} | {k['errors']} {k['error_statuses'] or ''} |")
    return "\n".join(lines)
