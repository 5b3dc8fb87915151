"""UAPL (uncertain-aware patch learning): regional patches of the feature map, patch attention, patch heads.

Only the UAPL abstract is available (Chen et al., M2VIP 2024). It names four parts; the choices it leaves
open are made here and listed in ml/README.md ("UAPL: what the abstract leaves open"):

1. label topology from a related task: the ULDL target d_i (given label mixed with the predictions of the
   image's valence-arousal neighbours, ml.ldl) is the "assisted label" of the image and of every patch;
2. regional patches: either the map after an early stage (stem or layer1) is cropped into a `grid` x `grid`
   lattice and the later stages run on each region on its own (so a patch's feature sees only its region),
   or (patches="pool", the first version) the last stage runs with stride 1 and its map is average-pooled
   into the lattice; either way (B, P, D) regional patch features;
3. patch attention: a shared MLP + sigmoid gives every patch a weight in (0, 1); the image feature is the
   attention-weighted mean of the patches, so low weights remove a region (an occluder) from the feature;
4. task guidance loss (ml.models.uapl.task_guidance_loss): each patch also predicts the expression with
   the shared classifier against d_i, and each attention weight is pulled towards how much its patch
   alone supports d_i (its probability mass on d_i). An occluded patch cannot support the label, so its
   weight drops: the attention learns to perceive occluded regions without occluder annotations.

With whole_face_branch (the third version), the patches do not replace the whole face: a second network of
the same backbone (exactly ULDL's ExpressionNet) sees the uncropped face, and the image's logits are its
logits plus the patch classifier's logits of the attention-weighted patch mean (late fusion, as in
global-local occlusion FER networks). Local patches alone learn far more slowly than a whole face (ml/RESULTS.md,
occlusion section); adding the whole face's feature to the patches' (global_feature) made the attention useless.
Kept apart, the whole-face branch learns like ULDL and the patch branch adds evidence weighted by what is visible.
Which logits ULDL's objective sees is ml.train's --uapl-ldl-branch: the fused ones (fused, the first choice), or
the whole-face branch's alone (whole), which keeps lam and the neighbours' predictions exactly ULDL's while the
fused output learns the resulting target; with label noise the fused choice collapsed (ml/RESULTS.md, occlusion).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ml.models.backbones import Backbone
from ml.models.uldl import ExpressionNet

__all__ = ["PatchAttention", "UAPLNet", "task_guidance_loss", "attention_targets", "DEFAULT_GRID",
           "PATCH_MODES", "ATTENTION_TARGETS", "DEFAULT_PATCHES", "DEFAULT_ATTENTION_TARGET"]

DEFAULT_GRID = 3
DEFAULT_PATCHES = "stem"
DEFAULT_ATTENTION_TARGET = "position"
# How regional patches are cut from the feature map (README "UAPL: what the abstract leaves open"):
#   pool: average-pool the last stage's map (run at stride 1) into grid x grid cells. Cheap, but at 40-48 px
#         every cell of a 3x3 last-stage map sees the whole face, so an occluder changes all patches alike.
#   stem / layer1: crop the map after that stage into grid x grid regions and run the remaining stages on each
#         region separately (shared weights): a patch's feature only sees its own region of the map.
PATCH_MODES = ("pool", "stem", "layer1")
# What each patch's attention weight is pulled towards (task_guidance_loss):
#   absolute: the patch's support for the assisted label, sum_c d_c p_pc;
#   relative: that support divided by the image's best patch's support (the best patch gets 1);
#   position: that support divided by the batch's mean support at the same patch position, capped at 1.
ATTENTION_TARGETS = ("absolute", "relative", "position")


class PatchAttention(nn.Module):
    """(B, P, D) patch features -> (B, P) weights in (0, 1), one shared scorer for every patch."""

    def __init__(self, feature_dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(16, feature_dim // 4)
        self.score = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.score(patches).squeeze(-1))


def _stride_one_last_stage(backbone: Backbone) -> None:
    """Run the last ResNet stage at stride 1 (weights unchanged): a finer map to cut into patches."""
    block = backbone.layer4[0]
    block.conv1.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)


class UAPLNet(ExpressionNet):
    """ExpressionNet whose feature is the attention-weighted mean of grid x grid regional patch features.

    forward(x) -> (features (B, D), logits (B, C)) like every classifier here (Predictor, evaluation);
    forward_patches(x) also returns the patch features, patch logits and attention weights for training.
    """

    def __init__(self, backbone: Backbone, num_classes: int, grid: int = DEFAULT_GRID,
                 patches: str = DEFAULT_PATCHES, global_feature: bool = False,
                 whole_face: ExpressionNet | None = None, uniform_attention: bool = False):
        super().__init__(backbone, num_classes)
        if global_feature and whole_face is not None:
            raise ValueError("global_feature and a whole-face branch are two alternatives; choose one")
        if grid < 1:
            raise ValueError(f"grid must be at least 1, got {grid}")
        if patches not in PATCH_MODES:
            raise ValueError(f"unknown UAPL patch mode {patches!r}; choose from {', '.join(PATCH_MODES)}")
        if patches == "pool":
            _stride_one_last_stage(backbone)
        self.grid = grid
        self.patch_mode = patches
        self.global_feature = bool(global_feature)
        self.attention = PatchAttention(self.feature_dim)
        self.whole_face = whole_face  # the whole-face branch (its own backbone and classifier), or None
        self.uniform_attention = bool(uniform_attention)  # ablation: every patch weighs 1, the MLP is unused

    def patch_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, grid*grid, D), patches in row-major order (top-left first)."""
        return self._patches_and_global(x)[0]

    def _patches_and_global(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Patch features (B, P, D) and, with global_feature, the whole face's GAP feature (B, D)."""
        bb = self.backbone
        if self.patch_mode == "pool":
            fmap = bb.forward_map(x)
            patches = F.adaptive_avg_pool2d(fmap, self.grid).flatten(2).transpose(1, 2)
            return patches, (fmap.mean(dim=(2, 3)) if self.global_feature else None)
        fmap = bb.stem(x)
        stages = [bb.layer1, bb.layer2, bb.layer3, bb.layer4]
        if self.patch_mode == "layer1":
            fmap = stages.pop(0)(fmap)
        whole = None
        if self.global_feature:  # the uncropped map through the same later stages: the whole face's feature
            whole = fmap
            for stage in stages:
                whole = stage(whole)
            whole = whole.mean(dim=(2, 3))
        return self._cropped(fmap, stages), whole

    def _cropped(self, fmap: torch.Tensor, stages: list) -> torch.Tensor:
        """Crop `fmap` into grid x grid regions; the later `stages` see one region each."""
        b, c, h, w = fmap.shape
        side = max(1, round(h / self.grid)), max(1, round(w / self.grid))  # region size in map cells
        if (h, w) != (side[0] * self.grid, side[1] * self.grid):
            fmap = F.interpolate(fmap, size=(side[0] * self.grid, side[1] * self.grid), mode="bilinear",
                                 align_corners=False)
        # (B, C, g*sh, g*sw) -> (B*g*g, C, sh, sw), regions row-major within each image
        regions = fmap.view(b, c, self.grid, side[0], self.grid, side[1]).permute(0, 2, 4, 1, 3, 5)
        out = regions.reshape(b * self.grid * self.grid, c, side[0], side[1])
        for stage in stages:
            out = stage(out)
        return out.mean(dim=(2, 3)).view(b, self.grid * self.grid, -1)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, P) patch weights (row-major, like patch_boxes); the whole-face branch does not run."""
        return self._weights(self.patch_features(x))

    def _weights(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, P, D) -> (B, P): the attention's weights, or 1 everywhere in the uniform-attention ablation."""
        return patches.new_ones(patches.shape[:2]) if self.uniform_attention else self.attention(patches)

    @staticmethod
    def fuse(patches: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(B, P, D), (B, P) -> (B, D) attention-weighted mean."""
        return (weights.unsqueeze(-1) * patches).sum(1) / weights.sum(1, keepdim=True).clamp_min(1e-6)

    def forward_patches(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything the task guidance loss needs: features, logits, patches, patch_logits, attention.

        features = the attention-weighted mean of the patches, plus (global_feature) the whole face's feature;
        logits = the classifier's logits of it. With the whole-face branch: features = that branch's feature
        (what ULDL's centre loss and neighbours use), logits = its logits + the patch classifier's logits of the
        weighted patch mean, and whole_logits = the branch's logits alone (for its own guidance loss).
        """
        patches, whole = self._patches_and_global(x)
        weights = self._weights(patches)
        features = self.fuse(patches, weights)
        if whole is not None:
            features = features + whole
        out = {"features": features, "logits": self.classifier(features), "patches": patches,
               "patch_logits": self.classifier(patches), "attention": weights}
        if self.whole_face is not None:
            whole_features, whole_logits = self.whole_face(x)
            out.update(features=whole_features, logits=whole_logits + out["logits"], whole_logits=whole_logits)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> ((B, D) features, (B, C) logits), as forward_patches computes them."""
        out = self.forward_patches(x)
        return out["features"], out["logits"]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_patches(x)["features"]

    def patch_boxes(self, image_size: int) -> list[tuple[float, float, float, float]]:
        """The image region (x0, y0, x1, y1) in pixels that each patch summarises, row-major."""
        step = image_size / self.grid
        return [(c * step, r * step, (c + 1) * step, (r + 1) * step) for r in range(self.grid)
                for c in range(self.grid)]


def attention_targets(patch_probs: torch.Tensor, target: torch.Tensor,
                      kind: str = DEFAULT_ATTENTION_TARGET) -> torch.Tensor:
    """(B, P, C) patch probabilities, (B, C) assisted label -> (B, P) attention targets in [0, 1], no gradient.

    absolute: s_p = sum_c d_c p_pc, the probability mass patch p alone puts on the assisted label.
    relative: s_p / max_q s_q, so the image's most supportive patch gets 1 and every other patch the
        fraction of that support it reaches; an image whose patches all back the label weakly (hard or
        occluded face, early training) still ranks its regions instead of flattening to ~1/C.
    position: min(1, s_p / mean over the batch's images of s at the same position p): a region counts as
        suspect when it backs the label less than that region usually does. A forehead that never says
        much keeps a target near 1, a mouth hidden by a mask (support ~ chance where mouths usually
        back the label) gets a low one. Needs several images per batch; with one image it is 1 everywhere.
    """
    if kind not in ATTENTION_TARGETS:
        raise ValueError(f"unknown attention target {kind!r}; choose from {', '.join(ATTENTION_TARGETS)}")
    support = (patch_probs.detach().float() * target.detach().float().unsqueeze(1)).sum(-1).clamp(0.0, 1.0)
    if kind == "relative":
        support = support / support.amax(dim=1, keepdim=True).clamp_min(1e-12)
    elif kind == "position":
        support = (support / support.mean(dim=0, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
    return support


def task_guidance_loss(patch_logits: torch.Tensor, attention: torch.Tensor, target: torch.Tensor, *,
                       patch_weight: float = 1.0, attention_weight: float = 1.0,
                       attention_target: str = DEFAULT_ATTENTION_TARGET) -> dict[str, torch.Tensor]:
    """The patch part of UAPL's task guidance loss. (B, P, C), (B, P), (B, C) -> dict of scalars.

    patch: mean over patches of the soft cross entropy of each patch's prediction against the image's
        assisted label distribution d_i (the ULDL target, detached: lam and the neighbours learn from the
        image-level loss only, as in ULDL).
    attention: binary cross entropy pulling each patch's weight towards its support for d_i
        (attention_targets, detached: absolute or relative to the image's best patch), i.e. how far that
        region alone backs the assisted label.
    loss = patch_weight * patch + attention_weight * attention.
    """
    from ml.losses import LOG_EPS

    target = target.detach().float()
    probs = patch_logits.float().softmax(dim=-1)  # (B, P, C)
    patch = -(target.unsqueeze(1) * torch.log(probs + LOG_EPS)).sum(-1).mean()
    support = attention_targets(probs, target, attention_target)  # (B, P)
    a = attention.float().clamp(1e-6, 1 - 1e-6)  # BCE by hand: F.binary_cross_entropy refuses autocast
    attention_loss = -(support * torch.log(a) + (1 - support) * torch.log(1 - a)).mean()
    return {"loss": patch_weight * patch + attention_weight * attention_loss, "patch": patch.detach(),
            "attention": attention_loss.detach()}
