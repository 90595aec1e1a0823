"""Print a new API token for a merchant account, creating the account and its organisation if needed.

For local demos and scripted setups; merchants normally create tokens on the tokens page.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken

from platform_site.errors import ApplicationError
from stores.selectors import tenant_for_user
from stores.services import tenant_create


class Command(BaseCommand):
    help = (
        "Create an API token for EMAIL (and the account and organisation, if missing); print only the token."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("email")
        parser.add_argument("--organisation", default="", help="Organisation name for a new account.")
        parser.add_argument("--days", type=int, default=30, help="Days until the token expires.")

    def handle(self, *args: Any, email: str, organisation: str, days: int, **options: Any) -> None:
        user_model = get_user_model()
        user = user_model.objects.filter(username__iexact=email).first()
        if user is None:
            # A random password nobody knows: the account is reached with the token or a password reset.
            user = user_model.objects.create_user(
                username=email, email=email, password=secrets.token_urlsafe(32)
            )
        try:
            if tenant_for_user(user=user) is None:
                tenant_create(name=organisation or email.split("@")[-1], owner=user)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        _, token = AuthToken.objects.create(user, expiry=timedelta(days=days))
        self.stdout.write(token)
