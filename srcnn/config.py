"""SRCNN hyperparameters: the paper's recipe and a faster Adam preset."""
from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class SRCNNConfig:
    scales: tuple = (3,)  # one model per scale, or several: one multi-scale model
    f1: int = 9
    f2: int = 5
    f3: int = 5
    n1: int = 64
    n2: int = 32
    color: str = "y"  # "y" (the paper) or "rgb"
    degradation: str = "bicubic"
    train_data: tuple = ("T91",)  # folders under ../shared/data, or paths
    patch: int = 33  # input sub-image size
    stride: int | None = 14  # sub-image grid as in the paper; None = random crops
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" (momentum 0.9) or "adam"
    lr: float = 1e-4
    last_layer_lr: float = 1e-5
    momentum: float = 0.9
    lr_decay: str = "constant"  # "constant" or "cosine" (to lr * 1e-2)
    warmup_steps: int = 0  # linear ramp from 0 to lr first (keeps --init weights safe with Adam)
    steps: int = 1_000_000
    validate_every: int = 2000
    checkpoint_every: int = 2000
    log_every: int = 100
    val_data: str = "Set5"
    seed: int = 0
    architecture_args: dict = field(default_factory=dict)

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


def config_fields() -> list:
    return [f for f in fields(SRCNNConfig) if f.name != "architecture_args"]


def with_overrides(config: SRCNNConfig, **overrides) -> SRCNNConfig:
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
