"""Output serializers of the REST API (inputs live beside their API views, STYLE.md)."""
from rest_framework import serializers

from study.models import Prediction, Stimulus, Study, Vote


class StudyOutputSerializer(serializers.ModelSerializer):
    labels = serializers.ListField(source="label_set.labels", child=serializers.CharField())
    label_set = serializers.CharField(source="label_set.name")

    class Meta:
        model = Study
        fields = ["slug", "title", "status", "label_set", "labels", "votes_per_image", "images_per_participant",
                  "gold_rate", "gold_pass_threshold", "face_crop", "created_at"]


class StimulusOutputSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id")
    file = serializers.CharField(source="original_name")

    class Meta:
        model = Stimulus
        fields = ["id", "file", "sha256", "width", "height", "ground_truth", "valence", "arousal", "is_gold",
                  "source", "metadata"]


class VoteOutputSerializer(serializers.ModelSerializer):
    participant = serializers.UUIDField(source="participant.public_id")
    stimulus = serializers.UUIDField(source="stimulus.public_id")
    participant_excluded = serializers.BooleanField(source="participant.excluded")
    participant_is_test = serializers.BooleanField(source="participant.is_test")

    class Meta:
        model = Vote
        fields = ["id", "participant", "stimulus", "label", "response_ms", "participant_excluded", "participant_is_test",
                  "created_at"]


class PredictionOutputSerializer(serializers.ModelSerializer):
    stimulus = serializers.UUIDField(source="stimulus.public_id")
    model = serializers.CharField(source="model_version.name")

    class Meta:
        model = Prediction
        fields = ["stimulus", "model", "distribution", "dropped_mass", "ambiguity", "valence", "arousal",
                  "created_at"]


class SummaryFiguresSerializer(serializers.Serializer):
    """The study-level figures every summary row has (a model, a ceiling, an imported source)."""

    n_images = serializers.IntegerField()
    mean_js = serializers.FloatField(allow_null=True)
    mean_kl = serializers.FloatField(allow_null=True)
    mean_cosine = serializers.FloatField(allow_null=True)
    mean_intersection = serializers.FloatField(allow_null=True)
    top1_agreement = serializers.FloatField(allow_null=True)
    entropy_spearman = serializers.FloatField(allow_null=True)
    ece = serializers.FloatField(allow_null=True)


class OtherScopeSerializer(SummaryFiguresSerializer):
    label_scope = serializers.CharField(help_text="all or shared: the variant these figures are")
    labels_scored = serializers.ListField(child=serializers.CharField())
    fraction = serializers.DictField(child=serializers.FloatField(allow_null=True), allow_null=True,
                                     help_text="of the headline ceiling; null for the shared labels while the all "
                                     "scope is asked for (their ceilings are computed only with ?labels=shared)")


class SummaryRowSerializer(SummaryFiguresSerializer):
    name = serializers.CharField()
    model_id = serializers.IntegerField(allow_null=True)
    confusion = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), required=False,
                                      help_text="absent for the full-crowd ceiling (no size correction exists)")
    ceiling = serializers.CharField(required=False, help_text="noise_floor, full_crowd or split_half on ceiling rows")
    headline = serializers.BooleanField(required=False, help_text="the ceiling that fractions are taken of")
    se = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False,
                               help_text="ceiling rows: the Monte-Carlo standard error of each figure")
    fraction = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False, allow_null=True,
                                     help_text="model rows: each figure as a fraction of the headline ceiling")
    label_scope = serializers.CharField(required=False, help_text="model rows: all (every study label) or shared "
                                        "(only the labels the model has, both distributions renormalised)")
    missing_labels = serializers.ListField(child=serializers.CharField(), required=False,
                                           help_text="model rows: study labels the model has no class for "
                                           "(probability 0 in its predictions); empty when none")
    labels_scored = serializers.ListField(child=serializers.CharField(), required=False,
                                          help_text="model rows: the labels these figures (and confusion) cover")
    only_missing_images = serializers.IntegerField(required=False, help_text="model rows: images whose votes are "
                                                   "all on missing labels (left out of the shared-labels figures)")
    other_scope = OtherScopeSerializer(required=False, allow_null=True,
                                       help_text="model rows lacking labels: the other label scope's figures")


class MetricsOutputSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField())
    label_scope = serializers.CharField(help_text="all (default) or shared, as asked with ?labels=")
    votes_counted = serializers.IntegerField()
    participants = serializers.IntegerField()
    excluded = serializers.IntegerField()
    summaries = SummaryRowSerializer(many=True)



class TrialImageSerializer(serializers.Serializer):
    stimulus = serializers.UUIDField(help_text="the image's public id, to send back with the vote")
    image_url = serializers.CharField(help_text="the image, readable only with this participant's cookie")


class TrialProgressSerializer(serializers.Serializer):
    answered = serializers.IntegerField()
    total = serializers.IntegerField()
    done = serializers.BooleanField(help_text="every trial answered: go to the finish page")
    current = TrialImageSerializer(allow_null=True, help_text="the trial to show now; null when done")
    next = TrialImageSerializer(allow_null=True, help_text="the trial after it, to preload; null if none")


class TrialOutputSerializer(TrialProgressSerializer):
    labels = serializers.ListField(child=serializers.CharField(), help_text="the buttons, in this participant's order")


class VoteCreatedOutputSerializer(VoteOutputSerializer):
    """The participant's vote, and where they stand after it: no second request for the next trial."""

    trial = TrialProgressSerializer(help_text="progress after this vote, and the next images to show")

    class Meta(VoteOutputSerializer.Meta):
        fields = [*VoteOutputSerializer.Meta.fields, "trial"]


def paginated(item: type[serializers.Serializer], *, with_count: bool = True) -> type[serializers.Serializer]:
    """The schema of one page of `item`s as the API answers it: DRF's page-number pages carry a count,
    cursor pages only next/previous links."""
    fields = {
        "next": serializers.URLField(allow_null=True, help_text="the next page, null on the last"),
        "previous": serializers.URLField(allow_null=True, help_text="the previous page, null on the first"),
        "results": item(many=True),
    }
    if with_count:
        fields["count"] = serializers.IntegerField(help_text="items on all pages")
    name = item.__name__.removesuffix("Serializer").removesuffix("Output") + ("Page" if with_count else "CursorPage")
    return type(f"{name}Serializer", (serializers.Serializer,), fields)


StimulusPageSerializer = paginated(StimulusOutputSerializer)
VoteCursorPageSerializer = paginated(VoteOutputSerializer, with_count=False)
PredictionPageSerializer = paginated(PredictionOutputSerializer)
