"""Checks beyond the health API (``[[checks]]``, ARCHITECTURE §9): the front door over HTTP, a
port over TCP, a name in DNS, a certificate over TLS, PostgreSQL itself.

A check is a component of its own (its name is its key, it has no services and no replicas):
stored, rolled up, alerted on and, when ``public``, shown on the status page like a target.
:mod:`monitor.checks.spec` holds the values, :mod:`monitor.checks.conditions` the condition
language, :mod:`monitor.checks.run` runs one check of any kind.
"""
