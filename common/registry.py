"""The chapters, found at run time, and their model builders by architecture name (so a checkpoint's
JSON can say how to rebuild its model).

The library never names a chapter: each chapter declares itself once, as a `Chapter` in its own
package (e.g. `<chapter>/chapter.py`), and names that object in setup.py's entry points, group
"sr_toolkit.chapters":

    entry_points={"sr_toolkit.chapters": ["mychapter = mychapter.chapter:CHAPTER"]}

A spec module imports no TensorFlow: builders and loaders are "module:function" strings, imported
only when one of their architectures is asked for (an upscale that runs a cached OpenVINO model
loads no chapter code). Tests and experiments can add builders (`register`) or whole chapters
(`register_chapter`) at run time.
"""
import functools
import importlib
import warnings
from dataclasses import dataclass, field
from importlib.metadata import distributions
from pathlib import Path
from typing import Callable

ENTRY_POINT_GROUP = "sr_toolkit.chapters"


@dataclass(frozen=True)
class Architecture:
    """A model family: its builder ("module:function") and what it does to pixels, which is the
    first part of its checkpoints' JSON (`checkpoint_meta`)."""

    builder: str
    role: str = "generator"  # or "discriminator" (never an upscaling model)
    upsampling: str = "post"  # "pre": the input is bicubic-upscaled first (SRCNN)
    color: str = "rgb"  # "y": the model sees the Y channel
    input_range: tuple[float, float] = (0, 1)
    output_range: tuple[float, float] = (0, 1)


@dataclass(frozen=True)
class Chapter:
    """What one chapter tells the library about itself.

    `shipped_weights` are checkpoint paths (may hold "{scale}"), the first existing one is the
    upscale command's default; `run_name(preset, config)` names a training run's folder under runs/;
    `weight_sources` map a prefix to a loader ("krasserm" -> "pkg.mod:load": "krasserm:srgan" loads
    load("srgan") -> (model, meta)); `foreign_loaders` recognise whole-model files without our JSON
    (each returns (model, meta) or raises ValueError)."""

    name: str  # the package: `python -m <name>.upscale`, `<name>.train`
    display_name: str
    architectures: dict[str, Architecture] = field(default_factory=dict)
    config: type | None = None  # the frozen config dataclass of its training runs
    presets: dict = field(default_factory=dict)
    shipped_weights: tuple[str, ...] = ()
    default_scale: int | None = None
    run_name: Callable | None = None
    weight_sources: dict[str, str] = field(default_factory=dict)
    foreign_loaders: tuple[str, ...] = ()

    @property
    def generators(self) -> tuple[str, ...]:
        """The architectures its upscale command runs."""
        return tuple(n for n, a in self.architectures.items() if a.role == "generator")

    def default_weights(self, scale: int | None = None) -> Path | None:
        """The shipped checkpoint for `scale` (default `default_scale`): the first of
        `shipped_weights` that exists, else the last one (whose absence the caller reports)."""
        if not self.shipped_weights:
            return None
        paths = [Path(p.format(scale=scale or self.default_scale)) for p in self.shipped_weights]
        return next((p for p in paths if p.is_file()), paths[-1])

    def run_dir(self, preset: str, config, root="runs") -> Path:
        """A training run's default folder: runs/<run_name(preset, config)>."""
        if self.run_name is None:
            raise ValueError(f"chapter {self.name} has no training runs")
        return Path(root) / self.run_name(preset, config)

    def checkpoint_meta(self, architecture: str, args: dict, scale: int | None, **overrides) -> dict:
        """The start of a checkpoint's JSON for one of its models: {"architecture", "args", "scale",
        "upsampling", "color", "input_range", "output_range"} from the architecture's declaration;
        `overrides` replace or add entries (e.g. color="rgb" for a model trained on RGB)."""
        spec = self.architectures[architecture]
        meta = {"architecture": architecture, "args": dict(args), "scale": scale, "upsampling": spec.upsampling,
                "color": spec.color, "input_range": list(spec.input_range), "output_range": list(spec.output_range)}
        return {**meta, **overrides}

    def upscale(self, argv=None) -> int:
        """`python -m <name>.upscale`: the shared upscale command with this chapter's defaults."""
        from common import upscale_cli

        return upscale_cli.main(argv, chapter=self)


class UnknownArchitecture(KeyError):
    def __str__(self):
        return self.args[0]


class UnknownChapter(KeyError):
    def __str__(self):
        return self.args[0]


