"""ESRGAN hyperparameters (Wang et al., 2018, section 4.1) for its two training stages, x4.

Stage "psnr" trains the RRDB generator alone with L1 (Adam, lr 2e-4 halved every 2*10^5 updates);
stage "gan" starts from those weights and trains against the relativistic discriminator with
L_G = L_percep + 5e-3 * L_G^Ra + 1e-2 * L1 (lr 1e-4 halved at 50k, 100k, 200k and 300k updates).
Batch 16 of 128x128 HR crops, random flips and 90-degree rotations. The paper trained on DIV2K +
Flickr2K + OST; the defaults here train on T91 + BSD200 from ../shared/data. Step counts and
milestones follow the official training options (PSNR: 10^6 updates; GAN: 4*10^5).
"""
from dataclasses import dataclass, fields, replace

STAGES = ("psnr", "gan")


@dataclass(frozen=True)
class ESRGANConfig:
    stage: str = "psnr"  # "psnr" (generator alone, L1) or "gan"
    # generator (RRDBNet) and discriminator (VGG-style, 128x128 input)
    scale: int = 4
    num_filters: int = 64
    num_blocks: int = 23
    growth: int = 32
    res_scale: float = 0.2
    disc_filters: int = 64
    # data: random HR crops (flipped, rotated), LR made by the degradation on the fly
    train_data: tuple = ("T91", "BSD200")  # folders under ../shared/data, or paths
    degradation: str = "bicubic"
    hr_patch: int = 128
    batch_size: int = 16
    # optimisation: Adam for both networks; lr *= lr_decay_factor after each milestone (updates)
    lr: float = 2e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    lr_milestones: tuple = (200_000, 400_000, 600_000, 800_000)
    lr_decay_factor: float = 0.5
    steps: int = 1_000_000
    # GAN stage: L_G = perceptual_weight * L_percep + gan_weight * L_G^Ra + l1_weight * L1
    perceptual_weight: float = 1.0
    gan_weight: float = 5e-3
    l1_weight: float = 1e-2
    # bookkeeping
    val_data: str = "Set5"
    val_samples: tuple = ("butterfly",)  # validation images logged to TensorBoard
    validate_every: int = 5000
    checkpoint_every: int = 1000
    log_every: int = 100
    seed: int = 0

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, not {self.stage!r}")
        if self.hr_patch % self.scale:
            raise ValueError(f"hr_patch {self.hr_patch} is not a multiple of the scale {self.scale}")
        if self.stage == "gan" and self.hr_patch % 32:
            raise ValueError(f"the discriminator needs hr_patch to be a multiple of 32, not {self.hr_patch}")
        if list(self.lr_milestones) != sorted(set(self.lr_milestones)) or any(m < 1 for m in self.lr_milestones):
            raise ValueError(f"lr_milestones must be increasing positive steps, not {self.lr_milestones}")

    def generator_args(self) -> dict:
        """Keyword arguments of esrgan.models.rrdb_generator (also the checkpoint's "args")."""
        return dict(scale=self.scale, num_filters=self.num_filters, num_blocks=self.num_blocks,
                    growth=self.growth, res_scale=self.res_scale)

    def discriminator_args(self) -> dict:
        return dict(patch=self.hr_patch, num_filters=self.disc_filters)


_PSNR = ESRGANConfig()
_GAN = ESRGANConfig(stage="gan", lr=1e-4, steps=400_000, lr_milestones=(50_000, 100_000, 200_000, 300_000))

PRESETS = {
    "psnr": _PSNR,  # RRDB_PSNR_x4
    "gan": _GAN,  # ESRGAN, --init from the psnr stage
    # A small PSNR-stage model that trains on the 2-core CPU: 6 RRDBs x 32 filters with growth 16 (the
    # paper's growth/filters ratio; 1.1M parameters instead of 16.7M), 64-px HR crops (16-px LR), batch
    # 16, 10k updates with the full rate for the first half (a short run gains most there), then halved
    # twice. About 2-2.5 s per update on the shared 2-core machine (load ~15); growth 32 costs 3.2 s.
    "cpu": replace(_PSNR, num_filters=32, num_blocks=6, growth=16, hr_patch=64, steps=10_000,
                   lr_milestones=(5_000, 7_500), validate_every=1000, checkpoint_every=500, log_every=50),
    # A few seconds on a CPU: smoke tests of the whole pipeline, not a useful model.
    "tiny": ESRGANConfig(num_filters=8, num_blocks=1, growth=4, disc_filters=8, hr_patch=32, batch_size=2,
                         steps=4, lr_milestones=(2,), validate_every=2, checkpoint_every=2, log_every=1),
}


def default_preset(stage: str) -> str:
    return "gan" if stage == "gan" else "psnr"


def config_fields() -> list:
    return list(fields(ESRGANConfig))


def with_overrides(config: ESRGANConfig, **overrides) -> ESRGANConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
