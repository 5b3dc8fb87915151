import os
import threading

from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "EmoStudy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # `make run`'s web server (runserver, one process, no fork) imports crowd-kit in the background at start,
        # so the first participants page does not wait for it (gunicorn does it in its master: gunicorn_conf).
        if os.environ.get("WEB_IMPORT_CROWD_KIT_AT_START") == "1":
            from study.analysis.aggregation import import_crowd_kit

            threading.Thread(target=import_crowd_kit, name="import-crowd-kit", daemon=True).start()
