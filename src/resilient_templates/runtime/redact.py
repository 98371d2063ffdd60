"""Secret redaction, applied before anything is stored, printed or sent.

Every analysis history row, every FailureAnalysis JSON and every notification payload passes
through :func:`redact` (free text) or :func:`redact_obj` (a JSON-like tree). Each secret is
replaced by ``[REDACTED:<rule-name>]``; the context around it stays, so the text is still
useful::

    Authorization: Bearer abc123…         ->  Authorization: Bearer [REDACTED:bearer-token]
    https://user:pw@host/x                 ->  https://user:[REDACTED:url-password]@host/x
    password=hunter2                       ->  password=[REDACTED:password-assignment]
    https://hooks.slack.com/services/T/B/x ->  https://hooks.slack.com/services/[REDACTED:slack-webhook]

How it works (the gitleaks recipe, in pure ``re``):

* Each :class:`Rule` has ``keywords``: small lowercase regexes, each starting with a
  literal (so ``re`` scans for them as fast as ``str.find``), and its own regex *starts
  where a keyword starts*. The text is lowercased once, each distinct keyword is scanned
  once per call, and a rule's regex is tried only at its keyword hits, anchored (``match``,
  not ``search``) and bounded by the end of the line (block rules, private keys, may run on).
  Most of a log is never seen by most regexes, and the work stays linear.
* A rule's secret is its group named ``secret`` (or ``secret2``…, the first that took part),
  else the whole match. An optional ``check`` rejects placeholders (``${X}``, ``{{ … }}``,
  ``***``), stopwords, paths and code (``token = next(it)``, as tracebacks quote it), so
  ``token: {{ secrets.X }}`` stays readable. Command-line flags mean a password only for
  some commands (``-p`` is mysql's password and docker run's port), so those rules start
  at the command word (rare in logs, cheap to prefilter) and reach its flag within the same
  shell command (no ``|``, ``;`` or ``&`` between, at most 512 characters on).
* Overlapping findings merge into one redaction, named after the earliest, longest one
  (ties go to the rule listed first: vendor formats before generic assignments).
* ``redact`` is idempotent: findings overlapping an existing ``[REDACTED:…]`` marker are
  dropped, and the lines a pass changed are checked again until nothing new appears (a
  redaction can complete a neighbour's boundary: ``…==xoxb-…``).

Only the stdlib is imported; the regexes compile on first use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..errors import ConfigError

__all__ = ["RULES", "Redactor", "Rule", "redact", "redact_obj"]

#: Replacement format; ``{name}`` is the rule name.
MARKER = "[REDACTED:{name}]"
_MARKER_PATTERN = r"\[REDACTED:[^\]\s]{0,64}\]"
_MARKER_PREFIX = "[REDACTED:"
_RULE_NAME = r"[a-z0-9][a-z0-9._-]{0,63}"
#: Re-check rounds after the first pass (each only on the lines the previous one changed).
_MAX_ROUNDS = 8

Check = Callable[["re.Match[str]", str], bool]


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret: what it looks like and how to find it cheaply.

    ``pattern`` is a Python regex (compiled with ``re.ASCII``); its group ``secret`` (or
    ``secret2``, ``secret3``…) is what gets replaced, the rest is kept as context.
    ``keywords`` are lowercase regexes that begin with a literal; every match of ``pattern``
    starts where one of them matches the lowercased text: the prefilter, and the only places
    the regex is tried. (A no-prefilter test checks this on random text.)
    ``check(match, secret)`` may veto a match (placeholders, prose). ``block`` rules span
    several lines (a PEM body).
    """

    name: str
    pattern: str
    notes: str
    keywords: tuple[str, ...] = ()
    ignore_case: bool = False
    check: Check | None = field(default=None, repr=False, compare=False)
    block: bool = False


# --------------------------------------------------------------------------- checks


_STOPWORDS = frozenset(
    """none null nil true false undefined empty unset required optional expired invalid
    missing redacted masked hidden secret secrets password token tokens string str bool
    boolean int integer yes no ok n/a na value default disabled enabled basic bearer oauth
    oauth2 oidc saml ldap kerberos digest ntlm anonymous await lambda yield self this""".split()
)
_STATEMENT_PREFIX = (
    r"""[ \t]*(?:\d{4}-\d\d-\d\d[T ][0-9:.,]+Z?[ \t]+)?   # an optional log timestamp
    (?:(?:-|export|set|ENV|local|readonly|declare)[ \t]+)*  # YAML list item, shell keywords
    [{,"'\\ \t]*"""
)
_HEADER_FLAG = r"""(?:^|[\s;&|])(?:-H|--header)[ \t=]*["']?$"""


@cache
def _re(pattern: str, flags: int = re.ASCII) -> re.Pattern[str]:
    """Compile on first use: the runtime's cold start pays for no regex it does not run."""
    return re.compile(pattern, flags)


def _is_placeholder(value: str) -> bool:
    """True for values that only point at a secret: ``${X}``, ``{{ x }}``, ``$(cat …)``, ``***``."""
    v = value.strip()
    if v[:1] in _QUOTES or v[-1:] in _QUOTES:
        v = v.strip("\"'")
    if not v:
        return True
    first = v[0]
    if first == "$":
        return len(v) == 1 or v[1] in "{(_" or v[1].isalpha()
    if first in "{<" or v.startswith(_PLACEHOLDER_STARTS):
        return True
    if first == "%" and v[-1] == "%" and len(v) > 2:  # %WINDOWS_VAR%
        return True
    if first in "*•#.xX" and (not v.strip(first) and (first not in "xX" or len(v) >= 3)):
        return True  # a mask: ***, ••••, ..., xxxx
    return len(v) <= 10 and v.lower() in _STOPWORDS


