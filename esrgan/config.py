"""ESRGAN hyperparameters (Wang et al., 2018, section 4.1) for its two training stages, x4.

Stage "psnr" trains the RRDB generator alone with L1 (Adam, lr 2e-4 halved every 2*10^5 updates);
stage "gan" starts from those weights and trains against the relativistic discriminator with
L_G = L_percep + 5e-3 * L_G^Ra + 1e-2 * L1 (lr 1e-4 halved at 50k, 100k, 200k and 300k updates).
Batch 16 of 128x128 HR crops, random flips and 90-degree rotations. The paper trained on DIV2K +
Flickr2K + OST; the defaults here train on T91 + BSD200 from ../shared/data. Step counts and
milestones follow the official training options (PSNR: 10^6 updates; GAN: 4*10^5).
"""
from dataclasses import dataclass, replace

from common.config_cli import SettingError, setting
from common.degradations import DEGRADATION_HELP, DEGRADATIONS, OPTIONS_HELP
from common.gan_settings import GANStageSettings

STAGES = ("psnr", "gan")
# --arch -> the architecture name of common.registry (the checkpoint JSON's "architecture")
ARCHITECTURES = {"rrdb": "rrdb_generator", "srresnet": "srresnet", "srvgg-compact": "srvgg_compact"}
# the scales each --arch builds (esrgan.models.rrdb_generator, srgan.models.srresnet, srvgg_compact)
ARCH_SCALES = {"rrdb": (1, 2, 4, 8), "srresnet": (2, 3, 4, 8), "srvgg-compact": None}
MAX_SEED = 2**32 - 1
# the layers --feature-layers may name, before the discriminators' dense head: ESRGAN's own
# (esrgan.models.discriminator) and krasserm's SRGAN one (srgan.models.discriminator)
DISC_FEATURE_LAYERS = {
    "disc-features": ("conv0_0", "lrelu0_0", "conv0_1", "bn0_1", "lrelu0_1")
    + tuple(f"{kind}{stage}_{j}" for stage in range(1, 5) for j in (0, 1) for kind in ("conv", "bn", "lrelu")),
    "pretrained-disc": ("conv0", "lrelu0")
    + tuple(f"{kind}{i}" for i in range(1, 8) for kind in ("conv", "bn", "lrelu")),
}


