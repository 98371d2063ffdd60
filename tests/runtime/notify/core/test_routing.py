"""Alertmanager routing and inhibition semantics over compiled plans."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from resilient_templates.policy.duration import Duration
from resilient_templates.runtime.notify import routing
from resilient_templates.runtime.notify.config import compile_plan
from resilient_templates.runtime.notify.plan import InhibitPlan, Plan, parse_matcher

CHANNELS = """
channels:
  - {name: a, type: webhook, url: "https://a.example.com/hook", secret: "${A_SECRET}"}
receivers:
  - {name: team, channels: [a]}
  - {name: oncall, channels: [a]}
  - {name: infra, channels: [a]}
  - {name: ci, channels: [a]}
"""


def plan_of(tmp_path: Path, route: str, extra: str = "") -> Plan:
    path = tmp_path / "notify.yaml"
    path.write_text(CHANNELS + textwrap.dedent(route) + textwrap.dedent(extra))
    return compile_plan(path)


def labels(**overrides: str) -> dict[str, str]:
    base = {
        "workflow": "release-1",
        "namespace": "ci",
        "stage": "build",
        "category": "infrastructure",
        "severity": "error",
        "signature": "node-pressure",
        "transient": "true",
        "status": "Failed",
    }
    return {**base, **overrides}


def receivers(plan: Plan, **overrides: str) -> list[str]:
    return [m.receiver for m in routing.match(plan.route, labels(**overrides))]


TREE = """
route:
  receiver: team
  routes:
    - matchers: ['severity="critical"']
      receiver: oncall
    - matchers: ['category="infrastructure"']
      receiver: infra
    - matchers: ['stage=~"build|test"']
      receiver: ci
"""


# ---------------------------------------------------------------- matchers


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ('severity="critical"', "critical", True),
        ('severity!="critical"', "critical", False),
        ('stage=~"build|test"', "test", True),
        ('stage=~"build"', "build-and-push", False),  # anchored on both ends
        ('stage!~"pr_.*"', "pr_operations", False),
        ("team=infra", "infra", True),  # unquoted value
        ('signature=""', "", True),  # empty matches a missing label
    ],
)
def test_matcher_semantics_follow_alertmanager(text: str, value: str, expected: bool) -> None:
    """Matchers use =, !=, =~, !~ with regexes anchored on both ends, like Alertmanager."""
    matcher = parse_matcher(text)
    assert matcher.matches({matcher.name: value} if value else {}) is expected


def test_matcher_with_escaped_quote_parses() -> None:
    """A quoted matcher value may contain an escaped double quote."""
    assert parse_matcher(r'message="say \"hi\""').value == 'say "hi"'


# ---------------------------------------------------------------- route tree


def test_first_matching_child_wins(tmp_path: Path) -> None:
    """Without continue, only the first matching child route takes the alert."""
    plan = plan_of(tmp_path, TREE)
    assert receivers(plan, severity="critical") == ["oncall"]


def test_continue_lets_later_siblings_match(tmp_path: Path) -> None:
    """A matching child with continue: true lets its following siblings match too."""
    plan = plan_of(tmp_path, TREE.replace("receiver: oncall", "receiver: oncall\n      continue: true"))
    assert receivers(plan, severity="critical") == ["oncall", "infra"]


def test_node_without_matching_children_matches_itself(tmp_path: Path) -> None:
    """When no child matches, the parent node is the match (the root here)."""
    plan = plan_of(tmp_path, TREE)
    assert receivers(plan, category="code_quality", stage="deploy") == ["team"]


def test_depth_first_takes_the_deepest_match(tmp_path: Path) -> None:
    """A matching child's own matching child is chosen over the child itself."""
    plan = plan_of(
        tmp_path,
        """
        route:
          receiver: team
          routes:
            - matchers: ['category="infrastructure"']
              receiver: infra
              routes:
                - matchers: ['severity="critical"']
                  receiver: oncall
        """,
    )
    assert receivers(plan, severity="critical") == ["oncall"]
    assert receivers(plan, severity="warning") == ["infra"]


def test_children_inherit_unset_options(tmp_path: Path) -> None:
    """A child route inherits group_by and timers it does not set, and the receiver."""
    plan = plan_of(
        tmp_path,
        """
        route:
          receiver: team
          group_by: [signature]
          group_wait: 10s
          repeat_interval: 1h
          routes:
            - matchers: ['severity="critical"']
              group_interval: 1m
        """,
    )
    (match,) = routing.match(plan.route, labels(severity="critical"))
    assert (match.receiver, match.group_by) == ("team", ("signature",))
    assert (match.group_wait, match.group_interval, match.repeat_interval) == (
        Duration.parse("10s"),
        Duration.parse("1m"),
        Duration.parse("1h"),
    )


