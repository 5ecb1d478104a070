"""The networks: :class:`KeypointEstimator` (E_can) and :class:`GazeEstimator` (E_gaze)."""

from freehead.models.gaze import GazeEstimator, GazeEstimatorConfig, GazePrediction
from freehead.models.keypoints import (
    KeypointEstimator,
    KeypointEstimatorConfig,
    KeypointPrediction,
)

__all__ = [
    "GazeEstimator",
    "GazeEstimatorConfig",
    "GazePrediction",
    "KeypointEstimator",
    "KeypointEstimatorConfig",
    "KeypointPrediction",
]
