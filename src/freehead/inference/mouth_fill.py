"""The mouth interior a warp cannot make: where the output opens wider than the source.

The mesh warp (G v2's prior) shows the source's own mouth interior at its own size below
the upper lip (:func:`freehead.perception.meshwarp.mouth_interior`); what the target opens
wider than that has no source pixels, and a flow can only stretch the lower lip over it.
Those pixels (the warp's *cavity*, each with a weight rising from 0 at the source's own
interior to 1 beyond it) are filled here, after G:

* with a driving face, by the **driver's own mouth interior** (teeth, tongue, the dark
  cavity), mapped from the output's opening onto the driver's by the inner lips: a pixel
  a fraction ``u`` of the way from corner to corner and ``t`` of the way from the upper to
  the lower inner lip reads the driver's crop at the same ``u`` and ``t``. Its colours are
  scaled per channel by the ratio of the two faces' skin (patches on the cheeks and chin),
  so a driver filmed in warmer light does not bring that light along; where the driver's
  own opening is near shut (:data:`SHUT_PX`), it fades to the cavity colour;
* without one (free view, pose or gaze edits), by the dark cavity colour the mesh warp
  shades with (:data:`freehead.perception.meshwarp.MOUTH_CAVITY_RGB`).

Coordinates are the crops' pixels (pixel centres at ``i + 0.5``, as the face meshes are),
and the mouth's frame is turned with the line between the inner mouth corners, so a
rolled head maps as an upright one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from freehead.perception.meshwarp import MOUTH_CAVITY_RGB, MOUTH_CORNERS_INNER

SKIN_POINTS = (50, 280, 205, 425, 199)
"""Face-mesh points on both cheeks, beside the nostrils and on the chin, whose surroundings
give each face's skin colour."""

SKIN_PATCH = 0.2
"""The side of each skin patch, as a share of the mouth's width."""

SHUT_PX = 3.0
"""A driver opening (inner lip to inner lip) under this many pixels of its crop has no
interior to lend: the fill fades from the driver's interior at twice this to the cavity
colour at this."""

GAIN_RANGE = (0.6, 1.6)
"""The skin colour ratio is held within this range, so a face half in shadow cannot turn
the teeth black or white."""


