"""Hyperparameters of the three toy experiments (thesis §4.3-4.5), one frozen dataclass each.

Every field can be overridden from the CLI (`--set name=value`); the resolved configuration is
written to `config.json` beside the results.
"""
import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class GaussianConfig:
    """§4.3: a linear generator G(z) = a*z + b learns N(2.5, 3.25^2) from z ~ N(0, 1).

    G's mean is b and its standard deviation |a| (the thesis's text swaps the two).
    """

    steps: int = 4000
    seed: int = 0
    batch_size: int = 256
    d_steps: int = 1  # discriminator steps per generator step
    data_mean: float = 2.5
    data_std: float = 3.25
    latent_dim: int = 1
    d_units: int = 32  # width of the discriminator's 3 hidden ReLU layers
    d_lr: float = 3e-3
    g_lr: float = 3e-3
    beta_1: float = 0.5
    beta_2: float = 0.999
    average_last: int = 1000  # final figures: generator weights and D(.) averaged over these last steps
    eval_samples: int = 10_000
    log_every: int = 10


@dataclass(frozen=True)
class MixtureConfig:
    """§4.4: an MLP generator learns 1/2 N(5.5, 3.25^2) + 1/2 N(-3.2, 1.75^2), with and without dropout."""

    steps: int = 1000
    seed: int = 0
    batch_size: int = 200
    d_steps: int = 1
    means: tuple = (5.5, -3.2)
    stds: tuple = (3.25, 1.75)
    latent_dim: int = 4
    units: int = 256  # 3 hidden ReLU layers in both networks
    dropout: float = 0.25  # the "with dropout" generator; the other has none
    d_lr: float = 2e-4
    g_lr: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    average_last: int = 300  # final figures: generator weights averaged over these last steps
    eval_samples: int = 10_000
    log_every: int = 10


@dataclass(frozen=True)
class SinusoidConfig:
    """§4.5: a small convolutional GAN learns 50x50 binary images of a sine curve with random phase.

    The thesis's networks (G: dense + two transposed convolutions; D: two convolutions + dense; L2
    on both; batch 32; noise U(-1, 1)). The earlier defaults (1,500 steps, 16 generator filters,
    learning rates 5e-4 / 1e-3, instance noise down to 0.05) drew curve fragments: they need more
    steps, and then cover only an arc of phases; a lenient D (instance noise kept at 0.5), a wider
    G (32 filters) and higher learning rates narrow the phase gap (see the README).
    """

    steps: int = 7000
    seed: int = 0
    batch_size: int = 32
    d_steps: int = 1
    size: int = 50
    cycles: float = 1.0  # sine periods across the image width
    amplitude: float = 15.0  # in pixels, about the centre row
    half_width: float = 1.5  # a pixel is on when its centre lies within this distance of the curve
    latent_dim: int = 4  # noise U(-1, 1)
    g_filters: int = 32
    d_filters: int = 8
    batch_norm: bool = True  # in the generator, before its hidden ReLUs
    g_bias: bool = True  # biases in the generator's layers (none before a batch normalisation)
    g_leaky: float = 0.0  # slope of the generator's hidden leaky ReLUs (0: ReLU)
    l2: float = 1e-4  # L2 weight penalty on both networks
    instance_noise: float = 0.5  # std of Gaussian noise on D's inputs, linearly annealed ...
    instance_noise_end: float = 0.5  # ... to this at the last step (here: kept constant)
    d_lr: float = 1e-3
    g_lr: float = 2e-3
    beta_1: float = 0.5
    beta_2: float = 0.999
    eval_samples: int = 512  # generated images scored at each checkpoint (the last: samples.npy)
    fit_threshold: float = 0.9
    log_every: int = 50  # instance-noise schedule updated every this many steps


CONFIGS = {"gaussian": GaussianConfig, "mixture": MixtureConfig, "sinusoids": SinusoidConfig}


def _parse(value: str, current):
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return tuple(type(current[0])(v) for v in value.split(","))
    return type(current)(value)


def make_config(experiment: str, overrides: dict | None = None):
    """The experiment's defaults with `overrides` ({field: value or string}) applied."""
    cls = CONFIGS[experiment]
    config = cls()
    fields = {f.name for f in dataclasses.fields(cls)}
    parsed = {}
    for name, value in (overrides or {}).items():
        if name not in fields:
            raise ValueError(f"{experiment} has no setting {name!r}; known: {sorted(fields)}")
        current = getattr(config, name)
        parsed[name] = _parse(value, current) if isinstance(value, str) else value
    return dataclasses.replace(config, **parsed)


def to_dict(config) -> dict:
    return {"experiment": next(k for k, c in CONFIGS.items() if isinstance(config, c)),
            **dataclasses.asdict(config)}
