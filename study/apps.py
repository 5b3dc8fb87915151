from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "EmoStudy"
    default_auto_field = "django.db.models.BigAutoField"
