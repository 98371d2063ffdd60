"""Redaction: every rule's true and false positives, idempotence, robustness, redact_obj, config rules.

Fake secrets are assembled from pieces so that no complete credential-shaped string sits in
the source (secret scanners stay quiet); they still have each format's exact shape.
"""

from __future__ import annotations

import collections
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resilient_templates.errors import ConfigError
from resilient_templates.runtime.redact import RULES, Redactor, redact, redact_obj


def R(name: str) -> str:
    return f"[REDACTED:{name}]"


# ------------------------------------------------------------------ fake secrets (right shape)

B36 = "A1b2C3d4E5" * 3 + "f6G7h8"  # 36 alphanumerics
GHP = "ghp" + "_" + B36
GHO, GHU, GHS, GHR = ("gh" + c + "_" + B36 for c in "ousr")
GH_PAT = "github" + "_pat_" + "11ABCDEFG0" + "x1Y2z3" * 12  # 10 + 72 = 82
GLPAT = "glpat" + "-" + "Ab1-Cd2_Ef3Gh4Ij5Kl6"
XOXB = "xoxb" + "-" + "1234567890123-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
XOXP = "xoxp" + "-" + "1234567890123-1234567890123-1234567890123-0123456789abcdef0123456789abcdef"
XAPP = "xapp" + "-1-A0123456789-1234567890123-0123456789abcdef"
SLACK_PATH = "T" + "01ABCDEFG/B01ABCDEFG/" + "AbCdEfGhIjKlMnOpQrStUvWx"
SIG = "AbC" + "dEf1234567890_-ghIJklMNopQRstUVwxyz0"
AKIA = "AKIA" + "IOSFODNN7EXAMPLE"
ASIA = "ASIA" + "Y34FZKBOKMUTVV7A"
AWS_SECRET = "wJalr" + "XUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJ"
    + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJ"
    + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PD_KEY = "R0" + "23456789ABCDEF0123456789ABCDEF"  # 32 chars, no vendor prefix
