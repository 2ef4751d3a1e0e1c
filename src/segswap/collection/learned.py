"""Features learned on a collection (`segswap learn`), kept in its index and used for it.

`segswap learn` (:mod:`segswap.train.collection_learning`) fine-tunes the pair model's backbone tail on
the collection and writes ``<index>/learned/tail.safetensors``, with the hash of the images it learned
from in its metadata. The commands that run the pair model over that index (search, discover,
cosegment --index, the viewer) load it into the model's tail (:func:`use_learned`); an index whose
images changed since is refused in one line (learn again, or pass ``--no-learned``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import SegswapError
from .index import CollectionIndex

LEARNED_DIR = "learned"
LEARNED_WEIGHTS = "tail.safetensors"
LEARNED_RECORD = "learned.json"


def images_hash(index: CollectionIndex) -> str:
    """SHA-1 over the index's images (each relative path and content hash, in path order)."""
    digest = hashlib.sha1()
    for path, sha1 in index.db.execute("SELECT path, sha1 FROM images ORDER BY path"):
        digest.update(f"{path}\0{sha1}\n".encode())
    return digest.hexdigest()


def learned_weights(index: CollectionIndex) -> Path | None:
    path = index.path / LEARNED_DIR / LEARNED_WEIGHTS
    return path if path.is_file() else None


def learned_record(index: CollectionIndex) -> dict | None:
    """What `segswap learn` recorded (steps, pairs mined, seed, the images' hash...), or None."""
    path = index.path / LEARNED_DIR / LEARNED_RECORD
    return json.loads(path.read_text()) if path.is_file() else None


def check_learned(index: CollectionIndex, learned: bool | None = None) -> Path | None:
    """The learned weights a command over ``index`` will use (None: none), checked before any work:
    ``learned`` None uses them where there are some, False never, True requires them. Weights learned on
    other images than the index now holds are refused in one line."""
    path = learned_weights(index)
    if learned is False or (path is None and not learned):
        return None
    if path is None:
        raise SegswapError(f"{index.path} holds no learned features; run `segswap learn --index {index.path}`")
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            learned_from = (f.metadata() or {}).get("images")
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same one-line refusal
        raise SegswapError(f"{path} is damaged ({err}); run `segswap learn --index {index.path}` again, or pass "
                           "--no-learned") from None
    if learned_from != images_hash(index):
        raise SegswapError(f"{path} was learned on other images than {index.path} now holds; run `segswap learn "
                           f"--index {index.path}` again, or pass --no-learned")
    return path


def use_learned(matcher, index: CollectionIndex, learned: bool | None = None) -> bool:
    """Load the index's learned tail (:func:`check_learned`) into ``matcher``'s pair model; whether it did.
    A model without a tail of the same shape keeps its own (refused in one line when ``learned`` is True)."""
    path = check_learned(index, learned)
    if path is None:
        return False
    from safetensors.torch import load_file

    tail = getattr(matcher.model, "tail", None)
    state = load_file(str(path))
    if tail is None or set(state) != set(tail.state_dict()) or any(
            v.shape != tail.state_dict()[k].shape for k, v in state.items()):
        if learned:
            raise SegswapError(f"{path}: the model ({matcher.name}) has no backbone tail these learned weights fit")
        return False
    tail.load_state_dict(state)
    if getattr(matcher, "load_arguments", None) is not None:  # cluster workers rebuild the matcher from these
        matcher.load_arguments = {**matcher.load_arguments, "learned_tail": str(path.resolve())}
    return True
