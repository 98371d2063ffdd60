"""PR operations: open (or find) the pull request for the pipeline's branch.

Creating a pull request is not idempotent, so this stage retries only failures that prove the
request was not carried out (``RetryOn.SAFE``): the pod never started its main container, or
the command itself exited 75 because GitHub refused before acting (rate limited: 429, or 403
with ``x-ratelimit-remaining: 0`` / a secondary-rate-limit message) or the connection failed
before the request was sent. A 5xx after the POST is NOT retried: the PR may exist.
Spec default: 3 attempts, exponential backoff (60s, 120s: GitHub asks for at least a minute
after a secondary rate limit).
"""

from resilient_templates.dsl import Output, Param, SecretEnv, Stage
from resilient_templates.policy import Exponential, Resources, Retry, RetryOn

SCRIPT = r'''set -eu
python3 - <<'PY'
import json, os, sys, urllib.error, urllib.request

API = os.environ.get("GITHUB_API", "https://api.github.com").rstrip("/")
REPO, HEAD, BASE = os.environ["PR_REPO"], os.environ["PR_HEAD"], os.environ["PR_BASE"]
SAFE_TO_RETRY = 75  # EX_TEMPFAIL: GitHub did not act on the request

def call(method, path, body=None):
    req = urllib.request.Request(API + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Accept": "application/vnd.github+json", "User-Agent": "resilient-templates",
                 "Authorization": "Bearer " + os.environ["GITHUB_TOKEN"],
                 "X-GitHub-Api-Version": "2022-11-28"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace")
        limited = err.code == 429 or (err.code == 403 and (
            err.headers.get("x-ratelimit-remaining") == "0" or "rate limit" in text.lower()))
        print(f"GitHub {method} {path}: HTTP {err.code}: {text[:500]}", file=sys.stderr)
        if limited:
            print(f"x-ratelimit-reset: {err.headers.get('x-ratelimit-reset', '')}", file=sys.stderr)
            sys.exit(SAFE_TO_RETRY)
        if method == "GET" and err.code >= 500:
            sys.exit(SAFE_TO_RETRY)  # reads have no side effect
        return err.code, json.loads(text or "{}")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        print(f"GitHub {method} {path}: {err}", file=sys.stderr)
        # a failure before any response: only a GET is known not to have acted
        sys.exit(SAFE_TO_RETRY if method == "GET" or "refused" in str(err) else 1)

owner = REPO.split("/")[0]
status, existing = call("GET", f"/repos/{REPO}/pulls?state=open&head={owner}:{HEAD}&base={BASE}")
if status == 200 and existing:
    url = existing[0]["html_url"]
    print(f"pull request already open: {url}")
else:
    status, created = call("POST", f"/repos/{REPO}/pulls", {
        "title": os.environ["PR_TITLE"], "head": HEAD, "base": BASE,
        "body": os.environ.get("PR_BODY", ""), "draft": os.environ.get("PR_DRAFT") == "true"})
    if status != 201:
        print(f"could not create the pull request: HTTP {status}: {created}", file=sys.stderr)
        sys.exit(1)
    url = created["html_url"]
    print(f"opened {url}")
open("/tmp/rt/pr-url", "w").write(url)
PY
'''

pr_operations = Stage(
    name="pr_operations",
    description="Open the pull request (find-or-create), retrying only when provably safe.",
    image="python:3.12-alpine",
    script=SCRIPT,
    inputs=(
        Param("repo", description="GitHub repository, owner/name."),
        Param("head", description="Branch with the changes."),
        Param("base", default="main", description="Branch to merge into."),
        Param("pr-title", default="Automated changes", description="Pull request title."),
    ),
    env={
        "PR_REPO": "{{inputs.parameters.repo}}",
        "PR_HEAD": "{{inputs.parameters.head}}",
        "PR_BASE": "{{inputs.parameters.base}}",
        "PR_TITLE": "{{inputs.parameters.pr-title}}",
    },
    secret_env=(SecretEnv("GITHUB_TOKEN", secret="github-token", key="token"),),
    outputs=(Output("pr-url", path="/tmp/rt/pr-url", description="URL of the pull request."),),
    retry=Retry(
        3,
        Exponential("60s", factor=2),
        attempt_timeout="5m",
        budget="20m",
        retry_on=RetryOn.SAFE,
    ),
    resources=Resources(
        cpu_request="100m", cpu_limit="500m", memory_request="64Mi", memory_limit="256Mi"
    ),
    workspace=None,
)
