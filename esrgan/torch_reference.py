"""A PyTorch RRDBNet following the published ESRGAN definition, and an SRVGGNetCompact following
Real-ESRGAN's, for parity tests and benchmarks.

Two parameter naming schemes: "official" (xinntao/ESRGAN: `conv_first`, `RRDB_trunk.N.RDB1.conv1`,
`trunk_conv`, `upconv1`, `HRconv`, `conv_last`) and "basicsr" (`conv_first`, `body.N.rdb1.conv1`,
`conv_body`, `conv_up1`, `conv_hr`, `conv_last`). `to_old_arch` renames an official state dict to
the original "model.N" layout. The SRVGGNetCompact keeps Real-ESRGAN's `body.N` names;
`srvgg_state_dict` gives it the weights of our Keras model. torch is imported only when a network
is built.
"""
import functools
import re


@functools.lru_cache(maxsize=None)
def _classes():
    import torch
    from torch import nn
    from torch.nn import functional as F

    class DenseBlock(nn.Module):
        def __init__(self, nf, gc):
            super().__init__()
            self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
            self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
            self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
            self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
            self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)

        def forward(self, x):  # as the official ResidualDenseBlock_5C
            x1 = self.lrelu(self.conv1(x))
            x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
            x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
            x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
            x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
            return x5 * 0.2 + x

    class RRDB(nn.Module):
        def __init__(self, nf, gc, rdb):
            super().__init__()
            self.names = [f"{rdb}{k}" for k in (1, 2, 3)]
            for n in self.names:
                setattr(self, n, DenseBlock(nf, gc))

        def forward(self, x):
            out = x
            for n in self.names:
                out = getattr(self, n)(out)
            return out * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self, nf=64, nb=23, gc=32, scale=4, names="official", unshuffle=1):
            super().__init__()
            n = _NAMES[names]
            self.n = n
            self.unshuffle = unshuffle  # BasicSR's x2/x1 models pixel-unshuffle the input first
            self.num_up = {1: 0, 2: 1, 4: 2, 8: 3}[scale * unshuffle]
            self.conv_first = nn.Conv2d(3 * unshuffle**2, nf, 3, 1, 1)
            setattr(self, n["trunk"], nn.Sequential(*[RRDB(nf, gc, n["rdb"]) for _ in range(nb)]))
            setattr(self, n["trunk_conv"], nn.Conv2d(nf, nf, 3, 1, 1))
            for i in range(1, self.num_up + 1):
                setattr(self, f"{n['up']}{i}", nn.Conv2d(nf, nf, 3, 1, 1))
            setattr(self, n["hr"], nn.Conv2d(nf, nf, 3, 1, 1))
            self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(0.2, inplace=True)

        def forward(self, x):
            n = self.n
            if self.unshuffle > 1:
                x = F.pixel_unshuffle(x, self.unshuffle)
            fea = self.conv_first(x)
            fea = fea + getattr(self, n["trunk_conv"])(getattr(self, n["trunk"])(fea))
            for i in range(1, self.num_up + 1):
                up = getattr(self, f"{n['up']}{i}")
                fea = self.lrelu(up(F.interpolate(fea, scale_factor=2, mode="nearest")))
            return self.conv_last(self.lrelu(getattr(self, n["hr"])(fea)))

    return RRDBNet


_NAMES = {
    "official": {"trunk": "RRDB_trunk", "rdb": "RDB", "trunk_conv": "trunk_conv", "up": "upconv", "hr": "HRconv"},
    "basicsr": {"trunk": "body", "rdb": "rdb", "trunk_conv": "conv_body", "up": "conv_up", "hr": "conv_hr"},
}


def rrdbnet(num_filters=64, num_blocks=23, growth=32, scale=4, names="official", unshuffle=1):
    """A torch.nn.Module RRDBNet (NCHW, RGB in [0, 1]) with the chosen parameter names."""
    return _classes()(num_filters, num_blocks, growth, scale, names, unshuffle)


def to_old_arch(state_dict, num_blocks, scale=4):
    """Rename an "official" state dict to the original ESRGAN/BasicSR "model.N" layout."""
    num_up = {1: 0, 2: 1, 4: 2, 8: 3}[scale]
    top = {"conv_first": "model.0", "trunk_conv": f"model.1.sub.{num_blocks}"}
    top.update({f"upconv{i}": f"model.{3 * i}" for i in range(1, num_up + 1)})
    top.update({"HRconv": f"model.{3 * num_up + 2}", "conv_last": f"model.{3 * num_up + 4}"})
    out = {}
    for key, value in state_dict.items():
        module, param = key.rsplit(".", 1)
        m = re.fullmatch(r"RRDB_trunk\.(\d+)\.(RDB\d\.conv\d)", module)
        new = f"model.1.sub.{m[1]}.{m[2]}.0" if m else top[module]
        out[f"{new}.{param}"] = value
    return out


@functools.lru_cache(maxsize=None)
def _compact_class():
    from torch import nn
    from torch.nn import functional as F

    class SRVGGNetCompact(nn.Module):
        """body: conv, PReLU, num_convs x (conv, PReLU), conv to 3*scale^2; pixel shuffle; plus the
        nearest-upsampled input (Real-ESRGAN's `srvgg_arch.py`, PReLU activations)."""

        def __init__(self, num_filters=64, num_convs=16, scale=4):
            super().__init__()
            self.scale = scale
            body = [nn.Conv2d(3, num_filters, 3, 1, 1), nn.PReLU(num_filters)]
            for _ in range(num_convs):
                body += [nn.Conv2d(num_filters, num_filters, 3, 1, 1), nn.PReLU(num_filters)]
            body.append(nn.Conv2d(num_filters, 3 * scale * scale, 3, 1, 1))
            self.body = nn.ModuleList(body)
            self.upsampler = nn.PixelShuffle(scale)

        def forward(self, x):
            out = x
            for module in self.body:
                out = module(out)
            return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    return SRVGGNetCompact


def srvgg_compact(num_filters=64, num_convs=16, scale=4):
    """A torch.nn.Module SRVGGNetCompact (NCHW, RGB in [0, 1]) with Real-ESRGAN's parameter names."""
    return _compact_class()(num_filters, num_convs, scale)


def shuffle_permutation(scale, channels=3):
    """Index map from PyTorch pixel_shuffle channel order to TensorFlow's depth_to_space order:
    PyTorch channel c*r*r + i*r + j is TensorFlow channel (i*r + j)*C + c."""
    r = scale
    return [(i * r + j) * channels + c for c in range(channels) for i in range(r) for j in range(r)]


def srvgg_state_dict(model) -> dict:
    """A state dict of `srvgg_compact`'s PyTorch module holding the weights of esrgan.models.srvgg_compact
    `model` (Keras): kernels HWIO -> OIHW, PReLU slopes flattened, conv_last's output channels
    reordered for nn.PixelShuffle."""
    import keras
    import numpy as np
    import torch

    layers = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.PReLU))]
    out = {}
    scale = round((layers[-1].filters // 3) ** 0.5)
    for n, layer in enumerate(layers):
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.PReLU):
            out[f"body.{n}.weight"] = torch.from_numpy(np.ascontiguousarray(weights[0].reshape(-1)))
            continue
        kernel, bias = weights
        if layer.name == "conv_last":
            order = shuffle_permutation(scale)
            kernel, bias = kernel[..., order], bias[order]
        out[f"body.{n}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"body.{n}.bias"] = torch.from_numpy(np.ascontiguousarray(bias))
    return out
