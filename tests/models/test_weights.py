import json

import pytest
import torch

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
