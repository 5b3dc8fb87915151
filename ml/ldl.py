"""ULDL label-distribution construction: kNN in valence-arousal space, neighbour calibration, mixing.

Every formula follows ULDL_REFERENCE.md (the official TensorFlow code); section numbers are cited inline.
Shapes: B anchors per batch, K neighbours, C classes, D feature size, N training images.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "VA_TEMPERATURE", "knn_in_va", "va_similarity", "contextual_distribution", "target_distribution",
    "UncertaintyFactors", "LazySGD", "NeighbourBank", "ULDLObjective", "lambda_auroc",
]

VA_TEMPERATURE = 0.5  # ULDL ref §2.7: a_ij = exp(-L1 / 0.5)


def va_similarity(distance_l1: torch.Tensor) -> torch.Tensor:
    """L1 distances in VA space -> similarities a_ij (same shape)."""
    return torch.exp(-distance_l1 / VA_TEMPERATURE)  # ULDL ref §2.7: a_ij = exp(-(|dv|+|da|)/0.5)


def knn_in_va(va: np.ndarray | torch.Tensor, k: int = 8, *, max_chunk_elems: int = 1 << 24
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """K nearest neighbours of every training image in VA space (L1), excluding the image itself.

    Computed once per dataset in float64 (like the reference's numpy), in row chunks so that 300k images
    need at most `max_chunk_elems` distances in memory at a time.

    Args:
        va: (N, 2) valence, arousal; NaN is refused (make pseudo-VA first).
        k: neighbours per image (ULDL ref §2.7: 8).
    Returns:
        indices (N, K) int64, nearest first; similarities (N, K) float32 a_ij.
    """
    va = torch.as_tensor(np.asarray(va), dtype=torch.float64)
    if va.ndim != 2 or va.shape[1] != 2:
        raise ValueError(f"valence-arousal must have shape (N, 2), got {tuple(va.shape)}")
    n = va.shape[0]
    if torch.isnan(va).any():
        missing = int(torch.isnan(va).any(dim=1).sum())
        raise ValueError(f"{missing} of {n} training images have no valence/arousal; ULDL needs VA for every "
                         "training image (produce pseudo-VA with `python -m ml.va`)")
    if n <= k:
        raise ValueError(f"need more than k={k} training images for {k} neighbours, got {n}")
    rows = max(1, max_chunk_elems // n)
    indices = torch.empty(n, k, dtype=torch.int64)
    distances = torch.empty(n, k, dtype=torch.float64)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        d = torch.cdist(va[start:stop], va, p=1)
        d[torch.arange(stop - start), torch.arange(start, stop)] = float("inf")  # exclude self
        dist, idx = torch.topk(d, k, dim=1, largest=False, sorted=True)
        indices[start:stop], distances[start:stop] = idx, dist
    return indices, va_similarity(distances).to(torch.float32)


def contextual_distribution(similarity: torch.Tensor, calibration: torch.Tensor,
                            neighbour_probs: torch.Tensor) -> torch.Tensor:
    """c_i = sum_j a_ij s_ij p_j / sum_j a_ij s_ij.  (B, K), (B, K), (B, K, C) -> (B, C)."""
    weights = similarity * calibration  # ULDL ref §4: w_ij = a_ij * s_ij
    return (weights.unsqueeze(-1) * neighbour_probs).sum(1) / weights.sum(1, keepdim=True)  # ref §4, no epsilon


def target_distribution(labels: torch.Tensor, lam: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """d_i = lam_i * onehot(y_i) + (1 - lam_i) * c_i.  (B,), (B,), (B, C) -> (B, C); rows sum to 1."""
    onehot = F.one_hot(labels, context.shape[1]).to(context.dtype)
    lam = lam.unsqueeze(1)
    return lam * onehot + (1.0 - lam) * context  # ULDL ref §4: target, NOT detached (ref §9.3)


class UncertaintyFactors(nn.Module):
    """One trainable logit per training image; lam = sigmoid(logit) (ULDL ref §5).

    Stored as (N, 1) like the reference and gathered with a sparse embedding lookup, so a step's gradient
    names exactly the rows of the batch (what LazySGD needs for the reference's lazy momentum).
    """

    def __init__(self, n: int, init_logit: float = 0.5):
        super().__init__()
        self.logit = nn.Parameter(torch.full((n, 1), float(init_logit)))  # ULDL ref §5: lamb_init is the logit

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        """(B,) row indices -> (B,) lam with gradient to the logits."""
        return torch.sigmoid(F.embedding(index, self.logit, sparse=True).squeeze(1))  # ULDL ref §5: lam = sigmoid

    @torch.no_grad()
    def peek(self, index: torch.Tensor) -> torch.Tensor:
        """lam for any index shape, without gradient (ULDL ref §6.2: stop_gradient in the centre loss)."""
        return torch.sigmoid(self.logit[index, 0])

    @torch.no_grad()
    def values(self) -> torch.Tensor:
        """(N,) every image's current lam."""
        return torch.sigmoid(self.logit[:, 0]).clone()


class LazySGD(torch.optim.Optimizer):
    """SGD that updates only the rows present in a sparse gradient, momentum included.

    ULDL ref §5: TF's sparse momentum kernel decays and applies a row's momentum only when that row is in
    the batch; dense torch.optim.SGD(momentum>0) would keep moving absent rows. With momentum 0 (the
    RAF-DB configs) this is plain SGD. Keras momentum v = m*v - lr*g; w += v equals buf = m*buf + g;
    w -= lr*buf for a constant lr, which is what the reference uses (no schedule for lam).
    """

    def __init__(self, params, lr: float = 10.0, momentum: float = 0.0):
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"invalid lr={lr} or momentum={momentum}")
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    grad = grad.coalesce()
                    rows, values = grad.indices()[0], grad.values()
                else:
                    rows, values = torch.arange(p.shape[0], device=p.device), grad
                if group["momentum"]:
                    buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                    buf[rows] = group["momentum"] * buf[rows] + values
                    values = buf[rows]
                p.index_add_(0, rows, values, alpha=-group["lr"])
        return None


class NeighbourBank:
    """Latest feature and softmax prediction of every training image, read in place of neighbour forwards.

    The reference forwards all B*K neighbour images every step (ULDL ref §3.3), 9x the images of plain
    training. The bank instead stores what the anchor pass computed for each image the last time it was
    in a batch (stale by at most one epoch) and is warmed once before training by a no-grad forward pass
    over the training set in train mode, which is the state an exact-mode neighbour pass sees at step 0.
    """

    def __init__(self, n: int, feature_dim: int, num_classes: int, device: torch.device | str = "cpu"):
        self.features = torch.zeros(n, feature_dim, device=device)
        self.probs = torch.full((n, num_classes), 1.0 / num_classes, device=device)
        self.filled = torch.zeros(n, dtype=torch.bool, device=device)

    @torch.no_grad()
    def update(self, index: torch.Tensor, features: torch.Tensor, probs: torch.Tensor) -> None:
        """Store (B, D) features and (B, C) probabilities for rows `index` (B,)."""
        self.features[index] = features.detach().to(self.features.dtype)
        self.probs[index] = probs.detach().to(self.probs.dtype)
        self.filled[index] = True

    def lookup(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K) indices -> features (B, K, D) and probabilities (B, K, C)."""
        return self.features[index], self.probs[index]

    @torch.no_grad()
    def warm(self, model: nn.Module, loader, device: torch.device | str) -> None:
        """Fill every row with one no-grad pass in train mode (BN batch statistics, like exact mode)."""
        model.train()
        for batch in loader:
            features, logits = model(batch["image"].to(device, non_blocking=True))
            self.update(batch["index"].to(device), features, logits.softmax(dim=1))


def lambda_auroc(lam: np.ndarray, flipped: np.ndarray) -> float:
    """AUROC of lam separating clean (high lam) from flipped (low lam) labels; NaN if one group is empty.

    Equals P(lam_clean > lam_flipped) + 0.5 P(tie), computed from ranks (Mann-Whitney U).
    """
    from scipy.stats import rankdata

    lam, flipped = np.asarray(lam, dtype=np.float64), np.asarray(flipped, dtype=bool)
    n_flip, n_clean = int(flipped.sum()), int((~flipped).sum())
    if n_flip == 0 or n_clean == 0:
        return float("nan")
    ranks = rankdata(lam)
    u_clean = ranks[~flipped].sum() - n_clean * (n_clean + 1) / 2
    return float(u_clean / (n_clean * n_flip))


class ULDLObjective(nn.Module):
    """Everything ULDL adds to a classifier during training: AdaptiveSimNet, lam, centres, neighbour tables.

    Per step (ULDL ref §7): the caller forwards neighbours (exact mode) or reads the bank, forwards the
    anchors, calls this module for the loss, backpropagates, steps Adam (model + `asn`) and LazySGD
    (`factors`), then calls `update_centres` with the rows this call returned.
    """

    def __init__(self, *, knn_index: torch.Tensor, knn_similarity: torch.Tensor, given_labels: torch.Tensor,
                 feature_dim: int, num_classes: int, gamma: float = 0.01, lambda_init: float = 0.5,
                 class_weights: torch.Tensor | None = None):
        super().__init__()
        from ml.losses import DiscriminativeLoss
        from ml.models.uldl import AdaptiveSimNet

        self.gamma = gamma  # ULDL ref §6.3: 0.01
        self.asn = AdaptiveSimNet(feature_dim)
        self.centre_loss = DiscriminativeLoss(num_classes, feature_dim)
        self.factors = UncertaintyFactors(len(given_labels), lambda_init)
        # Rebuilt from the dataset on every start, so not saved in checkpoints.
        self.register_buffer("knn_index", torch.as_tensor(knn_index, dtype=torch.int64), persistent=False)
        self.register_buffer("knn_similarity", torch.as_tensor(knn_similarity, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("given_labels", torch.as_tensor(given_labels, dtype=torch.int64), persistent=False)
        self.register_buffer("class_weights", None if class_weights is None
                             else torch.as_tensor(class_weights, dtype=torch.float32), persistent=False)

    def neighbours(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) anchor rows -> neighbour rows (B, K) and their VA similarities a_ij (B, K)."""
        return self.knn_index[index], self.knn_similarity[index]

    def forward(self, *, features: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor,
                neighbour_features: torch.Tensor, neighbour_probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss of one batch.

        Args: features (B, D) and logits (B, C) of the anchors (with gradient); labels (B,) given labels;
            index (B,) training rows; neighbour_features (B, K, D) and neighbour_probs (B, K, C), constants.
        Returns: dict with `loss` (), `classification` (), `discriminative` (), `lam` (B,) detached,
            `target` (B, C) detached, and `centre_rows` (features, labels, weights) for update_centres.
        """
        from ml.losses import soft_cross_entropy

        neighbour_index, similarity = self.neighbours(index)
        neighbour_features, neighbour_probs = neighbour_features.detach(), neighbour_probs.detach()  # ref §3.3
        calibration = self.asn(features, neighbour_features)  # ULDL ref §3.2: s_ij from [f_i; f_j], with gradient
        context = contextual_distribution(similarity, calibration, neighbour_probs)  # ref §4
        lam = self.factors(index)  # ULDL ref §5: lam = sigmoid(logit), gradient only via the target
        target = target_distribution(labels, lam, context)  # ref §4: not detached
        weights = None if self.class_weights is None else self.class_weights[labels]
        classification = soft_cross_entropy(logits, target, weights)  # ULDL ref §6.1
        b, k, d = neighbour_features.shape
        rows = (  # ULDL ref §6.2: anchors (with gradient) + B*K neighbours (constants), each with its own lam
            torch.cat([features, neighbour_features.reshape(b * k, d)]),
            torch.cat([labels, self.given_labels[neighbour_index].reshape(-1)]),
            torch.cat([lam.detach(), self.factors.peek(neighbour_index).reshape(-1)]),
        )
        discriminative = self.centre_loss(*rows)
        loss = classification + self.gamma * discriminative  # ULDL ref §6.3: L = L_cls + 0.01 * L_c
        return {"loss": loss, "classification": classification.detach(), "discriminative": discriminative.detach(),
                "lam": lam.detach(), "target": target.detach(),
                "centre_rows": tuple(r.detach() for r in rows)}

    def update_centres(self, centre_rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """ULDL ref §7 step 10: centre pull then push, after the Adam and lam steps, with pre-step lam."""
        self.centre_loss.update_centres(*centre_rows)

    def model_parameters(self):
        """Parameters the main Adam trains besides the classifier (ULDL ref §3.1: ASN is in the model)."""
        return self.asn.parameters()
