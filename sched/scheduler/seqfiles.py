"""pktgen's JSON files: the hosts file and the per-host job sequences file, read and checked.

    hosts = read_hosts("nodes.json")      # [HostEntry(name, address, port, slots)]
    plan = read_sequences("jobs.json", known_hosts={"node-a", "node-b"})   # {host: [SeqItem]}

The hosts file is a list of `{name, address[, port][, slots]}` objects (`controller host load`);
the jobs file an object `{host: [{id, params}]}` (`sequence load`), whose `params` (an object of
names and plain values) fill the command template and reach the job as environment variables.
Pure: the caller reads nothing else and sends nothing. Every error is a SeqFileError naming the
file and the entry (`jobs.json: host "node-c" (entry 3): unknown host ...`), or the line and
column of malformed JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..lang.errors import TaskError

__all__ = ["HostEntry", "SeqItem", "SeqFileError", "read_hosts", "read_sequences", "fill_template"]

HOST_KEYS = ("name", "address", "port", "slots")
HOSTS_SHAPE = "a list of hosts [{name, address[, port][, slots]}]"
JOB_KEYS = ("id", "params")
JOBS_SHAPE = "an object of hosts and their jobs {host: [{id, params}]}"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class SeqFileError(TaskError):
    """A hosts or jobs file that cannot be used: the message names the file and the entry."""


@dataclass(frozen=True)
class HostEntry:
    """One host of a hosts file."""

    name: str
    address: str
    port: int | None = None
    slots: int | None = None


@dataclass(frozen=True)
class SeqItem:
    """One job of a host's sequence: its id and params (as the job's environment sees them)."""

    host: str
    id: str
    params: dict[str, str] = field(default_factory=dict, hash=False)


def _load(path: str) -> Any:
    name = Path(path).name
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise SeqFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SeqFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeqFileError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON in {name}: {exc.msg}") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _whole(value: Any, least: int, most: int | None = None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least or (most is not None and value > most):
        return None
    return value


def _word(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not any(c.isspace() for c in value)


def read_hosts(path: str) -> list[HostEntry]:
    """The hosts of a hosts file, in its order (see the module docstring)."""
    data = _load(path)
    if not isinstance(data, list):
        raise SeqFileError(f"{path}: expected {HOSTS_SHAPE}, got {_kind(data)}")
    hosts: list[HostEntry] = []
    seen: dict[str, int] = {}
    for number, item in enumerate(data, 1):
        where = f"{path}: entry {number}"
        if not isinstance(item, dict):
            raise SeqFileError(f"{where}: expected an object {{name, address[, port][, slots]}}, got {_kind(item)}")
        if _word(item.get("name")):
            where += f" ({item['name']})"
        for key in item:
            if key not in HOST_KEYS:
                raise SeqFileError(f'{where}: unknown key "{key}" (a host has {", ".join(HOST_KEYS)})')
        for key in ("name", "address"):
            if key not in item:
                raise SeqFileError(f'{where}: missing "{key}"')
            if not _word(item[key]):
                raise SeqFileError(f'{where}: "{key}" must be a word without blanks, got {json.dumps(item[key])}')
        port = item.get("port")
        if port is not None and _whole(port, 1, 65535) is None:
            raise SeqFileError(f'{where}: "port" must be a TCP port (a whole number 1-65535), got {json.dumps(port)}')
        slots = item.get("slots")
        if slots is not None and _whole(slots, 1) is None:
            raise SeqFileError(f'{where}: "slots" must be a whole number at least 1, got {json.dumps(slots)}')
        name = item["name"]
        if name in seen:
            raise SeqFileError(f'{where}: host "{name}" is already entry {seen[name]}')
        seen[name] = number
        hosts.append(HostEntry(name, item["address"], port, slots))
    return hosts


def _param_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return None


def read_sequences(path: str, known_hosts: Iterable[str]) -> dict[str, list[SeqItem]]:
    """Each host's jobs, in the file's order; every host must be one of `known_hosts`."""
    data = _load(path)
    if not isinstance(data, dict):
        raise SeqFileError(f"{path}: expected {JOBS_SHAPE}, got {_kind(data)}")
    known = set(known_hosts)
    plan: dict[str, list[SeqItem]] = {}
    for host_number, (host, jobs) in enumerate(data.items(), 1):
        where_host = f'{path}: host "{host}" (entry {host_number})'
        if host not in known:
            listing = ", ".join(sorted(known)) if known else "none"
            raise SeqFileError(f"{where_host}: unknown host (the controller's hosts: {listing}; "
                               "`controller host load FILE.json` adds hosts)")
        if not isinstance(jobs, list):
            raise SeqFileError(f"{where_host}: expected a list of jobs [{{id, params}}], got {_kind(jobs)}")
        items: list[SeqItem] = []
        ids: dict[str, int] = {}
        for number, job in enumerate(jobs, 1):
            where = f'{path}: host "{host}", job {number}'
            if not isinstance(job, dict):
                raise SeqFileError(f"{where}: expected an object {{id, params}}, got {_kind(job)}")
            for key in job:
                if key not in JOB_KEYS:
                    raise SeqFileError(f'{where}: unknown key "{key}" (a job has {", ".join(JOB_KEYS)})')
            if "id" not in job:
                raise SeqFileError(f'{where}: missing "id"')
            ident = _param_value(job["id"])
            if ident is None or not ident.strip() or isinstance(job["id"], bool):
                raise SeqFileError(f'{where}: "id" must be a string or a number, got {json.dumps(job["id"])}')
            where += f" (id {ident})"
            if ident in ids:
                raise SeqFileError(f"{where}: id {ident} is already job {ids[ident]} of this host")
            ids[ident] = number
            params = job.get("params", {})
            if not isinstance(params, dict):
                raise SeqFileError(f'{where}: "params" must be an object of names and values, got {_kind(params)}')
            values: dict[str, str] = {}
            for name, value in params.items():
                if not _ENV_NAME.match(name):
                    raise SeqFileError(f'{where}: param "{name}" cannot name an environment variable '
                                       "(letters, digits and _, not starting with a digit)")
                text = _param_value(value)
                if text is None:
                    raise SeqFileError(f'{where}: param "{name}" must be a string, number or boolean, got {_kind(value)}')
                values[name] = text
            items.append(SeqItem(host, ident, values))
        plan[host] = items
    return plan


def fill_template(template: list[str], values: dict[str, str]) -> list[str]:
    """The command for one job: `$name` and `${name}` of its params replaced in every word (other
    `$words` are left for a shell, which finds the params in the environment too)."""
    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return [_PLACEHOLDER.sub(one, word) for word in template]
