"""Turning a broker's generic ``options`` mapping (from the config file) into a typed settings model.

The config stores each broker's options as plain strings; a broker declares a pydantic model for
them and :func:`parse_options` validates, converts and reports problems in plain words naming
the broker and the option, never echoing a value (an option could be pasted from a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class BrokerConfigError(ValueError):
    """A broker's options or credentials are missing or invalid."""


def parse_options(model: type[M], options: Mapping[str, Any], *, broker: str) -> M:
    """``options`` validated into ``model``; unknown or bad options raise :class:`BrokerConfigError`."""
    normalised = {str(k).strip().lower().replace("-", "_"): v for k, v in options.items()}
    try:
        return model.model_validate(normalised)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(options)"
            if err["type"] == "extra_forbidden":
                known = ", ".join(sorted(model.model_fields))
                problems.append(f"unknown option {where!r} (known options: {known})")
            else:
                problems.append(f"option {where!r}: {err['msg']}")
        raise BrokerConfigError(f"broker {broker!r}: " + "; ".join(problems)) from None


def require_secrets(secrets: Mapping[str, Any], required: tuple[str, ...], *, broker: str) -> dict[str, str]:
    """The secrets as a lower-cased dict; raises naming (only) the missing keys and where to set them."""
    found = {str(k).strip().lower(): str(v) for k, v in secrets.items() if v is not None and str(v) != ""}
    missing = [k for k in required if k not in found]
    if missing:
        env = ", ".join(f"TTERM_{_env_name(broker)}_{k.upper()}" for k in missing)
        raise BrokerConfigError(
            f"broker {broker!r}: missing credentials {', '.join(missing)}; set them in the secrets file "
            f"or in the environment ({env})"
        )
    return found


def _env_name(broker: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in broker).upper()
