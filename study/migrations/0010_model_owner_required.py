"""Second step of model ownership: owner required, names and files unique per owner (apart from 0004 so that
PostgreSQL never alters the table in the transaction that filled the owners)."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('study', '0009_model_ownership'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='modelversion',
            name='owner',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='owned_models', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='modelversion',
            name='name',
            field=models.CharField(max_length=100),
        ),
        migrations.AlterField(
            model_name='modelversion',
            name='sha256',
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(fields=('owner', 'name'), name='model_unique_name_per_owner'),
        ),
        migrations.AddConstraint(
            model_name='modelversion',
            constraint=models.UniqueConstraint(fields=('owner', 'sha256'), name='model_unique_file_per_owner'),
        ),
    ]
