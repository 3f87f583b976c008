"""`/metrics`: the controller in Prometheus' text format, made by prometheus_client.

Two kinds of numbers, in one registry of our own (never the library's global one):
- counted here, as the mirror takes jobs in: jobs finished by outcome (a job counts once, when
  it is first seen finished, so the counter matches the job table while pcontrol keeps its jobs),
  and histograms of dispatch latency (submission or requeue to start) and run time;
- read from pcontrol's last `status` and `hosts` answers at scrape time: jobs by state, finished
  jobs in its table by outcome, hosts by state, queue depth, slots, agent round-trip time, and
  its journal's write-time histogram;
- read from the sched server's last `status -json` summary: who leads its pool, since when, and
  the token (sched --serve --ha), and whether the member the page follows leads.

A scrape reads only this process's memory: it never waits for pcontrol.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

#: Buckets (seconds) of the dispatch latency and run time histograms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RUN_TIME_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)


class _ControllerCollector(Collector):
    """The gauges read from pcontrol's last answers (kept by `Metrics.status_seen`)."""

    def __init__(self, metrics: "Metrics"):
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        status = self._metrics.status
        up = GaugeMetricFamily("pcontrol_up", "1 when the page's process is connected to pcontrol")
        up.add_metric([], 1.0 if self._metrics.connected else 0.0)
        yield up
        if status is None:
            return
        jobs = GaugeMetricFamily("pcontrol_jobs", "jobs in pcontrol's table by state",
                                 labels=["state"])
        for state, count in sorted(status.get("jobs", {}).items()):
            jobs.add_metric([state], count)
        yield jobs
        outcomes = GaugeMetricFamily("pcontrol_jobs_done", "finished jobs in pcontrol's table "
                                     "by outcome", labels=["outcome"])
        for outcome, count in sorted(status.get("outcomes", {}).items()):
            outcomes.add_metric([outcome], count)
        yield outcomes
        hosts = GaugeMetricFamily("pcontrol_hosts", "hosts by state", labels=["state"])
        for state, count in sorted(status.get("hosts", {}).items()):
            hosts.add_metric([state], count)
        yield hosts
        queue = GaugeMetricFamily("pcontrol_queue_depth", "jobs waiting for a slot (PENDING)")
        queue.add_metric([], status.get("jobs", {}).get("PENDING", 0))
        yield queue
        slots = GaugeMetricFamily("pcontrol_slots", "slots of the connected hosts",
                                  labels=["kind"])
        for kind, count in sorted(status.get("slots", {}).items()):
            slots.add_metric([kind], count)
        yield slots
        yield from self._agents()
        yield from self._journal(status.get("journal") or {})

    def _agents(self) -> Iterator[Metric]:
        rtt = GaugeMetricFamily("pcontrol_agent_rtt_seconds", "round trip of the last ping to "
                                "each connected host's agent", labels=["host"])
        for host in self._metrics.hosts:
            value = (host.get("agent") or {}).get("rtt")
            if value is not None and host.get("state") in ("IDLE", "BUSY"):
                rtt.add_metric([host["name"]], value)
        yield rtt

    def _journal(self, journal: dict[str, Any]) -> Iterator[Metric]:
        writes = journal.get("write_seconds")
        if not writes:
            return
        family = HistogramMetricFamily("pcontrol_journal_write_seconds",
                                       "time of each journal transaction")
        buckets = [(bound, float(count)) for bound, count in writes["buckets"]]
        family.add_metric([], [(_bucket_label(b), c) for b, c in buckets],
                          sum_value=writes["sum"])
        yield family
        backlog = GaugeMetricFamily("pcontrol_journal_backlog", "objects waiting to be written")
        backlog.add_metric([], journal.get("backlog", 0))
        yield backlog


