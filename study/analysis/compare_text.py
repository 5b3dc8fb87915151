"""Plain-language sentences for the comparison view: a headline per model, a warning when images have too
few votes, and one-sentence definitions of the summary's metrics. Pure Python (no Django), so the API or an
export can say the same thing."""
from __future__ import annotations

import math

# FER+ relabelled FER2013 with 10 annotators per image; below that a vote share moves by 10 points or more
# with a single vote, and the split-half ceiling compares halves of fewer than 5 votes.
ENOUGH_VOTES = 10

METRIC_DEFINITIONS = {
    "n_images": ("Images", "Images that have both human votes and this model's prediction."),
    "top1_agreement": ("Top-1 agreement", "Share of images where the model's most likely emotion is one the crowd "
                       "chose most often (ties count as a match)."),
    "mean_js": ("Mean JS", "Jensen–Shannon divergence between the crowd's and the model's distributions, averaged "
                "over images: 0 means identical, 1 means no overlap at all."),
    "mean_kl": ("Mean KL", "Kullback–Leibler divergence of the model's distribution from the crowd's (how much is "
                "lost when the model's stands in for the crowd's), averaged over images; lower is better."),
    "mean_cosine": ("Cosine", "Cosine similarity of the two distributions seen as vectors, averaged over images: "
                    "1 means the same shape."),
    "mean_intersection": ("Intersection", "Sum over emotions of the smaller of the two shares, averaged over "
                          "images: 1 means identical distributions, 0 means disjoint."),
    "entropy_spearman": ("Entropy ρ", "Spearman correlation, across images, between how split the crowd is and "
                         "how unsure the model is: positive means the model hesitates where people disagree."),
    "ece": ("ECE", "Expected calibration error: the average gap between the model's confidence and how often its "
            "top emotion matches the crowd's (10 bins); 0 means perfectly calibrated."),
    "ceiling": ("Human split-half ceiling", "Each image's votes dealt at random into two halves (100 times), and "
                "the same metrics computed between the halves: how well one half of the crowd predicts the other, "
                "the best a model can be expected to do with this many votes."),
}


def _finite(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def percent(value) -> str:
    return f"{round(100 * value)}%"


def model_headline(model_name: str, model: dict, ceiling: dict | None) -> str:
    """“demo picks the crowd's top emotion on 65% of images; two halves of the crowd agree with each other on 83%.”"""
    if not model.get("n_images") or not _finite(model.get("top1_agreement")):
        return f"{model_name} has no prediction on an image with votes yet: not enough votes to compare."
    images = model["n_images"]
    text = (f"{model_name} picks the crowd's top emotion on {percent(model['top1_agreement'])} of "
            f"{images} image{'s' if images != 1 else ''}")
    if ceiling and ceiling.get("n_images") and _finite(ceiling.get("top1_agreement")):
        text += f"; two halves of the crowd agree with each other on {percent(ceiling['top1_agreement'])}"
    else:
        text += "; the crowd's own agreement needs at least 2 votes per image (not enough votes yet)"
    return text + "."


def few_votes_warning(vote_counts, enough: int = ENOUGH_VOTES) -> str:
    """A warning when some voted images have fewer than `enough` votes ("" when none has)."""
    counts = [int(n) for n in vote_counts]
    voted = [n for n in counts if n > 0]
    unvoted = len(counts) - len(voted)
    few = [n for n in voted if n < enough]
    if not counts:
        return ""
    if not voted:
        return (f"No image has votes yet, so there is nothing to compare. Each image needs about {enough} votes "
                "for its distribution to mean much.")
    if not few and not unvoted:
        return ""
    parts = []
    if few:
        few.sort()
        median = few[len(few) // 2]
        parts.append(f"{len(few)} of {len(counts)} images have fewer than {enough} votes (median {median} among "
                     f"them), so their shares can swing by {round(100 / max(median, 1))} points with one vote")
    if unvoted:
        parts.append(f"{unvoted} image{'s have' if unvoted != 1 else ' has'} no votes yet and "
                     f"{'are' if unvoted != 1 else 'is'} left out")
    return ("; ".join(parts) + f". About {enough} votes per image is enough for the figures to mean much "
            "(FER+ used 10 annotators per image).")


def _names(labels) -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _left_out(count: int, missing) -> str:
    if not count:
        return ""
    return (f"{count} image{'s' if count != 1 else ''} whose votes are all for {_names(missing)} "
            f"{'are' if count != 1 else 'is'} left out")


def label_coverage_note(model_name: str, model: dict) -> str:
    """Beside a model's headline when it lacks some of the study's labels ("" when it has every one): which
    labels, what that does to the figures shown, and the figures of the other label scope.

    All labels (default): “demo has no class for Contempt (probability 0), so every vote for it counts against
    demo above. Over the 7 labels it has, it picks the crowd's top emotion on 80% of 9 images (mean JS 0.210);
    1 image whose votes are all for Contempt is left out there.”"""
    missing = model.get("missing_labels") or []
    if not missing:
        return ""
    other = model.get("other_scope") or {}
    left_out = _left_out(model.get("only_missing_images") or 0, missing)
    them = "it" if len(missing) == 1 else "them"
    if model.get("label_scope") == "shared":
        text = (f"{model_name} has no class for {_names(missing)}: its figures here are over the "
                f"{len(model.get('labels_scored') or [])} labels it has, both distributions renormalised"
                f"{'; ' + left_out if left_out else ''}.")
        if other.get("n_images") and _finite(other.get("top1_agreement")):
            text += (f" Over all {len(other.get('labels_scored') or [])} labels, where {_names(missing)} "
                     f"{'has' if len(missing) == 1 else 'have'} probability 0, it picks the crowd's top emotion on "
                     f"{percent(other['top1_agreement'])} (mean JS {other['mean_js']:.3f}).")
        return text
    text = (f"{model_name} has no class for {_names(missing)} (probability 0), so every vote for {them} counts "
            f"against {model_name} above.")
    if other.get("n_images") and _finite(other.get("top1_agreement")):
        images = other["n_images"]
        text += (f" Over the {len(other.get('labels_scored') or [])} labels it has, it picks the crowd's top emotion "
                 f"on {percent(other['top1_agreement'])} of {images} image{'s' if images != 1 else ''} "
                 f"(mean JS {other['mean_js']:.3f}){'; ' + left_out if left_out else ''}.")
    elif left_out:
        text += f" Over the labels it has there is nothing to compare yet: {left_out}."
    return text
