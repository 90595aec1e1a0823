"""Routes of the partner API, mounted at /api/v1/ under the `api` namespace."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from stores.api.views import BackupViewSet, PlanView, StoreViewSet
from stores.api.webhooks import WebhookEndpointViewSet

app_name = "api"

router = SimpleRouter()
router.register("stores", StoreViewSet, basename="store")
router.register("backups", BackupViewSet, basename="backup")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")

urlpatterns = [
    path("plan/", PlanView.as_view(), name="plan"),
    *router.urls,
]