NPM = "npm" + "_" + B36
PYPI = "pypi" + "-AgEIcHlwaS5vcmc" + "CJGQ5ZjQ2YjFkLTk4NTItNDc3Ny1hZGUzLTEyMzQ1Njc4OTBhYgACKlsz"
GOOGLE = "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
ANTHROPIC = "sk-ant-" + "api03-" + "AbCdEfGh1234567890_-" * 4 + "AA"
OPENAI_PROJ = "sk-" + "proj-" + "AbCdEfGh1234567890ijKLmnOPqr_-StUvWx"
OPENAI_LEGACY = "sk-" + "A1b2C3d4E5f6G7h8I9j0" + "T3Blbk" + "FJ" + "K1l2M3n4O5p6Q7r8S9t0"
BASIC = "dXNlcjpw" + "YXNzd29yZA=="  # user:password
PEM_BODY = (
    "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Oh" + "\n" + "a8bC9dE0fG1hI2jK3lM4nO5pQ6rS7tU8vW9xY0z=="
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY + "\n-----END RSA PRIVATE KEY-----"
TEAMS_FLOW = (
    "https://prod-12.westeurope.logic.azure.com:443/workflows/0a1b2c3d4e5f/triggers/manual/paths/"
    "invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig="
)
TEAMS_FLOW_JSON = TEAMS_FLOW.replace("&", "\\u0026")  # as json.dumps(ensure_ascii) writes it
POWER_FLOW = (
    "https://default0a1b2c3d.e5.environment.api.powerplatform.com:443/powerautomate/automations/"
    "direct/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers"
    "%2Fmanual%2Frun&sv=1.0&sig="
)
KUBE_KEY = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB" + "3Tz2mr7SZiAM"
KUBE_CERT = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM4akNDQWRxZ0F3SUJBZ0lJ" + "Yz0wDQYJKoZI"
HVS = "hvs" + ".CAESIJ1a2b3c4d5e6f7g8h9i0jKLMNOPqrstuvwxyzABCDEFGHIJ-_0123456789abcdefGhIjKl"
HVB = "hvb" + ".AAAAAQKp5t6Lq1R2x3c4v5b6n7m8a9s0d1f2g3h4j5k6l7" + "Qw9Er8Ty7Ui6Op5As4Df3Gh2Jk1Lz0Xc" * 3
VAULT_LEGACY = "s" + ".AbCdEf1hIjKlMnOp2rStUvWx"  # 24 chars after 's.'
SENTRY_KEY = "0123456789abcdef" + "fedcba9876543210"
SENTRY_SECRET = "a1b2c3d4e5f6a7b8" + "c9d0e1f2a3b4c5d6"
TEAMS_LEGACY_PATH = (
    "0a1b2c3d-1111-2222-3333-444455556666@0a1b2c3d-1111-2222-3333-444455556666/IncomingWebhook/"
    "0123456789abcdef0123456789abcdef/0a1b2c3d-1111-2222-3333-444455556666"
)


# ------------------------------------------------------------------ true positives
# (rule, input, expected output): the secret goes, the context stays.

TRUE_POSITIVES: list[tuple[str, str, str]] = [
    # private keys
    (
        "private-key",
        PEM,
        f"-----BEGIN RSA PRIVATE KEY-----\n{R('private-key')}\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "private-key",
        '{"key": "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\\n'
        '-----END OPENSSH PRIVATE KEY-----\\n"}',
        '{"key": "-----BEGIN OPENSSH PRIVATE KEY-----\\n'
        + R("private-key")
        + '\\n-----END OPENSSH PRIVATE KEY-----\\n"}',
    ),
    (
        "private-key",
        "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\nMHcCAQEE\nerror: bad key",
        f"-----BEGIN EC PRIVATE KEY-----\n{R('private-key')}\nerror: bad key",
    ),
    (
        "private-key",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C\n\n"
        "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2Oh\n-----END RSA PRIVATE KEY-----",
        f"-----BEGIN RSA PRIVATE KEY-----\n{R('private-key')}\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "private-key",
        "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY-----",
        f"-----BEGIN PRIVATE KEY----- {R('private-key')} -----END PRIVATE KEY-----",
    ),
    # JWT
    ("jwt", f"id_token: {JWT}", f"id_token: {R('jwt')}"),
    ("jwt", f"Authorization: Bearer {JWT}", f"Authorization: Bearer {R('jwt')}"),
    ("jwt", f'{{"assertion":"{JWT}"}}', f'{{"assertion":"{R("jwt")}"}}'),
    # GitHub
    ("github-token", f"token {GHP} used", f"token {R('github-token')} used"),
    ("github-token", f"GH_TOKEN={GHO}", f"GH_TOKEN={R('github-token')}"),
    (
        "github-token",
        f"x {GHU} {GHS} {GHR}",
        f"x {R('github-token')} {R('github-token')} {R('github-token')}",
    ),
    ("github-token", f"GITHUB_PAT={GH_PAT}", f"GITHUB_PAT={R('github-token')}"),
    (
        "github-token",
        f"remote: https://x-access-token:{GHS}@github.com/org/repo.git",
        f"remote: https://x-access-token:{R('github-token')}@github.com/org/repo.git",
    ),
    (
        "github-token",
        f'-H "Authorization: token {GHP}"',
        f'-H "Authorization: token {R("github-token")}"',
    ),
    # GitLab
    ("gitlab-token", f"PRIVATE-TOKEN: {GLPAT}", f"PRIVATE-TOKEN: {R('gitlab-token')}"),
    (
        "gitlab-token",
        f"git clone https://oauth2:{GLPAT}@gitlab.com/g/p",
        f"git clone https://oauth2:{R('gitlab-token')}@gitlab.com/g/p",
    ),
    # Slack
    (
        "slack-webhook",
        f"https://hooks.slack.com/services/{SLACK_PATH}",
        f"https://hooks.slack.com/services/{R('slack-webhook')}",
    ),
    (
        "slack-webhook",
        "POST https://hooks.slack.com/workflows/T01ABCDEF/A01ABCDEF/123456789/AbCdEf0123 failed",
        f"POST https://hooks.slack.com/workflows/{R('slack-webhook')} failed",
    ),
    (
        "slack-webhook",
        "url=hooks.slack.com/triggers/T0ABCDE/1234567890/abcdef0123456789",
        f"url=hooks.slack.com/triggers/{R('slack-webhook')}",
    ),
    ("slack-token", f"SLACK_BOT_TOKEN={XOXB}", f"SLACK_BOT_TOKEN={R('slack-token')}"),
    ("slack-token", f"using {XOXP}.", f"using {R('slack-token')}."),
    ("slack-token", f"app token {XAPP}", f"app token {R('slack-token')}"),
    (
        "slack-token",
        "legacy xoxa-2-1234567890-abcdef xoxr-1234567890-abcdef xoxs-1234567890-abcdef",
        f"legacy {R('slack-token')} {R('slack-token')} {R('slack-token')}",
    ),
    # Teams
    ("teams-workflow-sig", TEAMS_FLOW + SIG, TEAMS_FLOW + R("teams-workflow-sig")),
    (
        "teams-workflow-sig",
        f"POST {POWER_FLOW}{SIG} -> 202",
        f"POST {POWER_FLOW}{R('teams-workflow-sig')} -> 202",
    ),
    (
        "teams-workflow-sig",
        f'"url": "{TEAMS_FLOW_JSON}{SIG}"',
        f'"url": "{TEAMS_FLOW_JSON}{R("teams-workflow-sig")}"',
    ),
    (
        "teams-webhook",
        f"https://contoso.webhook.office.com/webhookb2/{TEAMS_LEGACY_PATH}",
        f"https://contoso.webhook.office.com/webhookb2/{R('teams-webhook')}",
    ),
    (
        "teams-webhook",
        f"https://outlook.office.com/webhook/{TEAMS_LEGACY_PATH}",
        f"https://outlook.office.com/webhook/{R('teams-webhook')}",
    ),
    # signed URLs
    (
        "url-signature",
        "GET https://acct.blob.core.windows.net/c/b.tar?sv=2022-11-02&se=2026-01-01&sp=r&sig=AbC%2Bd%3D",
        f"GET https://acct.blob.core.windows.net/c/b.tar?sv=2022-11-02&se=2026-01-01&sp=r&sig={R('url-signature')}",
    ),
    (
        "url-signature",
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123abcdef0123abcdef",
        f"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={R('url-signature')}",
    ),
    (
        "url-signature",
        "https://example.com/f?token_id=1&sig=0a1b2c3d",
        f"https://example.com/f?token_id=1&sig={R('url-signature')}",
    ),
    # AWS
    (
        "aws-access-key-id",
        f"aws_access_key_id = {AKIA}",
        f"aws_access_key_id = {R('aws-access-key-id')}",
    ),
    (
        "aws-access-key-id",
        f'"AccessKeyId": "{ASIA}",',
        f'"AccessKeyId": "{R("aws-access-key-id")}",',
    ),
    (
        "aws-secret-access-key",
        f"aws_secret_access_key = {AWS_SECRET}",
        f"aws_secret_access_key = {R('aws-secret-access-key')}",
    ),
    (
        "aws-secret-access-key",
        f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}",
        f"AWS_SECRET_ACCESS_KEY={R('aws-secret-access-key')}",
    ),
    (
        "aws-secret-access-key",
        f'"SecretAccessKey": "{AWS_SECRET}",',
        f'"SecretAccessKey": "{R("aws-secret-access-key")}",',
    ),
    # PagerDuty
    (
        "pagerduty-key",
        f'{{"routing_key": "{PD_KEY}", "event_action": "trigger"}}',
        f'{{"routing_key": "{R("pagerduty-key")}", "event_action": "trigger"}}',
    ),
    (
        "pagerduty-key",
        f"PAGERDUTY_INTEGRATION_KEY={PD_KEY}",
        f"PAGERDUTY_INTEGRATION_KEY={R('pagerduty-key')}",
    ),
    ("pagerduty-key", f"  service_key: {PD_KEY}", f"  service_key: {R('pagerduty-key')}"),
    ("pagerduty-key", f"integrationKey={PD_KEY}", f"integrationKey={R('pagerduty-key')}"),
    ("pagerduty-key", f"PAGERDUTY_KEY: '{PD_KEY}'", f"PAGERDUTY_KEY: '{R('pagerduty-key')}'"),
    # vendor prefixes
    (
        "npm-token",
        f"//registry.npmjs.org/:_authToken={NPM}",
        f"//registry.npmjs.org/:_authToken={R('npm-token')}",
    ),
    ("pypi-token", f"TWINE_PASSWORD={PYPI}", f"TWINE_PASSWORD={R('pypi-token')}"),
    ("google-api-key", f"key={GOOGLE}&q=1", f"key={R('google-api-key')}&q=1"),
    (
        "anthropic-api-key",
        f"ANTHROPIC_API_KEY={ANTHROPIC}",
        f"ANTHROPIC_API_KEY={R('anthropic-api-key')}",
    ),
    ("openai-api-key", f"OPENAI_API_KEY={OPENAI_PROJ}", f"OPENAI_API_KEY={R('openai-api-key')}"),
    ("openai-api-key", f"using key {OPENAI_LEGACY}", f"using key {R('openai-api-key')}"),
    # Authorization headers
    (
        "bearer-token",
        "Authorization: Bearer abc.def-123",
        f"Authorization: Bearer {R('bearer-token')}",
    ),
    ("bearer-token", "authorization: bearer abc", f"authorization: bearer {R('bearer-token')}"),
    (
        "bearer-token",
        "curl -H 'Authorization: Bearer tok3n_value_xyz' https://x",
        f"curl -H 'Authorization: Bearer {R('bearer-token')}' https://x",
    ),
    (
        "bearer-token",
        '{"Authorization":"Bearer 0123456789abcdef=="}',
        f'{{"Authorization":"Bearer {R("bearer-token")}"}}',
    ),
    (
        "bearer-token",
        "sent Bearer 0a1b2c3d4e5f6a7b8c9d to api",
        f"sent Bearer {R('bearer-token')} to api",
    ),
    (
        "bearer-token",
        "Proxy-Authorization: Bearer s3cr3t",
        f"Proxy-Authorization: Bearer {R('bearer-token')}",
    ),
    ("basic-auth", f"Authorization: Basic {BASIC}", f"Authorization: Basic {R('basic-auth')}"),
    ("basic-auth", "Authorization: Basic abc", f"Authorization: Basic {R('basic-auth')}"),
    ("basic-auth", f"header was Basic {BASIC} (401)", f"header was Basic {R('basic-auth')} (401)"),
    (
        "authorization-header",
        'curl -H "Authorization: token abcdef0123456789" https://api.github.com',
        f'curl -H "Authorization: token {R("authorization-header")}" https://api.github.com',
    ),
    (
        "authorization-header",
        "Authorization: Bot MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ",
        f"Authorization: Bot {R('authorization-header')}",
    ),
    (
        "authorization-header",
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        f"Authorization: AWS4-HMAC-SHA256 {R('authorization-header')}",
    ),
    (
        "authorization-header",
        "Authorization: 0123456789abcdefABCDEF",
        f"Authorization: {R('authorization-header')}",
    ),
    # passwords in URLs
    (
        "url-password",
        "DATABASE_URL=postgresql://app:s3cr3t@db:5432/app",
        f"DATABASE_URL=postgresql://app:{R('url-password')}@db:5432/app",
    ),
    ("url-password", "https://user:pw@host/x", f"https://user:{R('url-password')}@host/x"),
    ("url-password", "redis://:hunter2@cache:6379/0", f"redis://:{R('url-password')}@cache:6379/0"),
    (
        "url-password",
        "fetch https://bob:p@ss@host/repo.git",
        f"fetch https://bob:{R('url-password')}@host/repo.git",
    ),
    ("url-password", "amqp://guest:guest@rabbit", f"amqp://guest:{R('url-password')}@rabbit"),
    # generic assignments
    ("password-assignment", "password=hunter2", f"password={R('password-assignment')}"),
    (
        "password-assignment",
        "login user=bob password=hunter2 host=db",
        f"login user=bob password={R('password-assignment')} host=db",
    ),
    (
        "password-assignment",
        '{"password": "hunter2", "user": "bob"}',
        f'{{"password": "{R("password-assignment")}", "user": "bob"}}',
    ),
    (
        "password-assignment",
        "{'password': 'correct horse'}",
        f"{{'password': '{R('password-assignment')}'}}",
    ),
    ("password-assignment", "  password: correcthorse", f"  password: {R('password-assignment')}"),
    (
        "password-assignment",
        "export DB_PASSWORD='s3cr3t!'",
        f"export DB_PASSWORD='{R('password-assignment')}'",
    ),
    (
        "password-assignment",
        "MYSQL_ROOT_PASSWORD=rootpw",
        f"MYSQL_ROOT_PASSWORD={R('password-assignment')}",
    ),
    (
        "password-assignment",
        "docker login --password s3cr3t ghcr.io",
        f"docker login --password {R('password-assignment')} ghcr.io",
    ),
    (
        "password-assignment",
        "Server=db;User Id=sa;Password=Pa55word;",
        f"Server=db;User Id=sa;Password={R('password-assignment')};",
    ),
    ("password-assignment", "passwd: letmein", f"passwd: {R('password-assignment')}"),
    ("password-assignment", "pwd=abc123", f"pwd={R('password-assignment')}"),
    ("password-assignment", "DB_PASS = swordfish", f"DB_PASS = {R('password-assignment')}"),
    (
        "password-assignment",
        'msg="{\\"password\\": \\"hunter2\\"}"',
        f'msg="{{\\"password\\": \\"{R("password-assignment")}\\"}}"',
    ),
    (
        "password-assignment",
        "login failed password: s3cr3t99 for bob",
        f"login failed password: {R('password-assignment')} for bob",
    ),
    ("secret-assignment", "token=abc123", f"token={R('secret-assignment')}"),
    ("secret-assignment", "GITHUB_TOKEN=abc123", f"GITHUB_TOKEN={R('secret-assignment')}"),
    (
        "secret-assignment",
        "GET /cb?code=1&access_token=abc123&state=x",
        f"GET /cb?code=1&access_token={R('secret-assignment')}&state=x",
    ),
    (
        "secret-assignment",
        '"access_token": "abc.def"',
        f'"access_token": "{R("secret-assignment")}"',
    ),
    ("secret-assignment", "api_key: 0123abcd", f"api_key: {R('secret-assignment')}"),
    ("secret-assignment", "apikey=xyz", f"apikey={R('secret-assignment')}"),
    ("secret-assignment", "client_secret = shhh", f"client_secret = {R('secret-assignment')}"),
    ("secret-assignment", "secret=shhh", f"secret={R('secret-assignment')}"),
    ("secret-assignment", "SECRET_KEY_BASE=abcdef", f"SECRET_KEY_BASE={R('secret-assignment')}"),
    (
        "secret-assignment",
        '"SessionToken": "FwoGZXIvYXdzEJr"',
        f'"SessionToken": "{R("secret-assignment")}"',
    ),
    (
        "secret-assignment",
        'curl -H "PRIVATE-TOKEN: abc123def456" https://gitlab',
        f'curl -H "PRIVATE-TOKEN: {R("secret-assignment")}" https://gitlab',
    ),
    (
        "secret-assignment",
        "curl -H 'X-Api-Key: k3y-abc123' https://x",
        f"curl -H 'X-Api-Key: {R('secret-assignment')}' https://x",
    ),
    (
        "secret-assignment",
        "gh auth login --token abc123",
        f"gh auth login --token {R('secret-assignment')}",
    ),
    ("secret-assignment", "apiKey: AbC123xYz", f"apiKey: {R('secret-assignment')}"),
    (
        "secret-assignment",
        "AccountKey=abc+def/ghi==;EndpointSuffix=core",
        f"AccountKey={R('secret-assignment')};EndpointSuffix=core",
    ),
    (
        "secret-assignment",
        '{"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}',
        f'{{"auths": {{"ghcr.io": {{"auth": "{R("secret-assignment")}"}}}}}}',
    ),
    (
        "secret-assignment",
        "//registry.example.com/:_auth=dXNlcjpwYXNz",
        f"//registry.example.com/:_auth={R('secret-assignment')}",
    ),
    (
        "secret-assignment",
        "  tls.key: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=",
        f"  tls.key: {R('secret-assignment')}",
    ),
    (
        "secret-assignment",
        "  .dockerconfigjson: eyJhdXRocyI6eyJnaGNyLmlvIjp7fX19",
        f"  .dockerconfigjson: {R('secret-assignment')}",
    ),
    (
        "secret-assignment",
        "  ssh-privatekey: LS0tLS1CRUdJTiBPUEVOU1NI",
        f"  ssh-privatekey: {R('secret-assignment')}",
    ),
    ("cookie-header", "Cookie: session=0a1b2c3d; csrftoken=abc", f"Cookie: {R('cookie-header')}"),
    (
        "cookie-header",
        "< set-cookie: _gh_sess=AbC%2F123; path=/; secure; HttpOnly",
        f"< set-cookie: {R('cookie-header')}",
    ),
    (
        "cookie-header",
        "curl -H 'Cookie: sid=s3cr3t' https://x",
        f"curl -H 'Cookie: {R('cookie-header')}' https://x",
    ),
    # kubeconfig credentials (base64 PEM blobs under users[].user)
    (
        "kubeconfig-credential",
        f"    client-key-data: {KUBE_KEY}",
        f"    client-key-data: {R('kubeconfig-credential')}",
    ),
    (
        "kubeconfig-credential",
        f"    client-certificate-data: {KUBE_CERT}",
        f"    client-certificate-data: {R('kubeconfig-credential')}",
    ),
    (
        "kubeconfig-credential",
        f'{{"user": {{"client-key-data": "{KUBE_KEY}"}}}}',
        f'{{"user": {{"client-key-data": "{R("kubeconfig-credential")}"}}}}',
    ),
    (
        "secret-assignment",  # a kubeconfig user's bearer token: the generic rule has it
        "users:\n- name: ci\n  user:\n    token: kubeconfig-u-ab12c:0a1b2c3d4e5f6a7b8c9d",
        f"users:\n- name: ci\n  user:\n    token: {R('secret-assignment')}",
    ),
    # user:password on the command line
    (
        "cli-user-password",
        "curl -u bob:hunter2 https://nexus/repo",
        f"curl -u bob:{R('cli-user-password')} https://nexus/repo",
    ),
    (
        "cli-user-password",
        "+ curl -fsS --user 'ci:p@ss word' -X POST https://x",
        f"+ curl -fsS --user 'ci:{R('cli-user-password')}' -X POST https://x",
    ),
    (
        "cli-user-password",
        'curl -sSfu "deploy:s3cret" -T a.tgz https://x',
        f'curl -sSfu "deploy:{R("cli-user-password")}" -T a.tgz https://x',
    ),
    (
        "cli-user-password",
        "curl -x http://proxy:3128 -U proxy:pr0xypw https://x",
        f"curl -x http://proxy:3128 -U proxy:{R('cli-user-password')} https://x",
    ),
    (
        "cli-user-password",
        "curl --proxy-user proxy:pr0xypw https://x",
        f"curl --proxy-user proxy:{R('cli-user-password')} https://x",
    ),
    # mysql-family -pPASSWORD (attached; a separate word is the database)
    (
        "cli-password-flag",
        "mysql -h db -uroot -pS3cret app",
        f"mysql -h db -uroot -p{R('cli-password-flag')} app",
    ),
    (
        "cli-password-flag",
        "docker exec db mysqldump -u root -p'S3cr3t!' app > dump.sql",
        f"docker exec db mysqldump -u root -p'{R('cli-password-flag')}' app > dump.sql",
    ),
    (
        "cli-password-flag",
        "kubectl exec mysql-0 -- mysql -uroot -p123456 -e 'show databases'",
        f"kubectl exec mysql-0 -- mysql -uroot -p{R('cli-password-flag')} -e 'show databases'",
    ),
    (
        "cli-password-flag",
        'mariadb -u app -p"pa55 word" -e "select 1"',
        f'mariadb -u app -p"{R("cli-password-flag")}" -e "select 1"',
    ),
    (
        "password-assignment",
        "mysqladmin --user=root --password=S3cret ping",
        f"mysqladmin --user=root --password={R('password-assignment')} ping",
    ),
    # registry logins with the password on the command line
    (
        "registry-password-flag",
        "docker login -u bob -p hunter2 ghcr.io",
        f"docker login -u bob -p {R('registry-password-flag')} ghcr.io",
    ),
    (
        "registry-password-flag",
        "docker login --username bob --password hunter ghcr.io",
        f"docker login --username bob --password {R('registry-password-flag')} ghcr.io",
    ),
    (
        "registry-password-flag",
        "echo ok && helm registry login ghcr.io -u bob -p 'hunter two'",
        f"echo ok && helm registry login ghcr.io -u bob -p '{R('registry-password-flag')}'",
    ),
    # HashiCorp Vault
    ("vault-token", f"VAULT_TOKEN={HVS}", f"VAULT_TOKEN={R('vault-token')}"),
    ("vault-token", f"$ vault login {HVS}", f"$ vault login {R('vault-token')}"),
    (
        "vault-token",
        f'"auth": {{"client_token": "{HVB}"}}',
        f'"auth": {{"client_token": "{R("vault-token")}"}}',
    ),
    ("vault-token", f"export VAULT_TOKEN={VAULT_LEGACY}", f"export VAULT_TOKEN={R('vault-token')}"),
    (
        "vault-token",
        f"curl -H 'X-Vault-Token: {VAULT_LEGACY}' https://vault:8200/v1/secret/data/x",
        f"curl -H 'X-Vault-Token: {R('vault-token')}' https://vault:8200/v1/secret/data/x",
    ),
    # Sentry DSNs
    (
        "sentry-dsn",
        f"SENTRY_DSN=https://{SENTRY_KEY}@o123.ingest.sentry.io/456",
        f"SENTRY_DSN=https://{R('sentry-dsn')}@o123.ingest.sentry.io/456",
    ),
    (
        "sentry-dsn",
        f'dsn: "https://{SENTRY_KEY}@o4504.ingest.us.sentry.io/4506"',
        f'dsn: "https://{R("sentry-dsn")}@o4504.ingest.us.sentry.io/4506"',
    ),
    (
        "sentry-dsn",
        f"legacy https://{SENTRY_KEY}:{SENTRY_SECRET}@sentry.example.com/sentry/3 ok",
        f"legacy https://{R('sentry-dsn')}@sentry.example.com/sentry/3 ok",
    ),
    (
        "sentry-dsn",
        f"POST https://o1.ingest.sentry.io/api/2/envelope/?sentry_key={SENTRY_KEY}&sentry_version=7",
        f"POST https://o1.ingest.sentry.io/api/2/envelope/?sentry_key={R('sentry-dsn')}&sentry_version=7",
    ),
    # database URLs: the URL password rule
    (
        "url-password",
        "postgres://user:pw@host",
        f"postgres://user:{R('url-password')}@host",
    ),
    (
        "url-password",
        "mongodb+srv://app:s3cr3t@cluster0.ab1cd.mongodb.net/db?retryWrites=true",
        f"mongodb+srv://app:{R('url-password')}@cluster0.ab1cd.mongodb.net/db?retryWrites=true",
    ),
    (
        "url-password",
        "mysql://root:pw@db:3306/app",
        f"mysql://root:{R('url-password')}@db:3306/app",
    ),
]


