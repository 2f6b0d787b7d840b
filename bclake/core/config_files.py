"""Brand configuration files (YAML validated by pydantic) with errors a planner can act on.

`load_config` reads one file into a pydantic model and turns every failure into one
error of the caller's class that names the file, the list item (by its `id` and
position) and the field, e.g.
``config/incentives.yaml: programme SV (#5) tiers: tiers must rise strictly by 'from'``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def load_config(
    path: Path,
    model: type[Model],
    items: str,
    item: str,
    error: type[ValueError],
    what: str,
) -> Model:
    """Read the YAML file `path` and validate it as `model`.

    items: the key of the file's list of entries (e.g. "plans"); item: how an
    entry is named in messages (e.g. "plan"); what: the file's kind in messages
    (e.g. "marketing plan file"). Raises `error` for a file that cannot be read,
    is not YAML, is not a mapping or fails validation (every problem listed).
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc})") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: expected a mapping with `version` and `{items}`")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(_describe(e, raw, items, item) for e in exc.errors())
        raise error(f"{path}: {reasons}") from None


def _describe(error: dict, raw: dict, items: str, item: str) -> str:
    """One validation error as `<item> <id> (#<position>) <field>: <message>`."""
    loc = list(error["loc"])
    where = ".".join(str(x) for x in loc)
    if len(loc) >= 2 and loc[0] == items and isinstance(loc[1], int):
        entries = raw.get(items) or []
        entry = entries[loc[1]] if loc[1] < len(entries) else None
        entry_id = entry.get("id") if isinstance(entry, dict) else None
        field = ".".join(str(x) for x in loc[2:]) or f"({item})"
        where = f"{item} {entry_id or '?'} (#{loc[1] + 1}) {field}"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def require_unique_ids(ids: list[str], item: str) -> None:
    """Raise ValueError (a pydantic validator's error) naming the ids of `item`s repeated."""
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"{item} ids must be unique, repeated: {', '.join(dup)}")
