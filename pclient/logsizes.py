"""The sizes of the product's logs: their defaults and the one size syntax (10M, 512k, 1048576).

pclient.logfile re-exports them beside its RotatingLog; they live here so that the agent reads
its --log-max-bytes without loading logging's handlers (and pickle, queue), which it needs only
with --log FILE (start-up of a cold script's local agent, issue 13). Standard library only.
"""

from __future__ import annotations

import argparse

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_KEEP", "parse_size", "size_argument"]

#: Defaults for every log of the product: 10 MiB a file, 5 old files kept.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP = 5


def parse_size(text: str) -> int:
    """Bytes from `10485760`, `512k`, `10M`, `1G` (powers of 1024); ValueError otherwise."""
    word = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(word[-1:], 1)
    number = word[:-1] if scale != 1 else word
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f'expected a size such as 10M, 512k or 1048576 but got "{text}"') from None
    if value < 0:
        raise ValueError(f'a size cannot be negative: "{text}"')
    return int(value * scale)


def size_argument(text: str) -> int:
    """parse_size as an argparse type (the programs' --log-max-bytes): a bad size is a usage error."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
