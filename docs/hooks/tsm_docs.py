"""MkDocs hooks of the documentation site: included READMEs, the generated configuration reference.

- ``<!-- include: PATH [shift=N] [section="HEADING"] -->`` on a line of its own is replaced by
  the file at PATH (relative to the repository root), or by the body of its section whose heading
  starts with HEADING, its headings moved down N levels and its relative links
  rewritten for the page: a file that a page includes becomes a link to that page, ``docs/X``
  becomes ``X``, and any other file of the repository becomes its path in code (it is not part of
  the site). One source for each text: the plugin READMEs stay where they are.
- ``<!-- config-reference -->`` is replaced by tables of every key of a run's configuration,
  generated from the pydantic models in :mod:`tsm_core.config`.
- An example notebook named in the navigation but not (yet) in ``docs/`` gets a placeholder page,
  so that the strict build does not depend on another branch.
"""

from __future__ import annotations

import json
import posixpath
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(
    r'^<!-- include: (?P<path>\S+)(?: shift=(?P<shift>\d))?(?: section="(?P<section>[^"]+)")? -->$', re.M
)
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) ", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)

# the repository files that pages include, and the page that includes each
INCLUDED_BY: dict[str, str] = {
    "plugins/tsm_web/README.md": "operating.md",
    "plugins/tsm_writers/README.md": "outputs.md",
    "plugins/tsm_dp1/README.md": "releases.md",
    "plugins/tsm_dp2/README.md": "releases.md",
    "plugins/tsm_dp02/README.md": "releases.md",
    "plugins/tsm_rail/README.md": "rail.md",
    "benchmarks/README.md": "benchmarks.md",
    "CONTRIBUTING.md": "development.md",
    "README.md": "index.md",
}


def _rewrite_link(match: re.Match[str], source: str) -> str:
    """One Markdown link of the included file ``source``, as the page at the docs root needs it."""
    target = match.group("target")
    if re.match(r"^[a-z]+:|^#", target):
        return match.group(0)
    path, _, anchor = target.partition("#")
    repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    fragment = f"#{anchor}" if anchor else ""
    if repo_path.startswith("docs/"):
        return f"{match.group('bang')}[{match.group('text')}]({repo_path[len('docs/') :]}{fragment})"
    if repo_path in INCLUDED_BY:
        return f"[{match.group('text')}]({INCLUDED_BY[repo_path]}{fragment})"
    return f"{match.group('text')} (`{repo_path}`)"


def _shift_headings(text: str, shift: int) -> str:
    """Headings moved ``shift`` levels down, outside fenced code."""
    if not shift:
        return text
    parts = FENCE.split(text)
    fences = FENCE.findall(text)
    parts = [HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + shift) + " ", p) for p in parts]
    return "".join(p + (fences[i] if i < len(fences) else "") for i, p in enumerate(parts))


def _section(text: str, heading: str) -> str:
    """The body of the section whose heading starts with ``heading``, up to the next heading of its level."""
    found = re.search(rf"^(#+) {re.escape(heading)}.*$", text, re.M)
    if found is None:
        raise ValueError(f"no section {heading!r} to include")
    level = len(found.group(1))
    rest = text[found.end() :]
    end = re.search(rf"^#{{1,{level}}} ", FENCE.sub(lambda m: " " * len(m.group(0)), rest), re.M)
    return rest[: end.start()] if end else rest


def include_file(source: str, shift: int = 0, section: str | None = None) -> str:
    """The text of the repository file ``source`` (or of one section) ready to sit in a page at the docs root."""
    text = (ROOT / source).read_text(encoding="utf-8")
    if section:
        text = _section(text, section)
    text = LINK.sub(lambda m: _rewrite_link(m, source), text)
    return _shift_headings(text, shift).strip("\n")


def _type_name(annotation: Any) -> str:
    """A field's type as a reader would write it: ``list[str] | None``, ``drop | fail``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, _base_model()):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation)).replace("|", "\\|")


def _escape(text: str) -> str:
    """Text for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _base_model() -> type:
    from pydantic import BaseModel

    return BaseModel


