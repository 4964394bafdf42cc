"""Write the calibrated scenario: the starting file's text with the fitted values set in place.

Edits go into the text where the YAML parser says each value is (``yaml.compose`` marks), so the
starting file's comments, key order and flow style survive and ``diff start.yaml calibrated.yaml``
shows the fitted values and the ``calibration:`` record alone. The edited text is parsed back and
compared with the intended data; should the two ever disagree (a layout the edits do not handle), the
data is written by ``yaml.safe_dump`` instead, which is right but drops the comments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
RECORD_KEY = "calibration"
RECORD_NOTE = "# Written by autotune calibrate: the samples and residuals behind the fitted values above."


def flow(value: Any) -> str:
    """``value`` as one line of flow-style YAML."""
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, sort_keys=False).strip()
    return text.removesuffix("...").strip()


def _get(node: yaml.Node, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of ``key`` in a mapping node, or (item, item) of an index in a sequence."""
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        for k, v in node.value:
            if k.value == key:
                return k, v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key], node.value[key]
    return None


def _end(text: str, node: yaml.Node) -> int:
    """Where the node's text ends, trailing blanks and newlines left out."""
    i = node.end_mark.index
    while i > node.start_mark.index and text[i - 1] in " \t\r\n":
        i -= 1
    return i


Edit = tuple[int, int, str]  # replace text[start:end] by the string


def _set(text: str, root: yaml.Node, path: Path_, value: Any) -> Edit:
    node = root
    for i, key in enumerate(path[:-1]):
        got = _get(node, key)
        if got is None:  # an absent parent: set it whole
            rest: Any = value
            for k in reversed(path[i + 1:]):
                rest = {k: rest}
            return _set(text, root, path[: i + 1], rest)
        node = got[1]
    key = path[-1]
    got = _get(node, key)
    if got is not None:
        v = got[1]
        return v.start_mark.index, _end(text, v), flow(value)
    assert isinstance(node, yaml.MappingNode) and isinstance(key, str)
    entry = f"{key}: {flow(value)}"
    if node.flow_style:
        close = _end(text, node) - 1  # the closing brace
        return close, close, (", " if node.value else "") + entry
    last = node.value[-1][1]
    eol = text.find("\n", _end(text, last))
    eol = len(text) if eol < 0 else eol
    return eol, eol, "\n" + " " * node.value[0][0].start_mark.column + entry


def _apply(text: str, edits: Sequence[Edit]) -> str:
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _without_record(text: str, root: yaml.Node) -> str:
    got = _get(root, RECORD_KEY)
    if got is None:
        return text
    k, v = got
    start = text.rfind("\n", 0, k.start_mark.index) + 1
    note = text.rfind(RECORD_NOTE, 0, start)
    if note >= 0 and text[note:start].strip() == RECORD_NOTE:
        start = note
    eol = text.find("\n", _end(text, v))
    return text[:start] + text[len(text) if eol < 0 else eol + 1:]


def _data_set(data: Any, path: Path_, value: Any) -> None:
    for key in path[:-1]:
        if isinstance(data, dict) and key not in data:
            data[key] = {}
        data = data[key]
    data[path[-1]] = value


def calibrated_text(start: str, changes: Sequence[tuple[Path_, Any]], record: Mapping[str, Any]) -> str:
    """The starting scenario's text with each (path, value) of ``changes`` set and ``record`` appended."""
    root = yaml.compose(start)
    text = _without_record(start, root)
    root = yaml.compose(text)
    assert isinstance(root, yaml.MappingNode)
    text = _apply(text, [_set(text, root, path, value) for path, value in changes])
    block = yaml.safe_dump({RECORD_KEY: dict(record)}, sort_keys=False, width=120)
    text = text.rstrip("\n") + "\n" + RECORD_NOTE + "\n" + block
    want = yaml.safe_load(start)
    want.pop(RECORD_KEY, None)
    for path, value in changes:
        _data_set(want, path, value)
    want[RECORD_KEY] = yaml.safe_load(block)[RECORD_KEY]
    if yaml.safe_load(text) != want:
        return yaml.safe_dump(want, sort_keys=False, width=120)
    return text