# ------------------------------------------------------------------ false positives
# (rule it must not trigger, input): redact() returns the input unchanged.

GIT_SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
FALSE_POSITIVES: list[tuple[str, str]] = [
    (
        "private-key",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYz0wDQYJ\n-----END CERTIFICATE-----",
    ),
    (
        "private-key",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    ),
    ("private-key", "the file must start with -----BEGIN PRIVATE KEY----- followed by base64"),
    ("private-key", "error: no private key found in /etc/ssl/key.pem"),
    ("jwt", "data: eyJmb28iOiJiYXIiLCJiYXoiOjF9 (base64 JSON, not a JWT)"),
    ("jwt", "layer: H4sIAAAAAAAAA+3OMQ6CQBCF4Vz4K0bZ5Zx1dM2tB7ZkI8S8IQ=="),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9 alone"),
    ("github-token", "ghp_short123"),
    ("github-token", "ghp" + "_" + B36[:35]),
    ("github-token", f"HEAD is now at {GIT_SHA[:7]}; commit {GIT_SHA}"),
    ("github-token", "github_pat_ is the fine-grained prefix"),
    ("gitlab-token", "glpat-short"),
    ("slack-webhook", "see https://api.slack.com/messaging/webhooks"),
    ("slack-webhook", "https://hooks.slack.com/ is down"),
    ("slack-token", "xoxo-hugs and xoxb-"),
    ("teams-workflow-sig", "https://prod-12.westeurope.logic.azure.com/workflows/abc/runs"),
    ("teams-workflow-sig", "https://example.com/x?sig= (empty signature)"),
    ("teams-webhook", "https://outlook.office.com/mail/inbox"),
    ("url-signature", "boto: signature_version=s3v4 region=eu-west-1"),
    ("url-signature", "git log --show-signature=true"),
    ("aws-access-key-id", "AKIAIOSFODNN7EXAMPLEXX is too long"),
    ("aws-access-key-id", "region Asia/Tokyo, accaunt AKIA"),
    ("aws-secret-access-key", "aws_secret_access_key = ${AWS_SECRET_ACCESS_KEY}"),
    ("aws-secret-access-key", "aws_secret_access_key="),
    ("pagerduty-key", 'routing_key: "{{ .Values.pagerduty.routingKey }}"'),
    ("pagerduty-key", "set the routing_key field of the event"),
    ("pagerduty-key", "service_key: short"),
    ("npm-token", "npm_config_cache=/home/runner/.npm npm_lifecycle_event=test"),
    ("pypi-token", "pip install pypi-simple"),
    ("google-api-key", "AIzaShort"),
    ("openai-api-key", "task-proj-12345 disk-usage sk-learn"),
    ("anthropic-api-key", "keys look like sk-ant-api03-… (see docs)"),
    ("bearer-token", "use a Bearer token in the Authorization header"),
    ("bearer-token", "the Bearer authentication scheme"),
    ("bearer-token", "Authorization: Bearer ${TOKEN}"),
    ("bearer-token", 'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com'),
    ("bearer-token", 'WWW-Authenticate: Bearer realm="github", error="invalid_token"'),
    ("bearer-token", '"token_type": "bearer"'),
    ("basic-auth", "basic auth is disabled; Basic authentication failed"),
    ("basic-auth", "Basic YWJjZGVmZ2g= (no colon inside)"),
    ("authorization-header", "The Authorization header is required"),
    ("authorization-header", "Authorization: required"),
    ("authorization-header", "missing Authorization: header"),
    ("url-password", "see https://example.com/docs?page=2#x"),
    ("url-password", "contact ci-bot@example.com or ops@example.org"),
    ("url-password", "git@github.com:org/repo.git"),
    ("url-password", "http://host:8080/a@b and ssh://git@host:22/repo"),
    ("url-password", "https://x-access-token:${GITHUB_TOKEN}@github.com/org/repo"),
    ("url-password", "pull ghcr.io/org/app@sha256:" + "ab" * 32),
    ("password-assignment", "password_reset_url=/reset"),
    ("password-assignment", "password="),
    ("password-assignment", "password=\nuser=bob"),
    ("password-assignment", "password: ${{ secrets.DB_PASSWORD }}"),
    ("password-assignment", "docker login --password-stdin ghcr.io"),
    ("password-assignment", "bypass=1 compass: north"),
    ("password-assignment", "PWD=/home/runner/work OLDPWD=/tmp"),
    ("password-assignment", "password: ******"),
    ("password-assignment", 'Error: password authentication failed for user "app"'),
    ("password-assignment", "--password-file=/run/secrets/db"),
    ("secret-assignment", "loading tokenizer from cache"),
    ("secret-assignment", "Token expired"),
    ("secret-assignment", "error: invalid token: context deadline exceeded"),
    ("secret-assignment", "token: {{ secrets.X }}"),
    ("secret-assignment", "token: ${GITHUB_TOKEN}"),
    ("secret-assignment", "GITHUB_TOKEN=$GITHUB_TOKEN"),
    ("secret-assignment", "TOKEN=$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)"),
    ("secret-assignment", "token: null"),
    ("secret-assignment", "secretKeyRef:\n  name: db-secret\n  key: password"),
    ("secret-assignment", "valueFrom: {secretKeyRef: {name: gh, key: token}}"),
    ("secret-assignment", '"max_tokens": 4096, "token_type": "bearer", "tokens": 12'),
    ("secret-assignment", "TOKEN_URL=https://auth.example.com/token"),
    ("secret-assignment", "token_file=/var/run/secrets/token"),
    ("secret-assignment", "secret: /etc/secret-volume"),
    ("secret-assignment", "GITHUB_TOKEN=***"),
    ("secret-assignment", "api_key=<your-api-key>"),
    ("secret-assignment", "  secret:\n    secretName: tls"),
    ("secret-assignment", "auth: oauth2\noauth: enabled\nfailed auth: 401"),
    # source lines in tracebacks: code, not literals
    ("secret-assignment", "    token = next(self.stream)"),
    ("secret-assignment", "    auth = urllib.request.HTTPPasswordMgr()"),
    ("secret-assignment", "    Token:                      FG_DEFAULT,"),
    ("secret-assignment", "    client_key_secret: Annotated[str, Field()]"),
    ("password-assignment", '    proxy_password=self._socks_options["password"],'),
    ("password-assignment", "    password = password.encode('utf-8')"),
    ("password-assignment", "use the --username and --password options"),
    (
        "password-assignment",
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
    ),
    ("cookie-header", "Cookie: expired, please log in again"),
    ("cookie-header", "the Set-Cookie header was rejected; cookies: none"),
    ("secret-assignment", "  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"),
    # kubeconfig: the CA is public; kubectl config view masks the rest
    ("kubeconfig-credential", f"    certificate-authority-data: {KUBE_CERT}"),
    ("kubeconfig-credential", "    client-key-data: DATA+OMITTED"),
    ("kubeconfig-credential", "    client-certificate-data: REDACTED"),
    ("kubeconfig-credential", "    client-key: /home/u/.minikube/profiles/minikube/client.key"),
    ("kubeconfig-credential", '    client-key-data: "${CLIENT_KEY_DATA}"'),
    # -u / --user that is no user:password
    ("cli-user-password", "docker run -u 1000:1000 --rm img make"),
    ("cli-user-password", "docker run --user 1000:1000 img"),
    ("cli-user-password", "sudo -u root whoami"),
    ("cli-user-password", "curl -u bob https://x  # curl asks for the password"),
    ("cli-user-password", 'curl -u "$NEXUS_USER:$NEXUS_PASSWORD" https://x'),
    ("cli-user-password", "curl -u ${{ secrets.U }}:${{ secrets.P }} https://x"),
    ("cli-user-password", 'curl --user-agent "probe:1.0" https://x'),
    ("cli-user-password", "curl -fsSL https://get.example.com | sh -s -- -u 1000:1000"),
    ("cli-user-password", "curl --negotiate -u : https://intranet"),
    ("cli-user-password", "sudo -u deploy:staff curl https://x"),
    # -p that is no password
    ("cli-password-flag", "docker run -p 8080:80 nginx"),
    ("cli-password-flag", "docker run -p3306:3306 mysql:8"),
    ("cli-password-flag", "ls -p /tmp"),
    ("cli-password-flag", "mysql -u root -p app"),
    ("cli-password-flag", "mysql -h db -P3306 -uroot app"),
    ("cli-password-flag", 'mysql -uroot -p"$MYSQL_ROOT_PASSWORD" app'),
    ("cli-password-flag", "mysql -uroot app; mkdir -p/tmp/x"),
    ("cli-password-flag", "docker run --name mysql -p33060:33060 -p 127.0.0.1:3306:3306 mysql:8"),
    # registry logins without a password on the command line
    ("registry-password-flag", "echo $PW | docker login --password-stdin -u bob ghcr.io"),
    ("registry-password-flag", "docker login ghcr.io && docker run -p 8080:80 app"),
    ("registry-password-flag", "docker login -u bob -p $REGISTRY_PASSWORD ghcr.io"),
    ("registry-password-flag", 'docker login -u bob -p "${{ secrets.REGISTRY_TOKEN }}" ghcr.io'),
    ("registry-password-flag", "docker login -u bob ghcr.io"),
    # Vault look-alikes
    ("vault-token", "tokens look like hvs.… and hvb.… (see the Vault docs)"),
    ("vault-token", "hvs.short0123"),
    ("vault-token", f"object {VAULT_LEGACY} without a token context"),
    ("vault-token", "    token = s.getAuthenticationTokenV2()"),
    ("vault-token", "VAULT_TOKEN=$(vault print token)"),
    # Sentry URLs without a key
    ("sentry-dsn", "Sending envelope to https://o123.ingest.sentry.io/api/456/envelope/"),
    ("sentry-dsn", "https://sentry.io/organizations/acme/issues/123/"),
    ("sentry-dsn", "dsn: https://examplePublicKey@o0.ingest.sentry.io/0"),
    ("sentry-dsn", "sentry_key=<your-public-key>"),
    # not tied to one rule: ordinary CI output
    (
        "*",
        "my-wf-7xk2p-2283104937 pod my-wf-7xk2p-build-1234567890 uid 123e4567-e89b-12d3-a456-426614174000",
    ),
    ("*", "image: python@sha256:" + "0f" * 32),
    ("*", "Successfully built 4f5e6d7c8b9a; layer sha256:" + "a1" * 32),
    ("*", "VGhpcyBpcyBqdXN0IGEgbG9nIGxpbmUgZW5jb2RlZCBpbiBiYXNlNjQ= decoded ok"),
    ("*", "Cloning into 'repo'... https://github.com/org/repo.git"),
    ("*", "2026-01-01T00:00:00Z INFO downloaded https://files.pythonhosted.org/packages/x.whl"),
    ("*", "FAILED tests/test_auth.py::test_token_refresh - AssertionError"),
]

