from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import User


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
