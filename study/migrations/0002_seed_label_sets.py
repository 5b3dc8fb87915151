"""Seed the two standard label sets."""
from django.db import migrations

RAFDB_BASIC7 = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
AFFECTNET8 = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]


def seed(apps, schema_editor):
    LabelSet = apps.get_model("study", "LabelSet")
    LabelSet.objects.get_or_create(name="RAF-DB basic-7", defaults={"labels": RAFDB_BASIC7})
    LabelSet.objects.get_or_create(name="AffectNet-8", defaults={"labels": AFFECTNET8})


class Migration(migrations.Migration):
    dependencies = [("study", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
