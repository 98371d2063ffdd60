"""Redaction throughput on a 10 MB synthetic CI log, against a naive loop, in one run.

* fast: ``redact()`` (keyword prefilter, then each rule's regex only on its keyword lines);
* naive: every rule's regex on every line, no prefilter (how a per-pattern scanner works);
* whole-text: every rule's regex once over the whole text, no prefilter.

The log has 3 % secret-bearing lines; the rest is ordinary CI output that mentions tokens,
secrets, URLs, hashes and emails, and command lines whose flags look like credentials
(``docker run -u 1000:1000 -p 8080:80``). All three must produce the same text (checked). Also
measured: adversarial single-line inputs (bounded time), and the module's cold import.

Run: ``.venv/bin/python tests/bench/bench_redact.py``.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time

from resilient_templates.runtime import redact as redact_module
from resilient_templates.runtime.redact import RULES, Redactor, redact

TARGET_BYTES = 10 * 1024 * 1024
SECRET_LINE_SHARE = 0.03
NEAR_MISS_SHARE = 0.10  # lines that mention token/secret/password/Authorization but hold none

_ORDINARY = [
    "tests/test_{w}.py::test_{w}_{n} PASSED                                   [ {p}%]",
    "Collecting {w}>=2.{n} (from -r requirements.txt (line {p}))",
    "  Downloading https://files.pythonhosted.org/packages/{h}/{w}-1.{n}-py3-none-any.whl ({p} kB)",
    "HEAD is now at {sha7} Merge pull request #{n} from org/{w}",
    "2026-11-28T10:{p}:00.123Z INFO  [{w}] processed {n} items in {p}ms",
    'time="2026-11-28T10:00:00Z" level=info msg="node changed" nodeID=wf-{h8}-{n} phase=Running',
    "Step {p}/12 : RUN pip install --no-cache-dir {w}==1.{n}",
    " ---> Using cache sha256:{sha64}",
    "src/{w}.c:{n}:{p}: warning: unused variable 'count' [-Wunused-variable]",
    "npm WARN deprecated @{w}/plugin@7.{n}.0: this package is no longer maintained",
    "commit {sha40} Author: Dev <dev{n}@example.com>",
    "payload: {b64}",
    "pod {w}-7xk2p-{n} uid {uuid} scheduled on node-{p}",
    "Cloning into '{w}'... https://github.com/org/{w}.git",
    "ERROR: {w} failed: connection reset by peer (after {p} retries)",
    "    at org.{w}.Service.run(Service.java:{n})",
]
_NEAR_MISS = [
    "src/{w}.c:{n}:{p}: warning: unused variable 'tokenizer' [-Wunused-variable]",
    "Token expired, refreshing credentials for {w} (attempt {p})",
    "mounting secret {w}-creds into /var/run/secrets/{w}",
    "env: GITHUB_TOKEN=*** RUNNER_TEMP=/home/runner/work/_temp PWD=/home/runner/work/{w}",
    "  token: ${{{{ secrets.{W}_TOKEN }}}}",
    "  password: ${{{{ secrets.{W}_PASSWORD }}}}",
    "      - name: API_KEY\n        valueFrom: {{secretKeyRef: {{name: {w}, key: api-key}}}}",
    "401 Unauthorized: the Authorization header is missing or the bearer token expired",
    "password_reset_url=/reset/{n} key={w} keys={p}",
    "docker run --rm -u 1000:1000 -p 8080:80 -v /src:/src {w}:latest",
    "mysql -h db -P3306 -u {w} -p {w}  # asks for the password",
    "    certificate-authority-data: LS0t{b64}",
    "Sending envelope to https://o{n}.ingest.sentry.io/api/{p}/envelope/",
]
_SECRET = [
    "export GH_TOKEN=ghp_{a36}",
    'curl -H "Authorization: Bearer {a36}" https://api.example.com/v1/{w}',
    "DATABASE_URL=postgresql://app:{a12}@db:5432/{w}",
    "password={a12}",
    "  api_key: {a36}",
    "posting to https://hooks.slack.com/services/T{A8}/B{A8}/{a24}",
    "POST https://prod-12.westeurope.logic.azure.com:443/workflows/{h8}/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={a36}",
    "aws_access_key_id = AKIA{A16} aws_secret_access_key = {a40}",
    '{{"routing_key": "{a32}", "event_action": "trigger"}}',
    "id_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{a36}.{a36}",
    "SLACK_BOT_TOKEN=xoxb-1234567890123-1234567890123-{a24}",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIE{a36}\n{a36}==\n-----END RSA PRIVATE KEY-----",
    "+ curl -sSfu deploy:{a12} -T dist/{w}.tgz https://nexus.example.com/repository/raw/",
    "docker exec db mysqldump -uroot -p{a12} {w} > /tmp/{w}.sql",
    "docker login -u ci -p {a24} registry.example.com",
    "export VAULT_TOKEN=hvs.{a36}{a36}",
    "SENTRY_DSN=https://{h32}@o{n}.ingest.sentry.io/{p}",
    "    client-key-data: LS0t{a36}{a36}",
]
_WORDS = "build deploy cache lint unit api web worker auth billing search ingest".split()
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UPPER27 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def synthetic_log(target: int = TARGET_BYTES, seed: int = 20261128) -> tuple[str, int]:
    """A CI log of about ``target`` bytes; returns (text, number of secret-bearing lines)."""
    rng = random.Random(seed)

    def s(alphabet: str, n: int) -> str:
        return "".join(rng.choices(alphabet, k=n))

    lines: list[str] = []
    size = secrets = 0
    while size < target:
        w = rng.choice(_WORDS)
        fields = dict(
            w=w,
            W=w.upper(),
            n=rng.randrange(1, 999),
            p=rng.randrange(1, 99),
            h=s("0123456789abcdef", 2),
            h8=s("0123456789abcdef", 8),
            h32=s("0123456789abcdef", 32),
            sha7=s("0123456789abcdef", 7),
            sha40=s("0123456789abcdef", 40),
            sha64=s("0123456789abcdef", 64),
            uuid="-".join(s("0123456789abcdef", k) for k in (8, 4, 4, 4, 12)),
            b64=s(_ALNUM + "+/", 76),
            a12=s(_ALNUM, 12),
            a24=s(_ALNUM, 24),
            a32=s(_ALNUM, 32),
            a36=s(_ALNUM, 36),
            a40=s(_ALNUM, 40),
            A8=s(_UPPER27[:26], 8),
            A16=s(_UPPER27, 16),
        )
        roll = rng.random()
        if roll < SECRET_LINE_SHARE:
            line = rng.choice(_SECRET).format(**fields)
            secrets += 1
        elif roll < SECRET_LINE_SHARE + NEAR_MISS_SHARE:
            line = rng.choice(_NEAR_MISS).format(**fields)
        else:
            line = rng.choice(_ORDINARY).format(**fields)
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines), secrets


def naive_redact(text: str) -> str:
    """Every rule's regex searched on every line, no prefilter (block rules on the whole text)."""
    found: list[tuple[int, int, int, str]] = []
    rules = redact_module._builtin()
    accept = redact_module._accept
    start = 0
    for line in text.split("\n"):
        end = start + len(line)
        for compiled in rules:
            if compiled.rule.block:
                continue
            pos, regex = start, compiled.regex
            while (match := regex.search(text, pos, end)) is not None:
                accepted = accept(compiled, match, found)
                pos = max(match.end(), match.start() + 1) if accepted else match.start() + 1
        start = end + 1
    for compiled in rules:
        if compiled.rule.block:
            redact_module._scan(compiled, text, found)
    spans = redact_module.Redactor._merge(found, text)
    out, pos = [], 0
    for s, e, name in spans:
        out += [text[pos:s], f"[REDACTED:{name}]"]
        pos = e
    return "".join(out) + text[pos:]


