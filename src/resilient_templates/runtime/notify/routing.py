"""Alertmanager routing and inhibition over a compiled plan.

Semantics, as ``dispatch/route.go`` and ``inhibit/inhibit.go`` implement them:

* ``match``: a node that matches walks its children depth-first, left to right; it stops at
  the first child that matched unless that child has ``continue: true``; when no child
  matched, the node itself is the match. The root matches everything.
* ``inhibited``: an alert is muted when some rule's target matchers match it and a firing
  source alert matches the rule's source matchers with the same values for every ``equal``
  label (absent = empty, on both sides). An alert matching both sides cannot inhibit itself:
  when the target also matches the source matchers, sources that match the target matchers
  are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ...policy.duration import Duration
from .plan import InhibitPlan, Plan, RoutePlan, matches_all

__all__ = ["RouteMatch", "explain", "group_labels", "inhibited", "match"]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A route that matched an alert, with its resolved options."""

    receiver: str
    group_by: tuple[str, ...] | None  # None = group by all labels ('...')
    group_wait: Duration
    group_interval: Duration
    repeat_interval: Duration
    route_key: str
    route_path: str

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        return group_labels(self.group_by, labels)


def group_labels(group_by: tuple[str, ...] | None, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels an alert is grouped by; empty values count as absent (Alertmanager)."""
    if group_by is None:
        return {k: v for k, v in sorted(labels.items()) if v}
    return {k: labels[k] for k in group_by if labels.get(k)}


def _to_match(route: RoutePlan) -> RouteMatch:
    return RouteMatch(
        receiver=route.receiver,
        group_by=route.group_by,
        group_wait=route.group_wait,
        group_interval=route.group_interval,
        repeat_interval=route.repeat_interval,
        route_key=route.key,
        route_path=route.path,
    )


def _match_nodes(route: RoutePlan, labels: Mapping[str, str]) -> list[RoutePlan]:
    if not matches_all(route.matchers, labels):
        return []
    found: list[RoutePlan] = []
    for child in route.routes:
        matched = _match_nodes(child, labels)
        found.extend(matched)
        if matched and not child.continue_:
            break
    return found or [route]


def match(route: RoutePlan, labels: Mapping[str, str]) -> list[RouteMatch]:
    """Every route that takes an alert with ``labels``, in Alertmanager order."""
    return [_to_match(node) for node in _match_nodes(route, labels)]


def _has_equal_source(
    rule: InhibitPlan,
    labels: Mapping[str, str],
    firing: Iterable[Mapping[str, str]],
    exclude_two_sided: bool,
) -> bool:
    for source in firing:
        if not matches_all(rule.source_matchers, source):
            continue
        if any((source.get(n) or "") != (labels.get(n) or "") for n in rule.equal):
            continue
        if exclude_two_sided and matches_all(rule.target_matchers, source):
            continue
        return True
    return False


def inhibited(
    labels: Mapping[str, str],
    firing_label_sets: Iterable[Mapping[str, str]],
    inhibit_rules: Iterable[InhibitPlan],
) -> bool:
    """Whether an alert with ``labels`` is muted by a firing alert under some inhibit rule."""
    firing = list(firing_label_sets)
    for rule in inhibit_rules:
        if not matches_all(rule.target_matchers, labels):
            continue
        two_sided = matches_all(rule.source_matchers, labels)
        if _has_equal_source(rule, labels, firing, two_sided):
            return True
    return False


def _describe(route: RoutePlan) -> str:
    matchers = ", ".join(str(m) for m in route.matchers) or "(root: matches everything)"
    group = "..." if route.group_by is None else ", ".join(route.group_by) or "-"
    flags = " continue" if route.continue_ else ""
    return (
        f"{route.path} {{{matchers}}} -> {route.receiver} "
        f"[group_by: {group}; wait {route.group_wait}, interval {route.group_interval}, "
        f"repeat {route.repeat_interval}]{flags}"
    )


def explain(plan: Plan, labels: Mapping[str, str]) -> list[str]:
    """The routing tree walk for ``labels`` as lines (like ``amtool config routes test --tree``).

    Every visited node is shown with a mark: ``*`` matched and taken, ``-`` did not match,
    ``~`` matched but a child was taken instead. The last lines name the receivers, the
    group each alert joins, and whether an inhibit rule would mute it given no other alerts.
    """
    taken = {node.path for node in _match_nodes(plan.route, labels)}
    lines: list[str] = []

    def walk(route: RoutePlan, depth: int) -> bool:
        matched = matches_all(route.matchers, labels)
        mark = "-" if not matched else ("*" if route.path in taken else "~")
        lines.append(f"{'  ' * depth}{mark} {_describe(route)}")
        if not matched:
            return False
        for child in route.routes:
            if walk(child, depth + 1) and not child.continue_:
                break
        return True

    walk(plan.route, 0)
    matches = match(plan.route, labels)
    receivers = list(dict.fromkeys(m.receiver for m in matches))
    lines.append("receivers: " + ", ".join(receivers))
    for m in matches:
        channels = ", ".join(c.name for c in plan.channels_of(m.receiver)) or "(no enabled channel)"
        group = ", ".join(f"{k}={v}" for k, v in m.group_labels(labels).items()) or "(one group)"
        lines.append(f"  {m.receiver}: channels {channels}; group {{{group}}}")
    return lines
