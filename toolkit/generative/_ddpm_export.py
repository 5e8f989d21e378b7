"""A fitted DDPM as two ONNX graphs: the denoiser, and the whole reverse process of one sampler
setting (its ``Loop`` built around the denoiser's graph by :mod:`toolkit.generative._sampler_graph`)."""

from __future__ import annotations

import numpy as np
from torch import nn

from toolkit._export_spec import InferenceSpec, InputSpec, OutputSpec
from toolkit.generative._sampler import DiffusionSampler
from toolkit.generative._sampler_graph import sampler_graph

# LayerNormalization, which the denoiser's blocks use, is an operator of opset 17
DENOISER_MIN_OPSET = 17
VALIDATION_SAMPLES = 8  # the sampler graph runs every step per batch: a few samples check it


def diffusion_specs(ddpm, denoiser: nn.Module, reverse: DiffusionSampler, settings: dict) -> list[InferenceSpec]:
    """``denoiser`` (X_t, t) -> eps, compared with ``ddpm.predict_noise`` on ``ddpm.diffuse``'s
    draws; ``sampler`` (initial_noise, step_noise) -> samples in the data's units, compared with
    ``ddpm.sample_from_noise`` (with ``settings``) on seeded noise.

    Parameters
    ----------
    ddpm : fitted DDPM
    denoiser : nn.Module
        The net eps_theta(x_t, t) that inference uses, on the CPU in eval mode.
    reverse : DiffusionSampler
        The steps of the exported sampler.
    settings : dict
        sampler, n_sampling_steps and eta, as ``sample_from_noise`` takes them.
    """
    net_shape, input_shape = tuple(ddpm.net_shape_), tuple(ddpm.input_shape_)
    n_steps = len(reverse)
    # 1e-3 in the net's scale (standardised rows, images in [-1, 1]), in data units: the
    # float32 rounding of the two runtimes compounds over the steps (observed 1e-5 to 4e-4).
    sampler_tolerance = {"atol": 1e-3 * float(np.max(ddpm.data_scale_)), "rtol": 0.0}

    def build(graphs: dict):
        return sampler_graph(
            graphs["denoiser"],
            reverse.timesteps,
            reverse.coefficients,
            ddpm.data_offset_,
            ddpm.data_scale_,
            net_shape,
            input_shape,
            ddpm.clip_range_,
        )

    def seeded_noise(X, n_sampling_steps=None) -> tuple[np.ndarray, np.ndarray]:
        """Noise for a few samples, seeded, whatever X is."""
        return ddpm.sampling_noise(min(len(X), VALIDATION_SAMPLES), random_state=0, n_sampling_steps=n_sampling_steps)

    return [
        InferenceSpec(
            module=denoiser,
            sample_shape=net_shape,
            outputs=[OutputSpec("eps", ddpm.predict_noise, 1 + len(net_shape))],
            example=np.zeros((2, *net_shape), dtype=np.float32),
            input_name="X_t",
            extra_inputs=(InputSpec("t", (), np.zeros(2, dtype=np.int64)),),
            graph="denoiser",
            input_method=ddpm.diffuse,
            min_opset=DENOISER_MIN_OPSET,
        ),
        InferenceSpec(
            module=None,
            sample_shape=net_shape,
            outputs=[
                OutputSpec(
                    "samples",
                    ddpm.sample_from_noise,
                    1 + len(input_shape),
                    kwargs=settings,
                    tolerance=sampler_tolerance,
                )
            ],
            example=np.zeros((2, *net_shape), dtype=np.float32),
            input_name="initial_noise",
            extra_inputs=(
                InputSpec("step_noise", (n_steps, *net_shape), np.zeros((2, n_steps, *net_shape), dtype=np.float32)),
            ),
            graph="sampler",
            input_method=seeded_noise,
            input_kwargs={"n_sampling_steps": settings["n_sampling_steps"]},
            build=build,
            min_opset=DENOISER_MIN_OPSET,
            full_precision=(
                "the sampler runs the denoiser once per step in a Loop and feeds each step's rounding into the "
                "next, over as many steps as the schedule has"
            ),
        ),
    ]
