"""freehead: neural talking-head synthesis with explicit gaze control."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Reenactor", "__version__"]

if TYPE_CHECKING:
    from freehead.inference.reenactor import Reenactor


def __getattr__(name: str):
    if name == "Reenactor":  # imported on first use: torch and mediapipe load slowly
        from freehead.inference.reenactor import Reenactor

        return Reenactor
    raise AttributeError(f"module 'freehead' has no attribute {name!r}")
