"""ESRGAN's component study (Wang et al., 2018, Fig. 7; thesis Fig. 9) on a small, fixed budget.

    python -m esrgan.ablation [--steps N] [--pretrain-steps N] [--data DIR] [--out DIR]
        [--vgg-weights imagenet|FILE|random] [--columns 1 2 3 4 5] [--num-filters 32 --num-blocks 8 ...]

Five cumulative columns, each one change on top of the previous one:

  1 srgan       SRGAN baseline: SRResNet with batch norm, VGG19 conv5_4 features after the ReLU,
                standard GAN (-log D(G(LR)); D: binary cross-entropy)
  2 no_bn       batch norm removed from SRResNet
  3 before_act  perceptual features taken before the ReLU
  4 ragan       relativistic average GAN (RaGAN) instead of the standard GAN
  5 rrdb        RRDB generator instead of residual blocks (= ESRGAN)

Everything else is shared so that a column differs from the previous one only in its component:
the training data (T91 random crops via common.data, one seeded stream), the seed, the widths
(`num_blocks` x `num_filters`, RRDB growth `num_filters // 2`), the discriminator (esrgan.models'
VGG-style one), the update scheme (esrgan.gan: one forward pass updates both networks) and the
generator loss L_percep + 5e-3 * L_adv + 1e-2 * L1 (esrgan.losses; the standard GAN columns use
common.losses.AdversarialLoss / DiscriminatorLoss for L_adv and D). Each column is first pre-trained
with L1 alone (esrgan.gan.PSNRTrainer, `--pretrain-steps`) and then trained as a GAN (`--steps`).
Columns that share a generator (2, 3 and 4) share its pre-training, which is run once.
SRResNet (output [-1, 1], srgan.models.srresnet) is followed by a Rescale layer to [0, 1], the
range of the ESRGAN losses and discriminator.

Outputs in --out (written atomically):
  ablation.json   settings, per-column PSNR / SSIM (Y, `scale` border) / NIQE on --data
                  (common.evaluate's protocol) and the histogram distances
  ablation.md     the table
  crops.png       HR | every column's output, on one image of --data
  histograms.png  thesis Fig. 10a: brightness histograms (8-bit grey levels of all --data images,
                  Gaussian-smoothed) of the BN column (1) and the no-BN column (2) against HR; the
                  JSON gives the L1 distance between the normalised smoothed histograms (0 = equal)

Cost of the defaults on the 2-core machine while two trainings ran (one thread): 0.7-1.5 s per
SRResNet pre-training step, more for RRDB, and 5-6 s per GAN step (VGG19 conv5_4 on 64-px crops
dominates): about 2 hours for the five columns. Shrink with --steps, --pretrain-steps or --columns.

VGG19's ImageNet weights cannot be downloaded offline: `--vgg-weights imagenet` then stops with
common.vgg's message; `--vgg-weights random` runs with an untrained VGG19 (a smoke test, not a
faithful perceptual loss: the table says so). `--perceptual disc-features` uses the offline substitute
of the GAN stages instead: feature matching on the discriminator's activations (columns 1-2) or on the
layers feeding them (3-5, "before activation"), L1 normalised per layer; `--lowpass-weight` adds their
colour anchor.
"""
import argparse
import io
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import common  # noqa: F401  (quiet TensorFlow import)
import keras

from common.config_cli import (CommandParser, SettingError, add_config_arguments, check_settings, config_from_args,
                               setting)
from common.degradations import DEGRADATION_HELP, DEGRADATIONS, OPTIONS_HELP
from common.data import eval_pairs, train_dataset
from common.evaluate import bicubic_upscaler, evaluate_model
from common.files import atomic_write_bytes, write_json
from common.images import ImageError, to_uint8
from common.inference import upscale
from common.layers import Rescale
from common.losses import AdversarialLoss, DiscriminatorLoss
from common.paths import resolve_data
from common.perceptual import feeding_layer, hidden_layers
from common.training import Trainer, TrainingDiverged
from common.vgg import VGGWeightsUnavailable, _keras_name as vgg_layer_name, vgg_features
from esrgan.config import DISC_FEATURE_LAYERS
from esrgan.evaluate import image_niqe, mean_or_none
from esrgan.gan import ESRGAN, PSNRTrainer
from esrgan.losses import (GeneratorLoss, L1Loss, PerceptualLoss, RelativisticDiscriminatorLoss,
                           RelativisticGeneratorLoss, normalised_feature_loss, pixel_loss)
