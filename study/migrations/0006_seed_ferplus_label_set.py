"""Seed FER+ (8 emotions, plus its "Unknown" and "Not a face" answers, which are not emotions)."""
from django.db import migrations

FERPLUS8 = ["Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt"]
FERPLUS_NON_EMOTION = ["Unknown", "Not a face"]


def seed(apps, schema_editor):
    LabelSet = apps.get_model("study", "LabelSet")
    LabelSet.objects.get_or_create(
        name="FER+ (8 + Unknown, Not a face)",
        defaults={"labels": FERPLUS8, "non_emotion_labels": FERPLUS_NON_EMOTION},
    )


class Migration(migrations.Migration):
    dependencies = [("study", "0005_collaborators_test_mode_label_keys_codes_language")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