class _SchedCollector(Collector):
    """Who leads the pool of sched servers (sched --serve --ha), from the last `status -json`
    summary of the server the page follows (a standby's is the leader's, relayed)."""

    def __init__(self, metrics: "Metrics"):
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        summary = self._metrics.sched_summary
        up = GaugeMetricFamily("sched_up", "1 when the page's process has the sched server's status")
        up.add_metric([], 1.0 if summary is not None else 0.0)
        yield up
        ha = (summary or {}).get("ha")
        if not ha or ha.get("leader") is None:
            return
        leader = GaugeMetricFamily("sched_ha_leader", "1 for the member of the pool that leads",
                                   labels=["member"])
        leader.add_metric([str(ha["leader"])], 1.0)
        yield leader
        token = GaugeMetricFamily("sched_ha_token", "the leader's fencing token (its lease's revision in etcd)")
        token.add_metric([], float(ha.get("token") or 0))
        yield token
        if ha.get("since") is not None:
            since = GaugeMetricFamily("sched_ha_leader_since_seconds", "when the leader took the lead (Unix time)")
            since.add_metric([], float(ha["since"]))
            yield since
        lease = GaugeMetricFamily("sched_ha_lease_seconds", "the leader's lease: the longest a dead leader "
                                  "stays unreplaced")
        lease.add_metric([], float(ha.get("ttl") or 0))
        yield lease
        member = self._metrics.sched_member
        if member:
            mine = GaugeMetricFamily("sched_ha_this_member_leads", "1 when the member the page follows "
                                     "leads, 0 while it stands by", labels=["member"])
            mine.add_metric([member], 1.0 if member == ha["leader"] else 0.0)
            yield mine


def _bucket_label(bound: Any) -> str:
    return "+Inf" if bound in ("+Inf", None) else repr(float(bound))


class Metrics:
    """The registry and what feeds it; a MirrorListener of the job mirror."""

    def __init__(self) -> None:
        disable_created_metrics()      # `_created` series: noise for counters that start with us
        self.registry = CollectorRegistry(auto_describe=True)
        self.status: dict[str, Any] | None = None
        self.hosts: list[dict[str, Any]] = []
        self.connected = False
        self.sched_summary: dict[str, Any] | None = None
        self.sched_member = ""
        self.finished = Counter("pcontrol_jobs_finished", "jobs seen to finish, by outcome "
                                "(ok: exit status 0)", ["outcome", "ok"], registry=self.registry)
        self.dispatch = Histogram("pcontrol_job_dispatch_latency_seconds",
                                  "from submission (or requeue) to start on a host",
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self.run_time = Histogram("pcontrol_job_run_seconds", "run time of finished jobs",
                                  buckets=RUN_TIME_BUCKETS, registry=self.registry)
        self.registry.register(_ControllerCollector(self))
        self.registry.register(_SchedCollector(self))

    # -- MirrorListener ---------------------------------------------------------------------

    def job_seen(self, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        started = record.get("started")
        if started is not None and (before is None or before.get("started") != started):
            since = record.get("queued") or record.get("submitted")
            if since is not None:
                self.dispatch.observe(max(0.0, started - since))
        if record.get("state") == "DONE" and (before is None or before.get("state") != "DONE"):
            ok = record.get("outcome") == "EXIT" and record.get("status") == 0
            self.finished.labels(record.get("outcome") or "UNKNOWN", "true" if ok else "false").inc()
            if record.get("elapsed") is not None:
                self.run_time.observe(record["elapsed"])

    def hosts_seen(self, records: Sequence[dict[str, Any]]) -> None:
        self.hosts = list(records)

    # -- pcontrol's answers -----------------------------------------------------------------

    def status_seen(self, status: dict[str, Any] | None, connected: bool) -> None:
        self.status = status
        self.connected = connected

    # -- the sched server's answers (a SchedListener) -------------------------------------------

    def sched_seen(self, summary: dict[str, Any] | None, member: str) -> None:
        self.sched_summary = summary
        self.sched_member = member

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The body and its Content-Type for a scraper's Accept header (the library's own
        negotiation: Prometheus' text format 0.0.4 unless OpenMetrics is asked for)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