BUILTIN_NAMES = {rule.name for rule in RULES}


@pytest.mark.parametrize(
    ("rule", "text", "expected"),
    TRUE_POSITIVES,
    ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(TRUE_POSITIVES)],
)
def test_true_positive_is_redacted_with_context_kept(rule, text, expected):
    """Each secret becomes [REDACTED:<rule>] and everything around it stays."""
    assert rule in BUILTIN_NAMES
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("rule", "text"), FALSE_POSITIVES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(FALSE_POSITIVES)]
)
def test_false_positive_is_left_alone(rule, text):
    """Placeholders, prose, hashes, ids and credential-free URLs come back unchanged."""
    assert rule == "*" or rule in BUILTIN_NAMES
    assert redact(text) == text


def test_every_rule_has_true_and_false_positive_cases():
    """The tables above exercise every built-in rule both ways."""
    assert {r for r, _, _ in TRUE_POSITIVES} == BUILTIN_NAMES
    assert {r for r, _ in FALSE_POSITIVES} - {"*"} == BUILTIN_NAMES


def test_rule_table_is_documented_and_consistent():
    """Every rule has a unique name, notes, and lowercase keywords (the prefilter lowercases text)."""
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule.notes and rule.keywords, rule.name
        assert all(k == k.lower() and k for k in rule.keywords), rule.name


