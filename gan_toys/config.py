"""Hyperparameters of the three toy experiments (thesis §4.3-4.5), one frozen dataclass each.

Every field is a flag of `python -m gan_toys.train EXPERIMENT` (common.config_cli: one `--name`
per field, with its help line); the resolved configuration is written to `config.json` beside
the results.
"""
import dataclasses
from dataclasses import dataclass

from common.config_cli import SettingError, check_settings, setting

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class GaussianConfig:
    """§4.3: a linear generator G(z) = a*z + b learns N(2.5, 3.25^2) from z ~ N(0, 1).

    G's mean is b and its standard deviation |a| (the thesis's text swaps the two).
    """

    steps: int = setting(4000, "training steps (generator updates)", unit="steps", minimum=1)
    seed: int = setting(0, "random seed (weights, noise, data)", minimum=0, maximum=MAX_SEED)
    batch_size: int = setting(256, "samples per batch (under a strategy: the global batch)", minimum=1)
    d_steps: int = setting(1, "discriminator steps per generator step", minimum=1)
    data_mean: float = setting(2.5, "mean of the data's normal distribution")
    data_std: float = setting(3.25, "standard deviation of the data's normal distribution", above=0)
    latent_dim: int = setting(1, "dimension of the generator's noise N(0, 1)", minimum=1)
    d_units: int = setting(32, "width of the discriminator's 3 hidden ReLU layers", minimum=1)
    d_lr: float = setting(3e-3, "discriminator's Adam learning rate", minimum=0)
    g_lr: float = setting(3e-3, "generator's Adam learning rate", minimum=0)
    beta_1: float = setting(0.5, "Adam beta_1 of both players", minimum=0, below=1)
    beta_2: float = setting(0.999, "Adam beta_2 of both players", minimum=0, below=1)
    average_last: int = setting(1000, "final figures: generator weights and D(.) averaged over these last steps",
                                unit="steps", minimum=1)
    eval_samples: int = setting(10_000, "samples drawn for the final figures and metrics", minimum=1)
    log_every: int = setting(10, "steps between snapshots of the generator (moments figure, averaging)",
                             unit="steps", minimum=1)

    def __post_init__(self):
        check_settings(self)


@dataclass(frozen=True)
class MixtureConfig:
    """§4.4: an MLP generator learns 1/2 N(5.5, 3.25^2) + 1/2 N(-3.2, 1.75^2), with and without dropout."""

    steps: int = setting(1000, "training steps (generator updates) of each of the two GANs", unit="steps", minimum=1)
    seed: int = setting(0, "random seed (weights, noise, data)", minimum=0, maximum=MAX_SEED)
    batch_size: int = setting(200, "samples per batch (under a strategy: the global batch)", minimum=1)
    d_steps: int = setting(1, "discriminator steps per generator step", minimum=1)
    means: tuple[float, ...] = setting((5.5, -3.2), "means of the mixture's two normals")
    stds: tuple[float, ...] = setting((3.25, 1.75), "standard deviations of the mixture's two normals", above=0)
    latent_dim: int = setting(4, "dimension of the generator's noise N(0, 1)", minimum=1)
    units: int = setting(256, "width of the 3 hidden ReLU layers of both networks", minimum=1)
    dropout: float = setting(0.25, "dropout rate of the 'with dropout' generator (the other has none)",
                             minimum=0, below=1)
    d_lr: float = setting(2e-4, "discriminator's Adam learning rate", minimum=0)
    g_lr: float = setting(2e-4, "generator's Adam learning rate", minimum=0)
    beta_1: float = setting(0.5, "Adam beta_1 of both players", minimum=0, below=1)
    beta_2: float = setting(0.999, "Adam beta_2 of both players", minimum=0, below=1)
    average_last: int = setting(300, "final figures: generator weights averaged over these last steps",
                                unit="steps", minimum=1)
    eval_samples: int = setting(10_000, "samples drawn for the final figures and metrics", minimum=1)
    log_every: int = setting(10, "steps between evaluations (Wasserstein curve, averaging snapshots)",
                             unit="steps", minimum=1)

    def __post_init__(self):
        check_settings(self)
        if len(self.means) != 2:
            raise SettingError("means", f"the mixture has two normals: give 2 means, not {len(self.means)}")
        if len(self.stds) != 2:
            raise SettingError("stds", f"the mixture has two normals: give 2 standard deviations, not {len(self.stds)}")


