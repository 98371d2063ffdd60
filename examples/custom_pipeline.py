"""A team's own Hera pipeline that reuses two resilient stages.

The stages are plain values: copy one with a different policy (`with_`), lower it with
`stage_template` inside your own `with WorkflowTemplate(...)` block, and call it like any Hera
template. Run it to print the manifest:

    .venv/bin/python examples/custom_pipeline.py > nightly-tests.yaml
"""

from __future__ import annotations

from hera.workflows import DAG, WorkflowTemplate
from hera.workflows import models as m

from resilient_templates.lower import stage_template
from resilient_templates.policy import Exponential, Retry, RetryOn
from resilient_templates.render import dump_documents
from resilient_templates.stages import repository_clone, test_execution

# Nightly runs hit a shared Git host at the same minute: spread the retries with full jitter,
# and retry the tests only for failures the wrapper marks transient (not a real test failure).
nightly_tests = test_execution.with_(
    retry=Retry(
        3,
        Exponential("20s", factor=3, cap="3m", jitter="full"),
        attempt_timeout="20m",
        budget="65m",
        retry_on=RetryOn.TRANSIENT,
    )
)


def build() -> WorkflowTemplate:
    with WorkflowTemplate(
        name="nightly-tests",
        entrypoint="main",
        service_account_name="resilient-pipeline",
        arguments={"repo-url": "https://github.com/argoproj/argo-workflows"},
        volume_claim_templates=[
            m.PersistentVolumeClaim(
                metadata=m.ObjectMeta(name="workspace"),
                spec=m.PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=m.VolumeResourceRequirements(requests={"storage": m.Quantity("2Gi")}),
                ),
            )
        ],
    ) as workflow:
        clone = stage_template(repository_clone)
        tests = stage_template(nightly_tests)
        with DAG(name="main"):
            (
                clone(arguments={"repo-url": "{{workflow.parameters.repo-url}}"})
                >> tests(arguments={"test-command": "make test"})
            )
    return workflow


if __name__ == "__main__":
    print(
        dump_documents(
            [build().to_dict()],
            source="examples/custom_pipeline.py",
            regenerate="python examples/custom_pipeline.py",
        ),
        end="",
    )
