"""Config dataclass -> command line, one way for every chapter.

A chapter's frozen config dataclass documents each field with `setting(default, help, unit=...)`;
`add_config_arguments` turns the fields into `--flags` whose help line is that text with the
default and unit, and `config_from_args` applies the flags that were given to a preset:

    @dataclass(frozen=True)
    class Config:
        lr: float = setting(1e-4, "learning rate")
        milestones: tuple[int, ...] = setting((), "lr drops after these updates", unit="updates", nargs="*")

    add_config_arguments(parser, Config, shown=PRESETS["default"], shown_name="default")
    config = config_from_args(args, Config, PRESETS[args.preset])

Flags follow the field's type: `bool` -> `--x/--no-x`, `tuple[T, ...]` -> several values
(`nargs`, "+" unless the field says "*"), `T | None` -> a T or "none". Flags not given stay out of
the namespace (argparse.SUPPRESS), so a preset's value is kept unless a flag replaces it, and an
explicit "none" replaces it too. Only the standard library is imported here: config modules use it.

Settings are checked when a config is made: `setting(..., minimum=, maximum=, above=, below=)` bounds
a number (each number of a tuple), `check_settings(config)` (a config's `__post_init__` calls it)
checks every field's type, bounds and choices, and a config's own combination rules raise
`SettingError(field, reason)`. A command parses with `CommandParser` and reports any SettingError
(or any of argparse's own complaints) as one line `error: --flag: reason`, exit 2.
"""
import argparse
import dataclasses
import math
import sys
import types
import typing

NONE_WORDS = ("none", "off")


def setting(default, help: str, *, unit: str = "", nargs: str | None = None, choices=None,
            minimum=None, maximum=None, above=None, below=None):
    """A dataclass field with a default and the help line of its flag (`unit` follows the default in
    the help; `nargs` "*" lets a tuple be empty; `choices` limits the flag's values). A number (or
    each number of a tuple; None passes) must be >= `minimum`, <= `maximum`, > `above`, < `below`
    (see check_settings)."""
    metadata = {"help": help, "unit": unit}
    if nargs is not None:
        metadata["nargs"] = nargs
    if choices is not None:
        metadata["choices"] = tuple(choices)
    for key, value in (("minimum", minimum), ("maximum", maximum), ("above", above), ("below", below)):
        if value is not None:
            metadata[key] = value
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


class SettingError(ValueError):
    """A setting the run cannot use: `name` is a config field (or a flag, "--x"), `reason` one line;
    the message is "--flag: reason", what a command prints after "error: "."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        self.flag = name if name.startswith("-") else flag_name(name)
        super().__init__(f"{self.flag}: {reason}")


def _bound_problem(value, meta) -> str | None:
    if "minimum" in meta and not value >= meta["minimum"]:
        return f"must be at least {show_value(meta['minimum'])}"
    if "maximum" in meta and not value <= meta["maximum"]:
        return f"must be at most {show_value(meta['maximum'])}"
    if "above" in meta and not value > meta["above"]:
        return f"must be more than {show_value(meta['above'])}"
    if "below" in meta and not value < meta["below"]:
        return f"must be less than {show_value(meta['below'])}"
    return None


def _type_problem(value, kind) -> str | None:
    """Why `value` is not of type `kind` (int, float, str, bool, X | None, tuple[X, ...]), or None."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(value, a) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if kind is tuple or origin is tuple:
        if not isinstance(value, tuple):
            return f"must be a list of values, not {value!r}"
        item = args[0] if args else None
        for v in value:
            problem = None if item is None else _type_problem(v, item)
            if problem:
                return problem
        return None
    if kind is bool:
        return None if isinstance(value, bool) else f"must be yes or no, not {value!r}"
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"must be a whole number, not {value!r}"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {value!r}"
        return None if math.isfinite(value) else f"must be a finite number, not {value!r}"
    if kind is str:
        return None if isinstance(value, str) else f"must be text, not {value!r}"
    return None


def check_settings(config) -> None:
    """Raise SettingError for the first field of `config` whose value has the wrong type, lies
    outside its `setting` bounds or is not one of its choices."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        problem = _type_problem(value, hints.get(f.name, typing.Any))
        if problem is None:
            values = value if isinstance(value, tuple) else (value,)
            choices = f.metadata.get("choices")
            if choices is not None:
                wrong = [v for v in values if v not in choices]
                if wrong:
                    problem = f"must be one of {', '.join(map(str, choices))}, not {wrong[0]!r}"
            for v in values:
                if problem is None and isinstance(v, (int, float)) and not isinstance(v, bool):
                    problem = _bound_problem(v, f.metadata)
                    if problem:
                        problem += f", not {show_value(v)}"
        if problem:
            raise SettingError(f.name, problem)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose complaints are one line on stderr, "error: --flag: reason", exit 2
    (argparse's own: usage, then "prog: error: argument --flag: reason")."""

    def error(self, message: str):
        def flag(names: str) -> str:  # "-o/--output" -> "--output"
            options = names.split("/")
            return next((o for o in options if o.startswith("--")), options[0])

        if message.startswith("argument "):
            names, sep, reason = message[len("argument "):].partition(": ")
            message = f"{flag(names)}: {reason}" if sep else message
        elif message.startswith("the following arguments are required: "):
            names = message.split(": ", 1)[1].split(", ")
            message = f"{flag(names[0])}: required (see {self.prog} --help)"
        elif message.startswith("ambiguous option: "):  # "ambiguous option: --st could match --stage, --steps"
            given, _, matches = message.split(": ", 1)[1].partition(" ")
            message = f"{given}: ambiguous, {matches}"
        elif message.startswith("unrecognized arguments: "):
            given = message.split(": ", 1)[1]
            message = f"{given.split()[0]}: unrecognized argument (see {self.prog} --help)"
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def report(exc: BaseException) -> int:
    """Print a settings error as its one line, "error: --flag: reason"; returns exit code 2."""
    print(f"error: {exc}", file=sys.stderr)
    return 2


