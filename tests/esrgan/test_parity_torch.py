"""PyTorch RRDBNet (official definition, both naming schemes) -> .pth -> esrgan.convert -> same outputs."""
import json
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import common  # noqa: E402,F401

from common.checkpoints import load_model  # noqa: E402
from esrgan import convert  # noqa: E402
from esrgan.torch_reference import rrdbnet, to_old_arch  # noqa: E402

SMALL = dict(num_filters=8, num_blocks=2, growth=4)


def random_net(names="official", scale=4, unshuffle=1, seed=0, num_blocks=2):
    torch.manual_seed(seed)
    config = {**SMALL, "num_blocks": num_blocks}
    net = rrdbnet(**config, scale=scale, names=names, unshuffle=unshuffle).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.1)
    return net


def torch_forward(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()


def lr(h=12, w=10, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (1, h, w, 3)).astype(np.float32)


def convert_and_compare(tmp_path, payload, net, scale, x=None, via_cli=True):
    """Save `payload` as .pth, convert it (CLI entry point, or in memory) and compare with `net`."""
    pth, out = tmp_path / "net.pth", tmp_path / "net.h5"
    torch.save(payload, pth)
    if via_cli:
        assert convert.main([str(pth), "-o", str(out)]) == 0
        model, meta = load_model(out)
    else:
        model, args, scheme = convert.state_dict_to_keras(convert.load_state_dict(pth))
        meta = {"args": args, "source_scheme": scheme}
    x = lr() if x is None else x
    ours = model(x, training=False).numpy()
    ref = torch_forward(net, x)
    assert ours.shape == ref.shape == (1, x.shape[1] * scale, x.shape[2] * scale, 3)
    diff = np.abs(ours - ref).max()
    assert diff < 1e-4, diff
    if via_cli:
        assert meta["architecture"] == "rrdb_generator" and meta["scale"] == scale
        assert meta["color"] == "rgb" and meta["value_range"] == [0, 1]
    return meta


def test_official_names(tmp_path):
    net = random_net("official")
    meta = convert_and_compare(tmp_path, net.state_dict(), net, 4)
    assert meta["args"] == {**SMALL, "scale": 4, "unshuffle": 1}
    assert meta["source_scheme"] == "official" and meta["source"] == "net.pth"
    assert json.loads((tmp_path / "net.json").read_text())["args"]["num_blocks"] == 2


@pytest.mark.parametrize("scale", [1, 2, 8])
def test_official_names_other_scales(tmp_path, scale):
    net = random_net("official", scale=scale, num_blocks=1)
    meta = convert_and_compare(tmp_path, net.state_dict(), net, scale, via_cli=False)
    assert meta["args"]["scale"] == scale


def test_basicsr_names_prefer_params_ema(tmp_path):
    net, other = random_net("basicsr", seed=1), random_net("basicsr", seed=2)
    payload = {"params": other.state_dict(), "params_ema": net.state_dict()}
    meta = convert_and_compare(tmp_path, payload, net, 4)
    assert meta["source_scheme"] == "basicsr"


def test_basicsr_params_and_module_prefix(tmp_path):
    net = random_net("basicsr", seed=3, num_blocks=1)
    payload = {"params": {f"module.{k}": v for k, v in net.state_dict().items()}}
    convert_and_compare(tmp_path, payload, net, 4, via_cli=False)


def test_old_architecture_names(tmp_path):
    net = random_net("official", seed=4)
    meta = convert_and_compare(tmp_path, to_old_arch(net.state_dict(), num_blocks=2), net, 4, via_cli=False)
    assert meta["source_scheme"] == "old"


def test_real_esrgan_x2_pixel_unshuffle(tmp_path):
    net = random_net("basicsr", scale=2, unshuffle=2, seed=5, num_blocks=1)
    meta = convert_and_compare(tmp_path, {"params_ema": net.state_dict()}, net, 2, x=lr(8, 12), via_cli=False)
    assert meta["args"]["unshuffle"] == 2


def test_not_a_state_dict_fails_with_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    assert convert.main([str(bad), "-o", str(tmp_path / "x.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not a PyTorch state dict" in err and "\n" not in err
    other = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3)}, other)
    assert convert.main([str(other), "-o", str(tmp_path / "x.h5")]) == 1
    assert "not a recognised" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_missing_torch_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(convert.ConversionError, match="needs PyTorch"):
        convert.load_state_dict(tmp_path / "any.pth")


@pytest.mark.parametrize("scale", [2, 4])
def test_srvgg_compact_in_pytorch_gives_our_outputs(scale):
    """Our Keras SRVGGNetCompact's weights in a PyTorch one written from Real-ESRGAN's definition
    (nn.PixelShuffle, nn.PReLU, nearest F.interpolate): the same outputs."""
    import keras

    from esrgan.models import srvgg_compact
    from esrgan.torch_reference import srvgg_compact as torch_compact
    from esrgan.torch_reference import srvgg_state_dict

    keras.utils.set_random_seed(scale)
    model = srvgg_compact(scale=scale, num_filters=8, num_convs=3)
    rng = np.random.default_rng(scale)
    for layer in model.layers:  # slopes and biases away from their constant starts
        if layer.weights:
            layer.set_weights([w + rng.normal(0, 0.1, w.shape).astype(np.float32) for w in layer.get_weights()])
    net = torch_compact(num_filters=8, num_convs=3, scale=scale).eval()
    state = srvgg_state_dict(model)
    assert set(state) == set(net.state_dict())  # Real-ESRGAN's names: body.N.weight / body.N.bias
    net.load_state_dict(state)
    x = lr(11, 9)
    ours, ref = model(x, training=False).numpy(), torch_forward(net, x)
    assert ours.shape == ref.shape == (1, 11 * scale, 9 * scale, 3)
    assert np.abs(ours - ref).max() < 1e-4
    assert np.abs(ours - np.repeat(np.repeat(x, scale, 1), scale, 2)).max() > 0.05  # more than the skip
    # without the channel reordering the sub-pixels land in the wrong places
    state["body.8.weight"] = torch.from_numpy(
        np.ascontiguousarray(model.get_layer("conv_last").get_weights()[0].transpose(3, 2, 0, 1)))
    state["body.8.bias"] = torch.from_numpy(model.get_layer("conv_last").get_weights()[1])
    net.load_state_dict(state)
    assert np.abs(torch_forward(net, x) - ours).max() > 1e-2
