"""python manage.py add_researcher USERNAME [--email E] [--password-from-env VAR]: a researcher account, no admin rights."""
import os
import secrets

from django.core.management.base import BaseCommand, CommandError

from study.errors import InvalidInput
from study.services.researchers import researcher_add


class Command(BaseCommand):
    help = ("Create a researcher account (or make an existing user a researcher). Researchers log in at "
            "/accounts/login/ and need no admin (is_staff) rights. Without --password-from-env a password "
            "is generated and printed once.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="", help="their e-mail address (for password resets)")
        parser.add_argument("--password-from-env", metavar="VAR", default="",
                            help="read the password from this environment variable instead of generating one")

    def handle(self, *args, **opts):
        password = None
        if opts["password_from_env"]:
            password = os.environ.get(opts["password_from_env"], "")
            if not password:
                raise CommandError(f"${opts['password_from_env']} is empty or not set")
        try:
            user, created = researcher_add(username=opts["username"], email=opts["email"], password=None)
        except InvalidInput as error:
            raise CommandError(error.message) from None
        if not (created or password):
            self.stdout.write(f"'{user.username}' is a researcher now (password unchanged).")
            return
        generated = None if password else secrets.token_urlsafe(12)
        user.set_password(password or generated)
        user.save(update_fields=["password"])
        where = f"password: {generated}  (shown only this once)" if generated else "the password from the environment"
        self.stdout.write(self.style.SUCCESS(
            f"{'Created' if created else 'Updated'} researcher '{user.username}' with {where}."))
