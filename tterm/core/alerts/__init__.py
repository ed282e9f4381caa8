"""Price alerts held by the engine: the model and text form, the monitor, and what they run."""

from tterm.core.alerts.actions import AlertActionError, AlertActions
from tterm.core.alerts.model import (
    ALERT_EXAMPLE,
    Alert,
    AlertError,
    AlertField,
    AlertFired,
    AlertOp,
    AlertSpec,
    AlertState,
    parse_alert_spec,
)

__all__ = [
    "ALERT_EXAMPLE",
    "Alert",
    "AlertActionError",
    "AlertActions",
    "AlertError",
    "AlertField",
    "AlertFired",
    "AlertOp",
    "AlertSpec",
    "AlertState",
    "parse_alert_spec",
]
