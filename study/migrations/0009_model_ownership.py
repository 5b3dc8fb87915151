"""Every model gets an owner: who registered it, else the first superuser (demo and CLI models had none),
else an inactive `model-registry` account created to hold them. Models already registered stay usable by
everyone (public), as they were; new ones are private to their owner until shared."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def assign_owners(apps, schema_editor):
    ModelVersion = apps.get_model("study", "ModelVersion")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    orphans = ModelVersion.objects.filter(owner__isnull=True)
    for model_version in orphans.exclude(created_by__isnull=True):
        model_version.owner_id = model_version.created_by_id
        model_version.save(update_fields=["owner"])
    if not orphans.exists():
        ModelVersion.objects.update(is_public=True)
        return
    holder = (User.objects.filter(is_superuser=True).order_by("pk").first()
              or User.objects.get_or_create(username="model-registry", defaults={"is_active": False})[0])
    orphans.update(owner=holder)
    ModelVersion.objects.update(is_public=True)


class Migration(migrations.Migration):

    dependencies = [
        ('study', '0008_demo_uploads'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='is_public',
            field=models.BooleanField(default=False, help_text='Every researcher may see and run it.'),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='owner',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='owned_models', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='modelversion',
            name='shared_with',
            field=models.ManyToManyField(blank=True, help_text='Researchers besides the owner who may see and run it.', related_name='shared_models', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunPython(assign_owners, migrations.RunPython.noop),
    ]
