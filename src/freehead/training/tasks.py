"""The estimators' training tasks for the shared loop: run configs, data, losses, validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from freehead.data.frames import ClipFrames
from freehead.evaluation.estimators import evaluate_estimators
from freehead.models.gaze import (
    GazeEstimator,
    GazeEstimatorConfig,
    cut_eye_patches,
    eye_frames,
)
from freehead.models.keypoints import (
    KeypointEstimator,
    KeypointEstimatorConfig,
    KeypointPrediction,
)
from freehead.training.data import AugmentConfig, EyeSamples, KeypointPairs
from freehead.training.loop import Task, TrainConfig
from freehead.training.losses import (
    GazeLossWeights,
    KeypointLossWeights,
    KeypointTargets,
    gaze_losses,
    keypoint_losses,
)


def _labels(frames: ClipFrames, field_name: str) -> Tensor:
    """One label field over every usable frame of ``frames``, stacked."""
    arrays = [getattr(frames.labels[c], field_name)[idx] for c, idx in frames.clip_frames.items()]
    return torch.from_numpy(np.concatenate(arrays))


# ---------------------------------------------------------------------------- E_can


@dataclass(frozen=True)
class KeypointRunConfig:
    """Everything a ``freehead train keypoints`` run is made of."""

    model: KeypointEstimatorConfig = field(default_factory=KeypointEstimatorConfig)
    loss: KeypointLossWeights = field(default_factory=KeypointLossWeights)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class KeypointTask(Task):
    kind = "keypoints"
    config_type = KeypointRunConfig
    config: KeypointRunConfig

    def build_model(self) -> nn.Module:
        return KeypointEstimator(self.config.model)

    def initialise(self, model: nn.Module) -> None:
        assert isinstance(model, KeypointEstimator)
        frames = ClipFrames(self.dataset, "train")
        rotation = _labels(frames, "rotation").mean(0)
        u, _, vh = torch.linalg.svd(rotation.double())
        model.set_output_bias(
            _labels(frames, "keypoints").mean(0),
            (u @ vh).float(),  # the nearest rotation to the mean
            _labels(frames, "translation").mean(0),
            _labels(frames, "scale").mean(),
        )

    def train_dataset(self) -> KeypointPairs:
        frames = ClipFrames(self.dataset, "train")
        return KeypointPairs(frames, self.config.model.input_size, self.config.augment)

    def losses(self, model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        b = batch["image"].shape[0]
        pred = model(batch["image"].flatten(0, 1))  # one forward for both frames of a pair

        def half(i: int) -> KeypointPrediction:
            return KeypointPrediction(
                keypoints=pred.keypoints.view(b, 2, -1, 3)[:, i],
                rotation=pred.rotation.view(b, 2, 3, 3)[:, i],
                translation=pred.translation.view(b, 2, 3)[:, i],
                scale=pred.scale.view(b, 2)[:, i],
                deformation=pred.deformation.view(b, 2, -1, 3)[:, i],
            )

        def targets(i: int) -> KeypointTargets:
            return KeypointTargets(
                keypoints=batch["keypoints"][:, i],
                rotation=batch["rotation"][:, i],
                translation=batch["translation"][:, i],
                scale=batch["scale"][:, i],
            )

        return keypoint_losses(half(0), half(1), targets(0), targets(1), self.config.loss)

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        assert isinstance(model, KeypointEstimator)
        frames = ClipFrames(self.dataset, "heldout")
        refs = frames.evenly_spaced(self.config.train.validation_frames)
        return evaluate_estimators(frames, refs, keypoint_model=model).to_json()


# ---------------------------------------------------------------------------- E_gaze


@dataclass(frozen=True)
class EyePatchJitter:
    """Random moves of the eye patches in training (the keypoints they are cut from are
    E_can's at inference, which are off by a little): centre shift in inter-ocular
    distances, relative size change, angle in degrees."""

    shift: float = 0.03
    scale: float = 0.08
    angle_deg: float = 5.0


@dataclass(frozen=True)
class GazeRunConfig:
    """Everything a ``freehead train gaze`` run is made of."""

    model: GazeEstimatorConfig = field(default_factory=GazeEstimatorConfig)
    loss: GazeLossWeights = field(default_factory=GazeLossWeights)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    patch_jitter: EyePatchJitter = field(default_factory=EyePatchJitter)
    train: TrainConfig = field(default_factory=TrainConfig)


class GazeTask(Task):
    kind = "gaze"
    config_type = GazeRunConfig
    config: GazeRunConfig

    def build_model(self) -> nn.Module:
        return GazeEstimator(self.config.model)

    def initialise(self, model: nn.Module) -> None:
        assert isinstance(model, GazeEstimator)
        data = EyeSamples(ClipFrames(self.dataset, "train", need_open_eyes=True), augment=None)
        pick = torch.linspace(0, len(data) - 1, min(len(data), 500)).long()
        meshes = torch.stack([data[int(i)]["meshes"] for i in pick])
        keypoints = torch.stack([data[int(i)]["keypoints"] for i in pick])
        local = eye_frames(keypoints).to_local(meshes)  # (N, 2, V, 3)
        model.set_output_bias(local.flatten(0, 1).mean(0))

    def train_dataset(self) -> EyeSamples:
        return EyeSamples(
            ClipFrames(self.dataset, "train", need_open_eyes=True), self.config.augment
        )

    def losses(self, model: nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        j = self.config.patch_jitter
        frames = eye_frames(batch["keypoints"]).jitter(j.shift, j.scale, j.angle_deg)
        patches = cut_eye_patches(batch["image"], frames, self.config.model)
        targets = frames.to_local(batch["meshes"]).flatten(0, 1)
        return gaze_losses(model(patches), targets, self.config.loss)

    def validate(self, model: nn.Module, step: int) -> dict[str, float]:
        assert isinstance(model, GazeEstimator)
        frames = ClipFrames(self.dataset, "heldout", need_open_eyes=True)
        refs = frames.evenly_spaced(self.config.train.validation_frames)
        return evaluate_estimators(frames, refs, gaze_model=model).to_json()


def _tasks() -> dict[str, type[Task]]:
    from freehead.training.generator_task import GeneratorTask

    return {"keypoints": KeypointTask, "gaze": GazeTask, "generator": GeneratorTask}


TASKS: dict[str, type[Task]] = _tasks()