from esrgan.models import discriminator, rrdb_generator
from srgan.models import srresnet

EAGER_STEPS = 10  # runs this short execute eagerly: tracing a GAN step costs about as much as 10 steps


@dataclass(frozen=True)
class Column:
    """One configuration of the study: which generator, where the VGG features are taken, which GAN."""

    number: int
    key: str
    label: str  # what changed against the previous column
    generator: str  # "srresnet" or "rrdb"
    batch_norm: bool
    before_activation: bool
    gan: str  # "standard" or "relativistic"

    @property
    def generator_key(self) -> tuple:
        """Columns with equal keys share one pre-trained generator."""
        return (self.generator, self.batch_norm)

    def settings(self, perceptual: str = "vgg-imagenet") -> str:
        generator = "RRDB" if self.generator == "rrdb" else "SRResNet" + (" + BN" if self.batch_norm else ", no BN")
        where = "before" if self.before_activation else "after"
        features = f"D features {where} activation" if perceptual == "disc-features" else f"VGG {where} ReLU"
        gan = "RaGAN" if self.gan == "relativistic" else "standard GAN"
        return f"{generator}; {features}; {gan}"


COLUMNS = (
    Column(1, "srgan", "SRGAN baseline", "srresnet", True, False, "standard"),
    Column(2, "no_bn", "BN removed", "srresnet", False, False, "standard"),
    Column(3, "before_act", "features before activation", "srresnet", False, True, "standard"),
    Column(4, "ragan", "RaGAN", "srresnet", False, True, "relativistic"),
    Column(5, "rrdb", "RRDB generator (= ESRGAN)", "rrdb", False, True, "relativistic"),
)
BN_COLUMN, NO_BN_COLUMN = 1, 2  # compared in the histograms (thesis Fig. 10a)


PERCEPTUAL = ("vgg-imagenet", "disc-features")