def test_alertmanager_defaults_apply_at_the_root(tmp_path: Path) -> None:
    """Unset timers default to group_wait 30s, group_interval 5m, repeat_interval 4h."""
    plan = plan_of(tmp_path, "route: {receiver: team}\n")
    route = plan.route
    assert (route.group_wait, route.group_interval, route.repeat_interval) == (
        Duration.parse("30s"),
        Duration.parse("5m"),
        Duration.parse("4h"),
    )


def test_group_by_dots_groups_by_all_labels(tmp_path: Path) -> None:
    """group_by ['...'] groups by every (non-empty) label of the alert."""
    plan = plan_of(tmp_path, "route: {receiver: team, group_by: ['...']}\n")
    (match,) = routing.match(plan.route, labels(signature=""))
    assert match.group_by is None
    assert match.group_labels(labels(signature="")) == {k: v for k, v in sorted(labels().items()) if k != "signature"}


def test_group_labels_skip_absent_labels(tmp_path: Path) -> None:
    """Grouping ignores group_by labels the alert does not carry (empty = absent)."""
    plan = plan_of(tmp_path, "route: {receiver: team, group_by: [signature, workflow]}\n")
    (match,) = routing.match(plan.route, labels(signature=""))
    assert match.group_labels(labels(signature="")) == {"workflow": "release-1"}


def test_route_keys_distinguish_sibling_routes(tmp_path: Path) -> None:
    """Two sibling routes with the same matchers get different route keys (as Alertmanager IDs)."""
    plan = plan_of(
        tmp_path,
        """
        route:
          receiver: team
          routes:
            - {matchers: ['severity="critical"'], receiver: oncall, continue: true}
            - {matchers: ['severity="critical"'], receiver: infra}
        """,
    )
    keys = [m.route_key for m in routing.match(plan.route, labels(severity="critical"))]
    assert keys == ['{}/{severity="critical"}/0', '{}/{severity="critical"}/1']


# ---------------------------------------------------------------- inhibition

RULE = InhibitPlan(
    source_matchers=(parse_matcher('category="external_dependency"'), parse_matcher('signature="github-rate-limit"')),
    target_matchers=(parse_matcher('stage="pr_operations"'),),
    equal=("workflow",),
)
SOURCE = labels(category="external_dependency", signature="github-rate-limit", stage="fetch")


def test_target_is_muted_by_firing_source_with_equal_labels() -> None:
    """A target is inhibited while a source alert with the same 'equal' labels fires."""
    target = labels(stage="pr_operations", signature="pr-conflict")
    assert routing.inhibited(target, [SOURCE], [RULE])


def test_target_is_not_muted_when_equal_labels_differ() -> None:
    """A source in another workflow does not inhibit the target."""
    target = labels(stage="pr_operations", signature="pr-conflict", workflow="other")
    assert not routing.inhibited(target, [SOURCE], [RULE])


def test_equal_label_missing_on_both_sides_counts_as_equal() -> None:
    """An 'equal' label absent from both alerts compares equal (empty == empty)."""
    rule = InhibitPlan(RULE.source_matchers, RULE.target_matchers, ("cluster",))
    target = labels(stage="pr_operations", signature="pr-conflict")
    assert routing.inhibited(target, [SOURCE], [rule])


def test_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    """An alert that matches source and target is not muted by itself."""
    both = labels(category="external_dependency", signature="github-rate-limit", stage="pr_operations")
    assert not routing.inhibited(both, [both], [RULE])


def test_two_sided_alert_is_muted_by_a_source_only_alert() -> None:
    """An alert matching both sides is still muted by a source that is not a target."""
    both = labels(category="external_dependency", signature="github-rate-limit", stage="pr_operations")
    assert routing.inhibited(both, [both, SOURCE], [RULE])


def test_no_firing_source_means_no_inhibition() -> None:
    """Without a firing source, the target is delivered."""
    assert not routing.inhibited(labels(stage="pr_operations"), [], [RULE])


# ---------------------------------------------------------------- explain


def test_explain_shows_the_path_and_receivers(tmp_path: Path) -> None:
    """The route explainer marks taken, passed-over and non-matching nodes and names receivers."""
    plan = plan_of(tmp_path, TREE)
    lines = routing.explain(plan, labels(severity="critical"))
    assert lines[0].startswith("~ route ")
    assert lines[1].startswith('  * route.routes[0] {severity="critical"} -> oncall')
    assert not any("routes[1]" in line for line in lines)  # not visited: first match won
    assert "receivers: oncall" in lines
    assert any(line.strip().startswith("oncall: channels a") for line in lines)
