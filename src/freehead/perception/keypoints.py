"""Index tables into mediapipe's 478-point face mesh (468 mesh points + 5 per iris).

``KEYPOINT_MESH_INDICES`` is the single table that defines freehead's K = 68 keypoints:
the iBUG 300-W layout, each point taken as the mediapipe mesh vertex at the same
anatomical place. iBUG numbers its points from the image's left, so "left" and "right"
below are image sides (the person's right side is image left).

====  =====================  ==========================================================
iBUG  part                   mediapipe mesh indices
====  =====================  ==========================================================
0-16  jaw, image left->right 162 234 93 58 172 136 149 148 152 377 378 365 397 288 323
                             454 389
17-21 brow, image left       70 63 105 66 107 (outer -> inner)
22-26 brow, image right      336 296 334 293 300 (inner -> outer)
27-30 nose bridge            168 6 197 4 (top -> tip)
31-35 nose base              98 97 2 326 327 (image left -> right)
36-41 eye, image left        33 160 158 133 153 144 (outer corner, upper lid, inner
                             corner, lower lid)
42-47 eye, image right       362 385 387 263 373 380 (inner corner, upper lid, outer
                             corner, lower lid)
48-59 lips, outer            61 39 37 0 267 269 291 405 314 17 84 181
60-67 lips, inner            78 82 13 312 308 317 14 87
====  =====================  ==========================================================
"""

from __future__ import annotations

NUM_LANDMARKS = 478
NUM_KEYPOINTS = 68

# fmt: off
KEYPOINT_MESH_INDICES: tuple[int, ...] = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    70, 63, 105, 66, 107,
    336, 296, 334, 293, 300,
    168, 6, 197, 4,
    98, 97, 2, 326, 327,
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)
# fmt: on

KEYPOINT_PARTS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "brow_left": tuple(range(17, 22)),
    "brow_right": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_base": tuple(range(31, 36)),
    "eye_left": tuple(range(36, 42)),
    "eye_right": tuple(range(42, 48)),
    "lips_outer": tuple(range(48, 60)),
    "lips_inner": tuple(range(60, 68)),
}
"""Keypoint indices (into the 68) of each face part; left/right are image sides."""

CLOSED_PARTS = frozenset({"eye_left", "eye_right", "lips_outer", "lips_inner"})
"""Parts whose outline closes on itself."""


def _mirror_pairs() -> tuple[tuple[int, int], ...]:
    """iBUG index pairs that swap under a left-right mirror of the face."""
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nose base
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56)]  # outer lips
    pairs += [(60, 64), (61, 63), (67, 65)]  # inner lips
    return tuple(pairs)


KEYPOINT_MIRROR_PAIRS = _mirror_pairs()
KEYPOINT_MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)
"""Keypoints on the face's plane of symmetry."""

# Eyes, indexed 0 = image-left eye (the person's right eye), 1 = image-right eye.
EYE_OUTER_CORNER = (33, 263)
EYE_INNER_CORNER = (133, 362)
EYE_UPPER_LID = (159, 386)
EYE_LOWER_LID = (145, 374)
IRIS = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))
"""Iris landmarks of each eye: the centre, then four points on the iris contour."""

NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)

RIGID_MESH_INDICES: tuple[int, ...] = (
    # forehead
    10, 151, 9, 8, 109, 67, 103, 338, 297, 332, 108, 69, 337, 299,
    # nose bridge and base, which move little with expression
    168, 6, 197, 195, 5, 4, 1, 98, 327,
    # eye corners
    33, 133, 362, 263,
    # temples
    127, 356, 234, 454,
)  # fmt: skip
"""Mesh points that move little with expression; the head-pose fit uses only these."""
