"""Human text for replies: tables of hosts and jobs, one host or job in detail, status.

Pure functions of the JSON records (model.*.to_record), so the text and the -json data
never disagree.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in cells]
    return "\n".join(lines)


def when(stamp: float | None, now: float | None = None) -> str:
    if stamp is None:
        return "-"
    now = time.time() if now is None else now
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
    return f"{text} ({ago(now - stamp)})"


def ago(seconds: float) -> str:
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        amount = f"{seconds:.0f} s"
    elif seconds < 3600:
        amount = f"{seconds / 60:.0f} min"
    elif seconds < 86400:
        amount = f"{seconds / 3600:.1f} h"
    else:
        amount = f"{seconds / 86400:.1f} d"
    return f"in {amount}" if future else f"{amount} ago"


def command_line(argv: Sequence[str], limit: int = 60) -> str:
    text = shlex.join(argv)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def job_result(record: dict[str, Any]) -> str:
    """EXIT 0 / CRASH 9 / TIMEOUT / ... or the state for an unfinished job."""
    outcome = record.get("outcome")
    if outcome is None:
        return record["state"] + (" (unknown)" if record.get("unknown") else "") \
            + (" (killing)" if record.get("kill_requested") else "")
    if outcome == "EXIT":
        return f"EXIT {record.get('status')}"
    if outcome == "CRASH":
        return f"CRASH {record.get('signal')}"
    return outcome


def host_table(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "no hosts"
    now = time.time()
    rows = []
    for r in records:
        note = ""
        if r["state"] == "DOWN":
            note = r["reason"]
            if r.get("retry_at"):
                note += f" (retry {ago(now - r['retry_at'])})"
        slots = r["agent_slots"] if r["state"] in ("IDLE", "BUSY") else (r["slots"] or "-")
        skewed = (r.get("agent") or {}).get("skewed")
        if skewed:
            note = f"SKEWED: {skewed}" + (f"; {note}" if note else "")
        rows.append((r["name"], r["state"], slots, len(r["running"]),
                     clock_offset_text(r.get("agent") or {}), note))
    return table(("HOST", "STATE", "SLOTS", "RUNNING", "OFFSET", "NOTE"), rows)


def clock_offset_text(agent: dict[str, Any], *, detail: bool = False) -> str:
    """The measured clock offset of a host's agent (`+0.042 ms`), '-' if never measured;
    `detail` adds the round trip it was measured with (its error is at most half of it)."""
    offset = agent.get("clock_offset")
    if offset is None:
        return "-"
    text = f"{offset * 1e3:+.3f} ms"
    if detail:
        text += f" (round trip {agent.get('clock_delay', 0) * 1e3:.3f} ms, measured " \
                f"{when(agent.get('clock_measured'), time.time())})"
    return text


def _pull_lines(agent: dict[str, Any], now: float) -> list[str]:
    lines = [f"check-in:  last {when(agent.get('pull_last'), now) if agent.get('pull_last') else 'never'}"
             + (f", next run {when(agent['pull_next'], now)}" if agent.get("pull_next") else "")]
    if agent.get("pull_missed"):
        lines.append(f"missed:    {agent['pull_missed']} run time(s) in a row")
    if agent.get("clock_offset") is not None:
        lines.append(f"offset:    {clock_offset_text(agent, detail=True)} (probe's clock minus ours, "
                     "NTP-style at its last check-in)")
    return lines


def host_detail(r: dict[str, Any]) -> str:
    now = time.time()
    lines = [
        f"host:      {r['name']}",
        f"state:     {r['state']} since {when(r['since'], now)}",
        f"enabled:   {'yes' if r['enabled'] else 'no (host off)'}",
        f"slots:     {r['agent_slots'] or '-'} in use for dispatch"
        + (f", {r['slots']} configured" if r["slots"] else ", as the agent offers"),
        "pull:      its probe checks in (pclient --pull)" if r.get("pull") else
        f"connect:   {r['connect'] or '(default)'}" if not r.get("slurm") else
        "slurm:     " + (" ".join(f"-{k} {shlex.quote(v)}" for k, v in r["slurm"].items() if v)
                         or "(Slurm's defaults)"),
        f"running:   {', '.join(str(i) for i in r['running']) or 'none'}",
    ]
    if r.get("held"):
        lines.append(f"unknown:   {', '.join(str(i) for i in r['held'])} (contact lost; "
                     "awaiting the next agent's report)")
    if r.get("command"):
        lines.append(f"command:   {command_line(r['command'], limit=160)}")
    if r["reason"]:
        lines.append(f"last down: {r['reason']}")
    if r["failures"] and r["state"] not in ("IDLE", "BUSY"):
        lines.append(f"failures:  {r['failures']} in a row")
    if r.get("flaps"):
        lines.append(f"flapping:  went down {r['flaps']} time(s) soon after coming up; "
                     "retried with growing backoff")
    if r.get("retry_at"):
        lines.append(f"retry:     {when(r['retry_at'], now)}")
    agent = r.get("agent") or {}
    if agent.get("skewed"):
        lines.append(f"SKEWED:    {agent['skewed']}")
    if r.get("pull"):
        lines.extend(_pull_lines(agent, now))
    if agent and r["state"] in ("IDLE", "BUSY") and not r.get("pull"):
        lines.append(f"agent:     {agent.get('agent')} pid {agent.get('pid')} on "
                     f"{agent.get('host')}, clock skew {agent.get('clock_skew')} s")
        lines.append(f"offset:    {clock_offset_text(agent, detail=True)} (agent's clock minus ours, "
                     "NTP-style over the link)")
        if agent.get("bootstrap"):
            lines.append(f"sent:      {agent['bootstrap']}")
        if agent.get("mismatch"):
            lines.append(f"version:   {agent['mismatch']}"
                         + ("; replaced once it runs no jobs" if r.get("replacing") else ""))
        lines.append(f"heartbeat: last pong {when(r.get('last_pong'), now)}")
    history = r.get("history") or []
    if history:
        lines.append("history:")
        for entry in reversed(history):
            note = f": {entry['reason']}" if entry.get("reason") else ""
            lines.append(f"  {when(entry['time'], now)}  {entry['state']}{note}")
    return "\n".join(lines)


def job_table(records: Sequence[dict[str, Any]]) -> str:
    if not records:
        return "no jobs"
    rows = []
    for r in records:
        where = r.get("ran_on") or (r["host"] + (" (required)" if r["required"] else "")
                                    if r.get("host") else "")
        owner = "/".join(x for x in (r.get("owner"), r.get("task")) if x)
        rows.append((r["id"], r["state"], job_result(r) if r["state"] == "DONE" else
                     ("unknown" if r.get("unknown") else _short_waiting(r.get("waiting"))),
                     where, owner, command_line(r["argv"], 50)))
    return table(("ID", "STATE", "OUTCOME", "HOST", "OWNER/TASK", "COMMAND"), rows)


def _short_waiting(waiting: str | None) -> str:
    """Why a pending job waits, for a table: without the DOWN host's own reason nor a
    connecting one's last (`check job` has them), as squeue's REASON column is short."""
    return (waiting or "").split(": ", 1)[0].split(" (last down", 1)[0]


def more_jobs(count: int, last_id: int, command: str) -> str:
    """The line under a `jobs` table that stopped short: how many more, and how to see them."""
    return (f"... {count} more job{'' if count == 1 else 's'} after job {last_id}; "
            f"see them with: {command}")


def job_detail(r: dict[str, Any]) -> str:
    now = time.time()
    lines = [f"job:       {r['id']}",
             f"command:   {shlex.join(r['argv'])}",
             f"state:     {r['state']}" + (f", {job_result(r)}" if r["outcome"] else "")]
    if r.get("reason"):
        lines.append(f"reason:    {r['reason']}")
    if r.get("waiting"):
        lines.append(f"waiting:   {r['waiting']}")
    if r.get("host"):
        lines.append(f"host:      {r['host']} ({'required' if r['required'] else 'preferred'})")
    if r.get("ran_on"):
        lines.append(f"ran on:    {r['ran_on']}" + (f" pid {r['pid']}" if r.get("pid") else "")
                     + (f" batch job {r['batch_id']}" if r.get("batch_id") else ""))
    if r.get("owner") or r.get("task"):
        lines.append(f"owner:     {r.get('owner') or '-'}  task: {r.get('task') or '-'}")
    lines.append(f"priority:  {r['priority']}")
    for key, label in (("timeout", "timeout"), ("pending", "pending")):
        if r.get(key) is not None:
            lines.append(f"{label + ':':<11}{r[key]:g} s")
    if r.get("cwd"):
        lines.append(f"cwd:       {r['cwd']}")
    for key, value in sorted((r.get("env") or {}).items()):
        lines.append(f"env:       {key}={value}")
    lines.append(f"submitted: {when(r['submitted'], now)}")
    if r.get("started"):
        lines.append(f"started:   {when(r['started'], now)}")
    if r.get("ended"):
        lines.append(f"ended:     {when(r['ended'], now)}")
    if r.get("elapsed") is not None:
        lines.append(f"elapsed:   {r['elapsed']:.3f} s")
    if r["state"] == "DONE":
        for stream in ("stdout", "stderr"):
            cut = " (truncated)" if r.get(f"{stream}_truncated") else ""
            lines.append(f"{stream + ':':<11}{r.get(f'{stream}_bytes', 0)} bytes{cut}")
    if r.get("harvested"):
        lines.append(f"harvested: {when(r['harvested'], now)}")
    if r.get("unknown"):
        lines.append(f"unknown:   contact with its agent lost {when(r.get('unknown_since'), now)};"
                     " awaiting the host's next agent")
    if r.get("retry"):
        lines.append(f"retry:     {r['retry']} ({r.get('retries_left', 0)} left)")
    for number, attempt in enumerate(r.get("attempts") or [], 1):
        lines.append(f"attempt {number}: {attempt.get('host') or '-'} {attempt.get('outcome')}, "
                     f"{when(attempt.get('started'), now)} to {when(attempt.get('ended'), now)}: "
                     f"{attempt.get('reason')}")
    return "\n".join(lines)


def status_text(s: dict[str, Any]) -> str:
    def counts(mapping: dict[str, int]) -> str:
        parts = [f"{k} {v}" for k, v in mapping.items() if v]
        return ", ".join(parts) if parts else "none"

    lines = [f"pcontrol pid {s['pid']}, up {ago(s['uptime']).replace(' ago', '')}",
             f"hosts: {sum(s['hosts'].values())} ({counts(s['hosts'])})",
             f"slots: {s['slots']['busy']} busy of {s['slots']['total']}",
             f"jobs:  {sum(s['jobs'].values())} ({counts(s['jobs'])})"
             + (f", {s['unknown']} unknown (contact lost)" if s.get("unknown") else ""),
             f"done:  {counts(s['outcomes'])}"]
    memory = s.get("memory") or {}
    if memory.get("rss") is not None:
        line = f"memory: {size(memory['rss'])} resident"
        if memory.get("peak") is not None:
            line += f" (peak {size(memory['peak'])})"
        if s.get("connections") is not None:
            line += f"; {s['connections']} client connection" \
                    + ("" if s["connections"] == 1 else "s")
        lines.append(line)
    loop = s.get("loop") or {}
    if loop.get("samples"):
        line = (f"loop:  lag p50 {loop['lag_p50_ms']} ms, p99 {loop['lag_p99_ms']} ms, "
                f"max {loop['lag_max_ms']} ms")
        if loop.get("cpu_share") is not None:
            line += (f"; on a CPU {loop['cpu_share']:.0%}, waiting for one "
                     f"{loop['cpu_wait_share']:.0%} of the time")
        lines.append(line)
    journal = s["journal"]
    if journal.get("path"):
        line = f"journal: {size(journal.get('size') or 0)}"
        if journal.get("backlog"):
            line += f", {journal['backlog']} changes to write"
        lines.append(line)
    if journal["failure"]:
        held = journal.get("held")
        lines.append(f"JOURNAL FAILING: {journal['failure']}; new jobs are refused"
                     + (f"; {held} messages held until writes work again" if held else ""))
    return "\n".join(lines)


def size(count: float) -> str:
    """Bytes in words: 512 B, 3.4 KiB, 120.0 MiB, 1.2 GiB."""
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
