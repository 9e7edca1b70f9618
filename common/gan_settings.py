"""Settings the GAN chapters' configs share: the collapse guard's fields, the weight average, the R1 penalty and the names of the
perceptual (feature) networks. Standard library only: config modules (and the chapter specs that
the library reads without loading TensorFlow) import it."""
from dataclasses import dataclass

from common.config_cli import SettingError, check_settings, setting

PERCEPTUAL_NETWORKS = ("vgg-imagenet", "vgg-random", "disc-features", "pretrained-disc")


@dataclass(frozen=True)
class GANStageSettings:
    """A base of a GAN chapter's config: when a gan-stage run stops with TrainingCollapsed
    (common.chapter.collapse_guard and saturation_guard), which validated step it keeps, and the
    generator's weight average. A dataclass's base fields come first, so
    these lead its flags and its config.json."""

    max_psnr_drop: float = setting(3.0, "gan stage: stop when validation PSNR falls this far below the start's",
                                   unit="dB", minimum=0)
    max_colour_shift: float = setting(0.02, "gan stage: ... or the outputs' mean colour moves this much farther "
                                      "from the LR's than at the start", unit="of the 0-1 range",
                                      minimum=0)
    d_saturation: float = setting(1e-4, "gan stage: ... or the discriminator's mean probability (D_Ra in a "
                                  "relativistic GAN) of HR > 1 - this and of SR < this in 3 logs in a row (0: off)",
                                  minimum=0, below=0.5)
    ema_decay: float = setting(0.0, "gan stage: validate and export an exponential moving average of the "
                               "generator's weights with this decay per step (0: the raw weights; Real-ESRGAN "
                               "uses 0.999)", minimum=0, below=1)
    init_discriminator: str = setting("", "gan stage: a run folder (its latest checkpoint) or a .weights.h5 "
                                      "file to start the discriminator from instead of new weights (a run "
                                      "going on from an exported generator)")
    r1_weight: float = setting(0.0, "gan stage: gamma of the R1 penalty gamma/2 * E|grad D(HR)|^2 in the "
                               "discriminator's loss (Mescheder et al., 2018), against a discriminator that "
                               "saturates (0: off, as in the papers)", minimum=0)
    # krasserm's published SRGAN scores 0.85 on Set5 x4 (the default validation set), 0.67 on Set14
    max_false_colour: float = setting(0.85, "gan stage: the kept (best) step is the lowest validation NIQE among "
                                      "those whose validation false colour (common.metrics.false_colour: chroma "
                                      "detail HR lacks) is at most this; none within it: the lowest false colour "
                                      "(default: krasserm's published SRGAN on Set5 x4)", unit="8-bit levels",
                                      minimum=0)

    def check_gan_settings(self) -> None:
        """Raise SettingError for a field of the wrong type or out of its bounds (check_settings), or
        a perceptual network the GAN stages cannot use."""
        check_settings(self)
        check_perceptual(self.perceptual)

    def check_guard_cadence(self) -> None:
        """Raise SettingError for a gan-stage cadence the guard cannot follow: a guarded run validates
        at every checkpoint (common.training.Trainer), so --checkpoint-every must be a multiple of
        --validate-every (0: no validation, no guard)."""
        if self.stage == "gan" and self.validate_every and self.checkpoint_every % self.validate_every:
            raise SettingError("checkpoint_every", f"a gan-stage run is guarded and validates at every checkpoint: "
                               f"{self.checkpoint_every} is not a multiple of --validate-every {self.validate_every}")


def check_perceptual(name: str) -> None:
    """Raise SettingError (a ValueError) unless `name` is one of PERCEPTUAL_NETWORKS."""
    if name not in PERCEPTUAL_NETWORKS:
        raise SettingError("perceptual", f"must be one of {', '.join(PERCEPTUAL_NETWORKS)}, not {name!r}")
