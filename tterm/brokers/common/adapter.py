"""How an adapter declares itself: its options, its credentials, how to build it.

Each adapter's ``config.py`` holds one :class:`AdapterSpec`; ``tterm.brokers.registry`` lists
them, and everything that needs to know about broker types asks the registry: the config file
(which types exist, which options each takes), ``tterm doctor`` (which credentials are missing),
start-up (how to build one) and ``tterm login`` (whether a person must log in). So an adapter's
options and credentials are declared exactly once.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from tterm.core.broker import Broker, Capabilities


def _present(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secrets a broker type logs in with.

    ``sets``: any one complete set is enough (Tastytrade: a client secret and a refresh token).
    ``username``: a login name is needed too; it is not secret and may sit in config.toml
    (``[brokers.<name>] username``) or with the secrets. ``from_options``: keys that are not
    secret and may be given as an option instead (Tradovate's ``cid``, an app's client id).
    """

    sets: tuple[frozenset[str], ...] = ()
    username: bool = False
    from_options: frozenset[str] = frozenset()

    def missing(
        self, secrets: Mapping[str, Any], options: Mapping[str, Any] | None = None, *, username: str = ""
    ) -> list[str]:
        """The keys still missing (``username`` first), from the set closest to complete."""
        have = {str(k).strip().lower() for k, v in secrets.items() if _present(v)}
        opts = {str(k).strip().lower().replace("-", "_"): v for k, v in (options or {}).items()}
        have |= {k for k in self.from_options if _present(opts.get(k))}
        out: list[str] = []
        if self.username and not _present(username) and "username" not in have:
            out.append("username")
        if self.sets and not any(s <= have for s in self.sets):
            best = min(self.sets, key=lambda s: (len(s - have), sorted(s)))
            out.extend(sorted(best - have))
        return out

    @property
    def keys(self) -> frozenset[str]:
        """Every key any set names (what ``tterm doctor`` may mention)."""
        return frozenset().union(*self.sets) if self.sets else frozenset()


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """One broker type: ``[brokers.<name>] type = "<type>"`` in config.toml.

    ``build`` names the factory (``"package.module:function"``), imported only when a broker of
    this type is started, so reading the config never loads network code. The factory is called
    as ``build(name, options, secrets, *, instruments, clock, data_dir)``; ``options`` always
    carries ``environment`` (from ``[brokers.<name>] environment``), so the options model must
    declare it. ``login_note`` is what
    ``tterm login`` says for a type that logs in by itself.
    """

    type: str
    title: str
    build: str
    options: builtins.type[BaseModel]  # builtins: the field ``type`` above shadows the name here
    credentials: Credentials = field(default_factory=Credentials)
    interactive_login: bool = False
    login_note: str = ""
    #: ``"package.module:Class"`` of the Broker subclass, so ``tterm doctor`` can show its
    #: capabilities without building (or connecting) it; empty: not shown.
    broker_class: str = ""

    def capabilities(self) -> Capabilities | None:
        if not self.broker_class:
            return None
        module, _, cls = self.broker_class.partition(":")
        return getattr(importlib.import_module(module), cls).capabilities

    def factory(self) -> Callable[..., Broker]:
        module, _, func = self.build.partition(":")
        return getattr(importlib.import_module(module), func)

    def option_problems(self, options: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(option, reason)`` for every option the adapter would refuse (values never echoed)."""
        written = {str(k).strip().lower().replace("-", "_"): str(k) for k in options}
        normalised = {written_key: options[key] for written_key, key in written.items()}
        try:
            self.options.model_validate(normalised)
        except ValidationError as exc:
            out = []
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                if loc:
                    loc[0] = written.get(loc[0], loc[0])
                where = ".".join(loc) or "(options)"
                if err["type"] == "extra_forbidden":
                    hint = difflib.get_close_matches(str(err["loc"][0]), self.option_names, n=1)
                    known = (
                        f"did you mean {hint[0]!r}?"
                        if hint
                        else f"options of {self.type}: {', '.join(self.option_names)}"
                    )
                    out.append((where, f"unknown option ({known})"))
                else:
                    out.append((where, str(err["msg"]).removeprefix("Value error, ")))
            return out
        return []

    @property
    def option_names(self) -> list[str]:
        return sorted(self.options.model_fields)
