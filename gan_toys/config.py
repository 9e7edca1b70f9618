"""Hyperparameters of the three toy experiments (thesis §4.3-4.5), one frozen dataclass each.

Every field is a flag of `python -m gan_toys.train EXPERIMENT` (common.config_cli: one `--name`
per field, with its help line); the resolved configuration is written to `config.json` beside
the results.
"""
import dataclasses
from dataclasses import dataclass

from common.config_cli import setting


@dataclass(frozen=True)
class GaussianConfig:
    """§4.3: a linear generator G(z) = a*z + b learns N(2.5, 3.25^2) from z ~ N(0, 1).

    G's mean is b and its standard deviation |a| (the thesis's text swaps the two).
    """

    steps: int = setting(4000, "training steps (generator updates)", unit="steps")
    seed: int = setting(0, "random seed (weights, noise, data)")
    batch_size: int = setting(256, "samples per batch (under a strategy: the global batch)")
    d_steps: int = setting(1, "discriminator steps per generator step")
    data_mean: float = setting(2.5, "mean of the data's normal distribution")
    data_std: float = setting(3.25, "standard deviation of the data's normal distribution")
    latent_dim: int = setting(1, "dimension of the generator's noise N(0, 1)")
    d_units: int = setting(32, "width of the discriminator's 3 hidden ReLU layers")
    d_lr: float = setting(3e-3, "discriminator's Adam learning rate")
    g_lr: float = setting(3e-3, "generator's Adam learning rate")
    beta_1: float = setting(0.5, "Adam beta_1 of both players")
    beta_2: float = setting(0.999, "Adam beta_2 of both players")
    average_last: int = setting(1000, "final figures: generator weights and D(.) averaged over these last steps",
                                unit="steps")
    eval_samples: int = setting(10_000, "samples drawn for the final figures and metrics")
    log_every: int = setting(10, "steps between snapshots of the generator (moments figure, averaging)",
                             unit="steps")


@dataclass(frozen=True)
class MixtureConfig:
    """§4.4: an MLP generator learns 1/2 N(5.5, 3.25^2) + 1/2 N(-3.2, 1.75^2), with and without dropout."""

    steps: int = setting(1000, "training steps (generator updates) of each of the two GANs", unit="steps")
    seed: int = setting(0, "random seed (weights, noise, data)")
    batch_size: int = setting(200, "samples per batch (under a strategy: the global batch)")
    d_steps: int = setting(1, "discriminator steps per generator step")
    means: tuple[float, ...] = setting((5.5, -3.2), "means of the mixture's two normals")
    stds: tuple[float, ...] = setting((3.25, 1.75), "standard deviations of the mixture's two normals")
    latent_dim: int = setting(4, "dimension of the generator's noise N(0, 1)")
    units: int = setting(256, "width of the 3 hidden ReLU layers of both networks")
    dropout: float = setting(0.25, "dropout rate of the 'with dropout' generator (the other has none)")
    d_lr: float = setting(2e-4, "discriminator's Adam learning rate")
    g_lr: float = setting(2e-4, "generator's Adam learning rate")
    beta_1: float = setting(0.5, "Adam beta_1 of both players")
    beta_2: float = setting(0.999, "Adam beta_2 of both players")
    average_last: int = setting(300, "final figures: generator weights averaged over these last steps",
                                unit="steps")
    eval_samples: int = setting(10_000, "samples drawn for the final figures and metrics")
    log_every: int = setting(10, "steps between evaluations (Wasserstein curve, averaging snapshots)",
                             unit="steps")