_QUOTES = ('"', "'")
_PLACEHOLDER_STARTS = ("%(", "%s", "%{", "#{", "@@", _MARKER_PREFIX)


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~/")) and " " not in value


def _token_like(value: str, min_len: int = 8) -> bool:
    """A credential-shaped word: long enough, letters and digits (prose rarely is)."""
    return (
        len(value) >= min_len
        and _re("[0-9]").search(value) is not None
        and _re("[A-Za-z]").search(value) is not None
    )


def _key_starts_statement(text: str, keyword_start: int) -> bool:
    """True when the key ending at ``keyword_start`` begins a config line or a header flag."""
    i = keyword_start
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_.-"):
        i -= 1
    if _re(_HEADER_FLAG).search(text, max(0, i - 16), i) is not None:
        return True
    line_start = text.rfind("\n", max(0, i - 80), i) + 1
    if line_start == 0 and i > 80:
        return False
    return _re(_STATEMENT_PREFIX, re.ASCII | re.VERBOSE).fullmatch(text, line_start, i) is not None


def _check_context_value(match: re.Match[str], secret: str) -> bool:
    """Context rules: anything but a placeholder."""
    return not _is_placeholder(secret)


def _check_assignment(match: re.Match[str], secret: str) -> bool:
    """``key = value`` rules: no placeholder, no path, no code; prose-like forms need a token.

    Unquoted values that are code (``token = next(it)``, ``password=self.pw``,
    ``Token: FG_DEFAULT``), as traceback source lines show them, are left alone.
    """
    if _is_placeholder(secret) or _looks_like_path(secret):
        return False
    if match.group("bare") is None:
        return True
    if _looks_like_code(match.string, match.end("bare"), secret):
        return False
    flag = match.group("flag")
    if flag is not None and "=" not in flag:
        return _token_like(secret, 6)  # "--password s3cret", not "--password option"
    if match.group("op") == ":":
        if match.string[match.end("op") : match.end("op") + 1] not in (" ", "\t"):
            return False  # user:password@host or a scheme, not "key: value"
        return _key_starts_statement(match.string, match.start()) or _token_like(secret)
    return True


_CODE_VALUE = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"


def _looks_like_code(text: str, end: int, value: str) -> bool:
    """A call, subscript, attribute chain (``self.token``) or CONSTANT_NAME, not a literal."""
    return text[end : end + 1] in ("(", "[") or _re(_CODE_VALUE).fullmatch(value) is not None