# ------------------------------------------------------------------ properties

FRAGMENTS = (
    [text for _, text, _ in TRUE_POSITIVES]
    + [text for _, text in FALSE_POSITIVES]
    + [
        "password",
        "token",
        "=",
        ": ",
        '"',
        "'",
        "@",
        "://",
        "Bearer ",
        "Basic ",
        "Authorization: ",
        "\n",
        " ",
        "\\n",
        "[REDACTED:x]",
        "sig=",
        "?",
        "&",
        "-----BEGIN PRIVATE KEY-----",
        "\u0130",
        "\u212a",
        "-----END PRIVATE KEY-----",
        "eyJ",
        "ghp_",
        "--",
        "routing_key=",
        PD_KEY,
        B36,
        "curl ",
        " -u ",
        "--user ",
        ":",
        "mysql ",
        " -p",
        "docker login ",
        " -p ",
        "--password ",
        " | ",
        "hvs.",
        VAULT_LEGACY,
        "token=",
        "client-key-data: ",
        KUBE_KEY,
        "https://",
        SENTRY_KEY,
        "@o1.ingest.sentry.io/2",
        "sentry_key=",
    ]
)
mixed_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=10).map(
    "".join
)
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=400)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_text)
def test_redact_is_idempotent(text):
    """Redacting twice changes nothing more than redacting once."""
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_never_raises_on_any_string(text):
    """Arbitrary text (control chars, lone surrogates, non-BMP) is returned as a str, idempotently."""
    once = redact(text)
    assert isinstance(once, str)
    assert redact(once) == once


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mixed_text, any_text))
def test_keyword_prefilter_never_changes_the_result(text):
    """Running every rule on all text (no prefilter) finds exactly what the prefilter lets through."""
    assert Redactor().redact(text) == Redactor(_prefilter=False).redact(text)


