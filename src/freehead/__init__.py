"""freehead: neural talking-head synthesis with explicit gaze control."""

__version__ = "0.1.0"
