"""Merchant pages, mounted at the site root."""

from django.urls import path

from stores import views

app_name = "stores"

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("stores/", views.dashboard, name="dashboard"),
    path("stores/new/", views.store_new, name="new"),
    # Under new/ so that no store name can shadow it.
    path("stores/new/check-name/", views.store_check_name, name="check_name"),
    path("stores/<str:name>/", views.store_detail, name="detail"),
    path("stores/<str:name>/status/", views.store_status, name="status"),
    path("stores/<str:name>/row/", views.store_row, name="row"),
    path("stores/<str:name>/retry/", views.store_retry_view, name="retry"),
    path("stores/<str:name>/delete/", views.store_delete, name="delete"),
    path("stores/<str:name>/suspend/", views.store_suspend_view, name="suspend"),
    path("stores/<str:name>/resume/", views.store_resume_view, name="resume"),
    path("stores/<str:name>/credentials/", views.store_credentials, name="credentials"),
    path("stores/<str:name>/domains/", views.store_domains_view, name="domains"),
    path("stores/<str:name>/backups/", views.store_backup_create, name="backup_create"),
    path(
        "stores/<str:name>/backups/<int:backup_id>/restore/",
        views.store_backup_restore,
        name="backup_restore",
    ),
    path(
        "stores/<str:name>/backups/<int:backup_id>/new-store/",
        views.store_backup_new_store,
        name="backup_new_store",
    ),
    path("stores/<str:name>/domains/add/", views.store_domain_add, name="domain_add"),
    path("stores/<str:name>/domains/<int:domain_id>/check/", views.store_domain_check, name="domain_check"),
    path(
        "stores/<str:name>/domains/<int:domain_id>/remove/", views.store_domain_remove, name="domain_remove"
    ),
    path(
        "stores/<str:name>/domains/<int:domain_id>/primary/",
        views.store_domain_primary,
        name="domain_primary",
    ),
    path(
        "stores/<str:name>/domains/<int:domain_id>/unset-primary/",
        views.store_domain_unset_primary,
        name="domain_unset_primary",
    ),
    path("stores/<str:name>/activity/", views.store_activity_view, name="activity"),
    path("accounts/verify-email/resend/", views.verify_email_resend, name="verify_email_resend"),
    path("accounts/verify-email/<str:token>/", views.verify_email, name="verify_email"),
    path("settings/tokens/", views.token_list, name="tokens"),
    path("settings/tokens/<str:token_key>/revoke/", views.token_revoke, name="token_revoke"),
    path("settings/webhooks/", views.webhook_list, name="webhooks"),
    path("settings/webhooks/<int:endpoint_id>/", views.webhook_detail, name="webhook"),
]