@dataclass(frozen=True)
class SinusoidConfig:
    """§4.5: a small convolutional GAN learns 50x50 binary images of a sine curve with random phase.

    The thesis's networks (G: dense + two transposed convolutions; D: two convolutions + dense; L2
    on both; batch 32; noise U(-1, 1)) and the GAN game, with a mode-seeking term in G's loss and
    samples drawn from an average of G's weights. Without the term (preset `plain`) G covers only
    an arc of phases on some seeds: it bends the noise cube round the circle of phases with a
    seam, and a sharp D keeps its samples out of the gap (see the README).
    """

    steps: int = setting(5000, "training steps (generator updates)", unit="steps", minimum=1)
    seed: int = setting(0, "random seed (weights, noise, data)", minimum=0, maximum=MAX_SEED)
    batch_size: int = setting(32, "images per batch (under a strategy: the global batch)", minimum=1)
    d_steps: int = setting(1, "discriminator steps per generator step", minimum=1)
    size: int = setting(50, "image side (the generator makes 50x50 images)", unit="px", choices=(50,))
    cycles: float = setting(1.0, "sine periods across the image width")
    amplitude: float = setting(15.0, "the curve's amplitude about the centre row", unit="px", minimum=0)
    half_width: float = setting(1.5, "a pixel is on when its centre lies within this distance of the curve",
                                unit="px", above=0)
    latent_dim: int = setting(4, "dimension of the generator's noise U(-1, 1)", minimum=1)
    g_filters: int = setting(32, "filters of the generator's hidden layers", minimum=1)
    d_filters: int = setting(8, "filters of the discriminator's first convolution (the second has twice as many)",
                             minimum=1)
    batch_norm: bool = setting(True, "batch normalisation in the generator, before its hidden ReLUs")
    g_bias: bool = setting(True, "biases in the generator's layers (none before a batch normalisation)")
    g_leaky: float = setting(0.0, "slope of the generator's hidden leaky ReLUs (0: ReLU)", minimum=0, below=1)
    l2: float = setting(1e-4, "L2 weight penalty on both networks", minimum=0)
    instance_noise: float = setting(0.5, "std of Gaussian noise added to D's inputs at the first step, "
                                    "linearly annealed to --instance-noise-end", minimum=0)
    instance_noise_end: float = setting(0.3, "std of D's input noise at the last step", minimum=0)
    real_label: float = setting(1.0, "D's target for real images (< 1: one-sided label smoothing)", above=0, maximum=1)
    mode_seeking: float = setting(0.2, "weight of the mode-seeking term (Mao et al. 2019) in G's loss (0: none)",
                                  minimum=0)
    ema: float = setting(0.998, "sample from an exponential moving average of G's weights with this decay "
                         "(0: from the last weights)", minimum=0, below=1)
    d_lr: float = setting(2e-3, "discriminator's Adam learning rate", minimum=0)
    g_lr: float = setting(4e-3, "generator's Adam learning rate", minimum=0)
    beta_1: float = setting(0.5, "Adam beta_1 of both players", minimum=0, below=1)
    beta_2: float = setting(0.999, "Adam beta_2 of both players", minimum=0, below=1)
    eval_samples: int = setting(512, "generated images scored at each checkpoint (the last: samples.npy)", minimum=1)
    fit_threshold: float = setting(0.9, "an image is good when its sinusoid fit scores at least this",
                                   minimum=0, maximum=1)
    log_every: int = setting(50, "steps between updates of the instance-noise schedule", unit="steps", minimum=1)

    def __post_init__(self):
        check_settings(self)


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
            raise SettingError("--set", f"{experiment} has no setting {name!r}; known: {', '.join(sorted(fields))}")
        current = getattr(config, name)
        try:
            parsed[name] = parse_value(value, current) if isinstance(value, str) else value
        except ValueError:
            raise SettingError(name, f"{value!r} is not a valid {type(current).__name__}") from None
    return dataclasses.replace(config, **parsed)


def to_dict(config) -> dict:
    return {"experiment": next(k for k, c in CONFIGS.items() if isinstance(config, c)),
            **dataclasses.asdict(config)}
