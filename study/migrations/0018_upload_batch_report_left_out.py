"""UploadBatch.report_left_out: how many rows the report's cap left out, per status, recorded when the import ends.

Batches imported before it: the rows left out are worked out once from the counts against the rows kept (a result
counted more often than it has rows lost the rest; only duplicates and rejections are counted and reported alike).
"""
from collections import Counter

from django.db import migrations, models


def record_left_out(apps, schema_editor):
    UploadBatch = apps.get_model("study", "UploadBatch")
    for batch in UploadBatch.objects.exclude(report=[]).iterator():
        kept = Counter(row[1] for row in batch.report)
        left_out = {status: total - kept[status]
                    for status, total in (("duplicate", batch.duplicates), ("rejected", batch.rejected))
                    if total > kept[status]}
        if left_out:
            UploadBatch.objects.filter(pk=batch.pk).update(report_left_out=left_out)


class Migration(migrations.Migration):

    dependencies = [
        ("study", "0017_upload_batch_restarts"),
    ]

    operations = [
        migrations.AddField(
            model_name="uploadbatch",
            name="report_left_out",
            field=models.JSONField(blank=True, default=dict,
                                   help_text="Rows the report's cap left out, per status: {status: count}."),
        ),
        migrations.RunPython(record_left_out, migrations.RunPython.noop),
    ]
