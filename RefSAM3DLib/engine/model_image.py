"""The volume as the model sees it: reoriented, resampled, normalised, padded to whole windows.

Also the one image-derived fact prompts are checked against: on CT, which voxels are the air outside
the body (an include click there is a mistake the user should hear about).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import model_space
from .intensity import normalize
from .model_space import ModelSpace
from .profiling import stage

PAD_VALUE = -1.0  # the normalised value of air / background


def prepare_model_image(array: np.ndarray, space: ModelSpace, config, modality: str, device) -> torch.Tensor:
    """Original voxel array -> (D, H, W) float tensor in [-1, 1] on ``device``, padded to at least one window."""
    with stage("convert"):
        array = np.asarray(array)
        if array.dtype not in (np.float32, np.float64, np.int16, np.int32, np.int64, np.uint8, np.int8):
            array = array.astype(np.float32)
        if model_space.RESAMPLER == "separable" or any(st < 0 for st in array.strides):
            array = np.ascontiguousarray(array)
        # a transposed (Fortran-ordered) reader array is taken as it lies: the resampler reads it in memory order
        raw = torch.from_numpy(array).to(device).float()
    resampled = space.to_model(raw)
    with stage("normalise"):
        image = normalize(resampled, modality, config.ct_window_hu, config.mr_percentiles)
        window = tuple(config.window_size)
        pads = [max(0, w - s) for s, w in zip(image.shape, window)]
        if any(pads):
            image = F.pad(image, (0, pads[2], 0, pads[1], 0, pads[0]), value=PAD_VALUE)
        return image.contiguous()


def outside_air(image: torch.Tensor) -> np.ndarray:
    """CT model image -> bool mask of the air connected to the sides of the scan (outside the body).

    Lungs and bowel gas are enclosed by the body, so they are not "outside"; only the in-plane edges
    count, because lungs may reach the first or last slice of a scan but never its side.
    """
    from scipy import ndimage

    air = (image <= PAD_VALUE + 1e-3).cpu().numpy()  # below the CT window's lower bound
    air = ndimage.binary_opening(air, iterations=1)
    components, _ = ndimage.label(air)
    edge = np.unique(np.concatenate([components[:, [0, -1]].ravel(), components[:, :, [0, -1]].ravel()]))
    return np.isin(components, edge[edge > 0])