def _default(field: Any) -> str:
    """A field's default in YAML words (``required`` when it has none)."""
    from pydantic_core import PydanticUndefined

    if field.default_factory is not None:
        value = field.default_factory()
        return "`{}`" if value == {} else "`[]`" if value == [] else "(its defaults)"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{json.dumps(field.default)}`"


def _constraints(field: Any) -> str:
    """Bounds of a field (``gt=0``, ``max_length=100``), from its metadata."""
    words = []
    for item in field.metadata:
        for name in ("gt", "ge", "lt", "le", "min_length", "max_length"):
            value = getattr(item, name, None)
            if value is not None:
                words.append(f"{name}={value}")
    return ", ".join(words)


def _models_in_order(root: Any) -> list[Any]:
    """``root`` and every model its fields hold, depth first, each once."""
    seen: list[Any] = []

    def visit(model: Any) -> None:
        if model in seen:
            return
        seen.append(model)
        for field in model.model_fields.values():
            for arg in [field.annotation, *typing.get_args(field.annotation)]:
                if isinstance(arg, type) and issubclass(arg, _base_model()):
                    visit(arg)

    visit(root)
    return seen


def config_reference() -> str:
    """Markdown tables of every key of :class:`tsm_core.config.RunConfig`, one section per model."""
    import inspect

    from tsm_core.config import RunConfig

    keys: dict[Any, str] = {RunConfig: ""}
    for model in _models_in_order(RunConfig):
        for name, field in model.model_fields.items():
            for arg in [field.annotation, *typing.get_args(field.annotation)]:
                if isinstance(arg, type) and issubclass(arg, _base_model()) and arg not in keys:
                    keys[arg] = f"{keys[model]}{name}."
    sections = []
    for model in _models_in_order(RunConfig):
        prefix = keys[model]
        title = f"`{prefix.rstrip('.')}`" if prefix else "the top level"
        rows = [
            f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | "
            f"{_constraints(field)} | {_escape(field.description or '')} |"
            for name, field in model.model_fields.items()
        ]
        doc = inspect.cleandoc(model.__doc__ or "")
        sections.append(
            "\n".join(
                [
                    f"## {model.__name__}",
                    "",
                    f"Keys of {title}. {doc}",
                    "",
                    "| key | type | default | bounds | description |",
                    "|---|---|---|---|---|",
                    *rows,
                ]
            )
        )
    return "\n\n".join(sections)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Expand the include and config-reference markers of a page."""
    markdown = INCLUDE.sub(
        lambda m: include_file(m.group("path"), int(m.group("shift") or 0), m.group("section")), markdown
    )
    if "<!-- config-reference -->" in markdown:
        markdown = markdown.replace("<!-- config-reference -->", config_reference())
    return markdown


def _nav_paths(nav: Any) -> list[str]:
    """Every file named in the navigation."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_paths(value)]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_paths(item)]
    return []


PLACEHOLDER = {
    "cells": [
        {
            "cell_type": "markdown",
            "id": "placeholder",
            "metadata": {},
            "source": ["This example notebook is not in this copy of the documentation yet."],
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns notebooks into pages
def on_files(files: Files, config: Any) -> Files:
    """A placeholder page for each notebook of the navigation that is not in ``docs/``."""
    missing = [p for p in _nav_paths(config["nav"]) if p.endswith(".ipynb") and files.get_file_from_path(p) is None]
    if missing:
        folder = Path(tempfile.mkdtemp(prefix="tsm-docs-"))
        for path in missing:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(json.dumps(PLACEHOLDER), encoding="utf-8")
            files.append(File(path, str(folder), config["site_dir"], config["use_directory_urls"]))
    return files


# what mkdocs-jupyter's page template would load from the internet: a MathJax script with no
# source and a loader of mermaid from a CDN (for diagrams the notebooks do not have)
NETWORK_SCRIPTS = re.compile(
    r'<script src=""> </script>|<script type="module">(?:(?!</script>).)*?https://cdnjs\.(?:(?!</script>).)*?</script>',
    re.S,
)


def on_post_page(output: str, page: Any, config: Any) -> str:
    """The page without scripts that would reach the internet: the site is read offline."""
    return NETWORK_SCRIPTS.sub("", output)


# Sphinx cross-reference roles of the docstrings (``:class:`~tsm_core.errors.TSMError```), which
# reach the API pages as ":class:<code>...</code>": shown as the code name alone (``~``: its last part)
SPHINX_ROLE = re.compile(r":(?:class|func|mod|meth|attr|exc|data|obj):<code>(~?)([\w.]+)</code>")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Sphinx roles in the API pages' docstrings as plain code names."""
    return SPHINX_ROLE.sub(
        lambda m: f"<code>{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}</code>", html
    )
