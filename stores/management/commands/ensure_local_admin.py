"""Create the local staff user once and print its credentials once (used by `make run`)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a local superuser 'admin' with a random password and print it once."

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PLATFORM_ENV != "local":
            raise CommandError("ensure_local_admin only runs with PLATFORM_ENV=local.")
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists():
            self.stdout.write(
                "Staff user 'admin' already exists (its password was printed when it was created; "
                "reset it with: .venv/bin/python manage.py changepassword admin)."
            )
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username="admin", email="admin@localhost", password=password)
        # run-local.sh serves on $PORT (8000 unless set); the admin URL printed must match it.
        port = os.environ.get("PORT", "8000")
        self.stdout.write(self.style.SUCCESS(f"Created staff user for http://127.0.0.1:{port}/admin/"))
        self.stdout.write(f"    username: admin\n    password: {password}\n(shown only this once)")
