"""Repository operations: clone the repository under test into the shared workspace.

Spec default: 3 attempts, exponential backoff from 30s (delays 30s, 60s: "3 attempts" counts the
first one, see README "What counts as an attempt"). Cloning is idempotent (the checkout is
removed first), so any failure may be retried.
"""

from resilient_templates.dsl import Output, Param, SecretEnv, Stage
from resilient_templates.policy import Exponential, Resources, Retry

SCRIPT = """\
set -eu
rm -rf /workspace/repo
if [ -n "${GIT_TOKEN:-}" ]; then
  git config --global credential.helper '!f() { echo username=x-access-token; echo "password=$GIT_TOKEN"; }; f'
fi
git clone --filter=blob:none --no-checkout "$REPO_URL" /workspace/repo
cd /workspace/repo
git checkout --detach "$REVISION"
git rev-parse HEAD > /tmp/rt/commit
echo "cloned $REPO_URL at $(cat /tmp/rt/commit)"
"""

repository_clone = Stage(
    name="repository_clone",
    description="Clone the repository under test into /workspace/repo.",
    image="alpine/git:v2.47.2",
    script=SCRIPT,
    inputs=(
        Param("repo-url", description="Git URL of the repository under test."),
        Param("revision", default="HEAD", description="Branch, tag or commit to check out."),
    ),
    env={"REPO_URL": "{{inputs.parameters.repo-url}}", "REVISION": "{{inputs.parameters.revision}}"},
    secret_env=(SecretEnv("GIT_TOKEN", secret="github-token", key="token", optional=True),),
    outputs=(Output("commit", path="/tmp/rt/commit", description="The checked-out commit."),),
    retry=Retry(
        3,
        Exponential("30s", factor=2, cap="300s"),
        attempt_timeout="600s",
        budget="35m",
    ),
    resources=Resources(
        cpu_request="200m", cpu_limit="1", memory_request="256Mi", memory_limit="1Gi",
        ephemeral_storage_request="1Gi", ephemeral_storage_limit="4Gi",
    ),  # fmt: skip
)
