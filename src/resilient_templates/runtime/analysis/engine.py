"""Multi-pattern matching: every signature pattern in one pass over the log tail.

All patterns of the knowledge base go into one google-re2 ``Set`` (a single automaton). The
text is cut into line-aligned blocks of 32 KiB and the Set runs once over each block, which
tells which patterns occur in which blocks. The rest is lazy and local:

* a signature's lines are found by running only its matched patterns (re2 ``finditer``, with
  named captures) over only the blocks where they occurred, latest block first;
* which signature *owns* a line (the most specific one that matches it) is decided by running
  the Set again on that one line.

So the second pass costs a few blocks per matched signature, not the whole text per pattern.
Patterns are matched in multi-line mode (``^``/``$`` are line boundaries) and are expected to
stay within a line, as Jenkins BFA and the PyTorch log classifier match log lines.

Measured here (2 cores, Python 3.11; ``tests/bench/bench_analysis.py``: a generated 10 MB CI
log with ~3 % failure lines from the sample table, the built-in signatures (~300 patterns at
the time; ~500 patterns later measured 190-210 MB/s, ~730x naive; ~640 patterns 105-185 MB/s,
~490-790x naive, on a heavily loaded machine; ~800 patterns 180-185 MB/s on the Set pass), all
engines in one run; the two slow baselines on its first 2 MB):

==================================================  ============  ==============
engine                                               throughput   vs. naive loop
==================================================  ============  ==============
naive loop: every pattern ``re.search`` per line          0.5 MB/s        1x
Python ``re``: each pattern over the whole text           1.8 MB/s        4x
google-re2 ``Set`` per block + local second pass        258 MB/s        533x
hyperscan (dev only: offsets, no captures)              461 MB/s        952x
==================================================  ============  ==============

The first version ran each matched pattern over the whole text in the second pass: 5 MB/s
(17x), because a noisy log matches ~240 patterns. Blocks fixed that.

re2 is chosen: fast, with captures (hyperscan has none), already a runtime dependency, and it
imports in ~7 ms. Without re2 the engine falls back to Python ``re`` (same results, slower).

Pattern cost: the Set is one DFA, so a pattern that can start a partial match on a frequent
character and carry it across lines (an unbounded ``[^'...]+`` right after a quote: RE2's
negated classes match newlines unless ``\n`` is listed) multiplies its states until the DFA
cache thrashes. One such pattern took the Set from ~180 to ~16 MB/s on the bench log;
``test_knowledge`` rejects the shape (3 literal characters must come first).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .knowledge import KnowledgeBase, Signature

__all__ = ["BLOCK_BYTES", "Engine", "LineHit", "Scan"]

BLOCK_BYTES = 32 << 10
#: Lines of one signature examined, latest first, to find one that no more specific
#: signature explains: bounds the work on a log that repeats one line thousands of times.
MAX_LINES_EXAMINED = 64
_MAX_MEM = 64 << 20  # RE2 DFA budget; a starved DFA would silently miss matches


@dataclass(frozen=True, slots=True)
class LineHit:
    start: int  # byte offset of the line start in the scanned text
    end: int  # byte offset of the line end (exclusive, without the newline)
    captures: dict[str, str]


class Engine:
    """Compiled matcher for one knowledge base; build once, ``scan`` many texts."""

    def __init__(self, kb: KnowledgeBase, *, prefer_re2: bool = True) -> None:
        self.kb = kb
        #: set index -> (signature index, pattern index)
        self.index: list[tuple[int, int]] = [
            (s, p) for s, sig in enumerate(kb.signatures) for p in range(len(sig.patterns))
        ]
        backend = _Re2Backend if prefer_re2 and _has_re2() else _PythonBackend
        self.backend = backend(kb, self.index)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def scan(self, data: bytes) -> Scan:
        return Scan(self, data)

    def extract(self, sig: Signature, data: bytes) -> dict[str, str]:
        """Captures of the signature's ``extract`` patterns (the last match of each)."""
        captures: dict[str, str] = {}
        for regex in sig.extract:
            last = None
            for last in self.backend.finditer_source(regex, data):
                pass
            if last is not None:
                captures.update(last[2])
        return captures


