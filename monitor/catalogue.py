"""The component catalogue as the daemon keeps it: every target and the services named in its
config, the services a backend reports beyond those, whether each service is critical, and every
``[[checks]]`` entry (issue #16).

Display names and groups come from ``monitor.toml``; a service the config does not name gets a
place behind its target's others (positions are blocks of :data:`POSITIONS_PER_TARGET` per
target, so nothing is renumbered). Whether a service is critical is what the backend says in
``/detailed``: the store keeps it (a critical service down is a major outage on the page), and
the daemon writes a component again only when that changes — once, not at every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from monitor.config import MonitorConfig, Target
from monitor.impact import sample_critical
from monitor.store import TARGET_COMPONENT, CheckRecord, Component

POSITIONS_PER_TARGET = 10_000
"""Catalogue positions are blocks per target, so a discovered service slots in behind its
target's others without renumbering (and rewriting) the rest of the catalogue."""

Key = tuple[str, str]


def catalogue(config: MonitorConfig) -> list[Component]:
    """Display names and groups for every target and the services named in its config, each
    target's in a block of ``POSITIONS_PER_TARGET`` positions; then every ``[[checks]]`` entry
    (a component of its own, with its kind, public only when its config says so), in config
    order in the block after the targets' (a check has no services to slot in behind it)."""
    components: list[Component] = []
    for index, target in enumerate(config.targets):
        block = index * POSITIONS_PER_TARGET
        components.append(
            Component(target.name, TARGET_COMPONENT, target.title, target.group, block)
        )
        for n, service in enumerate(target.services, start=1):
            components.append(
                Component(
                    target.name, service, target.service_title(service), target.group, block + n
                )
            )
    checks = len(config.targets) * POSITIONS_PER_TARGET
    for n, check in enumerate(config.checks):
        components.append(
            Component(
                check.name,
                TARGET_COMPONENT,
                check.title,
                check.group,
                checks + n,
                kind=check.kind.value,
                public=check.public,
            )
        )
    return components


class Catalogue:
    def __init__(self, config: MonitorConfig) -> None:
        self._config = config
        self.configured = catalogue(config)
        """The components the config names (written at start)."""
        self._known = {(c.target, c.service) for c in self.configured}
        self._components = {(c.target, c.service): c for c in self.configured}
        """Each component as the catalogue has it (config and discovered), to write it again."""
        self._critical: dict[Key, bool] = {}
        """Whether the backend marks each service critical, as the store has it."""
        self._next_position = {
            target: max(c.position for c in self.configured if c.target == target) + 1
            for target in {c.target for c in self.configured}
        }

    def stored(self, components: Iterable[Component]) -> None:
        """What the store holds (read at start): its critical flags are what this daemon knows."""
        self._critical = {(c.target, c.service): c.critical for c in components}

    def to_write(self, target: Target, record: CheckRecord) -> list[Component]:
        """The components to write with the check: services the config does not name (a place
        and a title in the catalogue), and known ones whose criticality the backend now says
        otherwise than the store has it. An answer that says nothing of it (from ``/``) changes
        nothing."""
        changed: list[Component] = []
        new: list[tuple[str, bool]] = []
        for sample in record.services:
            key = (target.name, sample.service)
            critical = sample_critical(sample)
            if key not in self._known:
                new.append((sample.service, bool(critical)))
            elif critical is not None and critical != self._critical.get(key, False):
                known = self._components.get(key)
                if known is not None:
                    changed.append(dataclasses.replace(known, critical=critical))
        if not new:
            return changed
        position = self._next_position.get(target.name, self._block(target))
        return changed + [
            Component(
                target.name, service, target.service_title(service), target.group, n, critical
            )
            for n, (service, critical) in enumerate(new, start=position)
        ]

    def written(self, target: Target, components: list[Component]) -> None:
        """``components`` (from :meth:`to_write`) are in the store now."""
        fresh = [c for c in components if (c.target, c.service) not in self._known]
        self._known.update((c.target, c.service) for c in fresh)
        self._components.update(((c.target, c.service), c) for c in components)
        self._critical.update(((c.target, c.service), c.critical) for c in components)
        if fresh:
            self._next_position[target.name] = fresh[-1].position + 1

    def _block(self, target: Target) -> int:
        return self._config.targets.index(target) * POSITIONS_PER_TARGET