@dataclass(frozen=True)
class AblationConfig:
    scale: int = setting(4, "upscaling factor (the rrdb column: 2, 4 or 8)", choices=(2, 3, 4, 8))
    num_filters: int = setting(32, "filters of every generator's trunk", minimum=1)
    num_blocks: int = setting(8, "residual blocks (SRResNet) or RRDBs of every generator", minimum=1)
    growth: int = setting(0, "RRDB growth channels; 0 = num_filters // 2 (the paper's 32 for 64 filters)",
                         minimum=0)
    disc_filters: int = setting(32, "filters of the discriminator's first convolution", minimum=1)
    hr_patch: int = setting(64, "HR crop size, a multiple of 32 (the discriminator)", unit="px", minimum=32)
    batch_size: int = setting(8, "crops per update", minimum=1)
    pretrain_steps: int = setting(500, "L1 pre-training updates of each generator", unit="steps", minimum=0)
    steps: int = setting(200, "GAN updates of each column", unit="steps", minimum=0)
    pretrain_lr: float = setting(5e-4, "Adam learning rate of the L1 pre-training", minimum=0)
    lr: float = setting(1e-4, "Adam learning rate of the GAN training (both networks)", minimum=0)
    perceptual_weight: float = setting(1.0, "weight of L_percep", minimum=0)
    gan_weight: float = setting(5e-3, "weight of L_adv", minimum=0)
    l1_weight: float = setting(1e-2, "weight of the L1 pixel loss", minimum=0)
    perceptual_layer: str = setting("conv5_4", "VGG19 layer of L_percep (the papers' VGG54)")
    perceptual: str = setting("vgg-imagenet", "feature network of L_percep: vgg-imagenet (VGG19 at "
                              "--perceptual-layer with --vgg-weights, the papers') or disc-features (feature "
                              "matching on the discriminator's --disc-layers, L1 normalised per layer: the "
                              "offline substitute the GAN stages use)", choices=PERCEPTUAL)
    disc_layers: tuple[str, ...] = setting(("lrelu0_1", "lrelu1_1", "lrelu2_1", "lrelu3_1", "lrelu4_1"),
                                           "discriminator activations of disc-features; the columns with "
                                           "features before the activation take the layer feeding each")
    lowpass_weight: float = setting(0.0, "weight of |pool(SR) - pool(HR)| over scale x scale blocks, a "
                                    "colour anchor (0: the paper's loss)", minimum=0)
    train_data: tuple[str, ...] = setting(("T91",), "training folders under ../shared/data, or paths")
    data: str = setting("Set5", "evaluation folder under ../shared/data, or a path")
    degradation: str = setting("bicubic", DEGRADATION_HELP, choices=DEGRADATIONS)
    degradation_options: tuple[str, ...] = setting((), OPTIONS_HELP, nargs="*")
    seed: int = setting(0, "random seed of the weights and the data order", minimum=0,
                        maximum=2**32 - 2)
    log_every: int = setting(50, "updates between the Trainer's loss logs (in memory; the progress bar shows "
                             "every update)", unit="steps", minimum=1)
    crop_image: str = setting("butterfly", "image of --data shown in crops.png (else the first one)")
    crop_size: int = setting(96, "side of the crop in crops.png", unit="HR px", minimum=1)
    hist_sigma: float = setting(2.0, "Gaussian smoothing of the histograms", unit="grey levels", minimum=0)

    def __post_init__(self):
        """Every setting is checked here (types, bounds, combinations): SettingError names the flag."""
        check_settings(self)
        if self.hr_patch % 32 or self.hr_patch % self.scale:
            raise SettingError("hr_patch",
                               f"must be a multiple of 32 and of the scale {self.scale}, not {self.hr_patch}")
        if self.perceptual == "disc-features" and not self.disc_layers:
            raise SettingError("disc_layers", "disc-features needs at least one layer name")
        unknown = [n for n in self.disc_layers if n not in DISC_FEATURE_LAYERS["disc-features"]]
        if self.perceptual == "disc-features" and unknown:
            raise SettingError("disc_layers", f"the discriminator has no layer {unknown[0]!r} "
                               f"(its layers: {', '.join(DISC_FEATURE_LAYERS['disc-features'])})")
        try:
            vgg_layer_name(self.perceptual_layer)
        except ValueError:
            raise SettingError("perceptual_layer", f"must be a VGG19 convolution (conv1_1 ... conv5_4), "
                               f"not {self.perceptual_layer!r}") from None

    @property
    def rrdb_growth(self) -> int:
        return self.growth or max(1, self.num_filters // 2)


def select_columns(names=None) -> list[Column]:
    """Columns by number or key (all five by default), in the study's order."""
    if not names:
        return list(COLUMNS)
    wanted = set()
    for name in names:
        found = [c for c in COLUMNS if str(name) in (str(c.number), c.key)]
        if not found:
            raise ValueError(f"unknown column {name!r}; choose from "
                             + ", ".join(f"{c.number} ({c.key})" for c in COLUMNS))
        wanted.add(found[0].number)
    return [c for c in COLUMNS if c.number in wanted]


# --- networks and losses (the chapters' builders) ----------------------------------------------


def build_generator(column: Column, config: AblationConfig) -> keras.Model:
    """The column's generator, mapping LR [0, 1] to SR [0, 1]."""
    if column.generator == "rrdb":
        return rrdb_generator(scale=config.scale, num_filters=config.num_filters, num_blocks=config.num_blocks,
                              growth=config.rrdb_growth)
    net = srresnet(scale=config.scale, num_filters=config.num_filters, num_blocks=config.num_blocks,
                   batch_norm=column.batch_norm)
    out = Rescale(0.5, 0.5, name="to_unit_range")(net.outputs[0])  # [-1, 1] -> [0, 1]
    return keras.Model(net.input, out, name="srresnet_bn" if column.batch_norm else "srresnet")


def generator_facts(generator: keras.Model) -> dict:
    """What a built generator is made of (checked by the tests, shown in the JSON)."""
    layers = generator.layers
    return {
        "name": generator.name,
        "parameters": int(generator.count_params()),
        "bn_layers": sum(isinstance(layer, keras.layers.BatchNormalization) for layer in layers),
        "rrdb_blocks": sum(layer.name.startswith("RRDB_trunk_") and layer.name.endswith("_out")
                           and "_RDB" not in layer.name for layer in layers),
        "residual_blocks": sum(layer.name.startswith("block") and layer.name.endswith("_add") for layer in layers),
    }


class StandardGeneratorLoss:
    """The standard GAN's generator term in the (real, fake) logits form of esrgan.losses."""

    def __init__(self, weight: float):
        self.loss = AdversarialLoss(weight)

    def __call__(self, real_logits, fake_logits):
        return self.loss(fake_logits)


def perceptual_loss(column: Column, config: AblationConfig, vgg_weights, disc: keras.Model):
    """(L_percep, its feature network): VGG19 at one layer, or the discriminator's hidden layers, each
    taken after or (column.before_activation) before its activation."""
    if config.perceptual == "disc-features":
        names = [feeding_layer(disc, n) if column.before_activation else n for n in config.disc_layers]
        network = hidden_layers(disc, names)
        return normalised_feature_loss(network, config.perceptual_weight), network
    network = vgg_features((config.perceptual_layer,), before_activation=column.before_activation,
                           weights=vgg_weights)
    return PerceptualLoss(network, config.perceptual_weight), network


def make_losses(column: Column, config: AblationConfig, vgg_weights, disc: keras.Model):
    """(GeneratorLoss, discriminator loss, feature network) of a column's GAN stage against `disc`."""
    percep, features = perceptual_loss(column, config, vgg_weights, disc)
    if column.gan == "relativistic":
        adversarial, d_loss = RelativisticGeneratorLoss(config.gan_weight), RelativisticDiscriminatorLoss()
    else:
        adversarial, d_loss = StandardGeneratorLoss(config.gan_weight), DiscriminatorLoss()
    pixel = pixel_loss(config.scale, config.l1_weight, config.lowpass_weight)
    return GeneratorLoss(percep, adversarial, pixel), d_loss, features


def _feature_layer(features: keras.Model) -> str:
    """The Keras layers the feature network's outputs come from (e.g. blockI_convJ or blockI_convJ_relu)."""
    return ", ".join(t._keras_history.operation.name for t in features.outputs)


# --- training --------------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _dataset(config: AblationConfig, train_dirs, start_step: int):
    return train_dataset(train_dirs, config.scale, hr_patch=config.hr_patch, batch_size=config.batch_size,
                         degradation=config.degradation, degradation_options=config.degradation_options,
                         seed=config.seed, start_step=start_step)


def _train(step, config: AblationConfig, train_dirs, first_step: int, steps: int, what: str) -> dict:
    """`steps` updates of a step object (common.training.TrainStep) on the seeded data stream from
    `first_step`, in memory (no checkpoints: a column is short and retrained from its seed);
    returns the last update's figures. Raises TrainingDiverged on NaN/Inf."""
    trainer = Trainer(None, step, lambda start, ctx: _dataset(config, train_dirs, first_step + start),
                      total_steps=steps, log_every=max(config.log_every, 1), description=what,
                      run_eagerly=steps <= EAGER_STEPS)
    return trainer.fit()["last"]


def pretrain(column: Column, config: AblationConfig, train_dirs) -> tuple[keras.Model, dict]:
    """L1 pre-training of the column's generator from the seed; returns (generator, last figures)."""
    keras.utils.set_random_seed(config.seed)
    generator = build_generator(column, config)
    last = {}
    if config.pretrain_steps:
        model = PSNRTrainer(generator, L1Loss(1.0))
        model.compile(keras.optimizers.Adam(config.pretrain_lr, beta_1=0.9, beta_2=0.999))
        last = _train(model, config, train_dirs, 0, config.pretrain_steps, "pretrain")
    return generator, last


def train_column(column: Column, config: AblationConfig, train_dirs, weights, vgg_weights):
    """The GAN stage of one column from pre-trained generator `weights`; returns (generator, info)."""
    keras.utils.set_random_seed(config.seed + 1)  # the same VGG (if random) and discriminator in every column
    on_disc = config.perceptual == "disc-features"
    losses = None if on_disc else make_losses(column, config, vgg_weights, None)  # a random VGG is drawn first
    disc = discriminator(patch=config.hr_patch, num_filters=config.disc_filters)
    g_loss, d_loss, features = losses or make_losses(column, config, vgg_weights, disc)
    generator = build_generator(column, config)
    for var, value in zip(generator.weights, weights, strict=True):
        var.assign(value)
    last = {}
    if config.steps:
        model = ESRGAN(generator, disc, g_loss, d_loss)
        model.compile(keras.optimizers.Adam(config.lr, beta_1=0.9, beta_2=0.999),
                      keras.optimizers.Adam(config.lr, beta_1=0.9, beta_2=0.999))
        last = _train(model, config, train_dirs, config.pretrain_steps, config.steps, "gan")
    info = {"feature_layer": _feature_layer(features), "gan_loss": type(g_loss.adversarial).__name__,
            "discriminator_loss": type(d_loss).__name__, "last_gan": last}
    return generator, info


# --- evaluation ------------------------------------------------------------------------------------


def grey_levels(image: np.ndarray) -> np.ndarray:
    """8-bit grey levels (BT.601 luma of the 8-bit RGB image, rounded) as a flat int array."""
    rgb = to_uint8(image).astype(np.float64)
    return np.floor(rgb @ np.array([0.299, 0.587, 0.114]) + 0.5).astype(np.int64).ravel()


def brightness_histogram(counts: np.ndarray, sigma: float) -> np.ndarray:
    """Counts of the 256 grey levels -> normalised (sum 1) and Gaussian-smoothed histogram."""
    from scipy.ndimage import gaussian_filter1d

    h = np.asarray(counts, np.float64)
    h = h / max(h.sum(), 1.0)
    if sigma > 0:
        h = gaussian_filter1d(h, sigma, mode="constant")
        h = h / max(h.sum(), 1e-300)
    return h


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """L1 distance of two normalised histograms: 0 (equal) to 2 (disjoint)."""
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).sum())


