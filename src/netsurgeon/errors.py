"""The one exception hierarchy of netsurgeon.

Every error a user can cause derives from :class:`NetsurgeonError`. It carries an optional
source location (file, line, column) and node name so the CLI can print a one-line message
that says where the problem is, without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SourceLocation",
    "NetsurgeonError",
    "ParseError",
    "GraphError",
    "ValidationError",
    "ShapeError",
    "RegistryError",
    "FormatError",
    "EditError",
    "EvaluationError",
    "ArgumentError",
    "ModelFileNotFoundError",
    "not_found_error",
]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A position in a text file: 1-based line and column."""

    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file or "<string>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class NetsurgeonError(Exception):
    """Base class of every error a user can cause.

    Args:
        message: what went wrong and, where possible, what would fix it.
        location: where in a source file the problem is.
        node: the name of the node concerned, if any.
        hint: an extra sentence appended to the message (e.g. close matches).
    """

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        node: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.location = location
        self.node = node
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.node is not None and f"'{self.node}'" not in text:
            text = f"node '{self.node}': {text}"
        if self.hint:
            text = f"{text} ({self.hint})"
        if self.location is not None:
            text = f"{self.location}: {text}"
        return _one_line(text)

    def with_location(self, location: SourceLocation) -> NetsurgeonError:
        """Return this error with ``location`` filled in if it had none."""
        if self.location is None:
            self.location = location
            self.args = (self._render(),)
        return self


class ParseError(NetsurgeonError):
    """Malformed NDL, MEL, BrainScript or config text."""


class GraphError(NetsurgeonError):
    """An invalid edit of a network: duplicate name, unknown node, dangling use."""


class ValidationError(GraphError):
    """A network that fails validation: missing input, wrong arity, bad shapes, cycles."""


class ShapeError(ValidationError):
    """Shapes that do not fit together (raised by shape rules; validation adds the node)."""


class RegistryError(NetsurgeonError):
    """Unknown or reserved-but-unsupported operation or function name."""


class FormatError(NetsurgeonError):
    """A model file that cannot be read or written (carries byte offsets where known)."""


class EditError(NetsurgeonError):
    """A MEL command or clone/edit request that cannot be carried out."""


class EvaluationError(NetsurgeonError):
    """A failure while evaluating or training a network."""


class ArgumentError(NetsurgeonError):
    """A value an op cannot take: a function argument, an option or an attribute of the wrong
    kind or form (raised by the registry; front-ends add the source location)."""


class ModelFileNotFoundError(FormatError, FileNotFoundError):
    """A model file that does not exist: a FormatError (one line, naming the path) that is
    also a FileNotFoundError, so ``except FileNotFoundError`` catches it."""


_NOT_FOUND: dict[type, type] = {FormatError: ModelFileNotFoundError}


def not_found_error(cls: type[NetsurgeonError], message: str, **kwargs) -> NetsurgeonError:
    """An error of class ``cls`` that is also a FileNotFoundError (errno ENOENT), for a file
    that does not exist."""
    import errno

    sub = _NOT_FOUND.get(cls)
    if sub is None:
        if issubclass(cls, FileNotFoundError):
            sub = cls
        else:
            sub = type(cls.__name__, (cls, FileNotFoundError),
                       {"__module__": cls.__module__, "__doc__": cls.__doc__,
                        "__qualname__": cls.__qualname__})
        _NOT_FOUND[cls] = sub
    exc = sub(message, **kwargs)
    exc.errno = errno.ENOENT  # type: ignore[attr-defined]  # str() stays the message
    return exc


def close_matches(word: str, candidates, n: int = 5) -> str | None:
    """Return a 'did you mean' hint listing candidates close to ``word``, or None."""
    import difflib

    pool = list(candidates)
    found = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
    if not found:
        lowered = {c.lower(): c for c in pool}
        found = [lowered[c] for c in difflib.get_close_matches(word.lower(), list(lowered), n=n)]
    return "did you mean: " + ", ".join(found) + "?" if found else None


_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t", 127: "\\x7f"}


def _one_line(text: str) -> str:
    """Control characters escaped: names and values quoted from a file (a node called
    ``"a\\nb"``) never break an error over several lines."""
    return text.translate(_CONTROL) if any(ord(c) < 32 or c == "\x7f" for c in text) else text
