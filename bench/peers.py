"""The peers every throughput bench runs beside us, in the same process tree: xargs and GNU parallel.

    peer_rows(n) -> [(name, seconds or None), ...]     None: not installed
"""

from __future__ import annotations

import shutil
import subprocess
import time

PEERS = (
    ("xargs -P4", "xargs", "seq {n} | xargs -P4 -I{{}} true"),
    ("GNU parallel -j4", "parallel", "seq {n} | parallel -j4 true"),
)


def shell_seconds(cmd: str) -> float:
    """Wall seconds of a shell pipeline (the peers are shell commands by nature)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def peer_rows(n: int) -> list[tuple[str, float | None]]:
    """Run N `true` jobs through each peer that is installed."""
    return [(name, shell_seconds(cmd.format(n=n)) if shutil.which(tool) else None) for name, tool, cmd in PEERS]


def print_rate_table(title: str, n: int, rows: list[tuple[str, float | None]], width: int = 56) -> None:
    print(f"\n{title}")
    print(f"{'runner':<{width}} {'seconds':>8} {'jobs/s':>8}")
    for name, secs in rows:
        if secs is None:
            print(f"{name:<{width}} {'-':>8} {'-':>8}  (not installed: apt-get install parallel)")
        else:
            print(f"{name:<{width}} {secs:>8.2f} {n / secs:>8.0f}")
