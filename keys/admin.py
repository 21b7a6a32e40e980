"""Django admin for the PKI: public material only, revocation with a reason."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.template.response import TemplateResponse

from cryptokit.fingerprints import fingerprint
from keys.models import AuditEvent, Certificate, CertificateAuthority
from keys.services import revoke_certificate


class RevokeForm(forms.Form):
    reason = forms.CharField(max_length=200)


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = (
        "owner",
        "kind",
        "algorithm",
        "key_size",
        "short_serial",
        "status",
        "issued",
        "revoked_at",
    )
    list_filter = ("status", "kind", "algorithm")
    search_fields = ("owner__username", "serial", "spki_sha256")
    actions = ["revoke_selected"]
    list_select_related = ("owner",)
    fields = (
        "owner",
        "kind",
        "algorithm",
        "key_size",
        "serial",
        "fingerprint",
        "status",
        "issuer",
        "not_before",
        "not_after",
        "issued",
        "superseded_at",
        "revoked_at",
        "revocation_reason",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # certificates are issued only through proof of possession

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # every field is read-only: a page to read, with no Save button

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # history must stay verifiable

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # Django's "change certificate" permission is the right to revoke (the operators'
        # group has it, accounts/seeding.py): revoking is the only change there is.
        return request.user.has_perm("keys.change_certificate")

    @admin.display(description="serial")
    def short_serial(self, obj: Certificate) -> str:
        return obj.serial[:16]

    @admin.display(description="fingerprint (SHA-256 of the public key)")
    def fingerprint(self, obj: Certificate) -> str:
        return fingerprint(bytes(obj.spki_der))

    @admin.action(
        description="Revoke selected certificates (asks for a reason)", permissions=["revoke"]
    )
    def revoke_selected(self, request: HttpRequest, queryset):
        form = RevokeForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            serials = []
            for certificate in queryset:
                serials += revoke_certificate(
                    certificate, reason=form.cleaned_data["reason"], by=request.user, via="admin"
                )
            self.message_user(
                request, f"Revoked {len(set(serials))} certificate(s).", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "certificates": queryset,
            "action": "revoke_selected",
            "opts": self.model._meta,
            "title": "Revoke certificates",
        }
        return TemplateResponse(request, "admin/keys/revoke.html", context)


@admin.register(CertificateAuthority)
class CertificateAuthorityAdmin(admin.ModelAdmin):
    list_display = ("subject_key_id", "status", "created", "not_after")
    readonly_fields = ("subject_key_id", "status", "created", "not_after")
    exclude = ("certificate_der",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py init_pki [--rotate]` makes CAs

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # read-only: no Save button

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a retired CA still verifies what it issued


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created", "action", "actor", "subject", "serial", "detail")
    list_filter = ("action",)
    search_fields = ("serial", "actor__username", "subject__username")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