def _check_basic(match: re.Match[str], secret: str) -> bool:
    """Bare ``Basic xyz`` counts only when xyz decodes to ``user:password``."""
    if match.group("secret") is not None:
        return not _is_placeholder(secret)
    import base64
    import binascii

    try:
        decoded = base64.b64decode(secret + "=" * (-len(secret) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and all(32 <= b < 127 for b in decoded)


def _check_authorization(match: re.Match[str], secret: str) -> bool:
    """``Authorization: <scheme> value``; without a known scheme the value must look like a token."""
    if _is_placeholder(secret):
        return False
    if match.group("scheme") is not None or match.group("multi") is not None:
        return True
    return _token_like(secret, 12)


def _check_cookie(match: re.Match[str], secret: str) -> bool:
    """A cookie header carries ``name=value`` (prose such as 'Cookie: expired' does not)."""
    return "=" in secret and not _is_placeholder(secret)


def _check_teams_url(match: re.Match[str], secret: str) -> bool:
    """The sig= belongs to a Teams Workflows / Power Automate URL (looked up behind it)."""
    text, pos = match.string, match.start()
    behind = text[max(0, pos - 2048) : pos][::-1]
    url = _re(r"[^\s\"'<>]*").match(behind).group()[::-1].lower()  # type: ignore[union-attr]
    return any(
        host in url for host in ("logic.azure.com", "powerplatform.com", "powerautomate.com")
    )


_SHELL_SEPARATORS = "|;&"
#: How far (characters) a command-anchored rule looks ahead for its flag and back for its tool.
#: Bounded: a line of nothing but command words costs O(length x reach), ~2 s per MB.
_COMMAND_REACH = 512
_WITHIN_COMMAND = rf"[^\n{_SHELL_SEPARATORS}]{{0,{_COMMAND_REACH}}}?" + r"""(?<![^\s"'])"""
_QUOTED_OR_BARE = (
    r"""(?:"(?P<secret>[^"\r\n]+)"|'(?P<secret2>[^'\r\n]+)'|(?P<secret3>[^\s"'-][^\s"']*))"""
)
_REGISTRY_TOOL = (
    r"(?<![\w.-])(?:docker|podman|nerdctl|buildah|skopeo|helm|oras|crane|regctl)(?![\w.-])"
)
_PORT_MAPPING = r"(?:[0-9.]+:)?[0-9]+(?:-[0-9]+)?:[0-9]+(?:-[0-9]+)?(?:/[a-z]+)?"


def _command_before(match: re.Match[str]) -> str:
    """The shell command before the match on its line (after the last ``|``, ``;`` or ``&``)."""
    text, pos = match.string, match.start()
    low = max(0, pos - _COMMAND_REACH)
    start = max(text.rfind(c, low, pos) for c in "\n" + _SHELL_SEPARATORS) + 1
    return text[max(start, low) : pos]


def _check_mysql_password(match: re.Match[str], secret: str) -> bool:
    """A real value, not a port mapping (``docker run --name mysql -p3306:3306``)."""
    return not _is_placeholder(secret) and _re(_PORT_MAPPING).fullmatch(secret) is None


def _check_registry_login(match: re.Match[str], secret: str) -> bool:
    """A real value, and the ``login`` belongs to a registry client (docker, podman, helm …)."""
    if _is_placeholder(secret):
        return False
    return _re(_REGISTRY_TOOL).search(_command_before(match)) is not None


def _check_vault_token(match: re.Match[str], secret: str) -> bool:
    """``hvs.``/``hvb.`` tokens look like no code; a legacy ``s.`` token is not a method call."""
    return match.string[match.end() : match.end() + 1] not in ("(", "[")


def _check_base64_blob(match: re.Match[str], secret: str) -> bool:
    """A key or certificate blob, not kubectl's ``DATA+OMITTED`` / ``REDACTED`` masks."""
    return not _is_placeholder(secret) and _token_like(secret, 16)


# --------------------------------------------------------------------------- the rules

_SEP = r"""\\?["']?[ \t]*(?P<op>:=|=>|[:=])[ \t]*"""
_VALUE = (
    r"""(?:\\?"(?P<secret>(?:[^"\\\r\n]|\\[^"\r\n]){1,2048})\\?"?"""
    r"""|'(?P<secret2>[^'\r\n]{1,2048})'?"""
    r"""|(?P<bare>(?P<secret3>[^\s"'`,;&<>(){}\[\]\\=:][^\s"'`,;&<>(){}\[\]\\]{0,2047})))"""
)
_KEY_END = r"(?![A-Za-z0-9_.\-])"
# Keywords run on lowercased text: where a key word ends, the key ends.
_KEY_END_LOWER = r"(?![a-z0-9_.\-])"
_KEY_KEYWORD = rf"key{_KEY_END_LOWER}"
_AUTHORIZATION_KEYWORD = r"""authorization\\?["']?[ \t]*[:=]"""


def _compound(*words: str) -> str:
    """``api key`` -> ``api[_-]?key`` (matches api_key, api-key, apikey, apiKey)."""
    return "|".join(r"[_-]?".join(w.split()) for w in words)


def _assignment(keys: str) -> str:
    """``key=value``, ``key: value``, ``"key": "value"`` and ``--key value``, starting at the key."""
    return (
        rf"(?:(?<=--)(?:{keys}){_KEY_END}(?P<flag>[ \t]*=[ \t]*|[ \t]+)"
        rf"|(?:{keys}){_KEY_END}{_SEP})" + _VALUE
    )


_PASSWORD_KEYS = r"(?<![A-Za-z])(?:pass|pwd)|passw(?:or)?d|passphrase|passcode"
_PASSWORD_KEYWORD = rf"p(?:ass(?:w(?:or)?d|phrase|code)?|wd){_KEY_END_LOWER}"


def _key_after(*words: str) -> str:
    """``key`` preceded by one of ``words`` (``api`` -> api_key, api-key, api.key, apikey, apiKey).

    The match starts at ``key``, so the prefilter needs one keyword for them all.
    """
    behind = "|".join(f"(?<={w})|(?<={w}[._-])" for w in words)
    return f"(?:{behind})key"


# "client_secret", "access_token", "SessionToken" end in one word and match at that word;
# compounds ending in "key" match at "key" when the word before is a secret-ish one.
_SECRET_KEYS = (
    _compound("secret key base", "secret key")
    + "|secret|token|credentials?|(?<![A-Za-z])auth|docker(?:configjson|cfg)|"
    + _key_after(
        "api", "access", "private", "account", "session", "signing", "encryption", "master", "tls"
    )
)
_AUTH_HEADER = r"""(?:(?<![A-Za-z0-9_])authorization\\?["']?[ \t]*[:=][ \t]*\\?["']?)"""
_TOKEN_CHARS = r"[A-Za-z0-9._~+/-]"

RULES: tuple[Rule, ...] = (
    Rule(
        "private-key",
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
        r"(?P<secret>(?>(?:[^-]|-(?!-)){1,16384})(?=-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)"
        r"|(?:(?:[ \t]*(?:\r?\n|(?:\\+r)?\\+n))+[ \t]*"
        r"(?:[A-Za-z0-9+/=]{8,}|Proc-Type:[^\r\n\\]*|DEK-Info:[^\r\n\\]*)){1,1000})",
        "PEM private key body (RSA, EC, OPENSSH, ENCRYPTED, PGP …); BEGIN/END lines stay. "
        "Also a key truncated before END, and keys inside JSON strings (\\n escapes).",
        ("-----begin",),
        block=True,
    ),
    Rule(
        "jwt",
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
        "JSON Web Token: base64url header and payload both starting '{\"' (eyJ), signature "
        "optional (alg none). Other base64 is left alone.",
        ("eyj",),
    ),
    Rule(
        "github-token",
        r"gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{82,255}",
        "GitHub classic (ghp_ PAT, gho_ OAuth, ghu_ user-to-server, ghs_ server-to-server / "
        "Actions, ghr_ refresh) + 36, fine-grained github_pat_ + 82. Pre-2021 40-hex tokens "
        "are indistinguishable from git SHAs and are not matched.",
        ("g(?:h[pousr]_|ithub_pat_)",),
    ),
    Rule(
        "vault-token",
        r"(?<![A-Za-z0-9_.-])hv[sbr]\.[A-Za-z0-9_-]{24,1024}(?![A-Za-z0-9_-])"
        r"|(?i:token)\\?[\"']?[ \t]*[:=][ \t]*\\?[\"']?(?P<secret>s\.[A-Za-z0-9]{24})"
        r"(?![A-Za-z0-9_.-])",
        "HashiCorp Vault service (hvs.), batch (hvb.) and recovery (hvr.) tokens anywhere; a "
        "legacy service token (s. + 24) only as a token value (VAULT_TOKEN=, X-Vault-Token:, "
        '"client_token":), where secret-assignment takes hvs.x / s.x for code (attribute access).',
        (r"hv[sbr]\.", rf"token{_KEY_END_LOWER}"),
        check=_check_vault_token,
    ),
    Rule(
        "gitlab-token",
        r"gl(?:pat|dt|ft|imt|ptt|rt|cbt|soat|oas|agent|ffct|wt)-[A-Za-z0-9_-]{20,255}"
        r"|GR1348941[A-Za-z0-9_-]{20,255}",
        "GitLab personal/deploy/feed/trigger/runner/CI-job/OAuth/agent tokens (glpat- …) and "
        "runner registration tokens (GR1348941…).",
        ("g(?:l(?:pat|dt|ft|imt|ptt|rt|cbt|soat|oas|agent|ffct|wt)-|r1348941)",),
    ),
    Rule(
        "slack-webhook",
        r"hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9+/_-]{8,})",
        "Slack incoming-webhook / workflow / trigger URL; the path after services/ is the secret.",
        (r"hooks\.slack",),
    ),
    Rule(
        "slack-token",
        r"(?:xoxe\.)?xox[abeoprs]-[A-Za-z0-9][A-Za-z0-9-]{8,}|xapp-[0-9]-[A-Za-z0-9-]{10,}",
        "Slack bot (xoxb-), user (xoxp-), app-level (xapp-), legacy/workspace (xoxa-, xoxo-, "
        "xoxs-, xoxr-) and refresh (xoxe.) tokens.",
        ("x(?:ox|app-)",),
    ),
    Rule(
        "teams-workflow-sig",
        r"(?:(?<=[?&])|(?<=&amp;)|(?<=\\u0026))sig=(?P<secret>[A-Za-z0-9%_.~+/=-]+)",
        "Teams Workflows / Power Automate trigger URL (*.logic.azure.com, *.powerplatform.com): "
        "only the sig= value is secret; host and workflow id stay.",
        ("sig(?:nature)?=",),
        ignore_case=True,
        check=_check_teams_url,
    ),
    Rule(
        "teams-webhook",
        r"(?:webhook\.office\.com|outlook\.office(?:365)?\.com)/webhook(?:b2)?/"
        r"(?P<secret>[A-Za-z0-9@/_.-]{8,})",
        "Legacy Office 365 connector webhook (*.webhook.office.com/webhookb2/…, retired 2026); "
        "the path is the secret.",
        (r"webhook\.office\.com", r"outlook\.office"),
        ignore_case=True,
    ),
    Rule(
        "url-signature",
        r"(?:(?<=[?&])|(?<=&amp;)|(?<=\\u0026))"
        r"(?:sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature)="
        r"(?P<secret>[A-Za-z0-9%_.~+/=-]+)",
        "Signed URLs: Azure SAS sig=, S3 presigned X-Amz-Signature / X-Amz-Security-Token, "
        "GCS X-Goog-Signature. The URL stays, the signature goes.",
        ("sig(?:nature)?=", "x-(?:amz-signature|amz-security-token|goog-signature)="),
        ignore_case=True,
    ),
    Rule(
        "aws-access-key-id",
        r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
        "AWS access key id (AKIA long-term, ASIA STS, ABIA, ACCA, A3T…): 20 uppercase chars.",
        ("a(?:kia|sia|bia|cca|3t)",),
    ),
    Rule(
        "aws-secret-access-key",
        r"secret[_-]?access[_-]?key\\?[\"']?[ \t]*(?::=|=>|[:=])[ \t]*\\?[\"']?"
        r"(?P<secret>[A-Za-z0-9/+=]{16,})",
        'aws_secret_access_key = …, AWS_SECRET_ACCESS_KEY=…, "SecretAccessKey": "…" '
        "(aws sts output): the 40-char secret next to its key name.",
        ("secret",),
        ignore_case=True,
        check=_check_context_value,
    ),
    Rule(
        "pagerduty-key",
        r"(?:"
        + _key_after("routing", "integration", "service")
        + r"|pagerduty[A-Za-z0-9_-]{0,40}?key)"
        r"\\?[\"']?[ \t]*(?::=|=>|[:=])[ \t]*\\?[\"']?(?P<secret>[A-Za-z0-9+_-]{20,64})"
        r"(?![A-Za-z0-9+_-])",
        "PagerDuty Events routing / integration / service keys: 32 chars with no vendor "
        "prefix, so only next to routing_key, integration_key, service_key, PAGERDUTY_…KEY.",
        (_KEY_KEYWORD, "pagerduty"),
        ignore_case=True,
        check=_check_context_value,
    ),
    Rule(
        "npm-token",
        r"npm_[A-Za-z0-9]{36,255}",
        "npm access token (npm_ + 36).",
        ("npm_",),
    ),
    Rule(
        "pypi-token",
        r"pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{16,}",
        "PyPI / TestPyPI API token (macaroon starting pypi-AgEIcHlwaS5vcmc).",
        ("pypi-ag",),
    ),
    Rule(
        "google-api-key",
        r"AIza[0-9A-Za-z_-]{35,}",
        "Google Cloud / Firebase API key (AIza + 35).",
        ("aiza",),
    ),
    Rule(
        "anthropic-api-key",
        r"sk-ant-[a-z]{2,10}[0-9]{2}-[A-Za-z0-9_-]{20,}",
        "Anthropic API / admin keys (sk-ant-api03-…).",
        ("sk-",),
    ),
    Rule(
        "openai-api-key",
        r"(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"
        r"|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48}(?![A-Za-z0-9]))",
        "OpenAI keys: sk-proj-/sk-svcacct-/sk-admin- and legacy sk-… (T3BlbkFJ marker).",
        ("sk-",),
    ),
    Rule(
        "bearer-token",
        rf"{_AUTH_HEADER}bearer[ \t]+(?P<secret>{_TOKEN_CHARS}+=*)"
        rf"|(?<![A-Za-z0-9_-])bearer[ \t]+(?P<secret2>(?={_TOKEN_CHARS}{{0,4096}}[0-9])"
        rf"{_TOKEN_CHARS}{{16,}}=*)",
        "Authorization: Bearer <token> (any value), or a bare 'Bearer <token>' whose token has "
        "16+ chars including a digit (so prose such as 'Bearer token' stays).",
        (_AUTHORIZATION_KEYWORD, r"bearer[ \t]"),
        ignore_case=True,
        check=_check_context_value,
    ),
    Rule(
        "basic-auth",
        rf"{_AUTH_HEADER}basic[ \t]+(?P<secret>[A-Za-z0-9+/]+=*)"
        r"|(?<![A-Za-z0-9_-])basic[ \t]+(?P<secret2>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])",
        "Authorization: Basic <base64>; a bare 'Basic xyz' only when xyz decodes to user:password.",
        (_AUTHORIZATION_KEYWORD, r"basic[ \t]"),
        ignore_case=True,
        check=_check_basic,
    ),
    Rule(
        "authorization-header",
        rf"{_AUTH_HEADER}(?!bearer\b|basic\b)"
        r"(?:(?P<scheme>token|bot|apikey|api-key|key|sso-key|pat|splunk|gitlab)[ \t]+"
        r"(?P<secret>[^\s\"'`,;]+)"
        r"|(?P<multi>digest|negotiate|ntlm|hmac|hmac-sha256|aws4-hmac-sha256|oauth|signature)[ \t]+"
        r"(?P<secret2>[^\r\n\"'`]{1,4096})"
        r"|(?P<secret3>[^\s\"'`,;]+))",
        "Authorization / Proxy-Authorization with another scheme (token as curl -H and gh use, "
        "Digest, AWS4-HMAC-SHA256 …), or no scheme and a token-shaped value.",
        (_AUTHORIZATION_KEYWORD,),
        ignore_case=True,
        check=_check_authorization,
    ),
    Rule(
        "cookie-header",
        r"(?<![A-Za-z0-9_])cookie\\?[\"']?[ \t]*:[ \t]*\\?[\"']?(?P<secret>[^\r\n\"']{1,8192})",
        "Cookie: / Set-Cookie: header values (session cookies are credentials): everything after "
        "the colon, when it holds a name=value pair.",
        (r"cookie\\?[\"']?[ \t]*:",),
        ignore_case=True,
        check=_check_cookie,
    ),
    Rule(
        "sentry-dsn",
        r"://(?P<secret>[0-9a-f]{32}(?::[0-9a-f]{32})?)@[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?"
        r"(?:/[A-Za-z0-9._-]{1,64}){0,8}/[0-9]{1,20}(?![A-Za-z0-9_.-])"
        r"|(?<=(?<![A-Za-z0-9_])sentry_)key=(?P<secret2>[0-9a-f]{32})(?![0-9a-f])",
        "Sentry DSN (https://<32-hex key>[:<legacy secret>]@host/[path/]<project id>, SaaS or "
        "self-hosted) and the sentry_key= of its envelope/store endpoints: the key goes, "
        "the host and project stay.",
        (r"://[0-9a-f]{32}[:@]", _KEY_KEYWORD),
        ignore_case=True,
        check=_check_context_value,
    ),
    Rule(
        "kubeconfig-credential",
        r"client-(?:key|certificate)-data\\?[\"']?[ \t]*:[ \t]*\\?[\"']?"
        r"(?P<secret>[A-Za-z0-9+/=]{16,})",
        "kubeconfig users[].user client-key-data / client-certificate-data (base64 PEM). "
        "certificate-authority-data is public and stays; kubectl's DATA+OMITTED / REDACTED too. "
        "A users[].user token: is secret-assignment's.",
        (r"client-(?:key|certificate)-data",),
        check=_check_base64_blob,
    ),
    Rule(
        "cli-user-password",
        r"(?<![\w.-])curl(?:\.exe)?(?![\w.-])" + _WITHIN_COMMAND
        + r"(?:-[A-Za-z]{0,8}[uU]|--(?:proxy-)?user)(?:[ \t]+|=)"
        r"""(?:"[^"\r\n:]*:(?P<secret>[^"\r\n]+)"|'[^'\r\n:]*:(?P<secret2>[^'\r\n]+)'"""
        r"""|[^\s"':]*:(?P<secret3>[^\s"']+))""",
        "curl -u / --user / -U / --proxy-user user:password (also inside combined short "
        "flags, -sSfu): the password goes. Only in a curl command, so docker run -u 1000:1000 "
        "and sudo -u root stay.",
        ("curl",),
        check=_check_context_value,
    ),
    Rule(
        "cli-password-flag",
        r"(?<![\w.-])(?:mysql(?:dump|admin|import|show|check|pump|slap|sh)?"
        r"|mariadb(?:-dump|-admin|-import|-show|-check|-slap)?)(?![\w.-])"
        + _WITHIN_COMMAND + r"-p" + _QUOTED_OR_BARE,
        "mysql / mysqldump / mysqladmin / mariadb -pPASSWORD (attached: '-p word' makes them "
        "ask, and word is the database). Only in those commands, so -p 8080:80 and ls -p "
        "stay, and a port mapping after a container named mysql too; --password=… is "
        "password-assignment's.",
        ("m(?:ysql|ariadb)",),
        check=_check_mysql_password,
    ),
    Rule(
        "url-password",
        r"://[^\s:/?#@\"'<>]{0,256}:(?P<secret>[^\s/?#\"'<>]{1,1024})@",
        "Password in a URL's userinfo (scheme://user:password@host); user and host stay.",
        (r"://[^\s:/?#@\"'<>]{0,256}:",),
        check=_check_context_value,
    ),
    Rule(
        "password-assignment",
        _assignment(_PASSWORD_KEYS),
        'password= / passwd= / pwd= / pass= / passphrase= in k=v, k: v, "k": "v", '
        "K_PASSWORD=v and --password v forms. Keys must end with the word "
        "(password_reset_url is not one); placeholders, empty values and paths stay; a mid-line "
        "'password: word' needs a letters-and-digits value.",
        (_PASSWORD_KEYWORD,),
        ignore_case=True,
        check=_check_assignment,
    ),
    Rule(
        "registry-password-flag",
        r"(?<![\w.-])login(?![\w.-])" + _WITHIN_COMMAND
        + r"(?:-p|--password)(?:[ \t]+|=)" + _QUOTED_OR_BARE,
        "docker / podman / nerdctl / buildah / skopeo / helm registry / oras / crane login "
        "-p PASSWORD or --password PASSWORD, whatever the value looks like "
        "(--password-stdin is not a password; -p 8080:80 outside a login is a port).",
        ("login",),
        check=_check_registry_login,
    ),
    Rule(
        "secret-assignment",
        _assignment(_SECRET_KEYS),
        "secret= / token= / api_key= / apikey= / access_token= / client_secret= / "
        "*_SECRET_KEY= / credentials= / auth= / tls.key: / .dockerconfigjson: … in the same "
        'forms as password-assignment (GITHUB_TOKEN=v, "SessionToken": "v", PRIVATE-TOKEN: v).',
        (
            "secret",
            rf"token{_KEY_END_LOWER}",
            rf"credentials?{_KEY_END_LOWER}",
            rf"auth{_KEY_END_LOWER}",
            _KEY_KEYWORD,
            "docker(?:configjson|cfg)",
        ),
        ignore_case=True,
        check=_check_assignment,
    ),
)


# --------------------------------------------------------------------------- the engine


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    regex: re.Pattern[str]
    priority: int
    keywords: tuple[re.Pattern[str], ...]  # run on the lowercased text
    secret_groups: tuple[int, ...]  # numbers of the groups named secret, secret2, … in order


def _compile(rule: Rule, priority: int) -> _Compiled:
    flags = re.ASCII | (re.IGNORECASE if rule.ignore_case else 0)
    keywords = tuple(_re(k, re.ASCII) for k in rule.keywords)
    regex = re.compile(rule.pattern, flags)
    return _Compiled(rule, regex, priority, keywords, _secret_groups(regex))


def _secret_groups(regex: re.Pattern[str]) -> tuple[int, ...]:
    """Group numbers of ``secret``, ``secret2``, ``secret3``… in that order."""
    names = sorted(
        (n for n in regex.groupindex if n.startswith("secret")), key=lambda n: (len(n), n)
    )
    return tuple(regex.groupindex[n] for n in names)


@cache
def _builtin() -> tuple[_Compiled, ...]:
    return tuple(_compile(rule, i) for i, rule in enumerate(RULES))


def _secret_span(match: re.Match[str], groups: tuple[int, ...]) -> tuple[int, int]:
    """The span of the first participating ``secret*`` group (else the whole match), trimmed."""
    start, end = match.span()
    for group in groups:
        if match.start(group) != -1:
            start, end = match.span(group)
            break
    text = match.string
    if start < end and text[start] not in _TRIM_START and text[end - 1] not in _TRIM_END:
        return start, end  # the common case: nothing to trim
    while start < end:  # trim whitespace and \n-style escapes (a PEM body inside JSON)
        if text[start].isspace():
            start += 1
        elif end - start >= 2 and text[start] == "\\" and text[start + 1] in "nrt":
            start += 2
        else:
            break
    while start < end:
        if text[end - 1].isspace():
            end -= 1
        elif end - start >= 2 and text[end - 2] == "\\" and text[end - 1] in "nrt":
            end -= 2
        else:
            break
    return start, end


_TRIM_START = frozenset(" \t\r\n\x0b\x0c\\")  # whitespace, or the backslash of a \\n escape
_TRIM_END = frozenset(" \t\r\n\x0b\x0cnrt")  # whitespace, or the letter of a \\n escape


def _lower_same_length(text: str) -> str:
    """ASCII-compatible lowercase whose offsets equal ``text``'s (for the keyword prefilter)."""
    if text.isascii():
        return text.lower()
    lowered = text.replace("\u0130", "I").lower()  # U+0130 is the one char lower() widens
    if len(lowered) == len(text):
        return lowered
    return text.translate({c: c + 32 for c in range(65, 91)})


class Redactor:
    """Redacts the built-in :data:`RULES` plus ``extra_patterns`` from config.

    ``extra_patterns`` are ``(name, regex)`` pairs; a group named ``secret`` marks the part
    to replace (else the whole match). They run on the whole text (no prefilter).
    """

    def __init__(
        self, extra_patterns: Iterable[tuple[str, str]] = (), *, _prefilter: bool = True
    ) -> None:
        self._extra = tuple(self._user_rule(i, pair) for i, pair in enumerate(extra_patterns))
        self._prefilter = _prefilter

    @staticmethod
    def _user_rule(index: int, pair: tuple[str, str]) -> _Compiled:
        key = f"redaction.patterns[{index}]"
        try:
            name, pattern = pair
        except (TypeError, ValueError):
            raise ConfigError(
                "not a (name, regex) pair", key=key, value=pair, expected="[name, regex]"
            ) from None
        if not isinstance(name, str) or not _re(_RULE_NAME).fullmatch(name):
            raise ConfigError(
                "bad rule name",
                key=f"{key}.name",
                value=name,
                expected="lowercase letters, digits, '.', '_', '-' (max 64)",
            )
        if any(rule.name == name for rule in RULES):
            raise ConfigError(
                "rule name is already a built-in rule",
                key=f"{key}.name",
                value=name,
                expected="a new name",
            )
        if not isinstance(pattern, str):
            raise ConfigError(
                "regex must be a string", key=f"{key}.regex", value=pattern, expected="a regex"
            )
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"invalid regex: {exc}",
                key=f"{key}.regex",
                value=pattern,
                expected="a Python regular expression",
            ) from None
        if regex.search("") is not None:
            raise ConfigError(
                "regex matches the empty string",
                key=f"{key}.regex",
                value=pattern,
                expected="a regex that needs at least one character",
            )
        rule = Rule(name, pattern, "user rule from config")
        return _Compiled(rule, regex, len(RULES) + index, (), _secret_groups(regex))

    # -- public

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[REDACTED:<rule-name>]``."""
        if not isinstance(text, str):
            raise TypeError(f"redact() takes str, not {type(text).__name__}")
        if not text:
            return text
        out, touched = self._pass(text, blocks=True)
        for _ in range(_MAX_ROUNDS):
            if not touched:
                break
            out, touched = self._repass(out, touched)
        return out

    def redact_obj(self, obj: Any) -> Any:
        """A deep copy of dicts/lists/tuples with every string value redacted (keys are kept).

        A string under a secret-looking key (``password``, ``api_key``, ``routing_key`` …)
        is replaced whole, since it has no ``key=`` context of its own.
        """
        return self._redact_obj(obj, None)

    # -- internals

    def _redact_obj(self, obj: Any, key: object) -> Any:
        if isinstance(obj, str):
            if isinstance(key, str) and obj and not _is_placeholder(obj):
                name = _secret_key_rule(key)
                if name is not None and not _re(_MARKER_PATTERN).fullmatch(obj):
                    return MARKER.format(name=name)
            return self.redact(obj)
        if isinstance(obj, dict):
            return {k: self._redact_obj(v, k) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._redact_obj(v, key) for v in obj]
        if isinstance(obj, tuple):
            items = [self._redact_obj(v, key) for v in obj]
            return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
        return obj

    def _pass(self, text: str, *, blocks: bool) -> tuple[str, list[tuple[int, int]]]:
        """One redaction pass: the new text and the (start, end) of each line it changed."""
        spans = self._merge(self._find(text, blocks=blocks), text)
        if not spans:
            return text, []
        out: list[str] = []
        marker_starts: list[int] = []
        pos = size = 0
        for start, end, name in spans:
            kept = text[pos:start]
            marker = MARKER.format(name=name)
            out += (kept, marker)
            marker_starts.append(size + len(kept))
            size += len(kept) + len(marker)
            pos = end
        out.append(text[pos:])
        new = "".join(out)
        touched: list[tuple[int, int]] = []
        for at in marker_starts:
            if touched and at < touched[-1][1]:
                continue
            line_end = new.find("\n", at)
            touched.append((new.rfind("\n", 0, at) + 1, len(new) if line_end == -1 else line_end))
        return new, touched

    def _repass(self, text: str, lines: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
        """Redact the changed lines again, together, until nothing new appears.

        A redaction can satisfy a neighbour's boundary (``…==xoxb-…``: once the Slack token
        is a marker, the base64 before it ends cleanly), so one pass is not always a fixpoint.
        Line rules only see their own line, so re-checking the changed lines is enough.
        """
        olds = [text[start:end] for start, end in lines]
        joined, changed = self._pass("\n".join(olds), blocks=False)
        if not changed:
            return text, []
        news = joined.split("\n")
        if len(news) != len(olds):  # a config rule crossed a line: redo the whole text
            return self._pass(text, blocks=True)
        out: list[str] = []
        next_lines: list[tuple[int, int]] = []
        pos = delta = 0
        for (start, end), old, new in zip(lines, olds, news):
            if new != old:
                out += (text[pos:start], new)
                pos = end
                next_lines.append((start + delta, start + delta + len(new)))
                delta += len(new) - len(old)
        out.append(text[pos:])
        return "".join(out), next_lines

    def _find(self, text: str, *, blocks: bool = True) -> list[tuple[int, int, int, str]]:
        found: list[tuple[int, int, int, str]] = []
        rules = [c for c in _builtin() if blocks or not c.rule.block]
        if self._prefilter:
            lowered = _lower_same_length(text)
            hits_by_keyword: dict[re.Pattern[str], list[int]] = {}
            for compiled in rules:
                hits = [_keyword_hits(k, lowered, hits_by_keyword) for k in compiled.keywords]
                merged = hits[0] if len(hits) == 1 else sorted(set().union(*hits))
                _match_at(compiled, text, merged, found)
        else:
            for compiled in rules:
                _scan(compiled, text, found)
        for compiled in self._extra:
            _scan(compiled, text, found)
        return found

    @staticmethod
    def _merge(found: list[tuple[int, int, int, str]], text: str) -> list[tuple[int, int, str]]:
        """Sorted, non-overlapping (start, end, rule) spans; none touches an existing marker."""
        if not found:
            return []
        found.sort(key=lambda f: (f[0], f[0] - f[1], f[2]))
        if _MARKER_PREFIX in text:
            found = _outside(found, [m.span() for m in _re(_MARKER_PATTERN).finditer(text)])
        merged: list[tuple[int, int, str]] = []
        for start, end, _priority, name in found:
            if merged and start < merged[-1][1]:
                last = merged[-1]
                if end > last[1]:
                    merged[-1] = (last[0], end, last[2])
                continue
            merged.append((start, end, name))
        return merged


def _outside(
    found: list[tuple[int, int, int, str]], markers: list[tuple[int, int]]
) -> list[tuple[int, int, int, str]]:
    """The findings (sorted by start) that overlap none of the (sorted, disjoint) markers."""
    kept = []
    i = 0
    for finding in found:
        start, end = finding[0], finding[1]
        while i < len(markers) and markers[i][1] <= start:
            i += 1
        if i < len(markers) and markers[i][0] < end:
            continue
        kept.append(finding)
    return kept


def _accept(
    compiled: _Compiled, match: re.Match[str], found: list[tuple[int, int, int, str]]
) -> bool:
    start, end = _secret_span(match, compiled.secret_groups)
    check = compiled.rule.check
    if start < end and (check is None or check(match, match.string[start:end])):
        found.append((start, end, compiled.priority, compiled.rule.name))
        return True
    return False


def _keyword_hits(
    keyword: re.Pattern[str], lowered: str, cache: dict[re.Pattern[str], list[int]]
) -> list[int]:
    """Every start of ``keyword`` in ``lowered``, overlapping ones included (memoised per call)."""
    hits = cache.get(keyword)
    if hits is None:
        hits = []
        search = keyword.search
        match = search(lowered)
        while match is not None:
            pos = match.start()
            hits.append(pos)
            match = search(lowered, pos + 1)
        cache[keyword] = hits
    return hits


def _match_at(
    compiled: _Compiled, text: str, hits: list[int], found: list[tuple[int, int, int, str]]
) -> None:
    """Try the rule's regex anchored at each hit; line rules stop at the end of the line."""
    regex_match, block = compiled.regex.match, compiled.rule.block
    n = len(text)
    line_end = -1
    skip_until = 0
    for pos in hits:
        if pos < skip_until:
            continue
        if block:
            match = regex_match(text, pos)
        else:
            if pos > line_end:
                line_end = text.find("\n", pos)
                if line_end == -1:
                    line_end = n
            match = regex_match(text, pos, line_end)
        if match is not None and _accept(compiled, match, found):
            skip_until = match.end()


