"""The DSL: plain frozen values describing stages and pipelines.

Constructing a value has no side effects (no ambient Hera context): build them in any order,
compare them, keep them in modules. ``resilient_templates.lower`` turns them into Hera objects,
the only place Hera is imported.

    clone = Stage(
        name="repository_clone",
        image="alpine/git:v2.47.2",
        script="git clone --depth 1 \"$REPO_URL\" /workspace/repo",
        retry=Retry(3, Exponential("30s", cap="2m"), attempt_timeout="10m"),
        resources=Resources(cpu_request="200m", memory_request="256Mi", memory_limit="1Gi"),
    )
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from .errors import PolicyError
from .policy import Duration, DurationLike, Resources, Retry

__all__ = [
    "ApprovalGate",
    "ExitHandler",
    "Output",
    "Param",
    "Pipeline",
    "SecretEnv",
    "Stage",
    "kebab",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PARAM = re.compile(r"^[a-zA-Z0-9_-]+$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def kebab(name: str) -> str:
    """``repository_clone`` → ``repository-clone`` (Argo template and Kubernetes names)."""
    return name.replace("_", "-")


def _frozen_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted((value or {}).items())))


@dataclass(frozen=True, slots=True)
class Param:
    """A template input (or workflow argument); ``default=None`` means required."""

    name: str
    default: str | None = None
    description: str = ""
    enum: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _PARAM.match(self.name):
            raise PolicyError(f"parameter name {self.name!r} must match [a-zA-Z0-9_-]+")
        if self.enum and self.default is not None and self.default not in self.enum:
            raise PolicyError(f"parameter {self.name!r}: default {self.default!r} not in {self.enum}")


@dataclass(frozen=True, slots=True)
class Output:
    """An output parameter read from a file the stage writes; ``default`` when it does not."""

    name: str
    path: str
    default: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not _PARAM.match(self.name):
            raise PolicyError(f"output name {self.name!r} must match [a-zA-Z0-9_-]+")


@dataclass(frozen=True, slots=True)
class SecretEnv:
    """An environment variable from a Kubernetes Secret key (never inlined)."""

    env: str
    secret: str
    key: str
    optional: bool = False

    def __post_init__(self) -> None:
        if not _ENV.match(self.env):
            raise PolicyError(f"environment variable name {self.env!r} is not valid")


@dataclass(frozen=True, slots=True)
class Stage:
    """One pipeline stage: a container command with its resilience policy.

    ``name`` is the config key (``repository_clone``); the Argo template is ``kebab(name)``.
    Give either ``command`` (argv) or ``script`` (run by ``/bin/sh -c``). ``env`` values may
    use Argo tags such as ``{{inputs.parameters.repo-url}}``.
    """

    name: str
    image: str
    command: tuple[str, ...] = ()
    script: str | None = None
    retry: Retry = field(default_factory=Retry.none)
    resources: Resources = field(default_factory=Resources)
    inputs: tuple[Param, ...] = ()
    outputs: tuple[Output, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    workspace: str | None = "/workspace"  # mount path of the pipeline's shared volume, or None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise PolicyError(
                f"stage name {self.name!r} must be snake_case ([a-z][a-z0-9_]*), e.g. 'unit_tests'"
            )
        if len(kebab(self.name)) > 63:
            raise PolicyError(f"stage name {self.name!r} is longer than 63 characters")
        if not self.image:
            raise PolicyError(f"stage {self.name!r} needs an image")
        if bool(self.command) == bool(self.script):
            raise PolicyError(f"stage {self.name!r} needs exactly one of command or script")
        object.__setattr__(self, "command", tuple(self.command))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "secret_env", tuple(self.secret_env))
        object.__setattr__(self, "env", _frozen_map(self.env))
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        for kind, names in (
            ("input", [p.name for p in self.inputs]),
            ("output", [o.name for o in self.outputs]),
            ("env", [*self.env, *(s.env for s in self.secret_env)]),
        ):
            dupes = sorted(n for n, count in Counter(names).items() if count > 1)
            if dupes:
                raise PolicyError(f"stage {self.name!r} declares {kind} {dupes[0]!r} twice")
        if "error-context" in {o.name for o in self.outputs}:
            raise PolicyError(f"stage {self.name!r}: output name 'error-context' is reserved")
        for key in self.env:
            if not _ENV.match(key) or key.startswith("RT_"):
                raise PolicyError(
                    f"stage {self.name!r}: env name {key!r} is invalid or uses the reserved RT_ prefix"
                )

    @property
    def template_name(self) -> str:
        return kebab(self.name)

    def with_(self, **changes: object) -> Stage:
        """A copy with some fields replaced: ``stage.with_(retry=Retry(5, Fixed("10s")))``."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ApprovalGate:
    """A manual-intervention point: the pipeline suspends before ``before`` until a human decides.

    Lowered to an Argo suspend node with ``duration`` and a supplied ``decision`` output whose
    default applies when nobody answers in time (argo-semantics §3.2). The gated stage runs only
    when the decision is ``approve``.
    """

    before: str
    name: str = "approve"
    timeout: Duration = field(default_factory=lambda: Duration.of(hours=4))
    default: str = "reject"
    description: str = "Approve to continue; reject to skip."

    def __init__(
        self,
        before: str,
        name: str = "approve",
        timeout: DurationLike = "4h",
        default: str = "reject",
        description: str = "Approve to continue; reject to skip.",
    ) -> None:
        object.__setattr__(self, "before", before)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "timeout", Duration.parse(timeout))
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "description", description)
        if default not in ("approve", "reject"):
            raise PolicyError(f"approval default must be 'approve' or 'reject', got {default!r}")
        if not self.timeout:
            raise PolicyError("approval timeout must be greater than 0s (0 would wait forever)")
        if not _DNS1123.match(name):
            raise PolicyError(f"approval gate name {name!r} must be a DNS-1123 label")


