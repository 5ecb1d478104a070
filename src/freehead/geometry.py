"""Geometry conventions of freehead, in one place.

Coordinates
    Crop coordinates: x to the right, y down, both in [-1, 1] over the square crop
    (-1 is the outer edge of the first pixel, +1 the outer edge of the last one, as in
    ``grid_sample(align_corners=False)``); z in the same unit, positive away from the
    camera. The frame is right-handed. Projection is orthographic: a point's image
    position is its (x, y); scale enters through the similarity's ``s``.

Head rotation
    ``R = R_y(yaw) @ R_x(-pitch) @ R_z(roll)`` with the elementary right-handed rotations
    of the camera frame above, angles in degrees. The head frame is the camera frame of a
    face looking straight into the camera, so the face's forward direction is ``(0, 0, -1)``.
    Signs, for a photo that is not mirrored:

    * yaw > 0: the face turns to the person's right, which is image left (nose to -x);
    * pitch > 0: the face tilts up (nose to -y);
    * roll > 0: the face rotates clockwise in the image, as the viewer sees it.

    Networks use the 6D representation of Zhou et al. (CVPR 2019): the first two columns
    of R, which is continuous, unlike Euler angles.

Gaze
    A unit vector ``g`` in camera (or head) coordinates, pointing from the eyeball centre
    through the iris centre. Angles (pitch, yaw) in degrees, (0, 0) = looking into the
    camera, with the same signs as the head: yaw > 0 looks to the person's right (image
    left), pitch > 0 looks up. This is the convention of MPIIGaze and ETH-XGaze::

        g = (-cos(pitch) sin(yaw), -sin(pitch), -cos(pitch) cos(yaw))

    It is the forward direction of a head with the same yaw and pitch:
    ``rotation_from_angles(yaw, pitch, r) @ (0, 0, -1) == gaze_from_angles(pitch, yaw)``.
    (The paper writes theta = arctan(sqrt(gx^2 + gy^2) / gz), phi = arctan(gy / gz); we
    keep the convention above everywhere and convert only at the edges.) Gaze relative
    to the head is ``R^T g``.

Canonical keypoints (Free-HeadGAN, Eq. 1 and 2)
    ``p_can = R^-1 (p - d - t) / s`` and ``p = s R p_can + t + d``.

All functions take and return torch tensors with any leading batch shape ``...``; they
work in float32 or float64 and are differentiable where the math is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

FORWARD = (0.0, 0.0, -1.0)
"""The face's (and a straight gaze's) forward direction in head coordinates."""


# --------------------------------------------------------------------------- rotations


def _axis_rotation(angle_rad: Tensor, axis: int) -> Tensor:
    """Right-handed rotation about one coordinate axis. ``(...)`` -> ``(..., 3, 3)``."""
    c, s = torch.cos(angle_rad), torch.sin(angle_rad)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    if axis == 0:
        rows = [(one, zero, zero), (zero, c, -s), (zero, s, c)]
    elif axis == 1:
        rows = [(c, zero, s), (zero, one, zero), (-s, zero, c)]
    else:
        rows = [(c, -s, zero), (s, c, zero), (zero, zero, one)]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rotation_from_angles(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """Head rotation from Euler angles in degrees. ``(...)`` x3 -> ``(..., 3, 3)``."""
    y, p, r = (torch.deg2rad(torch.as_tensor(a)) for a in (yaw, pitch, roll))
    y, p, r = torch.broadcast_tensors(y, p, r)
    return _axis_rotation(y, 1) @ _axis_rotation(-p, 0) @ _axis_rotation(r, 2)


def angles_from_rotation(rotation: Tensor) -> Tensor:
    """(yaw, pitch, roll) in degrees from a rotation. ``(..., 3, 3)`` -> ``(..., 3)``.

    Inverse of :func:`rotation_from_angles` for |pitch| < 90.
    """
    r = rotation
    pitch = torch.asin(r[..., 1, 2].clamp(-1.0, 1.0))
    yaw = torch.atan2(r[..., 0, 2], r[..., 2, 2])
    roll = torch.atan2(r[..., 1, 0], r[..., 1, 1])
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1))


def rotation_to_6d(rotation: Tensor) -> Tensor:
    """The continuous 6D representation: the first two columns. ``(..., 3, 3)`` -> ``(..., 6)``."""
    return torch.cat([rotation[..., :, 0], rotation[..., :, 1]], dim=-1)


def rotation_from_6d(six: Tensor, eps: float = 1e-8) -> Tensor:
    """Gram-Schmidt a 6D vector into a rotation. ``(..., 6)`` -> ``(..., 3, 3)``.

    Any 6D vector whose halves are not parallel gives a proper rotation; for the output
    of :func:`rotation_to_6d` it gives the rotation back.
    """
    a, b = six[..., :3], six[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp_min(eps)
    b = b - (x * b).sum(-1, keepdim=True) * x
    y = b / b.norm(dim=-1, keepdim=True).clamp_min(eps)
    z = torch.linalg.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def rotation_angle_deg(r1: Tensor, r2: Tensor) -> Tensor:
    """Geodesic angle between two rotations in degrees. ``(..., 3, 3)`` x2 -> ``(...)``."""
    rel = r1.transpose(-1, -2) @ r2
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


# ------------------------------------------------------------- canonicalise and adapt


def canonicalise(
    points: Tensor, rotation: Tensor, translation: Tensor, scale: Tensor, deformation: Tensor
) -> Tensor:
    """Canonical keypoints ``p_can = R^-1 (p - d - t) / s``.

    Shapes: points and deformation ``(..., K, 3)``, rotation ``(..., 3, 3)``,
    translation ``(..., 3)``, scale ``(...)``. Returns ``(..., K, 3)``.
    """
    centred = points - deformation - translation[..., None, :]
    # R^-1 = R^T; row vectors: (R^T q^T)^T = q R.
    return (centred @ rotation) / scale[..., None, None]


def adapt(
    canonical: Tensor, rotation: Tensor, translation: Tensor, scale: Tensor, deformation: Tensor
) -> Tensor:
    """Posed keypoints ``p = s R p_can + t + d`` (shapes as in :func:`canonicalise`)."""
    posed = scale[..., None, None] * (canonical @ rotation.transpose(-1, -2))
    return posed + translation[..., None, :] + deformation


def apply_similarity(
    points: Tensor, rotation: Tensor, translation: Tensor, scale: Tensor
) -> Tensor:
    """``s R p + t`` for row-vector points. ``(..., N, 3)`` -> ``(..., N, 3)``."""
    return adapt(points, rotation, translation, scale, torch.zeros_like(points))


# ------------------------------------------------------------------------------ gaze


def gaze_from_angles(pitch: Tensor, yaw: Tensor) -> Tensor:
    """Unit gaze vector from (pitch, yaw) in degrees. ``(...)`` x2 -> ``(..., 3)``."""
    p, y = torch.broadcast_tensors(
        torch.deg2rad(torch.as_tensor(pitch)), torch.deg2rad(torch.as_tensor(yaw))
    )
    cp = torch.cos(p)
    return torch.stack([-cp * torch.sin(y), -torch.sin(p), -cp * torch.cos(y)], dim=-1)


def angles_from_gaze(gaze: Tensor) -> Tensor:
    """(pitch, yaw) in degrees from a gaze vector (need not be unit). ``(..., 3)`` -> ``(..., 2)``."""
    g = gaze / gaze.norm(dim=-1, keepdim=True)
    pitch = torch.asin((-g[..., 1]).clamp(-1.0, 1.0))
    yaw = torch.atan2(-g[..., 0], -g[..., 2])
    return torch.rad2deg(torch.stack([pitch, yaw], dim=-1))


def angle_between_deg(a: Tensor, b: Tensor) -> Tensor:
    """Angle between two vectors in degrees, robust near 0 and 180. ``(..., 3)`` x2 -> ``(...)``."""
    a, b = torch.broadcast_tensors(a, b)
    cross = torch.linalg.cross(a, b, dim=-1).norm(dim=-1)
    dot = (a * b).sum(-1)
    return torch.rad2deg(torch.atan2(cross, dot))


# ----------------------------------------------------------------- similarity (Umeyama)


@dataclass(frozen=True)
class Similarity:
    """A similarity transform ``x -> s R x + t``.

    Shapes: rotation ``(..., 3, 3)``, translation ``(..., 3)``, scale ``(...)``.
    """

    rotation: Tensor
    translation: Tensor
    scale: Tensor

    def apply(self, points: Tensor) -> Tensor:
        """``(..., N, 3)`` -> ``(..., N, 3)``."""
        return apply_similarity(points, self.rotation, self.translation, self.scale)

    def invert_points(self, points: Tensor) -> Tensor:
        """``R^T (x - t) / s``. ``(..., N, 3)`` -> ``(..., N, 3)``."""
        return canonicalise(
            points, self.rotation, self.translation, self.scale, torch.zeros_like(points)
        )


def fit_similarity(source: Tensor, target: Tensor, weights: Tensor | None = None) -> Similarity:
    """Least-squares similarity with ``target ≈ s R source + t`` (Umeyama, PAMI 1991).

    ``source`` and ``target`` are ``(..., N, 3)`` with N >= 3 non-collinear points;
    optional ``weights`` ``(..., N)`` are non-negative. R is a proper rotation
    (det = +1) even when the best orthogonal fit would be a reflection.
    """
    if weights is None:
        weights = torch.ones(source.shape[:-1], dtype=source.dtype, device=source.device)
    w = weights / weights.sum(-1, keepdim=True)
    mu_s = (w[..., None] * source).sum(-2)
    mu_t = (w[..., None] * target).sum(-2)
    xs = source - mu_s[..., None, :]
    xt = target - mu_t[..., None, :]
    cov = (w[..., None] * xt).transpose(-1, -2) @ xs  # (..., 3, 3) = sum w y x^T
    u, sigma, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    correction = torch.ones_like(sigma)
    correction[..., 2] = d
    rotation = u @ torch.diag_embed(correction) @ vh
    var_s = (w * (xs * xs).sum(-1)).sum(-1)
    scale = (sigma * correction).sum(-1) / var_s
    translation = (
        mu_t - scale[..., None] * (mu_s[..., None, :] @ rotation.transpose(-1, -2))[..., 0, :]
    )
    return Similarity(rotation=rotation, translation=translation, scale=scale)


# ---------------------------------------------------------------------- eye template


@dataclass(frozen=True)
class EyeTemplate:
    """A unit eyeball looking along ``(0, 0, -1)``: a UV sphere whose poles lie on the
    gaze axis, plus an iris ring and the iris centre on the sphere's front.

    vertices ``(V, 3)``, faces ``(F, 3)`` (sphere triangles and the iris disk fan),
    edges ``(E, 2)`` (each undirected edge once), ``iris_ring`` and ``sphere`` index
    arrays, ``iris_centre`` the index of the iris centre vertex.
    """

    vertices: Tensor
    faces: Tensor
    edges: Tensor
    sphere: Tensor
    iris_ring: Tensor
    iris_centre: int
    iris_angle_deg: float


def eye_template(rings: int = 12, segments: int = 24, iris_angle_deg: float = 30.0) -> EyeTemplate:
    """Build the template (default: 290 sphere + 24 iris ring + 1 centre = 315 vertices).

    The iris ring sits on the sphere at ``iris_angle_deg`` from the gaze axis; 30° is an
    iris radius of 6 mm on a 12 mm eyeball.
    """
    verts: list[tuple[float, float, float]] = [(0.0, 0.0, -1.0)]  # front pole
    for i in range(1, rings):
        theta = math.pi * i / rings  # polar angle from the gaze axis
        for j in range(segments):
            phi = 2 * math.pi * j / segments
            verts.append(
                (
                    math.sin(theta) * math.cos(phi),
                    math.sin(theta) * math.sin(phi),
                    -math.cos(theta),
                )
            )
    verts.append((0.0, 0.0, 1.0))  # back pole
    n_sphere = len(verts)
    faces: list[tuple[int, int, int]] = []

    def ring_index(i: int, j: int) -> int:
        return 1 + (i - 1) * segments + (j % segments)

    for j in range(segments):
        faces.append((0, ring_index(1, j), ring_index(1, j + 1)))
        faces.append((n_sphere - 1, ring_index(rings - 1, j + 1), ring_index(rings - 1, j)))
    for i in range(1, rings - 1):
        for j in range(segments):
            a, b = ring_index(i, j), ring_index(i, j + 1)
            c, d = ring_index(i + 1, j), ring_index(i + 1, j + 1)
            faces += [(a, c, b), (b, c, d)]
    alpha = math.radians(iris_angle_deg)
    iris_start = len(verts)
    for j in range(segments):
        phi = 2 * math.pi * j / segments
        verts.append(
            (math.sin(alpha) * math.cos(phi), math.sin(alpha) * math.sin(phi), -math.cos(alpha))
        )
    centre = len(verts)
    verts.append((0.0, 0.0, -math.cos(alpha)))
    for j in range(segments):
        faces.append((centre, iris_start + j, iris_start + (j + 1) % segments))
    faces_t = torch.tensor(faces, dtype=torch.long)
    pairs = torch.cat([faces_t[:, [0, 1]], faces_t[:, [1, 2]], faces_t[:, [2, 0]]])
    edges = torch.unique(torch.sort(pairs, dim=1).values, dim=0)
    return EyeTemplate(
        vertices=torch.tensor(verts, dtype=torch.float64),
        faces=faces_t,
        edges=edges,
        sphere=torch.arange(n_sphere),
        iris_ring=torch.arange(iris_start, iris_start + segments),
        iris_centre=centre,
        iris_angle_deg=iris_angle_deg,
    )


def place_eye_mesh(template: EyeTemplate, centre: Tensor, radius: Tensor, gaze: Tensor) -> Tensor:
    """Eye mesh vertices for an eyeball at ``centre`` with ``radius`` looking along ``gaze``.

    ``centre`` ``(..., 3)``, ``radius`` ``(...)``, ``gaze`` ``(..., 3)`` -> ``(..., V, 3)``.
    The template is turned by the zero-roll rotation that takes ``(0, 0, -1)`` to ``gaze``.
    """
    angles = angles_from_gaze(gaze)
    rot = rotation_from_angles(angles[..., 1], angles[..., 0], torch.zeros_like(angles[..., 0]))
    verts = template.vertices.to(dtype=centre.dtype, device=centre.device)
    return radius[..., None, None] * (verts @ rot.transpose(-1, -2)) + centre[..., None, :]


def gaze_from_eye_mesh(template: EyeTemplate, vertices: Tensor) -> Tensor:
    """Unit gaze vectors from eye mesh vertices: eyeball centre (mean of the sphere) to the
    iris centre (mean of the iris ring). ``(..., V, 3)`` -> ``(..., 3)``."""
    centre = vertices[..., template.sphere, :].mean(-2)
    iris = vertices[..., template.iris_ring, :].mean(-2)
    g = iris - centre
    return g / g.norm(dim=-1, keepdim=True)


def edge_lengths(template: EyeTemplate, vertices: Tensor) -> Tensor:
    """Lengths of the template's edges. ``(..., V, 3)`` -> ``(..., E)``."""
    e = template.edges.to(vertices.device)
    return (vertices[..., e[:, 0], :] - vertices[..., e[:, 1], :]).norm(dim=-1)


def lift_iris_to_sphere(centre: Tensor, iris_distance: Tensor, iris_xy: Tensor) -> Tensor:
    """Unit gaze from an eyeball centre and the iris centre seen in the image.

    Under orthographic projection the iris centre lies at ``iris_distance`` from the
    eyeball centre, on the camera side; its image position ``iris_xy`` fixes the rest.
    An image offset longer than ``iris_distance`` (tracker noise) is clamped to it,
    which gives a gaze in the image plane.

    ``centre`` ``(..., 3)``, ``iris_distance`` ``(...)``, ``iris_xy`` ``(..., 2)`` -> ``(..., 3)``.
    """
    offset = iris_xy - centre[..., :2]
    norm = offset.norm(dim=-1, keepdim=True)
    limit = iris_distance[..., None]
    offset = torch.where(norm > limit, offset * limit / norm.clamp_min(1e-12), offset)
    dz = torch.sqrt((limit[..., 0] ** 2 - (offset * offset).sum(-1)).clamp_min(0.0))
    g = torch.cat([offset, -dz[..., None]], dim=-1)
    return g / g.norm(dim=-1, keepdim=True)
