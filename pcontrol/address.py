"""HOST:PORT addresses of pcontrol's TCP listener, as `--listen` and `--connect` take them."""

from __future__ import annotations

import ipaddress

__all__ = ["parse_host_port", "format_address", "is_loopback"]


def parse_host_port(text: str, *, lowest_port: int = 1) -> tuple[str, int]:
    """HOST:PORT (an IPv6 address as [ADDR]:PORT); ValueError saying why not.
    `lowest_port` 0 lets a listener ask for any free port."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, as [{host}]:{port_text}")
    if not port_text.isdigit() or not lowest_port <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from {lowest_port} to 65535, got {port_text!r}")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """The HOST:PORT that parse_host_port reads back (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