def _scan(compiled: _Compiled, text: str, found: list[tuple[int, int, int, str]]) -> None:
    """Search the whole text (config rules, and the no-prefilter reference for the built-ins)."""
    regex = compiled.regex
    pos = 0
    while True:
        match = regex.search(text, pos)
        if match is None:
            return
        accepted = _accept(compiled, match, found)
        pos = max(match.end(), match.start() + 1) if accepted else match.start() + 1


_SECRET_KEY_NAMES: tuple[tuple[re.Pattern[str], str], ...] = ()


def _secret_key_rule(key: str) -> str | None:
    """The rule that names values stored under ``key`` (``password`` -> password-assignment)."""
    global _SECRET_KEY_NAMES
    if not _SECRET_KEY_NAMES:
        _SECRET_KEY_NAMES = (
            (
                re.compile(r"client-(?:key|certificate)-data", re.I | re.A),
                "kubeconfig-credential",
            ),
            (
                re.compile(
                    r"(?:[\w.-]*?)(?:routing|integration|service|pagerduty[\w-]*?)[_-]?key",
                    re.I | re.A,
                ),
                "pagerduty-key",
            ),
            (re.compile(rf"[\w.-]*?(?:{_PASSWORD_KEYS})", re.I | re.A), "password-assignment"),
            (re.compile(rf"[\w.-]*?(?:{_SECRET_KEYS})", re.I | re.A), "secret-assignment"),
        )
    for regex, name in _SECRET_KEY_NAMES:
        if regex.fullmatch(key):
            return name
    return None


_default: Redactor | None = None


def _default_redactor() -> Redactor:
    global _default
    if _default is None:
        _default = Redactor()
    return _default


def redact(text: str) -> str:
    """``text`` with every secret the built-in :data:`RULES` know replaced by ``[REDACTED:<rule>]``."""
    return _default_redactor().redact(text)


def redact_obj(obj: Any) -> Any:
    """A redacted deep copy of a JSON-like tree (dict/list/tuple); see :meth:`Redactor.redact_obj`."""
    return _default_redactor().redact_obj(obj)
