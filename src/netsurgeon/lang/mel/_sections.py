"""LoadNDLSnippet's file reading (ndl-mel.md §C.8): pick one ``name = [ ... ]`` section.

The file is read with the comment rules but without the caller's ``$var$`` values; a chosen
section's ``$var$`` are resolved against the file's own top-level ``key = value`` entries only
(CNTK's rule). Without ``section=`` the whole file is the snippet, as the documentation says
(CNTK's source evaluated nothing in that case).
"""

from __future__ import annotations

from netsurgeon.errors import EditError, SourceLocation
from netsurgeon.lang.config import read_text_file, substitute_variables
from netsurgeon.lang.mel._script import parse_script, read_mel

__all__ = ["read_section"]


def read_section(path: str, section: str | None) -> tuple[str, SourceLocation]:
    """(snippet text, location of its first character) for ``section`` of ``path``."""
    raw = read_text_file(path, "NDL snippet file")
    if section is None:
        return raw, SourceLocation(path, 1, 1)  # typographic quotes: NDL reads them
    if not section.strip():
        raise EditError("section= must name a section of the snippet file")
    src = read_mel(raw, path)
    values: dict[str, str] = {}
    found = None
    names = []
    for stmt in parse_script(src):
        if stmt.kind == "snippet":
            names.append(stmt.target)
            if stmt.target.lower() == section.strip().lower() and found is None:
                found = stmt
        elif stmt.kind == "ndl" and "=" in stmt.text:
            key, _, value = stmt.text.partition("=")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values[key.strip().lower()] = value
    if found is None:
        raise EditError(f"Section {section} specified in optional parameter was not found in the "
                        f"{path} file", hint="sections: " + ", ".join(names) if names else None)
    location = found.body_location or found.location
    body = substitute_variables(found.args[0].text, lambda k: values.get(k.lower()), location)
    return body, location
