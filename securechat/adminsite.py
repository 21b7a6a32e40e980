"""The admin site: Django's, with what admins delete, (de)activate and change on record.

Every ModelAdmin registered on it (ours, and Django's own such as Group) gets
`AuditedAdminMixin` mixed in, so no admin class can forget it:

* each deletion, from an object's Delete button or the bulk "Delete selected" action, is an
  `admin.deleted` audit event (keys.AuditEvent) and a security log line;
* clearing a user's Active box deactivates them as `manage.py deactivate_user` does (their
  keys are revoked), audited; ticking it again is audited as a reactivation;
* every other add and change is a security log line naming the fields (a permission or
  superuser change is worth a line too).

Revocation is not here: the certificates' action calls the revocation service, which audits.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

# Models are imported inside the methods: this module is loaded with the app registry,
# before any model can be.


def _label(obj) -> str:
    return obj._meta.label_lower


def _changed_fields(message) -> list[str]:
    """Field labels from the admin's change message ([{"changed": {"fields": [...]}}])."""
    if not isinstance(message, list):
        return []
    return [name for part in message for name in part.get("changed", {}).get("fields", [])]


class AuditedAdminMixin:
    def log_deletions(self, request, queryset):
        """Called by Django before it deletes, in the same request, for both delete paths."""
        from accounts.models import User
        from keys.services import record_audit

        for obj in queryset:
            user = obj if isinstance(obj, User) else None
            name = f" {obj.username}" if user else ""
            record_audit(
                "admin.deleted",
                actor=request.user,
                subject=user,
                detail=f"{_label(obj)} pk={obj.pk}{name}",
                via="admin",
            )
        return super().log_deletions(request, queryset)

    def save_model(self, request, obj, form, change) -> None:
        from accounts.lifecycle import finish_deactivation, record_reactivation
        from accounts.models import User

        super().save_model(request, obj, form, change)
        if not (change and isinstance(obj, User) and "is_active" in form.changed_data):
            return
        if obj.is_active:
            record_reactivation(obj, by=request.user, via="admin")
        else:
            finish_deactivation(
                obj, reason="Active cleared in the admin", by=request.user, via="admin"
            )

    def log_addition(self, request, obj, message):
        self._log_edit("admin.added", request, obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._log_edit("admin.changed", request, obj, message)
        return super().log_change(request, obj, message)

    @staticmethod
    def _log_edit(event: str, request, obj, message) -> None:
        from django.db import transaction

        from securechat.securitylog import security_event

        fields = {
            "actor": request.user.username,
            "model": _label(obj),
            "pk": obj.pk,
            "fields": ",".join(_changed_fields(message)),
        }
        transaction.on_commit(lambda: security_event(event, **fields))


class AuditedAdminSite(admin.AdminSite):
    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdminMixin):
            admin_class = type(
                admin_class.__name__,
                (AuditedAdminMixin, admin_class),
                {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
            )
        super().register(model_or_iterable, admin_class, **options)


class SecureChatAdminConfig(AdminConfig):
    """Named in INSTALLED_APPS in place of django.contrib.admin."""

    default_site = "securechat.adminsite.AuditedAdminSite"
