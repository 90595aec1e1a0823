"""URL map: the staff admin, the merchant pages, the partner API and the health probes."""

from django.contrib import admin
from django.urls import path

from platform_site import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