@dataclass(frozen=True)
class SinusoidConfig:
    """§4.5: a small convolutional GAN learns 50x50 binary images of a sine curve with random phase.

    The thesis's networks (G: dense + two transposed convolutions; D: two convolutions + dense; L2
    on both; batch 32; noise U(-1, 1)) and the GAN game, with a mode-seeking term in G's loss and
    samples drawn from an average of G's weights. Without the term (preset `plain`) G covers only
    an arc of phases on some seeds: it bends the noise cube round the circle of phases with a
    seam, and a sharp D keeps its samples out of the gap (see the README).
    """

    steps: int = setting(5000, "training steps (generator updates)", unit="steps")
    seed: int = setting(0, "random seed (weights, noise, data)")
    batch_size: int = setting(32, "images per batch (under a strategy: the global batch)")
    d_steps: int = setting(1, "discriminator steps per generator step")
    size: int = setting(50, "image side", unit="px")
    cycles: float = setting(1.0, "sine periods across the image width")
    amplitude: float = setting(15.0, "the curve's amplitude about the centre row", unit="px")
    half_width: float = setting(1.5, "a pixel is on when its centre lies within this distance of the curve",
                                unit="px")
    latent_dim: int = setting(4, "dimension of the generator's noise U(-1, 1)")
    g_filters: int = setting(32, "filters of the generator's hidden layers")
    d_filters: int = setting(8, "filters of the discriminator's first convolution (the second has twice as many)")
    batch_norm: bool = setting(True, "batch normalisation in the generator, before its hidden ReLUs")
    g_bias: bool = setting(True, "biases in the generator's layers (none before a batch normalisation)")
    g_leaky: float = setting(0.0, "slope of the generator's hidden leaky ReLUs (0: ReLU)")
    l2: float = setting(1e-4, "L2 weight penalty on both networks")
    instance_noise: float = setting(0.5, "std of Gaussian noise added to D's inputs at the first step, "
                                    "linearly annealed to --instance-noise-end")
    instance_noise_end: float = setting(0.3, "std of D's input noise at the last step")
    real_label: float = setting(1.0, "D's target for real images (< 1: one-sided label smoothing)")
    mode_seeking: float = setting(0.2, "weight of the mode-seeking term (Mao et al. 2019) in G's loss (0: none)")
    ema: float = setting(0.998, "sample from an exponential moving average of G's weights with this decay "
                         "(0: from the last weights)")
    d_lr: float = setting(2e-3, "discriminator's Adam learning rate")
    g_lr: float = setting(4e-3, "generator's Adam learning rate")
    beta_1: float = setting(0.5, "Adam beta_1 of both players")
    beta_2: float = setting(0.999, "Adam beta_2 of both players")
    eval_samples: int = setting(512, "generated images scored at each checkpoint (the last: samples.npy)")
    fit_threshold: float = setting(0.9, "an image is good when its sinusoid fit scores at least this")
    log_every: int = setting(50, "steps between updates of the instance-noise schedule", unit="steps")


CONFIGS = {"gaussian": GaussianConfig, "mixture": MixtureConfig, "sinusoids": SinusoidConfig}
# named configurations per experiment; "default" is the class's defaults
PRESETS = {name: {"default": cls()} for name, cls in CONFIGS.items()}
# the sinusoids' defaults before the mode-seeking term (#20): the plain GAN game, samples from the
# last weights; on seeds 1 and 2 a 30-degree bin of phases holds almost no images
PRESETS["sinusoids"]["plain"] = SinusoidConfig(steps=7000, mode_seeking=0.0, ema=0.0, d_lr=1e-3, g_lr=2e-3,
                                                instance_noise_end=0.5)


def parse_value(value: str, current):
    """A `--set name=value` string as the type of the field's current value."""
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(current, tuple):
        return tuple(type(current[0])(v) for v in value.split(","))
    return type(current)(value)


def make_config(experiment: str, overrides: dict | None = None, preset: str = "default"):
    """The experiment's preset with `overrides` ({field: value or string}) applied."""
    cls = CONFIGS[experiment]
    if preset not in PRESETS[experiment]:
        raise ValueError(f"{experiment} has no preset {preset!r}; known: {sorted(PRESETS[experiment])}")
    config = PRESETS[experiment][preset]
    fields = {f.name for f in dataclasses.fields(cls)}
    parsed = {}
    for name, value in (overrides or {}).items():
        if name not in fields:
            raise ValueError(f"{experiment} has no setting {name!r}; known: {sorted(fields)}")
        current = getattr(config, name)
        parsed[name] = parse_value(value, current) if isinstance(value, str) else value
    return dataclasses.replace(config, **parsed)


def to_dict(config) -> dict:
    return {"experiment": next(k for k, c in CONFIGS.items() if isinstance(config, c)),
            **dataclasses.asdict(config)}
