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
"""
import argparse
import dataclasses
import types
import typing

NONE_WORDS = ("none", "off")


def setting(default, help: str, *, unit: str = "", nargs: str | None = None, choices=None):
    """A dataclass field with a default and the help line of its flag (`unit` follows the default in
    the help; `nargs` "*" lets a tuple be empty; `choices` limits the flag's values)."""
    metadata = {"help": help, "unit": unit}
    if nargs is not None:
        metadata["nargs"] = nargs
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


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
