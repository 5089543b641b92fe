"""Config files: bounded safe YAML reading, ``--set`` overrides, relative paths, the TSM home.

A config file is refused before it can cost more than a bounded amount of CPU or memory
(:data:`MAX_YAML_BYTES`, :data:`MAX_YAML_ALIAS_NODES`); relative paths inside it resolve
against its folder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import yaml

from tsm_core.errors import ConfigError
from tsm_core.plugins.locations import SAMPLE_PATH

#: the largest YAML config (file or text) read, in bytes
MAX_YAML_BYTES = 2**20
#: how many nodes YAML aliases and merge keys (``*name``, ``<<:``) may add to a document
MAX_YAML_ALIAS_NODES = 10_000


def load_yaml(text: str | bytes, source: str, key: str = "") -> Any:
    """``text`` parsed as safe YAML, with bounded work and memory.

    Refused with a one-line :class:`~tsm_core.errors.ConfigError` (``key``, then
    ``source`` naming the file): texts over :data:`MAX_YAML_BYTES`, aliases and merge keys
    that would add more than :data:`MAX_YAML_ALIAS_NODES` nodes once expanded (a "billion
    laughs" bomb is a few hundred bytes), nesting beyond the parser's stack, invalid YAML
    (with its line and column). The node graph is composed (aliases shared, not copied)
    and measured before any Python object is built.
    """
    data = text.encode() if isinstance(text, str) else text
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(key, f"{source} is {len(data):,} bytes, over the limit of {MAX_YAML_BYTES:,} bytes")
    stream = io.BytesIO(data)
    stream.name = source  # named in the parser's messages
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(stream)  # libyaml where installed: fast
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        written, expanded = _yaml_extent(node)
        if expanded - written > MAX_YAML_ALIAS_NODES:
            raise ConfigError(
                key,
                f"{source}: YAML aliases expand beyond {MAX_YAML_ALIAS_NODES:,} nodes "
                f"(aliases and merge keys may add at most that many)",
            )
        duplicate = _duplicate_key(node)
        if duplicate:
            name, first, second = duplicate
            raise ConfigError(key, f"{source}: key {name!r} is given twice, on lines {first} and {second}; keep one")
        number = _long_number(node)
        if number is not None:
            raise ConfigError(
                key, f"{source}: the number on line {number} is longer than {MAX_YAML_NUMBER_CHARS} characters"
            )
        return loader.construct_document(node)
    except ConfigError:
        raise
    except (ValueError, OverflowError) as exc:  # a number YAML reads but Python cannot hold
        raise ConfigError(key, f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(key, f"{source} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(key, f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


#: the longest number a YAML config may write (base-60 and huge integers are slow to read)
MAX_YAML_NUMBER_CHARS = 100
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _long_number(root: yaml.Node) -> int | None:
    """The line of the first int or float scalar longer than :data:`MAX_YAML_NUMBER_CHARS`, or None."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _NUMBER_TAGS and len(node.value) > MAX_YAML_NUMBER_CHARS:
                return node.start_mark.line + 1
        else:
            stack.extend(_yaml_children(node))
    return None


def _yaml_extent(root: yaml.Node) -> tuple[int, int]:
    """The number of distinct nodes of a composed YAML graph, and how many the document
    has once its aliases are expanded (each distinct node measured once, without recursion;
    a node that holds itself expands without end)."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        kids = _yaml_children(node)
        if children_done:
            on_path.discard(id(node))
            size[id(node)] = min(1 + sum(size[id(k)] for k in kids), 2**62)
            continue
        if id(node) in size:
            continue
        if id(node) in on_path:
            return len(size), 2**62  # recursive: infinite once expanded
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)
    return len(size), size[id(root)]


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """pyyaml's error as one line: where, what, and in what context (without the source's name)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return " ".join(str(exc).split())
    text = f"{_at(exc.problem_mark)}: {exc.problem}"
    if exc.context:
        text += f" ({exc.context}" + (f" at {_at(exc.context_mark)})" if exc.context_mark else ")")
    return " ".join(text.split())


