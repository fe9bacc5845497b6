"""Checking the JSON documents emolab reads (pack manifests, sessions) against their schemas."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


def load_schema(name: str) -> dict:
    return json.loads(resources.files("emolab").joinpath(f"schemas/{name}").read_text(encoding="utf-8"))


def check_document(
    document: object,
    path: Path,
    *,
    schema: str,
    format_name: str,
    versions: tuple[int, ...],
    error: type[Exception],
    what: str,
) -> None:
    """Raise `error` with one line naming the file and the first problem, or return."""
    import jsonschema

    if not isinstance(document, dict):
        raise error(f"{path}: not {what} (the file is not a JSON object)")
    found = document.get("format_version")
    version = max(versions)
    if document.get("format") == format_name and isinstance(found, int) and found not in versions:
        hint = "upgrade emolab" if found > version else "it cannot be read by this emolab"
        raise error(
            f"{path}: format version {found} is {'newer' if found > version else 'older'} than this "
            f"emolab reads ({version}); {hint}"
        )
    problem = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(load_schema(schema)).iter_errors(document)
    )
    if problem is not None:
        where = problem.json_path if problem.json_path != "$" else f"the {what}"
        raise error(f"{path}: {where}: {problem.message}")


def read_json(path: str | Path, what: str) -> object:
    """A small JSON file the user names (a preset, a keymap); EmolabError in one line if it is not one."""
    from emolab.core.errors import EmolabError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmolabError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EmolabError(f"{path}: not a JSON {what} ({error})") from None
