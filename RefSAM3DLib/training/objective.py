"""One training step's forward pass as a module, so DistributedDataParallel sees all of it.

Encode each crop once (the lite model: lift its cached slice features), decode all of its prompts,
then (sometimes) run corrective rounds on the prompts whose structure is present: the previous
low-resolution logits as a dense prompt plus, usually, a click from the error region (the SAM-Med3D
recipe that makes clicks refine instead of restart); sometimes no new click, so that "a previous mask
and nothing else" means "keep and improve this mask". Absent-structure prompts never enter these
rounds: an empty target must not become what a mask prompt means. Returns the summed loss.
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
                 max_rounds: int = 2, no_click_probability: float = 0.25, absent_mask_weight: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.presence_weight = presence_weight
        self.corrective_probability = corrective_probability
        self.max_rounds = max_rounds
        self.no_click_probability = no_click_probability
        self.absent_mask_weight = absent_mask_weight

    def forward(self, items: list[TrainingItem], seed: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng(seed)
        model = self.model
        device = model.no_text_word.device
        images = torch.stack([it.image for it in items]).to(device)
        if items[0].slice_maps is not None:
            stages = model.lift_slices([torch.stack([it.slice_maps[k] for it in items]).to(device)
                                        for k in range(len(items[0].slice_maps))])
        else:
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
        losses = {"mask": torch.zeros((), device=device), "presence": torch.zeros((), device=device)}
        c, lab = _pad_clicks(coords, labels, device)
        out = model.decode(stages_p, images_p, features, has_text, c, lab, None)
        weights = torch.where(present > 0, 1.0, self.absent_mask_weight)
        losses["mask"] = mask_loss(out.logits, targets, weights)
        losses["presence"] = presence_loss(out.presence_logits, present)
        keep = [i for i, p in enumerate(prompts) if p.present]
        rounds = int(rng.integers(1, self.max_rounds + 1)) if keep and rng.random() < self.corrective_probability else 0
        if rounds:
            sel = torch.tensor(keep, device=device)
            stages_k = [s.index_select(0, sel) for s in stages_p]
            images_k = images_p.index_select(0, sel)
            text_rows = torch.cumsum(has_text.long(), 0) - 1
            text_keep = [int(text_rows[i]) for i in keep if bool(has_text[i])]
            features_k = features.select(text_keep) if features is not None and text_keep else None
            has_text_k = has_text[keep]
            targets_k = targets.index_select(0, sel)
            coords_k = [np.asarray(coords[i]).reshape(-1, 3) for i in keep]
            labels_k = [np.asarray(labels[i], dtype=np.int64) for i in keep]
            previous = out.low_res_logits.detach().index_select(0, sel)
            truth = targets_k[:, 0].cpu().numpy()
            pred_full = (out.logits.detach().index_select(0, sel) > 0)[:, 0].cpu().numpy()
            for _ in range(rounds):
                for j in range(len(keep)):
                    if rng.random() < self.no_click_probability:
                        continue  # the previous mask alone: keep and improve it
                    click, positive = corrective_click(pred_full[j], truth[j], rng)
                    coords_k[j] = np.concatenate([coords_k[j], click[None]])
                    labels_k[j] = np.concatenate([labels_k[j], [positive]]).astype(np.int64)
                c, lab = _pad_clicks(coords_k, labels_k, device)
                out_k = model.decode(stages_k, images_k, features_k, has_text_k, c, lab, previous)
                losses["mask"] = losses["mask"] + mask_loss(out_k.logits, targets_k) / rounds
                previous = out_k.low_res_logits.detach()
                pred_full = (out_k.logits.detach() > 0)[:, 0].cpu().numpy()
        losses["total"] = losses["mask"] + self.presence_weight * losses["presence"]
        return losses
