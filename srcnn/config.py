"""SRCNN hyperparameters: the paper's recipe and a faster Adam preset."""
from dataclasses import dataclass, replace

from common.config_cli import SettingError, check_settings, setting
from common.degradations import DEGRADATION_HELP, DEGRADATIONS, OPTIONS_HELP


@dataclass(frozen=True)
class SRCNNConfig:
    scales: tuple[int, ...] = setting((3,), "upscaling factors: one model per scale, or several: one multi-scale "
                                      "model (each batch mixes the scales)", minimum=1)
    f1: int = setting(9, "kernel size of conv1 (patch extraction)", unit="px", minimum=1)
    f2: int = setting(5, "kernel size of conv2 (non-linear mapping; 1, 3 or 5 in the paper)", unit="px",
                     minimum=1)
    f3: int = setting(5, "kernel size of conv3 (reconstruction)", unit="px", minimum=1)
    n1: int = setting(64, "filters of conv1", minimum=1)
    n2: int = setting(32, "filters of conv2", minimum=1)
    color: str = setting("y", "channels the network sees: 'y' (the paper; Cb/Cr upscaled bicubically) or 'rgb'",
                         choices=("y", "rgb"))
    degradation: str = setting("bicubic", DEGRADATION_HELP, choices=DEGRADATIONS)
    degradation_options: tuple[str, ...] = setting((), OPTIONS_HELP, nargs="*")
    train_data: tuple[str, ...] = setting(("T91",), "training folders under ../shared/data, or paths")
    patch: int = setting(33, "input sub-image size", unit="px", minimum=1)
    stride: int | None = setting(14, "step of the paper's grid of sub-images; none or 0: random crops", unit="px",
                                minimum=0)
    batch_size: int = setting(128, "sub-images per step", minimum=1)
    optimizer: str = setting("sgd", "'sgd' (with --momentum) or 'adam'", choices=("sgd", "adam"))
    lr: float = setting(1e-4, "learning rate of conv1 and conv2", minimum=0)
    last_layer_lr: float = setting(1e-5, "learning rate of conv3 (the paper: 10x smaller)", minimum=0)
    momentum: float = setting(0.9, "SGD momentum", minimum=0, maximum=1)
    lr_decay: str = setting("constant", "'constant' or 'cosine' (to lr * 1e-2 at the last step)",
                            choices=("constant", "cosine"))
    warmup_steps: int = setting(0, "linear ramp from 0 to lr first (keeps --init weights safe with Adam)",
                                unit="steps", minimum=0)
    steps: int = setting(1_000_000, "training steps in all (a resumed run goes on to this many)", unit="steps",
                         minimum=1)
    validate_every: int = setting(2000, "steps between validations on --val-data (the best is kept; 0: none)",
                                 unit="steps", minimum=0)
    checkpoint_every: int = setting(2000, "steps between checkpoints", unit="steps", minimum=1)
    log_every: int = setting(100, "steps between loss logs (history.jsonl, TensorBoard)", unit="steps",
                            minimum=1)
    val_data: str = setting("Set5", "validation folder under ../shared/data, or a path")
    seed: int = setting(0, "random seed of the first weights and the data order", minimum=0,
                        maximum=2**32 - 1)

    def __post_init__(self):
        """Every setting is checked here (types, bounds, combinations): SettingError names the flag."""
        check_settings(self)
        if not self.scales:
            raise SettingError("scales", "give at least one scale")
        if len(set(self.scales)) < len(self.scales):
            raise SettingError("scales", f"each scale once, not {' '.join(map(str, self.scales))}")
        lost = self.f1 + self.f2 + self.f3 - 3  # pixels a 'valid' SRCNN loses (srcnn.models.border, both sides)
        if lost % 2:
            raise SettingError("f2", f"the kernels {self.f1}-{self.f2}-{self.f3} take {lost} px, an odd number: the "
                               "target cannot be centred (f1 + f2 + f3 must be odd)")
        if self.patch <= lost:
            raise SettingError("patch", f"{self.patch} px leaves no output after the {lost} px the kernels "
                               f"({self.f1}, {self.f2}, {self.f3}) take: use more than {lost}")

    def model_args(self) -> dict:
        return dict(f1=self.f1, f2=self.f2, f3=self.f3, n1=self.n1, n2=self.n2,
                    channels=1 if self.color == "y" else 3)


PRESETS = {
    # Dong et al.: 33x33 sub-images with stride 14 from T91, SGD, lr 1e-4 (1e-5 last layer).
    "paper": SRCNNConfig(),
    # What the shipped checkpoints use: one model for x2, x3 and x4 (each batch mixes the
    # scales), larger crops, Adam with cosine decay, T91 + BSD200.
    "adam": SRCNNConfig(
        train_data=("T91", "BSD200"), patch=56, stride=None, batch_size=32, optimizer="adam",
        scales=(2, 3, 4), lr=1e-3, last_layer_lr=1e-4, lr_decay="cosine", steps=5000,
        validate_every=250, checkpoint_every=250,
    ),
}


def with_overrides(config: SRCNNConfig, **overrides) -> SRCNNConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
