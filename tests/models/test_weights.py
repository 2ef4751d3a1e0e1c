import json
import re
from pathlib import Path

import pytest
import torch

import segswap

from segswap.errors import SegswapError
from segswap.models import SegSwapTransformer
from segswap.models.weights import load_weights, read_config, save_weights


def test_weights_round_trip_bit_exactly(tmp_path):
    model = SegSwapTransformer(input_dim=24, dim=32, ffn_dim=48, layers="ICI")
    path = tmp_path / "w.safetensors"
    save_weights(path, model, backbone="efficientnet-lite2", size=320, recipe="abc")
    loaded, config = load_weights(path)
    assert config["model"] == "segswap" and config["backbone"] == "efficientnet-lite2" and config["size"] == 320
    assert loaded.conf == model.conf
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert not list(tmp_path.glob("*.tmp"))


def test_refuses_files_that_are_not_segswap_weights(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(SegswapError, match="not a safetensors"):
        read_config(junk)
    with pytest.raises(SegswapError, match="no such"):
        read_config(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(2)}, str(plain))
    with pytest.raises(SegswapError, match="without a segswap config"):
        read_config(plain)


def test_config_is_plain_json_in_the_header(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights(path, SegSwapTransformer(input_dim=8, dim=16, ffn_dim=16), backbone="x", size=160)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    assert json.loads(header["__metadata__"]["segswap"])["conf"]["dim"] == 16


def _crafted(path, config, tensors=None):
    from safetensors.torch import save_file

    model = SegSwapTransformer(input_dim=24, dim=32, ffn_dim=48, layers="ICI")
    tensors = tensors if tensors is not None else {k: v.contiguous() for k, v in model.state_dict().items()}
    good = {"format": 1, "model": "segswap", "conf": model.conf, "backbone": "efficientnet-lite2", "size": 320,
            "recipe": "", "info": {}}
    metadata = config if isinstance(config, str) else json.dumps(config(good) if callable(config) else config)
    save_file(tensors, str(path), metadata={"segswap": metadata})
    return path


@pytest.mark.parametrize("config, message", [
    ("{not json", "is not JSON"),
    ([1, 2], "a list, not a mapping"),
    (lambda c: {**c, "conf": [1]}, "'conf') are not a mapping"),
    (lambda c: {**c, "conf": {**c["conf"], "nonsense": 1}}, "cannot be built from its options"),
    (lambda c: {**c, "conf": {**c["conf"], "dim": 64}}, "has shape"),
    (lambda c: {**c, "size": "big"}, "integer size"),
])
def test_crafted_or_mismatched_weights_are_one_line_errors(tmp_path, run_cli, config, message):
    """Item 17 of issue 21: each of these gave a traceback."""
    path = _crafted(tmp_path / "w.safetensors", config)
    image = Path(segswap.__file__).parent / "data" / "box.png"
    r = run_cli("pair", image, image, "--out", tmp_path / "o", "--weights", path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    with pytest.raises(SegswapError, match=re.escape(message)):
        load_weights(path)


def test_a_pickled_checkpoint_is_refused_by_export_and_resume(tmp_path, run_cli):
    import pickle

    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(json.dumps({"model": "segswap", "backbone": "efficientnet-lite2", "model_conf": {},
                                                 "name": "tiny", "size": 64, "pairs": [str(tmp_path)]}))
    (run / "checkpoint.pt").write_bytes(pickle.dumps({"model": object(), "step": 1}))
    r = run_cli("export", run, "--out", tmp_path / "w.safetensors")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not a segswap training checkpoint" in r.stderr
    from segswap.train.loop import read_checkpoint

    with pytest.raises(SegswapError, match="not a segswap training checkpoint"):
        read_checkpoint(run / "checkpoint.pt")
