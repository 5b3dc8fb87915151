"""python manage.py purge_demo_uploads: delete expired demo results and stray temporary demo files now.

The same runs every 5 minutes as the Celery beat task study.tasks.purge_demo_uploads.
"""
from django.core.management.base import BaseCommand

from study.services.demo import demo_uploads_purge


class Command(BaseCommand):
    help = "Delete expired demo-page results and temporary files no running upload owns."

    def handle(self, *args, **opts):
        counts = demo_uploads_purge()
        self.stdout.write(f"deleted {counts['expired']} expired demo result(s) and {counts['stray_files']} stray file(s)")