@dataclass(frozen=True)
class MouthFrame:
    """A mouth's frame in its crop: ``origin`` ``(2,)`` the first inner corner (pixels),
    ``axes`` ``(2, 2)`` rows: unit x towards the other corner, unit y downwards across it,
    ``width`` corner to corner in pixels; ``upper`` and ``lower`` ``(n, 2)`` the inner lips
    in (u, v) units of the width, sorted by u."""

    origin: np.ndarray
    axes: np.ndarray
    width: float
    upper: np.ndarray
    lower: np.ndarray

    @classmethod
    def of(cls, mesh: np.ndarray, lips: tuple[np.ndarray, np.ndarray]) -> MouthFrame:
        """The frame of a face mesh ``(478, 2+)`` in crop pixels, with ``lips`` the upper
        and lower inner lips' indices (:attr:`MeshTopology.lips`)."""
        a, b = (mesh[i, :2].astype(np.float64) for i in MOUTH_CORNERS_INNER)
        width = max(float(np.linalg.norm(b - a)), 1e-6)
        ex = (b - a) / width
        axes = np.stack([ex, np.array([-ex[1], ex[0]])])
        upper, lower = ((mesh[list(idx), :2] - a) @ axes.T / width for idx in lips)
        return cls(a, axes, width, upper[np.argsort(upper[:, 0])], lower[np.argsort(lower[:, 0])])

    def to_uv(self, points: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` -> (u, v) ``(N, 2)``."""
        return (points - self.origin) @ self.axes.T / self.width

    def to_pixels(self, uv: np.ndarray) -> np.ndarray:
        """(u, v) ``(N, 2)`` -> pixels ``(N, 2)``."""
        return self.origin + uv @ self.axes * self.width

    def lips_at(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The upper and lower inner lips' v at each ``u`` ``(N,)`` (held beyond the
        corners), the lower never above the upper."""
        top = np.interp(u, self.upper[:, 0], self.upper[:, 1])
        bottom = np.interp(u, self.lower[:, 0], self.lower[:, 1])
        return top, np.maximum(bottom, top)


def driver_points(rows: np.ndarray, cols: np.ndarray, output: MouthFrame,
                  driver: MouthFrame) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Where each output pixel (``rows``, ``cols`` ``(N,)``) inside the opening reads the
    driver's crop, ``(N, 2)`` pixel positions (centres at ``i + 0.5``), and the driver's
    opening there in pixels ``(N,)``: the same share across the mouth and of the way down
    from the upper inner lip to the lower."""
    centres = np.stack([cols, rows], 1).astype(np.float64) + 0.5
    uv = output.to_uv(centres)
    top, bottom = output.lips_at(uv[:, 0])
    t = np.clip((uv[:, 1] - top) / np.maximum(bottom - top, 1e-6), 0.0, 1.0)
    d_top, d_bottom = driver.lips_at(uv[:, 0])
    v = d_top + t * (d_bottom - d_top)
    return driver.to_pixels(np.stack([uv[:, 0], v], 1)), (d_bottom - d_top) * driver.width


def skin_colour(image: np.ndarray, mesh: np.ndarray, frame: MouthFrame) -> np.ndarray:
    """The median colour ``(3,)`` of small patches around :data:`SKIN_POINTS` of a face
    mesh ``(478, 2+)`` in ``image`` ``(S, S, 3)`` uint8."""
    h, w = image.shape[:2]
    r = max(1, round(SKIN_PATCH * frame.width / 2))
    patches = []
    for i in SKIN_POINTS:
        x, y = (int(v) for v in np.clip(mesh[i, :2], 0, [w - 1, h - 1]))
        patches.append(image[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1].reshape(-1, 3))
    return np.median(np.concatenate(patches), 0).astype(np.float64)


def fill_mouth(output: np.ndarray, cavity: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
               mesh: np.ndarray, lips: tuple[np.ndarray, np.ndarray],
               driver: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:  # fmt: skip
    """``output`` ``(S, S, 3)`` uint8 with its mouth ``cavity`` (rows, columns, weights
    ``(N,)``, :meth:`MeshWarp.flow_and_cavity`'s for the output's mesh ``mesh``
    ``(478, 3)``) filled from the ``driver``'s (crop ``(S', S', 3)`` uint8, mesh
    ``(478, 3)`` in its pixels) interior, or the cavity colour without one. In place (a
    rendered crop is often a strided view, whose copy would cost more than the fill);
    returns ``output``."""
    if cavity is None or not np.any(cavity[2] > 0):
        return output
    rows, cols, weight = cavity
    keep = weight > 0
    rows, cols, weight = rows[keep], cols[keep], weight[keep].astype(np.float64)
    colour = np.broadcast_to(np.float64(MOUTH_CAVITY_RGB), (len(rows), 3))
    if driver is not None:
        crop, driver_mesh = driver
        frames = MouthFrame.of(mesh, lips), MouthFrame.of(driver_mesh, lips)
        points, opening = driver_points(rows, cols, *frames)
        xy = (points - 0.5).astype(np.float32)[:, None]  # cv2's centres at integers
        sampled = cv2.remap(crop, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)[:, 0].astype(np.float64)  # fmt: skip
        gain = skin_colour(output, mesh, frames[0]) / np.maximum(
            skin_colour(crop, driver_mesh, frames[1]), 1.0
        )
        sampled = np.clip(sampled * np.clip(gain, *GAIN_RANGE), 0, 255)
        lent = np.clip((opening - SHUT_PX) / SHUT_PX, 0.0, 1.0)[:, None]
        colour = colour + lent * (sampled - colour)
    patch = output[rows, cols].astype(np.float64)
    output[rows, cols] = np.round(patch + weight[:, None] * (colour - patch)).astype(np.uint8)
    return output
