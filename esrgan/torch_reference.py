"""A PyTorch RRDBNet following the published ESRGAN definition, for parity tests and benchmarks.

Two parameter naming schemes: "official" (xinntao/ESRGAN: `conv_first`, `RRDB_trunk.N.RDB1.conv1`,
`trunk_conv`, `upconv1`, `HRconv`, `conv_last`) and "basicsr" (`conv_first`, `body.N.rdb1.conv1`,
`conv_body`, `conv_up1`, `conv_hr`, `conv_last`). `to_old_arch` renames an official state dict to
the original "model.N" layout. torch is imported only when a network is built.
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