@dataclass(frozen=True, slots=True)
class ExitHandler:
    """The failure path run by ``spec.onExit``: analyse, then notify, only when the run failed.

    ``resolve_on_success`` adds a step that resolves the workflow's open incidents when a run
    (e.g. after ``argo retry``) succeeds. It costs one runtime pod on every successful run, so it
    is off by default: a run in which nothing fails creates no pod beyond its stages. Without
    it, incidents are resolved with ``resilient-runtime resolve --workflow NAME`` or an ack.
    """

    runtime_image: str
    notify_config: str = "resilient-notify"  # ConfigMap holding the notification plan
    secrets: str = "resilient-notify-secrets"  # Secret exposed as env to the notify step
    state_secret: str = "resilient-state"  # Secret with key 'url' naming the shared state store
    resolve_on_success: bool = False


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Stages wired into one DAG WorkflowTemplate.

    ``dependencies`` maps a stage to the stages it waits for; by default each stage waits for
    the previous one (a chain in declaration order).
    """

    name: str
    stages: tuple[Stage, ...]
    parameters: tuple[Param, ...] = ()
    dependencies: Mapping[str, tuple[str, ...]] | None = None
    deadline: Duration | None = None
    service_account: str = "resilient-pipeline"
    namespace: str | None = None
    pod_gc: str = "OnPodSuccess"
    ttl_after_success: Duration | None = None
    ttl_after_failure: Duration | None = None
    gate: ApprovalGate | None = None
    on_exit: ExitHandler | None = None
    workspace_size: str | None = "1Gi"  # a per-run volumeClaimTemplate mounted by stages
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _DNS1123.match(self.name):
            raise PolicyError(f"pipeline name {self.name!r} must be a DNS-1123 label")
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "parameters", tuple(self.parameters))
        object.__setattr__(self, "labels", _frozen_map(self.labels))
        for name in ("deadline", "ttl_after_success", "ttl_after_failure"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Duration.parse(value))
        if not self.stages:
            raise PolicyError(f"pipeline {self.name!r} has no stages")
        names = [s.name for s in self.stages]
        dupes = sorted(n for n, count in Counter(names).items() if count > 1)
        if dupes:
            raise PolicyError(f"pipeline {self.name!r} has two stages named {dupes[0]!r}")
        deps = self.resolved_dependencies()
        known = set(names)
        for stage, upstream in deps.items():
            for up in upstream:
                if up not in known:
                    raise PolicyError(
                        f"pipeline {self.name!r}: stage {stage!r} depends on unknown stage {up!r}"
                    )
        self._check_acyclic(deps)
        if self.gate is not None and self.gate.before not in names:
            raise PolicyError(
                f"pipeline {self.name!r}: approval gate guards unknown stage {self.gate.before!r}"
            )
        if self.pod_gc not in (
            "", "OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess",
        ):  # fmt: skip
            raise PolicyError(f"pipeline {self.name!r}: unknown podGC strategy {self.pod_gc!r}")

    def resolved_dependencies(self) -> dict[str, tuple[str, ...]]:
        if self.dependencies is not None:
            return {s.name: tuple(self.dependencies.get(s.name, ())) for s in self.stages}
        names = [s.name for s in self.stages]
        return {n: ((names[i - 1],) if i else ()) for i, n in enumerate(names)}

    def _check_acyclic(self, deps: Mapping[str, Sequence[str]]) -> None:
        """Kahn's algorithm (iterative: a 10,000-stage chain must not hit the recursion limit)."""
        waiting = {stage: len(set(upstream)) for stage, upstream in deps.items()}
        children: dict[str, list[str]] = {stage: [] for stage in deps}
        for stage, upstream in deps.items():
            for up in set(upstream):
                children[up].append(stage)
        ready = [stage for stage, count in waiting.items() if count == 0]
        while ready:
            for child in children[ready.pop()]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
        stuck = {stage for stage, count in waiting.items() if count}
        if stuck:
            node, path = min(stuck), []
            while node not in path:  # walk upstream inside the stuck set until a node repeats
                path.append(node)
                node = min(u for u in deps[node] if u in stuck)
            cycle = " -> ".join(reversed([*path[path.index(node) :], node]))
            raise PolicyError(f"pipeline {self.name!r} has a dependency cycle: {cycle}")

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def downstream(self, name: str) -> tuple[str, ...]:
        """Every stage that (transitively) waits for ``name``, in declaration order."""
        deps = self.resolved_dependencies()
        blocked: set[str] = set()
        changed = True
        while changed:
            changed = False
            for stage, upstream in deps.items():
                if stage not in blocked and (name in upstream or blocked & set(upstream)):
                    blocked.add(stage)
                    changed = True
        return tuple(s.name for s in self.stages if s.name in blocked)

    def with_(self, **changes: object) -> Pipeline:
        return replace(self, **changes)
