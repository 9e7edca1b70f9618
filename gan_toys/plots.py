"""The chapter's figures, written as PNG files (matplotlib figures without pyplot: no global state)."""
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def _smooth(values, window: int):
    values = np.asarray(values, np.float64)
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid"), np.arange(window, len(values) + 1)


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_probabilities(histories: dict, path, window: int = 50) -> Path:
    """Mean D(real) and D(fake) per step (faint) and their running mean over `window` steps.

    `histories`: {label: history dict with 'd_real' and 'd_fake'}; one panel per label.
    """
    fig = Figure(figsize=(6 * len(histories), 3.5))
    for i, (label, h) in enumerate(histories.items()):
        ax = fig.add_subplot(1, len(histories), i + 1)
        steps = np.arange(1, len(h["d_real"]) + 1)
        for key, colour, name in (("d_real", "tab:blue", "D(real)"), ("d_fake", "tab:red", "D(fake)")):
            ax.plot(steps, h[key], color=colour, alpha=0.2, lw=0.5)
            smooth, at = _smooth(h[key], window)
            ax.plot(at, smooth, color=colour, label=name)
        ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set(xlabel="step", ylabel="probability", ylim=(0, 1), title=label)
        ax.legend(loc="upper right")
    return _save(fig, path)


def plot_losses(histories: dict, path, window: int = 50) -> Path:
    fig = Figure(figsize=(6 * len(histories), 3.5))
    for i, (label, h) in enumerate(histories.items()):
        ax = fig.add_subplot(1, len(histories), i + 1)
        for key, colour in (("d_loss", "tab:blue"), ("g_loss", "tab:red")):
            smooth, at = _smooth(h[key], window)
            ax.plot(at, smooth, color=colour, label=key)
        ax.axhline(2 * np.log(2), color="tab:blue", ls=":", lw=0.8)
        ax.axhline(np.log(2), color="tab:red", ls=":", lw=0.8)
        ax.set(xlabel="step", ylabel="loss", title=label)
        ax.legend(loc="upper right")
    return _save(fig, path)


def plot_moments(steps, means, stds, target_mean: float, target_std: float, path) -> Path:
    """Generated mean and standard deviation vs step, with the data's values dashed."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.plot(steps, means, color="tab:green", label="generated mean")
    ax.plot(steps, stds, color="tab:purple", label="generated std")
    ax.axhline(target_mean, color="tab:green", ls="--", lw=0.8, label=f"data mean {target_mean}")
    ax.axhline(target_std, color="tab:purple", ls="--", lw=0.8, label=f"data std {target_std}")
    ax.set(xlabel="step", ylabel="value")
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_histograms(real, generated: dict, path, bins: int = 80, density=None) -> Path:
    """Histograms of real samples vs each set of generated samples (one panel each).

    `density`: optional (x, pdf) of the data distribution, drawn as a line.
    """
    fig = Figure(figsize=(5 * len(generated), 3.5))
    real = np.ravel(real)
    for i, (label, samples) in enumerate(generated.items()):
        samples = np.ravel(samples)
        ax = fig.add_subplot(1, len(generated), i + 1)
        lo, hi = np.percentile(np.concatenate([real, samples]), [0.1, 99.9])
        edges = np.linspace(lo, hi, bins + 1)
        ax.hist(real, edges, density=True, alpha=0.5, color="tab:blue", label="real")
        ax.hist(samples, edges, density=True, alpha=0.5, color="tab:red", label="generated")
        if density is not None:
            ax.plot(*density, color="k", lw=0.8, label="data density")
        ax.set(xlabel="x", ylabel="density", title=label)
        ax.legend(loc="upper right")
    return _save(fig, path)


def plot_curves(curves: dict, path, xlabel: str = "step", ylabel: str = "", hlines: dict | None = None,
                ylim=None) -> Path:
    """Line plot of {label: (x, y)}; `hlines` {label: y} drawn dotted."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    for label, (x, y) in curves.items():
        ax.plot(x, y, marker="o" if len(x) < 30 else None, label=label)
    for label, y in (hlines or {}).items():
        ax.axhline(y, ls=":", color="k", lw=0.8, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(loc="best")
    return _save(fig, path)


def mosaic(images, columns: int = 8, gap: int = 2) -> np.ndarray:
    """Tile images (n, h, w[, 1]) into one array, separated by `gap` pixels of mid-grey."""
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        images = images[..., 0]
    n, h, w = images.shape
    rows = int(np.ceil(n / columns))
    out = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap), 0.5, np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[gap + r * (h + gap):gap + r * (h + gap) + h, gap + c * (w + gap):gap + c * (w + gap) + w] = image
    return out


def plot_image_grid(images, path, title: str = "", columns: int = 8) -> Path:
    """Images (n, h, w[, 1]) in [0, 1] as a grid."""
    tiles = mosaic(images, columns)
    fig = Figure(figsize=(tiles.shape[1] / 50, tiles.shape[0] / 50 + (0.4 if title else 0)))
    ax = fig.add_subplot()
    ax.imshow(tiles, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def plot_sample_steps(samples: dict, path, columns: int = 8) -> Path:
    """Generated images at several steps in one picture: {step: images (n, h, w[, 1])}, one panel
    per step, top to bottom (the thesis's figure of samples at steps 100, 1000, 2000)."""
    fig = Figure(figsize=(columns * 0.9 + 0.2, 1.0 + len(samples) * 2.1))
    for i, (step, images) in enumerate(sorted(samples.items())):
        ax = fig.add_subplot(len(samples), 1, i + 1)
        ax.imshow(mosaic(images, columns), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"step {step}")
    return _save(fig, path)


def plot_phase_histogram(counts, good_counts, path, title: str = "", threshold: float = 0.9) -> Path:
    """Bars of phase counts in equal bins of [0, 360) degrees (all images, and those fitting well),
    with the fair share (uniform phases) and a third of it dotted."""
    counts, good_counts = np.asarray(counts), np.asarray(good_counts)
    bins = len(counts)
    width = 360.0 / bins
    centres = (np.arange(bins) + 0.5) * width
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.bar(centres, counts, width * 0.9, color="tab:blue", alpha=0.45, label="all generated")
    ax.bar(centres, good_counts, width * 0.6, color="tab:blue", label=f"fit >= {threshold}")
    fair = counts.sum() / bins
    ax.axhline(fair, color="k", ls="--", lw=0.8, label="uniform")
    ax.axhline(fair / 3, color="tab:red", ls=":", lw=0.8, label="a third of uniform")
    ax.set(xlabel="fitted phase (degrees)", ylabel="images", xlim=(0, 360), xticks=np.arange(0, 361, 60),
           ylim=(0, max(counts.max(), fair) * 1.4), title=title)  # headroom: the legend stays off the bars
    ax.legend(loc="upper center", ncol=2, fontsize="small")
    return _save(fig, path)