# Added at run time (tests, experiments); they take precedence over the installed chapters.
_REGISTERED: dict[str, Callable] = {}
_EXTRA_CHAPTERS: dict[str, Chapter] = {}


def _entry_points() -> list:
    """The group's entry points of every distribution on sys.path, first one per name. Not
    `importlib.metadata.entry_points(group=...)`: it reads one distribution per project name, and
    a stale sr_thesis.egg-info in a checkout (first on sys.path when run from there) would hide
    the installed metadata."""
    found = {}
    for dist in distributions():
        for point in dist.entry_points:
            if point.group == ENTRY_POINT_GROUP:
                found.setdefault(point.name, point)
    return list(found.values())


@functools.cache
def _installed() -> tuple[Chapter, ...]:
    """The chapters the installed package declares (read once)."""
    found = []
    for point in _entry_points():
        try:
            spec = point.load()
        except ImportError as exc:  # e.g. a chapter removed from a checkout that is still installed
            warnings.warn(f"chapter {point.name} ({point.value}) cannot be imported: {exc}", stacklevel=2)
            continue
        if not isinstance(spec, Chapter):
            raise TypeError(f"entry point {point.name} = {point.value} is not a common.registry.Chapter")
        found.append(spec)
    return tuple(found)


def chapters() -> dict[str, Chapter]:
    """Every chapter by name: the installed ones, then those added with `register_chapter`."""
    return {**{c.name: c for c in _installed()}, **_EXTRA_CHAPTERS}


def chapter(name: str) -> Chapter:
    try:
        return chapters()[name]
    except KeyError:
        known = ", ".join(sorted(chapters())) or _NOTHING_INSTALLED
        raise UnknownChapter(f"unknown chapter {name!r} (known: {known})") from None


_NOTHING_INSTALLED = f"none: no {ENTRY_POINT_GROUP} entry points; install the package with pip install -e ."


def register_chapter(spec: Chapter) -> Chapter:
    """Add a chapter at run time (one not declared in the entry points, e.g. in a test)."""
    _EXTRA_CHAPTERS[spec.name] = spec
    return spec


def unregister_chapter(name: str) -> None:
    _EXTRA_CHAPTERS.pop(name, None)


def architectures() -> dict[str, Architecture]:
    """Every chapter's architectures by name."""
    return {name: arch for c in chapters().values() for name, arch in c.architectures.items()}


def architecture(name: str) -> Architecture | None:
    return architectures().get(name)


def chapter_of(architecture_name: str) -> Chapter | None:
    """The chapter that declares an architecture (None: unknown, or registered with `register`)."""
    return next((c for c in chapters().values() if architecture_name in c.architectures), None)


def weight_sources() -> dict[str, str]:
    """Named weight sources of every chapter: prefix -> "module:function"."""
    return {prefix: target for c in chapters().values() for prefix, target in c.weight_sources.items()}


def foreign_loaders() -> tuple[str, ...]:
    return tuple(target for c in chapters().values() for target in c.foreign_loaders)


def load_function(target: str) -> Callable:
    module_name, function = target.split(":")
    return getattr(importlib.import_module(module_name), function)


def register(name: str, builder: Callable) -> Callable:
    """Register `builder` under `name` (overrides a chapter's); returns the builder."""
    _REGISTERED[name] = builder
    return builder


def unregister(name: str) -> None:
    _REGISTERED.pop(name, None)


def names() -> list[str]:
    return sorted(set(architectures()) | set(_REGISTERED))


def get_builder(name: str) -> Callable:
    """The builder function of an architecture; raises UnknownArchitecture or ImportError."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    spec = architecture(name)
    if spec is None:
        raise UnknownArchitecture(f"unknown architecture {name!r} (known: {', '.join(names()) or _NOTHING_INSTALLED})")
    module_name, function = spec.builder.split(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, function)
    except AttributeError:
        raise ImportError(f"{module_name} has no builder {function}() for {name!r}") from None


def import_module_of(name: str) -> bool:
    """Import the module of an architecture's builder (so its custom layers get registered).

    Returns False instead of raising when the module is not available.
    """
    spec = architecture(name)
    if spec is None:
        return False
    try:
        importlib.import_module(spec.builder.split(":")[0])
    except ImportError:
        return False
    return True


def build(name: str, **args):
    """Build a model: `build(name, **args)` calls the architecture's builder with `args`."""
    return get_builder(name)(**args)


def __getattr__(name: str):
    # ARCHITECTURES: the old table's view, {architecture: "module:function"} (tests read it).
    if name == "ARCHITECTURES":
        return {n: a.builder for n, a in architectures().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
