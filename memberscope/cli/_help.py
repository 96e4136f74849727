"""How ``--help`` reads: no type tags, every default shown, and ``--version``.

The commands leave most options at ``None`` so that a ``--config`` file can set them; the value a run then
uses is the configuration's default. :func:`tidy_help` writes those defaults into the help (from the
configuration dataclass a command builds, so they are declared once) and drops the ``<int>``/``<bool>``
type column, which costs a third of an 80-column terminal and says nothing a user acts on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import typer
from typer.core import TyperGroup

__all__ = ["HelpGroup", "config_defaults", "format_default", "version_callback"]


def _audit_config():
    from memberscope.config import AuditConfig

    return AuditConfig


def _defend_config():
    from memberscope.defenses.evaluate import DefendConfig

    return DefendConfig


# Command → the configuration class whose defaults fill the options left at None, and the options that set
# its fields (None: every option named like a field).
CONFIG_OF: dict[str, tuple[Callable[[], type], frozenset[str] | None]] = {
    "audit": (_audit_config, None),
    "defend": (_defend_config, None),
    # audit-model's --model is the user's saved model, not a recipe: only the run settings come from the config.
    "audit-model": (
        _audit_config,
        frozenset({"reference_models", "attacks", "seed", "fprs", "n_bootstrap", "n_jobs", "backend"}),
    ),
}
# An option named differently from the configuration field it sets.
FIELD_OF = {"fpr": "fprs"}


def format_default(value) -> str | None:
    """A configuration default as a user would type it (``0.1,0.01``, ``all``); None when there is none."""
    if value is None or value == {} or value == []:
        return None
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    # A space after each comma lets a long list wrap instead of being cut at the terminal's edge.
    return str(value).replace(",", ", ")


def config_defaults(config_cls: type) -> dict[str, str]:
    """``{field: default as typed}`` of a configuration dataclass (fields without a default left out)."""
    out = {}
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        text = format_default(value)
        if text is not None:
            out[f.name] = text
    return out


def _tidy_command(name: str, command) -> None:
    defaults: dict[str, str] = {}
    if name in CONFIG_OF:
        config_cls, fields = CONFIG_OF[name]
        defaults = {k: v for k, v in config_defaults(config_cls()).items() if fields is None or k in fields}
    for param in command.params:
        _untag(param)
        if getattr(param, "param_type_name", None) == "argument":
            _name_argument(param)
        if getattr(param, "param_type_name", None) != "option":
            continue
        field = FIELD_OF.get(param.name, param.name)
        if param.default is None and field in defaults and not isinstance(param.show_default, str):
            text = defaults[field]
            param.show_default = text
            # typer writes a string default in parentheses, click's sign of a description; this is a value.
            param._get_default_string = lambda *, text=text, **_: text
    _untag_help_option(command)
    for sub_name, sub in getattr(command, "commands", {}).items():
        _tidy_command(sub_name, sub)


def _untag(param) -> None:
    """No ``<int>``/``<bool>``/``<path>`` type column for ``param`` (its metavar, used in messages, stays)."""
    param.display_type_rich = lambda ctx: None


def _name_argument(param) -> None:
    """The usage line names an argument as click does (``RESULTS``, ``[RESULTS]`` when optional): typer's
    ``{results}`` for a required one reads as a placeholder left unformatted."""
    name = (param.metavar or param.name).upper()
    piece = name if param.required else f"[{name}]"
    if param.nargs != 1:
        piece += "..."
    param.get_usage_pieces = lambda ctx: [piece]


def _untag_help_option(command) -> None:
    """click builds ``--help`` per context; drop its type tag too."""
    build = command.get_help_option

    def get_help_option(ctx):
        option = build(ctx)
        if option is not None:
            _untag(option)
        return option

    command.get_help_option = get_help_option


class HelpGroup(TyperGroup):
    """The app's command group: every command's help tidied once, when the group is built."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            _untag(param)
        _untag_help_option(self)
        for name, command in self.commands.items():
            _tidy_command(name, command)


def version_callback(value: bool) -> None:
    """``--version``: print the installed version and exit."""
    if value:
        from memberscope import __version__

        typer.echo(f"memberscope {__version__}")
        raise typer.Exit()
