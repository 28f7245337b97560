"""Reading one run file (YAML) safely: the text, then a mapping with no key given twice.

A run file is a few lines, so anything beyond :data:`MAX_RUN_FILE_BYTES`, or whose YAML
aliases would expand to more than :data:`MAX_NODES` values (a "billion laughs" document that
would exhaust memory), is refused before anything is built from it. A key given twice in one
mapping (``notebook:`` included) is an error naming the key and both lines, where plain YAML
would let the last one win silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scflow.repro.textfile import FileProblem, read_text

MAX_RUN_FILE_BYTES = 64 * 1024
MAX_NODES = 10_000
"""Values of a run file once its aliases are expanded (a real one has a few dozen)."""


class RunFileError(FileProblem):
    """A run file that cannot be read as one (the message names it and what to do)."""


class _TooLarge(Exception):
    """The document would expand beyond :data:`MAX_NODES` values, or into itself."""


class _Duplicate(Exception):
    """A key given twice in one mapping."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges may override keys on purpose
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = lines.setdefault(key, line)
            except TypeError:
                continue  # an unhashable key: PyYAML's own error follows
            if first != line:
                raise _Duplicate(f"key {_short(key)} is given twice, on lines {first} and "
                                 f"{line}: keep one")
        return super().construct_mapping(node, deep)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _expanded_size(node: yaml.Node, memo: dict[int, int], open_: set[int]) -> int:
    """How many values ``node`` stands for once every alias is expanded (capped)."""
    if id(node) in memo:
        return memo[id(node)]
    if id(node) in open_:
        raise _TooLarge("an alias refers to a value that contains it (a recursive document)")
    open_.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    size = 1
    for child in children:
        size += _expanded_size(child, memo, open_)
        if size > MAX_NODES:
            raise _TooLarge(f"its aliases expand to more than {MAX_NODES} values")
    open_.discard(id(node))
    memo[id(node)] = size
    return size


def load_run_file(path: str | Path) -> tuple[Any, str]:
    """``(document, text)`` of a run file; :class:`RunFileError` naming it if it is unusable."""
    text = read_text(path, "run file (YAML)", MAX_RUN_FILE_BYTES, RunFileError)
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, text
        _expanded_size(node, {}, set())
        return loader.construct_document(node), text
    except _TooLarge as err:
        raise RunFileError(f"{path}: refused: {err}; write the values out") from None
    except RecursionError:
        raise RunFileError(f"{path}: refused: nested too deeply for a run file") from None
    except _Duplicate as err:
        raise RunFileError(f"{path}: {err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RunFileError(f"{path}: invalid YAML{where}: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise RunFileError(f"{path}: invalid YAML: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()
