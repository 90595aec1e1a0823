"""Print a new API token for a merchant account, creating the account and its organisation if needed.

For local demos and scripted setups; merchants normally create tokens on the tokens page.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from platform_site.errors import ApplicationError
from stores.permissions import access_for_user
from stores.services import tenant_create
from stores.tokens import api_token_create
from stores.validators import validate_account_email


class Command(BaseCommand):
    help = (
        "Create an API token for EMAIL (and the account and organisation, if missing); print only the token."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("email")
        parser.add_argument("--organisation", default="", help="Organisation name for a new account.")
        parser.add_argument("--days", type=int, default=30, help="Days until the token expires.")
        parser.add_argument(
            "--read-only", action="store_true", help="The token may only read (GET), e.g. for monitoring."
        )

    def handle(
        self, *args: Any, email: str, organisation: str, days: int, read_only: bool, **options: Any
    ) -> None:
        email = email.strip().lower()
        try:
            validate_account_email(email)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        user_model = get_user_model()
        user = user_model.objects.filter(username__iexact=email).first()
        if user is None:
            # A random password nobody knows: the account is reached with the token or a password reset.
            user = user_model.objects.create_user(
                username=email, email=email, password=secrets.token_urlsafe(32)
            )
        try:
            if access_for_user(user=user) is None:
                tenant_create(name=organisation or email.split("@")[-1], owner=user)
            # Bound to the account's organisation and role, like a token from the tokens page.
            access = access_for_user(user=user)
            if access is None:
                raise CommandError(f"{email} belongs to no organisation.")
            _, token = api_token_create(user=user, access=access, read_only=read_only, ttl_days=days)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(token)
