"""SRGAN hyperparameters (Ledig et al., 2017, section 3.2) and the paper's five variants.

Stage "pretrain" trains SRResNet alone with a content loss; stage "gan" trains SRResNet against
the discriminator, starting from a pretrained SRResNet. The paper trained on 350k ImageNet
images (SRResNet 10^6 updates; SRGAN 10^5 updates at 1e-4, then 10^5 at 1e-5); the defaults
here train on T91 + BSD200 from ../shared/data, so expect lower numbers than the paper's.
"""
from dataclasses import dataclass, fields, replace

STAGES = ("pretrain", "gan")
CONTENT_LOSSES = ("mse", "l1", "vgg22", "vgg54")


@dataclass(frozen=True)
class SRGANConfig:
    stage: str = "pretrain"  # "pretrain" (SRResNet alone) or "gan"
    content_loss: str = "mse"  # "mse", "vgg22" or "vgg54" (VGG19 features / 12.75)
    # generator (SRResNet) and discriminator
    scale: int = 4
    num_filters: int = 64
    num_blocks: int = 16
    batch_norm: bool = True
    disc_filters: int = 64
    # data: random HR crops, LR made by the degradation on the fly
    train_data: tuple = ("T91", "BSD200")  # folders under ../shared/data, or paths
    degradation: str = "bicubic"
    hr_patch: int = 96
    batch_size: int = 16
    # optimisation: Adam for both networks
    lr: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    lr_decay_at: float | None = None  # fraction of `steps` after which lr *= lr_decay_factor
    lr_decay_factor: float = 0.1
    steps: int = 1_000_000
    # GAN stage
    adversarial_weight: float = 1e-3
    tv_weight: float = 0.0  # the paper's optional total-variation term: 0 or 2e-8
    d_steps: int = 1  # k, discriminator updates per generator update (each on its own batch)
    # bookkeeping
    val_data: str = "Set5"
    val_samples: tuple = ("butterfly",)  # validation images logged to TensorBoard
    validate_every: int = 2000
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        if self.content_loss not in CONTENT_LOSSES:
            raise ValueError(f"content loss must be one of {', '.join(CONTENT_LOSSES)}, not {self.content_loss!r}")
        if self.hr_patch % self.scale:
            raise ValueError(f"hr_patch {self.hr_patch} is not a multiple of the scale {self.scale}")
        if self.stage == "gan" and self.hr_patch % 16:
            raise ValueError(f"the discriminator needs hr_patch to be a multiple of 16, not {self.hr_patch}")
        if self.d_steps < 1:
            raise ValueError("d_steps must be at least 1")

    def generator_args(self) -> dict:
        """Keyword arguments of srgan.models.srresnet (also the checkpoint's "args")."""
        return dict(scale=self.scale, num_filters=self.num_filters, num_blocks=self.num_blocks,
                    batch_norm=self.batch_norm)

    def discriminator_args(self) -> dict:
        return dict(patch=self.hr_patch, num_filters=self.disc_filters)

    @property
    def lr_boundary(self) -> int | None:
        """Generator step at which the learning rate drops (None: constant)."""
        if self.lr_decay_at is None:
            return None
        return max(1, int(round(self.steps * self.lr_decay_at)))


_SRRESNET = SRGANConfig(stage="pretrain", steps=1_000_000)
_SRGAN = SRGANConfig(stage="gan", steps=200_000, lr_decay_at=0.5)

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
    # A few seconds on a CPU: smoke tests of the whole pipeline, not a useful model.
    "tiny": SRGANConfig(
        num_filters=8, num_blocks=1, disc_filters=8, hr_patch=32, batch_size=2, steps=4,
        validate_every=2, checkpoint_every=2, log_every=1, lr_decay_at=0.5,
    ),
}


def preset_for(stage: str, content_loss: str) -> str:
    """The paper's preset for a stage and content loss (srresnet-vgg54 is not one of them)."""
    name = f"{'srresnet' if stage == 'pretrain' else 'srgan'}-{content_loss}"
    return name if name in PRESETS else ("srresnet-mse" if stage == "pretrain" else "srgan-vgg54")


def config_fields() -> list:
    return list(fields(SRGANConfig))


def with_overrides(config: SRGANConfig, **overrides) -> SRGANConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