@pytest.mark.parametrize(
    "text",
    [
        # once the Slack token is a marker, the base64 before it ends cleanly and counts
        "error: bad keyAuthorization: Basic " + BASIC + "xoxa-PAGERDUTY_KEY",
        # a redacted value must not leave '=' behind as a new value for '--client_secret'
        "-----END RSA PRIVATE KEY-----client_secret = shhh",
    ],
)
def test_idempotent_where_one_redaction_uncovers_another(text):
    """Cases hypothesis found: redact() re-checks the lines it changed until nothing new appears."""
    once = redact(text)
    assert redact(once) == once


def test_prefilter_agrees_on_all_table_cases_joined():
    """The whole case table as one log gives the same output with and without the prefilter."""
    log = "\n".join([t for _, t, _ in TRUE_POSITIVES] + [t for _, t in FALSE_POSITIVES])
    assert Redactor().redact(log) == Redactor(_prefilter=False).redact(log)


def test_secrets_are_found_in_a_multiline_log():
    """Secrets on different lines of one log are each redacted and no other line changes."""
    lines = ["step 1 ok", f"export GH_TOKEN={GHP}", "step 2 ok", f"curl {TEAMS_FLOW}{SIG}", "done"]
    out = redact("\n".join(lines)).split("\n")
    assert out[0::2] == lines[0::2]
    assert out[1] == f"export GH_TOKEN={R('github-token')}"
    assert out[3] == f"curl {TEAMS_FLOW}{R('teams-workflow-sig')}"


