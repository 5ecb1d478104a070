"""One entry point for ``freehead evaluate``: a method by name on a protocol by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from freehead.errors import FreeheadError

PROTOCOLS = ("standard", "unseen")
"""``standard``: self-reenactment, cross-identity and gaze redirection on the held-out
clips (:mod:`freehead.evaluation.protocol`); ``unseen``: portraits of people no training
reads, driven by those clips (:mod:`freehead.evaluation.unseen`)."""


def run_evaluation(method: str, dataset: str | Path, samples: str | Path = "data/samples",
                   protocol: str = "standard", quick: bool = False, sources: int = 1,
                   generator: str | None = None,
                   portraits: str | Path | None = None) -> tuple[object, np.ndarray]:  # fmt: skip
    """Score ``method`` (a name of :data:`~freehead.evaluation.methods.METHODS`) ->
    results (``to_json()``, ``markdown_table()``, ``seconds``) and an example picture.
    ``portraits``: a folder of portraits for ``unseen`` (default: the samples' benchmark
    portraits); ``sources``: N-shot sources for ``standard``."""
    from freehead.evaluation.methods import make_method

    if protocol not in PROTOCOLS:
        raise FreeheadError(f"no protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if sources < 1:
        raise FreeheadError("the number of sources must be at least 1")
    if protocol == "standard" and portraits is not None:
        raise FreeheadError("a portrait folder is for the unseen protocol")
    m = make_method(method, generator=generator)
    if protocol == "unseen":
        from freehead.evaluation.unseen import (
            UnseenConfig,
            default_portraits,
            evaluate_unseen,
            portrait_files,
        )

        files = portrait_files(Path(portraits)) if portraits else default_portraits(samples)
        config = UnseenConfig.quick() if quick else UnseenConfig()
        return evaluate_unseen(m, dataset, files, config)
    from freehead.evaluation.protocol import ProtocolConfig, evaluate, example_grid

    config = dataclasses.replace(ProtocolConfig.quick() if quick else ProtocolConfig(),
                                 sources=sources)  # fmt: skip
    results, examples = evaluate(m, dataset, samples, config)
    return results, example_grid(examples)