@dataclass(frozen=True)
class ESRGANConfig(GANStageSettings):
    """The guard's fields (max_psnr_drop, max_colour_shift, d_saturation) come from the base."""

    stage: str = setting("psnr", "'psnr' (generator alone, L1) or 'gan' (against the relativistic discriminator)",
                         choices=STAGES)
    # generator (RRDBNet, or SRVGGNetCompact) and discriminator (VGG-style, 128x128 input)
    arch: str = setting("rrdb", "the generator: 'rrdb' (ESRGAN's RRDBNet: --num-filters, --num-blocks, --growth, "
                        "--res-scale), 'srresnet' (SRGAN's SRResNet with batch norm, here trained to output "
                        "[0, 1]: --num-filters, --num-blocks; the paper's has 16 blocks) or 'srvgg-compact' "
                        "(Real-ESRGAN's SRVGGNetCompact, conv + PReLU at LR resolution, for CPUs: --num-filters, "
                        "--num-convs)", choices=tuple(ARCHITECTURES))
    scale: int = setting(4, "upscaling factor", minimum=1)
    num_filters: int = setting(64, "filters of the generator's trunk (srvgg-compact: of each conv)", minimum=1)
    num_blocks: int = setting(23, "rrdb: RRDB blocks of the generator; srresnet: its residual blocks",
                                 minimum=1)
    growth: int = setting(32, "rrdb: growth channels of each dense block", minimum=1)
    res_scale: float = setting(0.2, "rrdb: residual scaling inside the RRDBs")
    num_convs: int = setting(16, "srvgg-compact: 3x3 conv + PReLU layers between the first and the last conv",
                                minimum=0)
    disc_filters: int = setting(64, "filters of the discriminator's first convolution (doubled per stage)",
                                minimum=1)
    # data: random HR crops (flipped, rotated), LR made by the degradation on the fly
    train_data: tuple[str, ...] = setting(("T91", "BSD200"), "training folders under ../shared/data, or paths")
    degradation: str = setting("bicubic", DEGRADATION_HELP, choices=DEGRADATIONS)
    degradation_options: tuple[str, ...] = setting((), OPTIONS_HELP, nargs="*")
    sharpen_hr: float = setting(0.0, "unsharp-mask weight for the HR crops before they are degraded and "
                                "learnt (Real-ESRGAN's USM targets use 0.5; 0: off)", minimum=0)
    hr_patch: int = setting(128, "HR crop size (a multiple of the scale; of 32 in the gan stage)", unit="px", minimum=1)
    batch_size: int = setting(16, "crops per update", minimum=1)
    # optimisation: Adam for both networks; lr *= lr_decay_factor after each milestone (updates)
    lr: float = setting(2e-4, "Adam learning rate of both networks", minimum=0)
    beta_1: float = setting(0.9, "Adam beta_1", minimum=0, below=1)
    beta_2: float = setting(0.999, "Adam beta_2", minimum=0, below=1)
    lr_milestones: tuple[int, ...] = setting((200_000, 400_000, 600_000, 800_000), "lr *= --lr-decay-factor after "
                                             "each of these updates (none given: constant)", unit="updates", nargs="*",
                                             minimum=1)
    lr_decay_factor: float = setting(0.5, "learning-rate factor at each milestone", minimum=0)
    steps: int = setting(1_000_000, "updates in all (a resumed run goes on to this many)", unit="steps", minimum=1)
    # GAN stage: L_G = perceptual_weight * L_percep + gan_weight * L_G^Ra + l1_weight * L1
    perceptual_weight: float = setting(1.0, "gan stage: weight of the perceptual loss L_percep", minimum=0)
    perceptual: str = setting(
        "vgg-imagenet", "feature network of L_percep: 'vgg-imagenet' (the paper; --vgg-weights), or an offline "
        "substitute: 'vgg-random' (He-normal VGG19), 'disc-features' (the GAN's own discriminator), "
        "'pretrained-disc' (krasserm's published SRGAN discriminator, frozen); substitutes use per-layer "
        "normalised L1")
    gan_weight: float = setting(5e-3, "gan stage: weight of the relativistic adversarial loss L_G^Ra",
                               minimum=0)
    l1_weight: float = setting(1e-2, "gan stage: weight of the L1 pixel loss", minimum=0)
    lowpass_weight: float = setting(0.0, "gan stage: weight of an L1 term between SR and HR averaged over "
                                    "scale x scale blocks, a colour anchor for the offline feature networks "
                                    "(0 in the paper)", minimum=0)
    feature_layers: tuple[str, ...] = setting((), "gan stage, disc-features / pretrained-disc: the discriminator "
                                              "layers L_percep compares (none given: one per resolution, "
                                              "esrgan.train.DISC_LAYERS)", nargs="*")
    d_warmup: int = setting(0, "gan stage: the first updates train the discriminator alone (the generator's "
                            "learning rate is 0 and its Adam moments warm up), so a new discriminator is "
                            "informative before it steers the generator", unit="updates", minimum=0)
    # bookkeeping
    val_data: str = setting("Set5", "validation folder under ../shared/data, or a path")
    val_samples: tuple[str, ...] = setting(("butterfly",), "validation images logged to TensorBoard (none given: "
                                           "the first)", nargs="*")
    validate_every: int = setting(5000, "steps between validations on --val-data (0: none)", unit="steps",
                                 minimum=0)
    checkpoint_every: int = setting(1000, "steps between checkpoints", unit="steps", minimum=1)
    log_every: int = setting(100, "steps between loss logs (history.jsonl, TensorBoard)", unit="steps",
                            minimum=1)
    seed: int = setting(0, "random seed of the first weights and the data order", minimum=0,
                        maximum=MAX_SEED)

    def __post_init__(self):
        """Every setting is checked here (types, bounds, combinations): SettingError names the flag."""
        self.check_gan_settings()  # types, bounds and choices of every field, then the GAN stage's rules
        scales = ARCH_SCALES[self.arch]
        if scales is not None and self.scale not in scales:
            raise SettingError("scale", f"--arch {self.arch} upscales by {', '.join(map(str, scales))}, "
                               f"not {self.scale}")
        if self.hr_patch % self.scale:
            raise SettingError("hr_patch", f"{self.hr_patch} is not a multiple of the scale {self.scale}")
        if self.stage == "gan" and self.hr_patch % 32:
            raise SettingError("hr_patch", f"the discriminator needs a multiple of 32, not {self.hr_patch}")
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise SettingError("lr_milestones",
                               f"must be increasing steps, not {' '.join(map(str, self.lr_milestones))}")
        known = DISC_FEATURE_LAYERS.get(self.perceptual)
        unknown = [name for name in self.feature_layers if known is not None and name not in known]
        if unknown:
            raise SettingError("feature_layers", f"the {self.perceptual} discriminator has no layer {unknown[0]!r} "
                               f"(its layers: {', '.join(known)})")
        self.check_guard_cadence()

    @property
    def architecture(self) -> str:
        """The generator's architecture name in common.registry (the checkpoint's "architecture")."""
        return ARCHITECTURES[self.arch]

    def generator_args(self) -> dict:
        """Keyword arguments of the --arch builder (esrgan.models.rrdb_generator, srvgg_compact or
        srgan.models.srresnet; also the checkpoint's "args")."""
        if self.arch == "srvgg-compact":
            return dict(scale=self.scale, num_filters=self.num_filters, num_convs=self.num_convs)
        if self.arch == "srresnet":
            return dict(scale=self.scale, num_filters=self.num_filters, num_blocks=self.num_blocks)
        return dict(scale=self.scale, num_filters=self.num_filters, num_blocks=self.num_blocks,
                    growth=self.growth, res_scale=self.res_scale)

    def discriminator_args(self) -> dict:
        return dict(patch=self.hr_patch, num_filters=self.disc_filters)