def test_offsets_survive_non_ascii_text():
    """Characters whose lowercase is longer (U+0130) or ASCII (Kelvin sign) do not shift redactions."""
    text = "\u0130\u0130 \u212a token=abc123 \u0130 password=pw \u00e9"
    assert (
        redact(text)
        == f"\u0130\u0130 \u212a token={R('secret-assignment')} \u0130 password={R('password-assignment')} \u00e9"
    )


def test_existing_markers_are_kept_and_their_neighbours_still_redacted():
    """Text redacted before (markers in it) keeps its markers; new secrets beside them go."""
    text = f"[REDACTED:x] token=abc {GHP} password=[REDACTED:password-assignment]"
    assert redact(text) == (
        f"[REDACTED:x] token={R('secret-assignment')} {R('github-token')} "
        f"password={R('password-assignment')}"
    )


def test_crlf_lines_keep_their_line_endings():
    """Windows line endings are not swallowed into a secret."""
    assert redact("password=hunter2\r\nnext") == f"password={R('password-assignment')}\r\nnext"


def test_non_string_is_a_type_error():
    """redact() is for text; bytes are the caller's to decode."""
    with pytest.raises(TypeError):
        redact(b"password=x")  # type: ignore[arg-type]


# ------------------------------------------------------------------ redact_obj