def _timed(fn, text: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = fn(text)
    return time.perf_counter() - t0, out


def _cold_import_ms() -> float:
    """Self+children import time of the module in a fresh interpreter (``-X importtime``), ms."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import resilient_templates.runtime.redact"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in proc.stderr.splitlines():
        if line.rstrip().endswith("resilient_templates.runtime.redact"):
            return int(line.split("|")[1]) / 1000
    return float("nan")


def main() -> None:
    text, secret_lines = synthetic_log()
    mb = len(text.encode()) / 1e6
    n_lines = text.count("\n") + 1
    redact("warm up: compile the rules")

    t_fast, out_fast = min((_timed(redact, text) for _ in range(3)), key=lambda r: r[0])
    t_whole, out_whole = _timed(Redactor(_prefilter=False).redact, text)
    t_naive, out_naive = _timed(naive_redact, text)
    same = out_fast == out_whole == out_naive
    redactions = len(re.findall(r"\[REDACTED:", out_fast))

    print("## redaction (runtime.redact)")
    print(
        f"log: {mb:.1f} MB, {n_lines} lines, {secret_lines} secret-bearing ({secret_lines / n_lines:.1%}); "
        f"{redactions} redactions; {len(RULES)} rules; outputs identical: {same}"
    )
    print(f"{'method':<42}{'seconds':>9}{'MB/s':>9}{'ratio':>8}")
    for label, t in (
        ("redact() keyword prefilter", t_fast),
        ("every rule over the whole text", t_whole),
        ("naive: every rule on every line", t_naive),
    ):
        print(f"{label:<42}{t:>9.3f}{mb / t:>9.1f}{t_naive / t:>7.1f}x")

    print("adversarial single-line inputs (1 MB each):")
    for label, unit in (
        ("'token=' repeated", "token="),
        ("'password: ' repeated", "password: "),
        ("'eyJ' repeated", "eyJ"),
        ("'://a:' repeated", "://a:"),
        ("'Authorization: Bearer ' repeated", "Authorization: Bearer "),
        ("'-----BEGIN PRIVATE KEY-----' repeated", "-----BEGIN PRIVATE KEY-----"),
        ("'sig=' after logic.azure.com", "logic.azure.com?" + "a" * 20),
        ("'curl -u a:b ' repeated", "curl -u a:b "),
        ("'curl ' repeated (no flag within reach)", "curl "),
        ("'mysql -pX ' repeated", "mysql -pX "),
        ("'docker login -p X ' repeated", "docker login -p X "),
        ("' -p' repeated", " -p"),
        ("'hvs.' + 24 chars repeated", "hvs." + "a1" * 12 + " "),
        ("'://' + 32 hex + '@h/1' repeated", "://" + "ab" * 16 + "@h/1 "),
    ):
        blob = (unit * (1_000_000 // len(unit) + 1))[:1_000_000]
        t, _ = _timed(redact, blob)
        print(f"  {label:<44}{t:>8.3f} s {1.0 / t:>8.1f} MB/s")
    print(
        f"cold import of resilient_templates.runtime.redact: {_cold_import_ms():.1f} ms (-X importtime, cumulative)"
    )


if __name__ == "__main__":
    main()
