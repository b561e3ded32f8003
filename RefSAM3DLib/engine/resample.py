"""Separable linear resampling between a voxel grid and the model grid, optionally of a sub-block.

Matches ``F.interpolate(mode="trilinear", align_corners=False)`` (voxel centres aligned, edges
clamped), but each axis is interpolated on its own, so only the output block that is needed (the
bounding box of a mask) is ever computed: mapping a liver back to a 512x512x300 grid touches a few
million voxels instead of eighty million.

Into the model grid, where a clinical scan shrinks several-fold, the low-pass (``antialias``) and the
interpolation of an axis are one linear map, so they are applied together as one small matrix per axis
(``axis_matrix``, ``resample_axes``): three matrix products on the volume's own memory layout, most-shrinking
axis first. On a 512x512x300 CT going to 3 mm that is ~0.5 s on one CPU core where filtering every axis at
full size and interpolating afterwards (``antialias`` + ``resample_block``, kept as the reference) took ~20 s.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def _source_coords(n_in: int, n_out: int, start: int, stop: int, device) -> torch.Tensor:
    out = torch.arange(start, stop, device=device, dtype=torch.float64)
    return ((out + 0.5) * (n_in / n_out) - 0.5).clamp(min=0, max=n_in - 1)


def resample_block(x: torch.Tensor, out_shape: tuple[int, int, int],
                   block: tuple[slice, slice, slice] | None = None,
                   in_shape: tuple[int, int, int] | None = None,
                   offset: tuple[int, int, int] = (0, 0, 0)) -> torch.Tensor:
    """Resample the last three axes of ``x`` to a grid of ``out_shape`` and return only ``block`` of it.

    ``x`` may be a crop of a larger input grid: ``in_shape`` is the full grid's size and ``offset`` the
    crop's first voxel, so coordinates stay aligned with the full grid.
    """
    lead = x.ndim - 3
    in_shape = in_shape or tuple(x.shape[lead:])
    block = block or tuple(slice(0, n) for n in out_shape)
    for axis in range(3):
        n_in, n_out = in_shape[axis], out_shape[axis]
        start, stop, _ = block[axis].indices(n_out)
        if n_in == n_out:
            x = x.narrow(lead + axis, start - offset[axis], stop - start)
            continue
        src = _source_coords(n_in, n_out, start, stop, x.device) - offset[axis]
        size = x.shape[lead + axis]
        lo = src.floor().long().clamp(0, size - 1)
        hi = (lo + 1).clamp(max=size - 1)
        shape = [1] * x.ndim
        shape[lead + axis] = -1
        w = (src - src.floor()).to(x.dtype).reshape(shape)
        x = x.index_select(lead + axis, lo) * (1 - w) + x.index_select(lead + axis, hi) * w
    return x


def source_range(n_in: int, n_out: int, start: int, stop: int) -> tuple[int, int]:
    """Input index range [a, b) that output indices [start, stop) read from (crop before resampling)."""
    src = _source_coords(n_in, n_out, start, stop, "cpu")
    return int(src.floor().min()), min(n_in, int(src.floor().max()) + 2)


def resample_nearest(x: torch.Tensor, out_shape: tuple[int, int, int]) -> torch.Tensor:
    """Nearest-neighbour resampling of the last three axes (label maps), voxel centres aligned."""
    lead = x.ndim - 3
    for axis in range(3):
        n_in, n_out = x.shape[lead + axis], out_shape[axis]
        if n_in == n_out:
            continue
        index = (_source_coords(n_in, n_out, 0, n_out, x.device) + 0.5).floor().long().clamp(0, n_in - 1)
        x = x.index_select(lead + axis, index)
    return x


def antialias(x: torch.Tensor, out_shape: tuple[int, int, int]) -> torch.Tensor:
    """Low-pass the last three axes of ``x`` before it is downsampled to ``out_shape``.

    Linear interpolation alone keeps the high frequencies of a fine grid: white noise resampled from
    0.7 x 0.7 x 1 mm to 3 mm kept several times the noise that averaging over each 3 mm voxel leaves,
    so thin-slice scans reached the model noisier than any scan it trained on. A Gaussian with
    sigma = (factor - 1) / 2 input voxels along each shrinking axis (scikit-image's rule for
    anti-aliasing) removes what the coarse grid cannot represent; axes that are not shrunk are left alone.
    """
    lead = x.ndim - 3
    dtype = x.dtype
    y = x.float()
    for axis in range(3):
        n_in, n_out = y.shape[lead + axis], out_shape[axis]
        factor = n_in / max(n_out, 1)
        if factor <= 1.05:
            continue
        sigma = (factor - 1) / 2
        radius = max(1, int(round(3 * sigma)))
        taps = torch.arange(-radius, radius + 1, device=y.device, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
        kernel = (kernel / kernel.sum()).reshape(1, 1, -1)
        moved = y.movedim(lead + axis, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 1, shape[-1])
        pad = min(radius, shape[-1] - 1)
        flat = torch.nn.functional.pad(flat, (pad, pad), mode="replicate" if pad > 0 else "constant")
        if pad < radius:  # very short axis: pad the rest with the edge value too
            flat = torch.nn.functional.pad(flat, (radius - pad, radius - pad), mode="replicate")
        flat = torch.nn.functional.conv1d(flat, kernel)
        y = flat.reshape(shape).movedim(-1, lead + axis)
    return y.to(dtype)


def axis_matrix(n_in: int, n_out: int, device=None, dtype=torch.float32, low_pass: bool = True) -> torch.Tensor:
    """The (n_out, n_in) linear map of one axis into the model grid: ``antialias``'s Gaussian (edge values
    repeated) where the axis shrinks by more than 5 % (unless ``low_pass`` is False), then ``resample_block``'s
    linear interpolation."""
    src = _source_coords(n_in, n_out, 0, n_out, "cpu")
    lo = src.floor().long().clamp(0, n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    w = src - src.floor()
    rows = torch.arange(n_out)
    matrix = torch.zeros(n_out, n_in, dtype=torch.float64)
    matrix.index_put_((rows, lo), 1 - w, accumulate=True)
    matrix.index_put_((rows, hi), w, accumulate=True)
    factor = n_in / max(n_out, 1)
    if low_pass and factor > 1.05:
        sigma = (factor - 1) / 2
        radius = max(1, int(round(3 * sigma)))
        taps = torch.arange(-radius, radius + 1)
        kernel = torch.exp(-0.5 * (taps.double() / sigma) ** 2)
        kernel = kernel / kernel.sum()
        columns = (torch.arange(n_in)[:, None] + taps[None]).clamp(0, n_in - 1)  # clamping = replicate padding
        blur = torch.zeros(n_in, n_in, dtype=torch.float64)
        blur.scatter_add_(1, columns, kernel.expand(n_in, -1).contiguous())
        matrix = matrix @ blur
    return matrix.to(device=device, dtype=dtype)


def resample_axes(x: torch.Tensor, matrices: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Apply an (n_out, n_in) matrix along each of the last three axes of ``x`` (None leaves an axis alone).

    Works on ``x``'s memory layout as it is (a transposed or Fortran-ordered view is not copied first): the axes
    are visited in memory order, each product is one GEMM, and the most-shrinking axis goes first so the later
    products see the smaller volume. Returns the result in ``x``'s axis order (a contiguous tensor permuted back).
    """
    if x.ndim > 3:
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        out = torch.stack([resample_axes(v, matrices) for v in flat])
        return out.reshape(*lead, *out.shape[1:])
    order = sorted(range(3), key=lambda a: (-x.stride(a), a))  # memory order: outermost axis first
    t = x.permute(order)
    if not t.is_contiguous():
        t = t.contiguous()
    mats = [matrices[a] for a in order]
    todo = sorted((i for i in range(3) if mats[i] is not None), key=lambda i: mats[i].shape[0] / mats[i].shape[1])
    for i in todo:
        m = mats[i].to(device=t.device, dtype=t.dtype)
        if i == 0:
            t = (m @ t.reshape(t.shape[0], -1)).reshape(m.shape[0], t.shape[1], t.shape[2])
        elif i == 1:
            t = torch.matmul(m, t)
        else:
            t = t @ m.T
    inverse = sorted(range(3), key=lambda a: order[a])
    return t.permute(inverse)