class Scan:
    """Which signatures occur in one text, and their lines on demand."""

    def __init__(self, engine: Engine, data: bytes) -> None:
        self.engine = engine
        self.data = data
        self.blocks: list[tuple[int, int]] = _blocks(data)
        self._where: dict[int, list[int]] = {}  # set index -> block numbers, ascending
        for number, (start, end) in enumerate(self.blocks):
            for set_index in engine.backend.candidates(data[start:end]):
                self._where.setdefault(set_index, []).append(number)
        self.by_signature: dict[str, list[int]] = {}
        for set_index in self._where:
            sig = engine.kb.signatures[engine.index[set_index][0]]
            self.by_signature.setdefault(sig.name, []).append(set_index)
        self._owners: dict[tuple[int, int], str | None] = {}

    def names(self) -> list[str]:
        return list(self.by_signature)

    def signature(self, name: str) -> Signature:
        return self.engine.kb.signatures[self.engine.index[self.by_signature[name][0]][0]]

    def lines(self, name: str) -> Iterator[LineHit]:
        """The signature's matching lines, latest first (captures merged per line)."""
        set_indexes = self.by_signature.get(name, [])
        numbers = sorted({n for i in set_indexes for n in self._where[i]}, reverse=True)
        backend = self.engine.backend
        for number in numbers:
            start, end = self.blocks[number]
            block = self.data[start:end]
            found: dict[int, LineHit] = {}
            for set_index in set_indexes:
                if number not in self._where[set_index]:
                    continue
                for m_start, m_end, groups in backend.finditer(set_index, block):
                    line_start = block.rfind(b"\n", 0, m_start) + 1
                    line_end = block.find(b"\n", max(m_end - 1, m_start))
                    line_end = len(block) if line_end < 0 else line_end
                    known = found.get(line_start)
                    captures = {**known.captures, **groups} if known else groups
                    found[line_start] = LineHit(start + line_start, start + line_end, captures)
            for line_start in sorted(found, reverse=True):
                yield found[line_start]

    def owner(self, line: LineHit) -> str | None:
        """The most specific signature matching this line (priority, then declaration)."""
        key = (line.start, line.end)
        if key not in self._owners:
            kb, index = self.engine.kb, self.engine.index
            sigs = {index[i][0] for i in self.engine.backend.candidates(self.data[line.start:line.end])}
            best = max(sigs, key=lambda s: (kb.signatures[s].priority, -s), default=None)
            self._owners[key] = kb.signatures[best].name if best is not None else None
        return self._owners[key]

    def evidence_line(self, name: str) -> tuple[LineHit | None, dict[str, str]]:
        """The latest line this signature owns, and the captures of its latest lines."""
        captures: dict[str, str] = {}
        for examined, line in enumerate(self.lines(name)):
            for key, value in line.captures.items():
                captures.setdefault(key, value)  # the latest value of each capture
            if self.owner(line) == name:
                return line, captures
            if examined + 1 >= MAX_LINES_EXAMINED:
                break
        return None, captures

    def text(self, line: LineHit) -> str:
        return self.data[line.start : line.end].decode("utf-8", errors="replace").strip()


def _blocks(data: bytes) -> list[tuple[int, int]]:
    """Line-aligned blocks of about BLOCK_BYTES (a longer line makes a longer block)."""
    blocks = []
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", min(start + BLOCK_BYTES, size) - 1)
        end = size if end < 0 else end + 1
        blocks.append((start, end))
        start = end
    return blocks


def _has_re2() -> bool:
    try:
        import re2  # noqa: F401
    except ImportError:  # pragma: no cover - google-re2 is a runtime dependency
        return False
    return True


def _groups(match: Any) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): v.decode("utf-8", errors="replace")
        for k, v in match.groupdict().items()
        if v is not None
    }


class _Re2Backend:
    name = "re2"

    def __init__(self, kb: KnowledgeBase, index: list[tuple[int, int]]) -> None:
        import re2

        self._re2 = re2
        self._options = re2.Options()
        self._options.max_mem = _MAX_MEM
        self._options.log_errors = False
        self._sources = [("(?m)" + kb.signatures[s].patterns[p]).encode("utf-8") for s, p in index]
        self._set = re2.Set.SearchSet(self._options)
        for source in self._sources:
            self._set.Add(source)
        self._set.Compile()
        self._compiled: dict[int, Any] = {}
        self._extract: dict[str, Any] = {}

    def candidates(self, data: bytes) -> list[int]:
        return self._set.Match(data) or []

    def finditer(self, set_index: int, data: bytes) -> Iterator[tuple[int, int, dict[str, str]]]:
        regex = self._compiled.get(set_index)
        if regex is None:
            regex = self._compiled[set_index] = self._re2.compile(
                self._sources[set_index], self._options
            )
        for match in regex.finditer(data):
            yield match.start(), match.end(), _groups(match)

    def finditer_source(self, source: str, data: bytes) -> Iterator[tuple[int, int, dict[str, str]]]:
        regex = self._extract.get(source)
        if regex is None:
            regex = self._extract[source] = self._re2.compile(
                ("(?m)" + source).encode("utf-8"), self._options
            )
        for match in regex.finditer(data):
            yield match.start(), match.end(), _groups(match)


class _PythonBackend:
    """Fallback without google-re2: the same patterns with Python ``re`` (the RE2 syntax the
    knowledge base validates is a subset of Python's)."""

    name = "python-re"

    def __init__(self, kb: KnowledgeBase, index: list[tuple[int, int]]) -> None:
        import re

        self._re = re
        self._compiled = [
            re.compile(kb.signatures[s].patterns[p].encode("utf-8"), re.M) for s, p in index
        ]
        self._extract: dict[str, Any] = {}

    def candidates(self, data: bytes) -> list[int]:
        return [i for i, regex in enumerate(self._compiled) if regex.search(data)]

    def finditer(self, set_index: int, data: bytes) -> Iterator[tuple[int, int, dict[str, str]]]:
        for match in self._compiled[set_index].finditer(data):
            yield match.start(), match.end(), _groups(match)

    def finditer_source(self, source: str, data: bytes) -> Iterator[tuple[int, int, dict[str, str]]]:
        regex = self._extract.get(source)
        if regex is None:
            regex = self._extract[source] = self._re.compile(source.encode("utf-8"), self._re.M)
        for match in regex.finditer(data):
            yield match.start(), match.end(), _groups(match)