def _duplicate_key(root: yaml.Node) -> tuple[str, int, int] | None:
    """The first key a mapping of the graph holds twice: its dotted path and both lines
    (each distinct node visited once, without recursion)."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for k, v in node.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
                    children.append((v, path))
                    continue
                dotted = f"{path}.{k.value}" if path else str(k.value)
                if k.value in lines:
                    return dotted, lines[k.value], k.start_mark.line + 1
                lines[k.value] = k.start_mark.line + 1
                children.append((v, dotted))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend(reversed(children))
    return None


def _yaml_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_yaml(path: str | os.PathLike[str], key: str = "") -> Any:
    """The YAML file at ``path`` through :func:`load_yaml` (read no further than its size limit)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(key, f"cannot read config file {path}: {exc.strerror}") from None
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(key, f"{path} is over the limit of {MAX_YAML_BYTES:,} bytes")
    return load_yaml(data, str(path), key)


def parse_value(text: str, key: str = "") -> Any:
    """A ``--set`` value: YAML scalar syntax (``1.5``, ``true``, ``null``, ``[a, b]``)."""
    return load_yaml(text, "the value", key) if text.strip() else text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a config dict (in place, and returned)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(item, "an override must look like key.sub=value")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(key, f"{part!r} is not a section")
            node = child
        node[parts[-1]] = parse_value(raw, key.strip())
    return data


#: config keys holding a local path (a URL such as ``s3://...`` is left alone)
PATH_KEYS: tuple[tuple[str, str], ...] = (
    ("redshift_catalog", "path"),
    ("object_catalog", "path"),
    ("object_catalog", "margin_path"),
    ("object_catalog", "dust_maps_dir"),
    ("output", "directory"),
)


def path_problem(value: str) -> str | None:
    """Why the text ``value`` cannot be a local path (``None`` when it can): a NUL byte,
    which no file system accepts, or a ``~user`` whose home is unknown."""
    if "\0" in value:
        return f"{value!r} holds a NUL byte (\\0), which no path may contain"
    if value.startswith("~"):
        try:
            Path(value).expanduser()
        except RuntimeError:
            user = value[1:].split("/", 1)[0] or "the current user"
            return f"{value!r}: no home directory is known for {user} (write the path out in full)"
    return None


def resolve_paths(data: dict[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """Make the relative paths of a config dict absolute against ``base`` (in place, and returned).

    A value that cannot be a path (:func:`path_problem`) is refused naming its key.
    """
    for section, key in PATH_KEYS:
        found = data.get(section)
        # a section given as a list (several redshift catalogs) has the key in each item
        nodes = list(enumerate(found)) if isinstance(found, list) else [(None, found)]
        for i, node in nodes:
            if isinstance(node, dict):
                _resolve_path(node, key, section if i is None else f"{section}.{i}", base)
    return data


def _resolve_path(node: dict[str, Any], key: str, where: str, base: str | os.PathLike[str]) -> None:
    """``node[key]`` made absolute against ``base`` (``where`` names ``node`` in errors)."""
    value = node.get(key)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip() or "://" in value or value == SAMPLE_PATH:
        return
    problem = path_problem(value)
    if problem:
        raise ConfigError(f"{where}.{key}", problem)
    path = Path(value).expanduser()
    node[key] = str(path if path.is_absolute() else (Path(base) / path).resolve())


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML file at ``path`` as a dict; relative paths inside resolve against its folder."""
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError("", f"{path} must hold a mapping of keys, not {type(data).__name__}")
    return resolve_paths(data, Path(path).expanduser().resolve().parent)


def tsm_home() -> Path:
    """The directory of the registry, caches and samples: ``$TSM_HOME`` or ``~/.tsm``."""
    return Path(os.environ.get("TSM_HOME") or Path.home() / ".tsm").expanduser()
