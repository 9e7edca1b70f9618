"""SRGAN hyperparameters (Ledig et al., 2017, section 3.2) and the paper's five variants.

Stage "pretrain" trains SRResNet alone with a content loss; stage "gan" trains SRResNet against
the discriminator, starting from a pretrained SRResNet. The paper trained on 350k ImageNet
images (SRResNet 10^6 updates; SRGAN 10^5 updates at 1e-4, then 10^5 at 1e-5); the defaults
here train on T91 + BSD200 from ../shared/data, so expect lower numbers than the paper's.
"""
from dataclasses import dataclass, replace

from common.config_cli import SettingError, setting
from common.degradations import DEGRADATION_HELP, DEGRADATIONS, OPTIONS_HELP
from common.gan_settings import GANStageSettings

STAGES = ("pretrain", "gan")
SCALES = (2, 3, 4, 8)  # srgan.models.srresnet's upsampling
MAX_SEED = 2**32 - 1
CONTENT_LOSSES = ("mse", "l1", "vgg22", "vgg54")


@dataclass(frozen=True)
class SRGANConfig(GANStageSettings):
    """The guard's fields (max_psnr_drop, max_colour_shift, d_saturation) come from the base."""

    stage: str = setting("pretrain", "'pretrain' (SRResNet alone) or 'gan' (against the discriminator)",
                         choices=STAGES)
    content_loss: str = setting("mse", "mse, l1, vgg22 or vgg54 (VGG19 features / 12.75)", choices=CONTENT_LOSSES)
    perceptual: str = setting(
        "vgg-imagenet", "feature network of vgg22/vgg54: 'vgg-imagenet' (the paper; --vgg-weights), or an offline "
        "substitute: 'vgg-random' (He-normal VGG19), 'disc-features' (the GAN's own discriminator), "
        "'pretrained-disc' (krasserm's published SRGAN discriminator, frozen); substitutes are normalised")
    content_weight: float = setting(1.0, "weight of the content loss (1 in the paper)", minimum=0)
    pixel_weight: float = setting(0.0, "weight of an extra L1 pixel term in the gan stage (0 in the paper)",
                                 minimum=0)
    lowpass_weight: float = setting(0.0, "gan stage: weight of an L1 term between SR and HR averaged over "
                                    "scale x scale blocks, a colour anchor for the offline feature networks "
                                    "(0 in the paper)", minimum=0)
    # generator (SRResNet) and discriminator
    scale: int = setting(4, "upscaling factor", choices=SCALES)
    num_filters: int = setting(64, "filters of the generator's convolutions", minimum=1)
    num_blocks: int = setting(16, "residual blocks of the generator", minimum=1)
    batch_norm: bool = setting(True, "batch normalisation in the generator's residual blocks")
    tanh_output: bool = setting(False, "tanh on the generator's last layer (krasserm's published SRResNet/SRGAN "
                                "have it)")
    disc_filters: int = setting(64, "filters of the discriminator's first convolution (doubled per stage)",
                                minimum=1)
    # data: random HR crops, LR made by the degradation on the fly
    train_data: tuple[str, ...] = setting(("T91", "BSD200"), "training folders under ../shared/data, or paths")
    degradation: str = setting("bicubic", DEGRADATION_HELP, choices=DEGRADATIONS)
    degradation_options: tuple[str, ...] = setting((), OPTIONS_HELP, nargs="*")
    hr_patch: int = setting(96, "HR crop size (a multiple of the scale; of 16 in the gan stage)", unit="px", minimum=1)
    batch_size: int = setting(16, "crops per generator update", minimum=1)
    # optimisation: Adam for both networks
    lr: float = setting(1e-4, "Adam learning rate of both networks", minimum=0)
    beta_1: float = setting(0.9, "Adam beta_1", minimum=0, below=1)
    beta_2: float = setting(0.999, "Adam beta_2", minimum=0, below=1)
    lr_decay_at: float | None = setting(None, "fraction of --steps after which lr *= --lr-decay-factor; "
                                        "none: constant", above=0, maximum=1)
    lr_decay_factor: float = setting(0.1, "learning-rate factor at --lr-decay-at", minimum=0)
    steps: int = setting(1_000_000, "generator updates in all (a resumed run goes on to this many)", unit="steps",
                         minimum=1)
    # GAN stage
    adversarial_weight: float = setting(1e-3, "weight of the adversarial loss (gan stage)", minimum=0)
    tv_weight: float = setting(0.0, "weight of the paper's optional total-variation term: 0 or 2e-8",
                              minimum=0)
    d_steps: int = setting(1, "k, discriminator updates per generator update (each on its own batch)",
                           minimum=1)
    disc_init: str = setting("random", "discriminator's first weights: 'random' or 'krasserm' (needs --hr-patch 96)",
                             choices=("random", "krasserm"))
    # bookkeeping
    val_data: str = setting("Set5", "validation folder under ../shared/data, or a path")
    val_samples: tuple[str, ...] = setting(("butterfly",), "validation images logged to TensorBoard (none given: "
                                           "the first)", nargs="*")
    validate_every: int = setting(2000, "steps between validations on --val-data (0: none)", unit="steps",
                                 minimum=0)
    checkpoint_every: int = setting(1000, "steps between checkpoints", unit="steps", minimum=1)
    log_every: int = setting(100, "steps between loss logs (history.jsonl, TensorBoard)", unit="steps",
                            minimum=1)
    seed: int = setting(0, "random seed of the first weights and the data order", minimum=0,
                        maximum=MAX_SEED)

    def __post_init__(self):
        """Every setting is checked here (types, bounds, combinations): SettingError names the flag."""
        self.check_gan_settings()  # types, bounds and choices of every field, then the GAN stage's rules
        if self.hr_patch % self.scale:
            raise SettingError("hr_patch", f"{self.hr_patch} is not a multiple of the scale {self.scale}")
        if self.stage == "gan" and self.hr_patch % 16:
            raise SettingError("hr_patch", f"the discriminator needs a multiple of 16, not {self.hr_patch}")
        if self.disc_init == "krasserm" and self.hr_patch != 96:
            raise SettingError("disc_init", f"krasserm's discriminator takes 96x96 crops: --hr-patch must be 96, "
                               f"not {self.hr_patch}")
        if self.perceptual in ("disc-features", "pretrained-disc") and self.content_loss.startswith("vgg") \
                and self.stage != "gan":
            raise SettingError("perceptual", f"{self.perceptual} (a discriminator feature loss) needs --stage gan")
        self.check_guard_cadence()

    def generator_args(self) -> dict:
        """Keyword arguments of srgan.models.srresnet (also the checkpoint's "args")."""
        args = dict(scale=self.scale, num_filters=self.num_filters, num_blocks=self.num_blocks,
                    batch_norm=self.batch_norm)
        return {**args, "output_activation": "tanh"} if self.tanh_output else args

    def discriminator_args(self) -> dict:
        return dict(patch=self.hr_patch, num_filters=self.disc_filters)

    @property
    def lr_boundary(self) -> int | None:
        """Generator step at which the learning rate drops (None: constant)."""
        if self.lr_decay_at is None:
            return None
        return max(1, int(round(self.steps * self.lr_decay_at)))


