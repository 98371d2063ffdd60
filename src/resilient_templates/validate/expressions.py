"""Small lexers for the three expression languages inside Argo manifests (argo-semantics §1.4, §2, §7).

* ``depends`` (DAG tasks): task names, ``.Result`` suffixes, ``&& || !`` and parentheses;
  ``parse_depends`` returns the task references and the first syntax problem.
* ``when`` (steps, tasks, metrics): substituted first, then parsed by govaluate, which reads an
  unquoted value as a bare word; ``when_problem`` finds operands that cannot be one bare word.
* expr-lang (``retryStrategy.expression``, hook ``expression``, ``{{= ...}}`` tags):
  ``expr_problem`` checks quotes and brackets balance and that every top-level name is one the
  expression's environment has. It is a tokenizer, not a parser: it only reports what is certain.

``{{...}}`` tags are replaced before any of this, as Argo substitutes them before evaluating.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .problem import show

__all__ = [
    "DEPENDS_RESULTS",
    "Dependency",
    "EXPR_BUILTINS",
    "ITEM_RESULTS",
    "expr_problem",
    "expression_tags",
    "parse_depends",
    "simple_tags",
    "when_problem",
]

TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

# -- {{...}} tags ----------------------------------------------------------------------------


def simple_tags(text: str) -> Iterator[str]:
    """The stripped contents of the simple tags (``{{inputs.parameters.x}}``) in ``text``."""
    for match in TAG.finditer(text):
        content = match.group(1)
        if not content.lstrip().startswith("="):
            yield content.strip()


def expression_tags(text: str) -> Iterator[str]:
    """The expressions of the expression tags (``{{= ... }}``) in ``text``."""
    for match in TAG.finditer(text):
        content = match.group(1).lstrip()
        if content.startswith("="):
            yield content[1:]


# -- depends ---------------------------------------------------------------------------------

#: The task results ``depends`` accepts (``common.ValidateTaskResults``).
DEPENDS_RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "Daemoned", "AnySucceeded", "AllFailed")
ITEM_RESULTS = ("AnySucceeded", "AllFailed")
_DEPENDS_TOKEN = re.compile(
    r"\s*(?:(?P<op>&&|\|\||!|\(|\))"
    r"|(?P<ref>(?P<task>[A-Za-z0-9][-A-Za-z0-9]*)(?:\.(?P<result>[A-Za-z]*))?)"
    r"|(?P<bad>\S))"
)


@dataclass(frozen=True, slots=True)
class Dependency:
    """One ``task`` or ``task.Result`` in a depends expression."""

    task: str
    result: str | None


def parse_depends(text: str) -> tuple[list[Dependency], str | None]:
    """The task references of a ``depends`` expression, and its first syntax problem (or None)."""
    tokens: list[tuple[str, str]] = []
    refs: list[Dependency] = []
    for match in _DEPENDS_TOKEN.finditer(text):
        if match.group("bad"):
            return refs, f"unexpected {show(match.group('bad'))}: depends takes task names, .Result, &&, ||, ! and ()"
        if match.group("op"):
            tokens.append(("op", match.group("op")))
        elif match.group("ref"):
            refs.append(Dependency(match.group("task"), match.group("result")))
            tokens.append(("ref", match.group("ref")))
    if not tokens:
        return refs, "empty expression"
    parser = _DependsParser(tokens)
    return refs, parser.problem()


class _DependsParser:
    """expr := unary (("&&" | "||") unary)*; unary := "!" unary | "(" expr ")" | task[.Result]."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def problem(self) -> str | None:
        try:
            self.expression()
            if self.pos < len(self.tokens):
                raise _Syntax(self._unexpected())
        except _Syntax as exc:
            return str(exc)
        return None

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _unexpected(self) -> str:
        token = self._peek()
        if token is None:
            return "the expression ends where a task name is expected"
        if token == ("op", ")"):
            return "unbalanced parentheses: ')' without '('"
        if token[0] == "ref":
            return f"{show(token[1])} follows another operand without && or ||"
        return f"unexpected {show(token[1])}"

    def expression(self) -> None:
        self.unary()
        while self._peek() in (("op", "&&"), ("op", "||")):
            self.pos += 1
            self.unary()

    def unary(self) -> None:
        token = self._peek()
        if token == ("op", "!"):
            self.pos += 1
            self.unary()
        elif token == ("op", "("):
            self.pos += 1
            self.expression()
            if self._peek() != ("op", ")"):
                unclosed = "unbalanced parentheses: '(' without ')'"
                raise _Syntax(unclosed if self._peek() is None else self._unexpected())
            self.pos += 1
        elif token is not None and token[0] == "ref":
            self.pos += 1
        else:
            raise _Syntax(self._unexpected())


