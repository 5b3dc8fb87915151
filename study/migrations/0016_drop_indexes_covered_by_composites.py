"""Drop the single-column foreign-key indexes of assignments and votes that a composite index already covers (its
leading column): every vote inserts a vote row and updates an assignment's answered_at, which writes every index of
both rows. Only the indexes go: Django's AlterField would also drop and re-validate the foreign keys on PostgreSQL
and rebuild both tables on SQLite; the index names are the ones Django gave them on both backends."""
import django.db.models.deletion
from django.db import migrations, models

COVERED = {  # index -> (table, column)
    "study_assignment_participant_id_2ab7b1a0": ("study_assignment", "participant_id"),
    "study_assignment_stimulus_id_48490eb7": ("study_assignment", "stimulus_id"),
    "study_vote_participant_id_9a578ef5": ("study_vote", "participant_id"),
    "study_vote_stimulus_id_8b429609": ("study_vote", "stimulus_id"),
}


class Migration(migrations.Migration):

    dependencies = [
        ('study', '0015_model_kind_and_validation_progress'),
    ]

    state_operations = [
        migrations.AlterField(
            model_name='assignment',
            name='participant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='assignments', to='study.participant'),
        ),
        migrations.AlterField(
            model_name='assignment',
            name='stimulus',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='assignments', to='study.stimulus'),
        ),
        migrations.AlterField(
            model_name='vote',
            name='participant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='votes', to='study.participant'),
        ),
        migrations.AlterField(
            model_name='vote',
            name='stimulus',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name='votes', to='study.stimulus'),
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=state_operations,
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{index}"',
                                  reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")')
                for index, (table, column) in COVERED.items()
            ],
        ),
    ]
