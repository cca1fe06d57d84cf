"""The alerts: rules evaluated on every check, on the check's own timestamps (so tests run them
on a fake clock). Each rule has a condition and how long it must hold before it fires:

- ``service_down``: a service the backend marks critical (``details["critical"]``) unhealthy
  for ``[incidents] open_after`` checks in a row (pages within open_after checks);
- ``target_unreachable``: the health API did not answer for ``open_after`` checks in a row or
  for ``unreachable_for``, whichever comes first;
- ``breaker_open``: a service's breaker not closed for ``breaker_open_for`` (5 min);
- ``health_check_failure_rate``: over ``window``, more than ``check_failure_rate`` (50 %) of a
  service's samples show a failing health check, *and the latest one still fails*;
- ``db_pool_exhausted``: the database pool refused callers within ``window``;
- ``s3_failure_rate``: over ``window``, more than ``s3_failure_rate`` (30 %) of S3 calls failed or
  were refused (from the ``s3`` breaker's counters), *and the latest step of the counters has
  failures or the breaker is not closed* — a window of old failures does not outlive recovery.

A ``[[checks]]`` entry (issue #16) has no health API and no services: the rules above never judge
its runs, and two of its own do:

- ``check_failing``: a run unhealthy, unreachable or unknown for ``open_after`` runs in a row or
  for ``unreachable_for``, whichever comes first (``Front door: [STATUS] == 200 failed: got 503
  since 22:41:03 UTC``);
- ``certificate_expiring``: a ``tls`` check healthy with a warning (the certificate expires
  within ``warn_days``): fires at once, its summary the warning. A warning holds back no other
  rule's page on its component (the same certificate falling below ``min_days`` pages as
  ``check_failing``).

Conditions are judged again at every check with the current figures, which a firing alert's
text follows; an alert resolves once its condition has been clear for ``[alerts] hold_down``
seconds (a flapping outage is one alert, one firing and one resolved notice). One cause is one
page: while one of these alerts fires for a component, another rule's condition on the same
component fires no second alert (a critical service down is ``service_down`` alone; S3 down is
the first of its rules to hold, not three pages as its health checks and breaker catch up); the
condition fires if it still holds once the first has resolved. Silences hold
notices, acks stop reminders (:mod:`monitor.alerting.engine` says how), and conditions judged
outside the engine (the monitor's self-alerts) live the same life through
:meth:`AlertEngine.report`.

A target may run as several replicas (ARCHITECTURE §11), each its own process with its own
breakers and counters. Every condition is therefore judged on each replica's own samples: the
samples of a service sit in a window of one replica *and one process* (its instance id and start
time), so counters are only ever compared with the same process's earlier counters — a restart,
whose counters start again from 0, opens a fresh window instead of looking like a spike, and two
replicas' counters are never read as one rising and falling. How long (and for how many checks)
a condition has held is tracked per replica. The alert itself stays one per (rule, target,
service): it fires once the condition has held for the rule's time on at least one replica,
starts clearing when it holds on none, and its summary says on how many replicas and which. A
record observed without replicas is the target's one replica, as before the fleet.

An alert's transition is written first and announced after: a monitor that lost its leadership
(``LeaseLost`` from the fenced write) neither pages anyone nor believes an alert fires that the
store never took. The store is also the notices' outbox: once a notice is handled (every sink
delivered it or gave up, or a silence held it), the engine marks it in the alert's row with a
fenced write. A monitor that resumes — the next leader, or this one restarted — sends every
notice still unmarked, firing or resolved, so a leader killed (or its node lost) before its
webhook went out does not lose the page: notices are delivered at least once, a duplicate only
when a leader dies between delivery and mark, and each carries an idempotency key for the
receiver to drop it (:mod:`monitor.notifiers`).
"""

from __future__ import annotations

from monitor.alerting.engine import AlertEngine

__all__ = ["AlertEngine"]