class _Syntax(Exception):
    pass


# -- when (govaluate) ------------------------------------------------------------------------

_MARK = "\x00"  # stands for a substituted {{...}} tag while lexing
_WHEN_TOKEN = re.compile(
    r"\s*(?:(?P<quoted>'[^']*'|\"[^\"]*\")"
    r"|(?P<op>==|!=|=~|!~|<=|>=|<|>|&&|\|\||[!()])"
    r"|(?P<word>[^\s'\"()!=<>&|~]+|[=&|~]))"
)
_COMPARATORS = ("==", "!=", "<", ">", "<=", ">=")
#: What govaluate reads as one operand: a word (Argo turns it into a string) or a number.
_BARE_OPERAND = re.compile(r"-?[0-9]+(?:\.[0-9]+)?|[^\W\d_]\w*")


def when_problem(text: str) -> tuple[str, str] | None:
    """Why govaluate cannot read ``when`` as intended, and the same ``when`` quoted; or None.

    govaluate reads an unquoted operand as one bare word only if it is a plain word or number:
    ``approve-it`` is ``approve`` minus ``it`` (an error), ``2024-01-01`` is 2022, ``a.b`` an
    accessor, ``http://x`` an invalid token. A substituted ``{{...}}`` left unquoted breaks the
    same way whenever its value is such a string, e.g. when it equals a quoted ``'approve-it'``.
    """
    marked = TAG.sub(_MARK, text)
    tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _WHEN_TOKEN.finditer(marked) if m.lastgroup]
    problem = None
    for kind, value in tokens:
        if kind != "word" or value == _MARK or _is_operator(value) or _BARE_OPERAND.fullmatch(value):
            continue
        if _MARK in value:
            problem = "a {{...}} value is joined to other text without quotes"
        else:
            bad = sorted({c for c in value if not (c.isalnum() or c == "_")})
            what = f"contains {', '.join(show(c) for c in bad)}" if bad else "starts with a digit"
            problem = f"the unquoted word {show(value)} {what}, which govaluate does not read as one value"
        break
    if problem is None:
        problem = _unquoted_tag_compared_to_literal(tokens)
    if problem is None:
        return None
    return problem, _quoted(text)


def _is_operator(word: str) -> bool:
    """Symbols only (``-``, ``**``, ``,``, ``?``, ``:``): operators and separators, not operands."""
    return _MARK not in word and not any(c.isalnum() for c in word)


def _unquoted_tag_compared_to_literal(tokens: list[tuple[str, str]]) -> str | None:
    for index, (kind, value) in enumerate(tokens):
        if kind != "op" or value not in _COMPARATORS or index == 0 or index + 1 >= len(tokens):
            continue
        left, right = tokens[index - 1], tokens[index + 1]
        for tag, literal in ((left, right), (right, left)):
            if tag == ("word", _MARK) and literal[0] == "quoted" and not _BARE_OPERAND.fullmatch(literal[1][1:-1]):
                return (
                    f"an unquoted {{{{...}}}} is compared with {literal[1]}: a value equal to it is not one "
                    "bare word, so the comparison errors exactly when it would match"
                )
    return None


def _quoted(text: str) -> str:
    """``text`` with every unquoted {{...}} tag and unquoted non-trivial word single-quoted."""
    # lex a copy where each tag is masked character for character, so positions match ``text``
    masked = TAG.sub(lambda m: _MARK * len(m.group()), text)
    pieces, pos = [], 0
    for match in _WHEN_TOKEN.finditer(masked):
        word = match.group("word")
        if word is None or _is_operator(word) or (_MARK not in word and _BARE_OPERAND.fullmatch(word)):
            continue
        start, end = match.span("word")
        pieces.append(f"{text[pos:start]}'{text[start:end]}'")
        pos = end
    pieces.append(text[pos:])
    return " ".join("".join(pieces).split())