def show_value(value) -> str:
    """A config value the way it is typed on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return " ".join(show_value(v) for v in value) if value else "(none)"
    return str(value)


def _optional(parse):
    def parse_optional(text: str):
        return None if text.lower() in NONE_WORDS else parse(text)

    parse_optional.__name__ = getattr(parse, "__name__", "value")  # argparse's "invalid int value"
    return parse_optional


def _argument_kwargs(f: dataclasses.Field, kind, default) -> dict:
    """add_argument keywords (type, nargs, action, metavar) for a field of type `kind`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    optional = origin in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        kind = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if kind is tuple or origin is tuple:
        item = args[0] if args else (type(default[0]) if default else str)
        return {"nargs": f.metadata.get("nargs", "+"), "type": item}
    if kind is dict or origin is dict:
        raise TypeError(f"{f.name}: a dict has no command-line form; skip it")
    parse = kind if callable(kind) else str
    kwargs = {"type": _optional(parse) if optional else parse}
    if optional:
        kwargs["metavar"] = f"{f.name.upper()}|none"
    return kwargs


def add_config_arguments(parser: argparse.ArgumentParser, config_cls, shown=None, shown_name: str = "",
                         skip=()):
    """One --flag per field of `config_cls` (except `skip`), in a group of their own; each help line
    is the field's `setting` text with its value in `shown` (default: the class's defaults).
    Raises TypeError for a field without help text: every flag is documented."""
    shown = config_cls() if shown is None else shown
    hints = typing.get_type_hints(config_cls)
    note = f"Each flag replaces the chosen --preset's value; the defaults shown are preset {shown_name}'s."
    group = parser.add_argument_group("configuration", note if shown_name else None)
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        help_text = f.metadata.get("help")
        if not help_text:
            raise TypeError(f"{config_cls.__name__}.{f.name} has no help text (use common.config_cli.setting)")
        value = getattr(shown, f.name)
        unit = f.metadata.get("unit", "")
        shown_value = show_value(value) + (f" {unit}" if unit and value not in (None, ()) else "")
        kwargs = _argument_kwargs(f, hints[f.name], value)
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        # argparse %-formats help lines
        kwargs["help"] = f"{help_text} (default: {shown_value})".replace("%", "%%")
        group.add_argument(flag_name(f.name), dest=f.name, default=argparse.SUPPRESS, **kwargs)
    return group


def config_from_args(args: argparse.Namespace, config_cls, base):
    """`base` (a preset) with the fields given on the command line replaced (lists as tuples); raises
    the dataclass's own ValueError for values it refuses."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names}
    return dataclasses.replace(base, **given)


def check_data_folder(name: str, value, data_root) -> None:
    """SettingError unless `value` is a folder, or a folder's name under `data_root` (what
    common.paths.resolve_data accepts); `name` is the config field (or flag) to name."""
    from pathlib import Path

    if not str(value):
        raise SettingError(name, "empty folder name")
    if Path(value).is_dir() or (Path(data_root) / str(value)).is_dir():
        return
    raise SettingError(name, f"{value}: no such folder (nor under {data_root})")



def check_checkpoint(name: str, spec, run_folders: bool = False) -> None:
    """SettingError unless `spec` names a checkpoint that exists: X, X.h5 or X.weights.h5 (see
    common.checkpoints.checkpoint_paths), or with `run_folders` a folder; a named weight source
    ("krasserm:srgan") passes (its loader says what is missing)."""
    from pathlib import Path

    text = str(spec)
    path = Path(text)
    if not text:
        raise SettingError(name, "empty checkpoint name")
    if path.exists() and (run_folders or not path.is_dir()):
        return
    from common.registry import weight_sources

    source, sep, rest = text.partition(":")
    if sep and rest and source in weight_sources():  # krasserm:srgan: its loader says what is missing
        return
    base = path.name
    for suffix in (".weights.h5", ".h5", ".json"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    if any(path.with_name(base + suffix).is_file() for suffix in (".h5", ".weights.h5")):
        return
    what = "a checkpoint or a run folder" if run_folders else "a checkpoint"
    raise SettingError(name, f"{text}: not found (expected {what}: X.h5 or X.weights.h5 with its X.json)")
