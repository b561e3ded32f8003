"""One training step's forward pass as a module, so DistributedDataParallel sees all of it.

Encode each crop once, decode all of its prompts, then (sometimes) run corrective-click rounds:
a click from the error region plus the previous low-resolution logits as a dense prompt, the
SAM-Med3D recipe that makes clicks refine instead of restart. Returns the summed loss.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..modeling.refsam3d import RefSAM3D
from .dataset import TrainingItem
from .losses import mask_loss, presence_loss
from .prompt_simulation import corrective_click


def _pad_clicks(coords: list[np.ndarray], labels: list[np.ndarray], device) -> tuple[torch.Tensor | None,
                                                                                   torch.Tensor | None]:
    n = max((len(lab) for lab in labels), default=0)
    if n == 0:
        return None, None
    c = torch.zeros(len(coords), n, 3)
    lab = torch.full((len(coords), n), -1, dtype=torch.long)
    for i, (ci, li) in enumerate(zip(coords, labels)):
        c[i, : len(li)] = torch.from_numpy(np.asarray(ci, dtype=np.float32)).reshape(-1, 3)
        lab[i, : len(li)] = torch.from_numpy(np.asarray(li, dtype=np.int64))
    return c.to(device), lab.to(device)


class TrainingObjective(nn.Module):
    def __init__(self, model: RefSAM3D, presence_weight: float = 0.5, corrective_probability: float = 0.5,
                 max_rounds: int = 2) -> None:
        super().__init__()
        self.model = model
        self.presence_weight = presence_weight
        self.corrective_probability = corrective_probability
        self.max_rounds = max_rounds

    def forward(self, items: list[TrainingItem], seed: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(seed)
        model = self.model
        device = model.no_text_word.device
        images = torch.stack([it.image for it in items]).to(device)
        stages = model.encode_image(images)
        owner = [i for i, it in enumerate(items) for _ in it.prompts]
        prompts = [p for it in items for p in it.prompts]
        index = torch.tensor(owner, device=device)
        stages_p = [s.index_select(0, index) for s in stages]
        images_p = images.index_select(0, index)
        features, has_text = model.encode_text([p.text for p in prompts])
        targets = torch.stack([p.target for p in prompts])[:, None].to(device)
        present = torch.tensor([p.present for p in prompts], dtype=torch.float32, device=device)
        coords = [p.coords for p in prompts]
        labels = [p.labels for p in prompts]
        mask_input = None
        losses = {"mask": torch.zeros((), device=device), "presence": torch.zeros((), device=device)}
        rounds = 1 + (int(rng.integers(1, self.max_rounds + 1)) if rng.random() < self.corrective_probability else 0)
        for r in range(rounds):
            c, lab = _pad_clicks(coords, labels, device)
            out = model.decode(stages_p, images_p, features, has_text, c, lab, mask_input)
            losses["mask"] = losses["mask"] + mask_loss(out.logits, targets) / rounds
            if r == 0:
                losses["presence"] = presence_loss(out.presence_logits, present)
            if r + 1 < rounds:
                pred = (out.logits.detach() > 0)[:, 0].cpu().numpy()
                truth = targets[:, 0].cpu().numpy()
                for i, p in enumerate(prompts):
                    if not p.present:
                        continue  # no clicks on a structure that is not there
                    click, positive = corrective_click(pred[i], truth[i], rng)
                    coords[i] = np.concatenate([np.asarray(coords[i]).reshape(-1, 3), click[None]])
                    labels[i] = np.concatenate([labels[i], [positive]]).astype(np.int64)
                mask_input = out.low_res_logits.detach()
        losses["total"] = losses["mask"] + self.presence_weight * losses["presence"]
        return losses