def _crop_window(hr: np.ndarray, size: int) -> tuple[int, int, int]:
    """(y, x, size) of the most textured square (largest grey-level variance on a coarse grid)."""
    h, w = hr.shape[:2]
    size = min(size, h, w)
    grey = hr.mean(axis=2)
    best, where = -1.0, (0, 0)
    step = max(size // 4, 1)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            v = float(grey[y : y + size, x : x + size].var())
            if v > best:
                best, where = v, (y, x)
    return where[0], where[1], size


class _Evaluation:
    """Runs upscale functions over --data with common.evaluate, keeping what the figures need."""

    def __init__(self, config: AblationConfig, data_dir: Path):
        self.config, self.data_dir = config, data_dir
        pairs = list(eval_pairs(data_dir, config.scale, config.degradation))
        if not pairs:
            raise ImageError(f"{data_dir}: no images found")
        names = [name for name, _, _ in pairs]
        self.crop_name = config.crop_image if config.crop_image in names else names[0]
        self.crop_index = names.index(self.crop_name)
        self.hr = pairs[self.crop_index][1]
        self.crop = _crop_window(self.hr, config.crop_size)
        self.hr_counts = sum(np.bincount(grey_levels(self._inner(hr)), minlength=256) for _, hr, _ in pairs)
        self.crops, self.counts = {}, {}

    def _inner(self, image):
        b = self.config.scale  # the metrics' border crop
        return image[b:-b, b:-b] if min(image.shape[:2]) > 2 * b else image

    def run(self, key, upscale_fn, name: str, keep_counts: bool = False) -> dict:
        """common.evaluate's result for `upscale_fn`, with NIQE per image and its mean."""
        scale = self.config.scale
        niqe_scores, outputs = [], []
        counts = np.zeros(256, np.int64)

        def fn(lr):
            sr = upscale_fn(lr)
            niqe_scores.append(image_niqe(sr, scale))
            if keep_counts:
                counts[:] += np.bincount(grey_levels(self._inner(sr)), minlength=256)
            outputs.append(sr if len(outputs) == self.crop_index else None)
            return sr

        result = evaluate_model(fn, self.data_dir, scale, self.config.degradation, name=name)
        for row, score in zip(result["per_image"], niqe_scores, strict=True):
            row["niqe"] = score
        result["niqe"] = mean_or_none(niqe_scores)
        self.crops[key] = outputs[self.crop_index]
        if keep_counts:
            self.counts[key] = counts
        return result


# --- figures and tables ----------------------------------------------------------------------------


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _pyplot():
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_crops(evaluation: _Evaluation, rows: list, path: Path) -> Path:
    """HR | each column's output, the same square of one image (thesis Fig. 9)."""
    plt = _pyplot()
    y, x, size = evaluation.crop
    window = (slice(y, y + size), slice(x, x + size))
    panels = [(f"HR\n{evaluation.crop_name} x{evaluation.config.scale}", evaluation.hr)]
    for row in rows:
        score = next(r for r in row["per_image"] if r["name"] == evaluation.crop_name)
        panels.append((f"({row['number']}) {row['label']}\n{score['psnr']:.2f} dB", evaluation.crops[row["key"]]))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), dpi=110, squeeze=False)
    for ax, (title, image) in zip(axes[0], panels):
        ax.imshow(np.clip(image[window], 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    _save_figure(fig, path)
    return path


def histogram_study(evaluation: _Evaluation, sigma: float) -> dict | None:
    """Brightness histograms of the BN and no-BN columns against HR, and their L1 distances."""
    keys = {n: next((c.key for c in COLUMNS if c.number == n), None) for n in (BN_COLUMN, NO_BN_COLUMN)}
    if any(keys[n] not in evaluation.counts for n in keys):
        return None
    hr = brightness_histogram(evaluation.hr_counts, sigma)
    bn = brightness_histogram(evaluation.counts[keys[BN_COLUMN]], sigma)
    no_bn = brightness_histogram(evaluation.counts[keys[NO_BN_COLUMN]], sigma)
    return {
        "dataset": evaluation.data_dir.name,
        "bins": 256,
        "sigma": float(sigma),
        "distance": "L1 between normalised, Gaussian-smoothed 256-level grey histograms (0 = equal, 2 = disjoint)",
        "hr_vs_hr": histogram_distance(hr, hr),
        "bn_vs_hr": histogram_distance(bn, hr),
        "no_bn_vs_hr": histogram_distance(no_bn, hr),
        "curves": {"hr": hr.tolist(), "bn": bn.tolist(), "no_bn": no_bn.tolist()},
    }


def plot_histograms(study: dict, path: Path) -> Path:
    """Thesis Fig. 10a: the BN column's brightness histogram drifts from HR's more than no-BN's."""
    plt = _pyplot()
    levels = np.arange(study["bins"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    curves = study["curves"]
    ax.plot(levels, curves["hr"], color="black", lw=2, label="HR")
    ax.plot(levels, curves["bn"], color="tab:red", label=f"(1) with BN  (L1 {study['bn_vs_hr']:.3f})")
    ax.plot(levels, curves["no_bn"], color="tab:blue", label=f"(2) no BN  (L1 {study['no_bn_vs_hr']:.3f})")
    ax.set_xlabel("brightness (8-bit grey level)")
    ax.set_ylabel("fraction of pixels")
    ax.set_title(f"Brightness histograms on {study['dataset']} (Gaussian sigma {study['sigma']:g})")
    ax.set_xlim(0, 255)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    return path


def _fmt(value, digits):
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_markdown(result: dict) -> str:
    config = result["config"]
    lines = [f"# ESRGAN component study: x{config['scale']}, {result['dataset']}", ""]
    if not result["faithful"]:
        warning = ("**Random VGG19 features (not faithful):** the ImageNet VGG19 weights were not used, so the "
                   "perceptual loss compares features of an untrained network. The numbers show the mechanics "
                   "of the study, not the paper's effect.")
        lines += [warning, ""]
    if config.get("perceptual") == "disc-features":
        lines += [("**Perceptual loss: feature matching on the discriminator** (the offline substitute for ImageNet "
                   "VGG19): columns 1-2 compare its activations " + ", ".join(config["disc_layers"]) + "; "
                   "columns 3-5 the layers feeding them (before the activation)."), ""]
    lines += ["| # | change | settings | parameters | PSNR (dB) | SSIM | NIQE | PSNR after L1 pre-training |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for row in result["columns"]:
        lines.append(f"| {row['number']} | {row['label']} | {row['settings']} | {row['parameters']:,} | "
                     f"{_fmt(row['psnr'], 2)} | {_fmt(row['ssim'], 4)} | {_fmt(row['niqe'], 3)} | "
                     f"{_fmt(row['pretrained_psnr'], 2)} |")
    ref = result.get("reference") or {}
    if "bicubic" in ref:
        b = ref["bicubic"]
        lines.append(f"| - | bicubic (reference) | | | {_fmt(b['psnr'], 2)} | {_fmt(b['ssim'], 4)} | "
                     f"{_fmt(b['niqe'], 3)} | |")
    c = config
    percep = ("discriminator features, L1 normalised per layer" if c.get("perceptual") == "disc-features"
              else f"VGG19 {c['perceptual_layer']}, L1")
    lowpass = f" + {c['lowpass_weight']:g} low-pass L1" if c.get("lowpass_weight") else ""
    budget = (f"Each column: {c['pretrain_steps']} L1 pre-training steps (lr {c['pretrain_lr']:g}), then "
              f"{c['steps']} GAN steps (lr {c['lr']:g}); L_G = {c['perceptual_weight']:g} L_percep "
              f"({percep}) + {c['gan_weight']:g} L_adv + {c['l1_weight']:g} L1{lowpass}. "
              f"{c['num_blocks']} blocks x {c['num_filters']} filters (RRDB growth {c['rrdb_growth']}); "
              f"batch {c['batch_size']} of {c['hr_patch']}-px HR crops from {'+'.join(c['train_data'])}; "
              f"seed {c['seed']}" + ("." if c.get("perceptual") == "disc-features"
                                     else f"; VGG19 weights: {result['vgg_weights']}."))
    protocol = ("PSNR/SSIM on Y (BT.601) with a border of the scale cropped; NIQE lower is better "
                "(n/a: image too small).")
    lines += ["", budget, protocol]
    study = result.get("histograms")
    if study:
        lines += ["", (f"Brightness histograms (thesis Fig. 10a, `histograms.png`): L1 distance to HR "
                       f"{study['bn_vs_hr']:.4f} with BN (1), {study['no_bn_vs_hr']:.4f} without (2).")]
    return "\n".join(lines) + "\n"


# --- the study -------------------------------------------------------------------------------------


def _vgg_label(vgg_weights, config: AblationConfig) -> str:
    if config.perceptual != "vgg-imagenet":
        return "not used"
    return "random (untrained)" if vgg_weights is None else str(vgg_weights)


def check_vgg_weights(vgg_weights, layer: str = "conv5_4") -> None:
    """Raise VGGWeightsUnavailable now (before any training) if the VGG19 weights cannot be loaded,
    ValueError if `layer` is not a VGG19 convolution."""
    vgg_features((layer,), weights=vgg_weights)


def run_ablation(config: AblationConfig = AblationConfig(), out="runs/ablation", columns=None,
                 vgg_weights="imagenet") -> dict:
    """Train and evaluate the chosen columns; write ablation.json/.md, crops.png, histograms.png.

    `vgg_weights`: "imagenet" (Keras' cache; VGGWeightsUnavailable offline), a VGG19 weights file,
    or None (random features, not faithful). Returns the JSON's content.
    """
    chosen = select_columns(columns)
    if config.perceptual == "vgg-imagenet":
        check_vgg_weights(vgg_weights, config.perceptual_layer)
    train_dirs = [resolve_data(d) for d in config.train_data]
    data_dir = resolve_data(config.data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    evaluation = _Evaluation(config, data_dir)
    meta = {"scale": config.scale, "upsampling": "post", "color": "rgb", "input_range": [0, 1],
            "output_range": [0, 1]}

    pretrained, rows = {}, []
    for column in chosen:
        _log(f"[{column.number}/{len(COLUMNS)}] {column.key}: {column.settings(config.perceptual)}")
        start = time.monotonic()
        if column.generator_key not in pretrained:
            generator, pre_last = pretrain(column, config, train_dirs)
            scored = evaluate_model(lambda lr, g=generator: upscale(lr, g, meta), data_dir, config.scale,
                                    config.degradation, name=f"{column.key}-pretrained")
            weights = [w.numpy() for w in generator.weights]
            pretrained[column.generator_key] = (weights, pre_last, scored["psnr"], scored["ssim"])
            _log(f"  after pre-training: {data_dir.name} PSNR {scored['psnr']:.3f} dB, SSIM {scored['ssim']:.4f}")
        else:
            _log(f"  pretrain: shared with an earlier column ({column.generator_key})")
        weights, pre_last, pre_psnr, pre_ssim = pretrained[column.generator_key]
        generator, info = train_column(column, config, train_dirs, weights, vgg_weights)
        seconds = time.monotonic() - start
        result = evaluation.run(column.key, lambda lr, g=generator: upscale(lr, g, meta), column.key,
                                keep_counts=column.number in (BN_COLUMN, NO_BN_COLUMN))
        row = {"number": column.number, "key": column.key, "label": column.label, "settings": column.settings(config.perceptual),
               "generator": column.generator, "batch_norm": column.batch_norm,
               "before_activation": column.before_activation, "gan": column.gan,
               **generator_facts(generator), **info, "last_pretrain": pre_last,
               "pretrained_psnr": pre_psnr, "pretrained_ssim": pre_ssim, "train_seconds": round(seconds, 1),
               "psnr": result["psnr"], "ssim": result["ssim"], "niqe": result["niqe"],
               "per_image": result["per_image"]}
        rows.append(row)
        _log(f"  {data_dir.name}: PSNR {row['psnr']:.3f} dB, SSIM {row['ssim']:.4f}, NIQE {_fmt(row['niqe'], 3)}")
        del generator
        keras.backend.clear_session()

    bicubic = evaluation.run("bicubic", bicubic_upscaler(config.scale), "bicubic")
    study = histogram_study(evaluation, config.hist_sigma)
    result = {
        "study": "ESRGAN component ablation (Wang et al. 2018 Fig. 7; thesis Fig. 9)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dataset": data_dir.name,
        "scale": config.scale,
        "degradation": config.degradation,
        "vgg_weights": _vgg_label(vgg_weights, config),
        "faithful": vgg_weights is not None or config.perceptual != "vgg-imagenet",
        "config": {**asdict(config), "train_data": list(config.train_data), "rrdb_growth": config.rrdb_growth},
        "columns": rows,
        "reference": {"bicubic": {k: bicubic[k] for k in ("psnr", "ssim", "niqe")}},
        "crop": {"image": evaluation.crop_name, "y": evaluation.crop[0], "x": evaluation.crop[1],
                 "size": evaluation.crop[2]},
        "histograms": study,
    }
    plot_crops(evaluation, rows, out / "crops.png")
    if study is not None:
        plot_histograms(study, out / "histograms.png")
    else:
        _log("histograms.png skipped: it needs columns 1 (BN) and 2 (no BN)")
    write_json(out / "ablation.json", result)
    atomic_write_bytes(out / "ablation.md", format_markdown(result).encode())
    _log(f"wrote {out / 'ablation.json'}, ablation.md, crops.png" + (", histograms.png" if study else ""))
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="python -m esrgan.ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="output folder (default runs/ablation)")
    parser.add_argument("--vgg-weights", default="imagenet",
                        help="VGG19 weights of the perceptual loss: 'imagenet' (Keras' cache), a file "
                        "(vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5), or 'random' (not faithful)")
    parser.add_argument("--columns", nargs="+", metavar="COLUMN",
                        help="numbers or names of the columns to run (default all: "
                        + " ".join(f"{c.number}={c.key}" for c in COLUMNS) + ")")
    add_config_arguments(parser, AblationConfig)
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def check_args(args, config: AblationConfig) -> None:
    """SettingError for a setting the study cannot use, before anything is built: the columns, the
    scale of the rrdb column, the data folders and degradation options, --out, --vgg-weights."""
    from common.chapter import check_data_settings

    try:
        chosen = select_columns(args.columns)
    except ValueError as exc:
        raise SettingError("--columns", str(exc)) from None
    if config.scale == 3 and any(c.generator == "rrdb" for c in chosen):
        raise SettingError("scale", "the rrdb column (5) upscales by 2, 4 or 8, not 3: choose another scale or "
                           "leave column 5 out (--columns)")
    check_data_settings(config, fields=("train_data", "data"))
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise SettingError("--out", f"{args.out} is a file, not a folder")
    if config.perceptual == "vgg-imagenet" and args.vgg_weights not in ("imagenet", "random") \
            and not Path(args.vgg_weights).is_file():
        raise SettingError("--vgg-weights", f"{args.vgg_weights}: no such file ('imagenet', 'random' or a file)")


def main(argv=None) -> int:
    args = parse_args(argv)
    vgg_weights = None if args.vgg_weights == "random" else args.vgg_weights
    try:
        config = config_from_args(args, AblationConfig, AblationConfig())
        check_args(args, config)
    except ValueError as exc:  # SettingError: "--flag: reason"
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_ablation(config, args.out, args.columns, vgg_weights)
    except (VGGWeightsUnavailable, ImageError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"error: training diverged: {exc}", file=sys.stderr)
        return 1
    print(format_markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