# -- expr-lang -------------------------------------------------------------------------------

#: Names every expr-lang environment has: keywords, operators spelt as words, and built-ins
#: (expr-lang v1.17 ``builtin``), plus what Argo adds (``util/expr/env``).
EXPR_BUILTINS = frozenset(
    """
    true false nil and or not in matches contains startsWith endsWith let if else
    all any none one filter map count sum find findIndex findLast findLastIndex groupBy sortBy reduce
    len abs ceil floor round int float string trim trimPrefix trimSuffix upper lower split splitAfter
    replace repeat join indexOf lastIndexOf hasPrefix hasSuffix max min mean median toJSON fromJSON
    toBase64 fromBase64 now duration date timezone first last get take keys values toPairs fromPairs
    sort concat flatten uniq type bitand bitor bitxor bitnand bitnot bitshl bitshr bitushr
    asInt asFloat jsonpath toJson sprig $env
    """.split()
)
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9]+)?")


def expr_problem(
    text: str, names: Mapping[str, frozenset[str] | None], *, hint: str = ""
) -> tuple[str, bool] | None:
    """The first certain problem of an expr-lang expression and whether it still compiles, or None.

    ``names`` maps each top-level name the environment has (besides ``EXPR_BUILTINS``) to the
    members it is known to have, or None when any member may exist. A syntax error or an unknown
    name does not compile; an unknown member of a known map compiles and is always nil. ``{{...}}``
    tags are replaced by a neutral value first, as Argo substitutes them before compiling.
    """
    source = TAG.sub("0", text)
    stack: list[tuple[str, int]] = []
    defined: set[str] = set()
    previous = ""  # the previous significant token
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
            continue
        if c in "'\"`":
            end = _string_end(source, i)
            if end is None:
                return f"unterminated string: the {c} at column {i + 1} is never closed", False
            previous, i = "literal", end
            continue
        if c in _OPEN:
            stack.append((c, i))
            previous, i = c, i + 1
            continue
        if c in _CLOSE:
            if not stack or stack[-1][0] != _CLOSE[c]:
                return f"unbalanced brackets: the {c} at column {i + 1} closes nothing open", False
            stack.pop()
            previous, i = c, i + 1
            continue
        number = _NUMBER.match(source, i) if c.isdigit() else None
        if number:
            previous, i = "literal", number.end()
            continue
        ident = _IDENT.match(source, i)
        if ident:
            word = ident.group()
            i = ident.end()
            if previous == "let":
                defined.add(word)
            elif previous not in (".", "?.", "#") and not _is_map_key(source, i, stack):
                problem = _name_problem(word, source, i, names, defined, hint)
                if problem:
                    return problem
            previous = word
            continue
        if source.startswith("?.", i):
            previous, i = "?.", i + 2
            continue
        previous, i = c, i + 1  # operators, '.', ',', '#', ...
    if stack:
        opener, at = stack[-1]
        return f"unbalanced brackets: the {opener} at column {at + 1} is never closed", False
    return None


def _string_end(source: str, start: int) -> int | None:
    quote = source[start]
    i = start + 1
    while i < len(source):
        if source[i] == "\\" and quote != "`":
            i += 2
            continue
        if source[i] == quote:
            return i + 1
        i += 1
    return None


def _is_map_key(source: str, after: int, stack: list[tuple[str, int]]) -> bool:
    """A name right before ``:`` inside ``{...}`` is a map key, not a variable."""
    if not stack or stack[-1][0] != "{":
        return False
    rest = source[after:].lstrip()
    return rest.startswith(":")


def _name_problem(
    word: str, source: str, after: int, names: Mapping[str, frozenset[str] | None], defined: set[str], hint: str
) -> tuple[str, bool] | None:
    if word in EXPR_BUILTINS or word in defined:
        return None
    if word not in names:
        return f"unknown name {show(word)}{hint}", False
    members = names[word]
    member = re.match(r"\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)", source[after:])
    if members is not None and member and member.group(1) not in members:
        field = f"{word}.{member.group(1)}"
        return f"reads {field}, which is always nil ({word} has only {', '.join(sorted(members))})", True
    return None
