"""pweb: the read-only status page and Prometheus `/metrics` of a pcontrol (and of the sched
server of the same $SCHED_HOME), started with `pcontrol web`.

A process of its own: it reads the daemons through their sockets as a client, keeps a copy of
the jobs and hosts (mirror), and serves the page, its JSON API and /metrics from that copy
(app, with aiohttp), so the daemons carry no HTTP code and no request of the page waits on
their loops. Modules: mirror (the copy), feeds (the two sockets), metrics (prometheus_client),
live (server-sent events, bounded), access (bind address and token), app (routes), cli.
"""
