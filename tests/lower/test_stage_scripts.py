"""The five stages' generated containers actually work: each runs for real, wrapper included.

No Kubernetes here (none can run on these machines), so each test plays the kubelet's part:
it takes the generated template's command, args and env, applies Kubernetes' own `$(VAR)`
expansion, substitutes the Argo parameters, and runs the result with /bin/sh. Paths under
/workspace and /tmp/rt are moved into the test's directory; `git` is a stub; the PR stage talks
to a real HTTP server on 127.0.0.1 that answers like GitHub's REST API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from resilient_templates.lower import pipeline_template
from resilient_templates.stages.pipeline import build_pipeline

PYTHON3 = shutil.which("python3")


@pytest.fixture(scope="module")
def templates() -> dict:
    spec = pipeline_template(build_pipeline(), hints=[]).to_dict()["spec"]
    return {t["name"]: t for t in spec["templates"]}


def k8s_expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion of command/args/env (third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":  # escaped operator
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end == -1:
                    out.append("$(")
                    i += 2
                    continue
                name = value[i + 2 : end]
                out.append(env.get(name, f"$({name})"))
                i = end + 1
                continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


def test_kubernetes_expansion_leaves_every_generated_string_intact(templates):
    """No `$$` or `$(ENV_NAME)` in commands, args or env that Kubernetes would rewrite."""
    for name, template in templates.items():
        container = template.get("container")
        if not container:
            continue
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        for text in [*container.get("command", []), *container.get("args", []), *env.values()]:
            assert k8s_expand(text, env) == text, name


def _run_stage(template: dict, tmp: Path, inputs: dict[str, str], extra_env: dict[str, str],
               path: str) -> tuple[int, dict, str]:  # fmt: skip
    """Run one generated container as the kubelet would; returns (exit code, context, output)."""
    container = template["container"]
    workspace, rt = tmp / "workspace", tmp / "rt"
    (workspace / "repo").mkdir(parents=True, exist_ok=True)  # as the clone stage left it

    def subst(text: str) -> str:
        text = re.sub(r"\{\{inputs\.parameters\.([a-zA-Z0-9_-]+)\}\}", lambda m: inputs[m[1]], text)
        text = text.replace("{{retries}}", "0")
        return text.replace("/workspace", str(workspace)).replace("/tmp/rt", str(rt))

    env = {"PATH": path, "HOME": str(tmp), "RT_TERMINATION_LOG": str(tmp / "termination-log")}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = subst(item["value"])
    env.update(extra_env)
    argv = [subst(k8s_expand(a, env)) for a in [*container["command"], *container["args"]]]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, cwd=tmp)
    context_file = rt / "error-context.json"
    context = json.loads(context_file.read_text()) if context_file.exists() else {}
    return proc.returncode, context, proc.stdout + proc.stderr


@pytest.fixture
def stub_bin(tmp_path: Path) -> str:
    """A PATH with a stub `git` (clone/checkout/rev-parse/config) in front of the system's."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    git = bindir / "git"
    git.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  clone) for a; do dest=$a; done; mkdir -p "$dest/.git"; echo "Cloning into $dest" ;;\n'
        '  checkout) [ "$3" = missing-ref ] && { echo "error: pathspec \'$3\' did not match any file(s) known to git" >&2; exit 1; }; true ;;\n'
        "  rev-parse) echo 3f5a9c2e1b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a ;;\n"
        "  config) true ;;\n"
        "esac\n"
    )
    git.chmod(git.stat().st_mode | stat.S_IEXEC)
    return f"{bindir}:{os.environ['PATH']}"


def test_clone_writes_its_commit_output(templates, tmp_path, stub_bin):
    """repository-clone succeeds and writes the commit output file (its directory pre-exists)."""
    rc, ctx, out = _run_stage(templates["repository-clone"], tmp_path,
                              {"repo-url": "https://example.com/r.git", "revision": "main"}, {},
                              stub_bin)  # fmt: skip
    assert rc == 0, out
    assert ctx["ok"] is True
    assert (tmp_path / "rt" / "commit").read_text().strip() == "3f5a9c2e1b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a"


def test_clone_of_a_missing_ref_fails_with_its_log(templates, tmp_path, stub_bin):
    """A missing ref fails the attempt; the error context keeps git's message."""
    rc, ctx, _ = _run_stage(templates["repository-clone"], tmp_path,
                            {"repo-url": "https://example.com/r.git", "revision": "missing-ref"}, {},
                            stub_bin)  # fmt: skip
    assert rc == 1 and "did not match any file(s) known to git" in ctx["log_tail"]


