"""Settings for the whole suite.

Hypothesis: no per-example deadline and no "too slow" health check. CI has 2 cores shared by
daemons, agents and jobs that the other tests start, so timing-based checks would make
property tests flaky without making them stricter; each test bounds its own example count.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