_SRRESNET = SRGANConfig(stage="pretrain", steps=1_000_000)
# a guarded gan-stage run validates at every checkpoint
_SRGAN = SRGANConfig(stage="gan", steps=200_000, lr_decay_at=0.5, checkpoint_every=2000)

PRESETS = {
    # Table 1 of the paper. The three SRGANs all start from SRResNet-MSE (--init).
    "srresnet-mse": replace(_SRRESNET, content_loss="mse"),
    "srresnet-vgg22": replace(_SRRESNET, content_loss="vgg22"),
    "srgan-mse": replace(_SRGAN, content_loss="mse"),
    "srgan-vgg22": replace(_SRGAN, content_loss="vgg22"),
    "srgan-vgg54": replace(_SRGAN, content_loss="vgg54"),
    # What the shipped srgan/weights/srresnet_x4 used: the paper's SRResNet trained on the 2-core CPU
    # with L1 (faster to a high PSNR than MSE), 64-px HR crops, lr 3e-4 dropping to 3e-5 at 80 %.
    "srresnet-cpu": replace(_SRRESNET, content_loss="l1", hr_patch=64, lr=3e-4, lr_decay_at=0.8,
                            steps=5600, validate_every=400, checkpoint_every=200, log_every=50),
    # The gan stage on the 2-core CPU, from krasserm's published SRResNet-MSE (--init krasserm:srresnet):
    # VGG54-style content loss on an offline feature network, batch 8 of 64-px crops, guarded.
    "srgan-cpu": replace(_SRGAN, content_loss="vgg54", perceptual="disc-features", content_weight=0.002,
                         lowpass_weight=1.0, lr=2e-4, tanh_output=True, hr_patch=64, batch_size=8,
                         steps=2000, lr_decay_at=None, validate_every=100, checkpoint_every=100, log_every=20),
    # A few seconds on a CPU: smoke tests of the whole pipeline, not a useful model.
    "tiny": SRGANConfig(
        num_filters=8, num_blocks=1, disc_filters=8, hr_patch=32, batch_size=2, steps=4,
        validate_every=2, checkpoint_every=2, log_every=1, lr_decay_at=0.5,
    ),
}


def variant_name(config: SRGANConfig) -> str:
    """srresnet-mse, srresnet-vgg22, srgan-mse, srgan-vgg22, srgan-vgg54, ..."""
    return f"{'srresnet' if config.stage == 'pretrain' else 'srgan'}-{config.content_loss}"


def preset_for(stage: str, content_loss: str) -> str:
    """The paper's preset for a stage and content loss (srresnet-vgg54 is not one of them)."""
    name = f"{'srresnet' if stage == 'pretrain' else 'srgan'}-{content_loss}"
    return name if name in PRESETS else ("srresnet-mse" if stage == "pretrain" else "srgan-vgg54")


def with_overrides(config: SRGANConfig, **overrides) -> SRGANConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