@pytest.mark.parametrize(
    ("template", "command_input", "command", "expected"),
    [
        ("code-analysis", "analysis-command", "echo lint ok", 0),
        ("code-analysis", "analysis-command", "echo 'E501 line too long'; exit 3", 3),
        ("test-execution", "test-command", "echo '1 failed'; exit 1", 1),
        ("coverage-analysis", "coverage-command", "echo 'TOTAL 91%'", 0),
        ("coverage-analysis", "coverage-command",
         "echo 'Coverage failure: total of 50 is less than fail-under=80'; exit 2", 2),
    ],
)  # fmt: skip
def test_command_stages_keep_the_commands_exit_status(
    templates, tmp_path, stub_bin, template, command_input, command, expected
):
    """Analysis, tests and coverage exit with their command's status (no pipe hides it)."""
    inputs = {command_input: command, command_input.replace("command", "image"): "unused"}
    rc, ctx, out = _run_stage(templates[template], tmp_path, inputs, {}, stub_bin)
    assert rc == expected, out
    assert ctx["ok"] is (expected == 0)
    if template == "coverage-analysis":
        assert (tmp_path / "rt" / "coverage.txt").exists()


class FakeGitHub:
    """GitHub's pulls API on 127.0.0.1: list open PRs, create one; scripted failures."""

    def __init__(self) -> None:
        self.existing: list[dict] = []
        self.post_status = 201
        self.list_status = 200
        self.posts = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, body, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if owner.list_status == 429:
                    return self._reply(429, {"message": "API rate limit exceeded"},
                                       {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1800000000"})  # fmt: skip
                self._reply(owner.list_status, owner.existing)

            def do_POST(self) -> None:
                owner.posts += 1
                self.rfile.read(int(self.headers["Content-Length"]))
                if owner.post_status == 201:
                    return self._reply(201, {"html_url": "https://github.com/o/r/pull/7"})
                self._reply(owner.post_status, {"message": "Server Error"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github():
    server = FakeGitHub()
    yield server
    server.close()


PR_INPUTS = {"repo": "o/r", "head": "feature", "base": "main", "pr-title": "Automated changes"}


@pytest.mark.skipif(PYTHON3 is None, reason="python3 not on PATH")
@pytest.mark.parametrize(
    ("existing", "list_status", "post_status", "expected_rc", "expected_posts"),
    [
        ([], 200, 201, 0, 1),  # creates the PR
        ([{"html_url": "https://github.com/o/r/pull/3"}], 200, 201, 0, 0),  # finds it: no POST
        ([], 429, 201, 75, 0),  # rate limited before acting: safe to retry
        ([], 200, 502, 1, 1),  # 5xx after the POST: may exist, not retried
    ],
)
def test_pull_request_stage_is_find_or_create_and_exits_75_only_when_safe(
    templates, tmp_path, stub_bin, github, existing, list_status, post_status, expected_rc,
    expected_posts,
):  # fmt: skip
    """The PR stage finds or creates the PR, and exits 75 only when GitHub did not act."""
    github.existing, github.list_status, github.post_status = existing, list_status, post_status
    rc, ctx, out = _run_stage(templates["pr-operations"], tmp_path, PR_INPUTS,
                              {"GITHUB_API": github.url, "GITHUB_TOKEN": "test-token"}, stub_bin)  # fmt: skip
    assert (rc, github.posts) == (expected_rc, expected_posts), out
    if expected_rc == 0:
        assert (tmp_path / "rt" / "pr-url").read_text().startswith("https://github.com/o/r/pull/")
    if expected_rc == 75:
        assert "x-ratelimit-reset: 1800000000" in ctx["log_tail"]


def test_exit_handler_steps_are_bounded_and_guarded(templates):
    """Runtime pods have a timeout (exit handlers ignore the workflow deadline) and notify's
    argument tolerates an analyze pod that produced no output."""
    assert templates["rt-analyze"]["timeout"] == "10m" and templates["rt-notify"]["timeout"] == "10m"
    notify_step = templates["exit-handler"]["steps"][1][0]
    (argument,) = notify_step["arguments"]["parameters"]
    assert argument["value"] == "{{=steps.analyze.outputs?.parameters?.analysis ?? '[]'}}"
    assert yaml.safe_dump(templates["exit-handler"]).count("{{steps.analyze") == 0