_PSNR = ESRGANConfig()
# a guarded gan-stage run validates at every checkpoint
_GAN = ESRGANConfig(stage="gan", lr=1e-4, steps=400_000, lr_milestones=(50_000, 100_000, 200_000, 300_000),
                    checkpoint_every=5000)

_CPU = replace(_PSNR, num_filters=32, num_blocks=6, growth=16, hr_patch=64, steps=10_000,
               lr_milestones=(5_000, 7_500), validate_every=1000, checkpoint_every=500, log_every=50)

PRESETS = {
    "psnr": _PSNR,  # RRDB_PSNR_x4
    "gan": _GAN,  # ESRGAN, --init from the psnr stage
    # A small PSNR-stage model that trains on the 2-core CPU: 6 RRDBs x 32 filters with growth 16 (the
    # paper's growth/filters ratio; 1.1M parameters instead of 16.7M), 64-px HR crops (16-px LR), batch
    # 16, 10k updates with the full rate for the first half (a short run gains most there), then halved
    # twice. About 2-2.5 s per update on the shared 2-core machine (load ~15); growth 32 costs 3.2 s.
    "cpu": _CPU,
    # The gan stage of the cpu preset on the 2-core CPU (the last phase of esrgan/weights/esrgan_x4.h5's
    # recipe, --init a cpu-preset PSNR model): the paper's loss weights with an offline perceptual
    # network and a colour anchor, batch 8 of 64-px crops; validated often, as NIQE swings between
    # checkpoints, and guarded with room for a strong start's PSNR to fall.
    "gan-cpu": replace(_GAN, num_filters=32, num_blocks=6, growth=16, hr_patch=64, batch_size=8,
                       perceptual="disc-features", perceptual_weight=0.3, lowpass_weight=4.0, steps=1000,
                       lr_milestones=(), validate_every=50, checkpoint_every=50, log_every=10, max_psnr_drop=4.5),
    # The cpu preset's data and schedule for Real-ESRGAN's SRVGGNetCompact at its published size (64
    # filters, 16 convs: realesr-animevideov3), the generator that upscales fastest on a CPU.
    "compact-cpu": replace(_CPU, arch="srvgg-compact", num_filters=64, num_convs=16),
    # Real-ESRNet on the 2-core CPU: the cpu preset's network fine-tuned (--init esrgan/weights/rrdb_x4.h5)
    # on Real-ESRGAN's second-order degradations with their published ranges; 128-px crops (32-px LR:
    # room for the 21-px blur kernels), batch 8; a quarter of the crops get the plain bicubic downscale
    # (clean inputs stay sharp); validated on Set5 with the published degradation (fixed seed).
    "realesrnet-cpu": replace(_CPU, degradation="realesrgan", degradation_options=("clean_prob=0.25",),
                              hr_patch=128, batch_size=8, lr=2e-4, steps=20_000,
                              lr_milestones=(10_000, 15_000), validate_every=250, checkpoint_every=250,
                              log_every=25),
    # A few seconds on a CPU: smoke tests of the whole pipeline, not a useful model.
    "tiny": ESRGANConfig(num_filters=8, num_blocks=1, growth=4, num_convs=2, disc_filters=8, hr_patch=32,
                         batch_size=2, steps=4, lr_milestones=(2,), validate_every=2, checkpoint_every=2, log_every=1),
}


def default_preset(stage: str) -> str:
    return "gan" if stage == "gan" else "psnr"


def with_overrides(config: ESRGANConfig, **overrides) -> ESRGANConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