def test_redact_obj_redacts_string_values_deeply_and_keeps_keys():
    """Nested dict/list/tuple values are redacted; keys and non-string leaves are kept."""
    obj = {
        "message": f"push failed: {GHP}",
        "evidence": ["ok", f"Authorization: Bearer {JWT}"],
        "pair": ("a", f"token={GHP}"),
        "n": 3,
        "f": 1.5,
        "none": None,
        "flag": True,
        f"key-{GHP}": "keys are not redacted",
    }
    out = redact_obj(obj)
    assert out == {
        "message": f"push failed: {R('github-token')}",
        "evidence": ["ok", f"Authorization: Bearer {R('jwt')}"],
        "pair": ("a", f"token={R('github-token')}"),
        "n": 3,
        "f": 1.5,
        "none": None,
        "flag": True,
        f"key-{GHP}": "keys are not redacted",
    }


def test_redact_obj_does_not_touch_its_input():
    """The input tree is left as it was (a deep copy comes back)."""
    obj = {"a": [f"token={GHP}"]}
    snapshot = json.dumps(obj)
    out = redact_obj(obj)
    assert json.dumps(obj) == snapshot
    assert out["a"] is not obj["a"]


def test_redact_obj_replaces_values_under_secret_keys_whole():
    """A value stored under a password/token/routing-key field has no k=v context, so it goes whole."""
    out = redact_obj(
        {
            "password": "hunter2",
            "DB_PASSWORD": "xyz",
            "api_key": "abc",
            "routing_key": PD_KEY,
            "token": "${TOKEN}",
            "password_reset_url": "/reset",
            "tokens": "12",
            "secretName": "db",
            "env": [{"name": "GITHUB_TOKEN", "value": "abc"}],
        }
    )
    assert out == {
        "password": R("password-assignment"),
        "DB_PASSWORD": R("password-assignment"),
        "api_key": R("secret-assignment"),
        "routing_key": R("pagerduty-key"),
        "token": "${TOKEN}",
        "password_reset_url": "/reset",
        "tokens": "12",
        "secretName": "db",
        "env": [{"name": "GITHUB_TOKEN", "value": "abc"}],
    }


def test_redact_obj_replaces_kubeconfig_credentials_under_their_keys():
    """A parsed kubeconfig keeps its CA and names but loses client keys, certificates and tokens."""
    kubeconfig = {
        "clusters": [{"name": "c", "cluster": {"certificate-authority-data": KUBE_CERT}}],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": KUBE_CERT,
                    "client-key-data": KUBE_KEY,
                    "token": "0a1b2c3d4e5f",
                },
            }
        ],
    }
    out = redact_obj(kubeconfig)
    assert out["clusters"] == kubeconfig["clusters"]
    assert out["users"] == [
        {
            "name": "admin",
            "user": {
                "client-certificate-data": R("kubeconfig-credential"),
                "client-key-data": R("kubeconfig-credential"),
                "token": R("secret-assignment"),
            },
        }
    ]


def test_redact_obj_keeps_namedtuples_and_is_idempotent():
    """Named tuples keep their type, and redacting a redacted tree changes nothing."""
    Pair = collections.namedtuple("Pair", "key value")
    out = redact_obj({"p": Pair("password", "password=x"), "token": "abc"})
    assert out["p"] == Pair("password", f"password={R('password-assignment')}")
    assert type(out["p"]) is Pair
    assert redact_obj(out) == out


# ------------------------------------------------------------------ user rules from config


def test_extra_pattern_redacts_its_secret_group():
    """A config rule replaces its 'secret' group and keeps the rest of the match."""
    redactor = Redactor([("acme-key", r"ACME-KEY: (?P<secret>\w+)"), ("ticket", r"TKT-\d{6}")])
    assert redactor.redact("ACME-KEY: abc TKT-123456 password=x") == (
        f"ACME-KEY: {R('acme-key')} {R('ticket')} password={R('password-assignment')}"
    )
    assert redactor.redact(redactor.redact("ACME-KEY: abc")) == f"ACME-KEY: {R('acme-key')}"


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("acme", "(unclosed"), "redaction.patterns[0].regex: invalid regex"),
        (("Bad Name", "x"), "redaction.patterns[0].name: bad rule name"),
        (("jwt", "x"), "redaction.patterns[0].name: rule name is already a built-in rule"),
        (("empty", "a*"), "redaction.patterns[0].regex: regex matches the empty string"),
        (("only-name",), "redaction.patterns[0]: not a (name, regex) pair"),
    ],
)
def test_bad_extra_pattern_is_a_one_line_config_error(pair, message):
    """A broken config rule fails at construction with one line naming the key and the problem."""
    with pytest.raises(ConfigError) as info:
        Redactor([pair])
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
