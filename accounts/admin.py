from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.forms import ThrottledAdminAuthenticationForm
from accounts.models import LoginLockout, User
from accounts.services import unlock_lockouts, unlock_user_logins
from accounts.throttle import LoginUnavailable

# The admin's own login form shows why a throttled login was refused; the throttling itself
# is in the authentication backend, which every login goes through.
admin.site.login_form = ThrottledAdminAuthenticationForm


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "is_staff", "is_active", "last_login")
    search_fields = ("username", "display_name", "email")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("SecureChat", {"fields": ("display_name", "contacts")}),
    )
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, ("SecureChat", {"fields": ("display_name",)}))
    filter_horizontal = ("groups", "user_permissions", "contacts")
    actions = ["unlock_logins"]

    @admin.action(description="Clear login lockouts of the selected users", permissions=["change"])
    def unlock_logins(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            for user in queryset:
                unlock_user_logins(user, by=request.user)
        except LoginUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Login lockouts cleared for {queryset.count()} user(s).")


class CurrentFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("current", "current"), ("ended", "ended or unlocked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "current":
            return queryset.filter(until__gt=now, unlocked_at__isnull=True)
        if self.value() == "ended":
            return queryset.exclude(until__gt=now, unlocked_at__isnull=True)
        return queryset


@admin.register(LoginLockout)
class LoginLockoutAdmin(admin.ModelAdmin):
    """Read-only record of login limits reached; the one thing to do is unlock."""

    list_display = (
        "started_at",
        "scope",
        "user",
        "username_hash",
        "address",
        "until",
        "current",
        "unlocked_at",
        "unlocked_by",
    )
    list_filter = (CurrentFilter, "scope")
    search_fields = ("user__username", "username_hash", "address")
    actions = ["unlock"]

    @admin.display(boolean=True)
    def current(self, lockout: LoginLockout) -> bool:
        return lockout.unlocked_at is None and lockout.until > timezone.now()

    @admin.action(description="Unlock the selected lockouts now", permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: QuerySet) -> None:
        try:
            lifted = unlock_lockouts(queryset, by=request.user)
        except LoginUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"{lifted} lockout(s) lifted.")

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_loginlockout")

    # A record: nobody adds, edits or deletes rows by hand (no dead Save buttons either).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: LoginLockout | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: LoginLockout | None = None) -> bool:
        return False
