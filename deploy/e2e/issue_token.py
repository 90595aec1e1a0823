"""Fed to `python manage.py shell` inside the platform's web pod by deploy/e2e-cluster.sh.

Creates a fresh user with its own tenant (through the same service as signup) and an API token for
it, and prints the token on a line of its own starting with E2E_TOKEN. Each run makes a new tenant,
so runs never see each other's stores.
"""

import secrets

from stores.permissions import access_for_user
from stores.services import user_signup
from stores.tokens import api_token_create

suffix = secrets.token_hex(4)
user = user_signup(
    email=f"e2e-{suffix}@example.com",
    password=secrets.token_urlsafe(24),
    organisation=f"E2E acceptance {suffix}",
)
_, token = api_token_create(user=user, access=access_for_user(user=user), ttl_days=1)
print(f"E2E_TOKEN {token}")
