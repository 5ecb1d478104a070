"""Eye meshes and gaze pseudo-labels by an eyeball fit (docs/data.md, "Eyes and gaze").

The model, in head units (1 IOD = the distance between the outer eye corners, ~90 mm on
an adult):

* each eyeball is a sphere of radius ``EYEBALL_RADIUS_IOD`` (12 mm / 90 mm);
* its centre is fixed in head coordinates for a clip: the median over the clip of the
  midpoint of that eye's two corners (so it follows the person, not an average face),
  moved by the head model's ``eyeball_offset``: ``EYEBALL_DEPTH_IOD`` behind the corners
  in z, and in x and y calibrated on footage of people looking into the camera
  (:func:`freehead.perception.mean_shape_build.build_mean_shape`);
* the iris centre lies on the sphere's front at ``IRIS_DISTANCE_IOD`` from the centre
  (an iris of 6 mm radius at 30° from the gaze axis);
* gaze is the unit vector from the eyeball centre to the iris centre lifted onto that
  sphere from the iris landmarks' image position (orthographic, as everywhere).

The eye mesh pseudo-label v* is the template of :func:`freehead.geometry.eye_template`
placed at the centre, scaled to the radius and turned to the gaze.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from freehead.geometry import (
    EyeTemplate,
    Similarity,
    eye_template,
    lift_iris_to_sphere,
    place_eye_mesh,
)
from freehead.perception.keypoints import (
    EYE_INNER_CORNER,
    EYE_LOWER_LID,
    EYE_OUTER_CORNER,
    EYE_UPPER_LID,
)
from freehead.perception.shape import MeanShape, iris_centres

EYEBALL_RADIUS_IOD = 12.0 / 90.0
IRIS_ANGLE_DEG = 30.0
IRIS_DISTANCE_IOD = EYEBALL_RADIUS_IOD * math.cos(math.radians(IRIS_ANGLE_DEG))
EYEBALL_DEPTH_IOD = 0.3 * EYEBALL_RADIUS_IOD
OPEN_EYE_THRESHOLD = 0.12
"""Eyes with an openness (lid gap / corner distance) below this count as closed."""

TEMPLATE: EyeTemplate = eye_template(iris_angle_deg=IRIS_ANGLE_DEG)


def corner_midpoints(landmarks: Tensor) -> Tensor:
    """Midpoint of each eye's corners. ``(..., 478, 3)`` -> ``(..., 2, 3)``."""
    outer = landmarks[..., list(EYE_OUTER_CORNER), :]
    inner = landmarks[..., list(EYE_INNER_CORNER), :]
    return (outer + inner) / 2


def eye_openness(landmarks: Tensor) -> Tensor:
    """Lid gap over corner distance in the image plane, per eye. ``(..., 478, 3)`` -> ``(..., 2)``."""
    xy = landmarks[..., :2]
    gap = (xy[..., list(EYE_UPPER_LID), :] - xy[..., list(EYE_LOWER_LID), :]).norm(dim=-1)
    width = (xy[..., list(EYE_OUTER_CORNER), :] - xy[..., list(EYE_INNER_CORNER), :]).norm(dim=-1)
    return gap / width.clamp_min(1e-9)


@dataclass(frozen=True)
class EyeFit:
    """Eyes of T frames: ``centres`` ``(T, 2, 3)``, ``radius`` ``(T,)``, unit ``gaze``
    ``(T, 2, 3)`` in the frame of the landmarks (eye 0 = image left), ``openness`` ``(T, 2)``.
    """

    centres: Tensor
    radius: Tensor
    gaze: Tensor
    openness: Tensor

    def combined_gaze(self) -> Tensor:
        """One gaze for both eyes, the normalised sum. ``(T, 3)``."""
        g = self.gaze.sum(-2)
        return g / g.norm(dim=-1, keepdim=True)

    def meshes(self) -> Tensor:
        """Eye mesh vertices v*. ``(T, 2, V, 3)``."""
        return place_eye_mesh(TEMPLATE, self.centres, self.radius[:, None].expand(-1, 2), self.gaze)


def fit_eyes(
    landmarks: Tensor,
    pose: Similarity,
    mean_shape: MeanShape,
    valid: Tensor | None = None,
    independent_frames: bool = False,
) -> EyeFit:
    """Fit both eyes of a clip.

    ``landmarks`` ``(T, 478, 3)`` with ``pose`` fitted on them (same frame and unit).
    Frames of one clip share eyeball centres in head coordinates, from the frames that
    ``valid`` ``(T,)`` marks (default, or when it marks none: all); ``independent_frames``
    gives every frame its own instead (unrelated images).
    """
    if valid is None or not bool(valid.any()):
        valid = torch.ones(landmarks.shape[0], dtype=torch.bool)
    head = pose.invert_points(landmarks)  # (T, 478, 3) in head units
    mids = corner_midpoints(head)  # (T, 2, 3)
    if not independent_frames:
        mids = mids[valid].median(dim=0).values.expand(landmarks.shape[0], -1, -1)
    offset = torch.as_tensor(mean_shape.eyeball_offset, dtype=landmarks.dtype)
    centres = pose.apply(mids + offset)  # (T, 2, 3)
    radius = pose.scale * EYEBALL_RADIUS_IOD
    iris_xy = iris_centres(landmarks)[..., :2]
    gaze = lift_iris_to_sphere(
        centres, (pose.scale * IRIS_DISTANCE_IOD)[:, None].expand(-1, 2), iris_xy
    )
    return EyeFit(centres=centres, radius=radius, gaze=gaze, openness=eye_openness(landmarks))
