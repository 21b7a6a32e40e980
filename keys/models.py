"""The PKI's records: public material only. Private keys are on clients, or (the CA's)
encrypted on disk under PKI_DIR."""

from django.conf import settings
from django.db import models


class CertificateAuthority(models.Model):
    """A CA generation; the newest active one issues, retired ones still verify."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        RETIRED = "retired"

    subject_key_id = models.CharField(max_length=64, unique=True)  # hex; names the key file
    certificate_der = models.BinaryField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    not_after = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "certificate authorities"

    def __str__(self) -> str:
        return f"CA {self.subject_key_id[:16]} ({self.status})"


class DsaParameters(models.Model):
    """DSA domain parameters published with the CA so clients can make DSA keys fast."""

    p = models.TextField()  # hex
    q = models.TextField()
    g = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "DSA parameters"

    def __str__(self) -> str:
        return f"DSA parameters of {self.created:%Y-%m-%d}"


class KeyRegistration(models.Model):
    """One registration: the signing and encryption certificates issued together."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="key_registrations"
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"keys of {self.user_id} registered {self.created:%Y-%m-%d}"


class Certificate(models.Model):
    class Kind(models.TextChoices):
        SIGNING = "signing"
        ENCRYPTION = "encryption"
        SERVER_SIGNING = "server-signing"

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUPERSEDED = "superseded"  # replaced by a rotation: verifies history only
        REVOKED = "revoked"

    serial = models.CharField(max_length=40, unique=True)  # lowercase hex
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="certificates",
    )
    registration = models.ForeignKey(
        KeyRegistration,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="certificates",
    )
    issuer = models.ForeignKey(CertificateAuthority, on_delete=models.PROTECT)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    algorithm = models.CharField(max_length=16)
    key_size = models.PositiveIntegerField()
    spki_der = models.BinaryField()
    spki_sha256 = models.CharField(max_length=64, db_index=True)
    certificate_der = models.BinaryField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    issued = models.DateTimeField(auto_now_add=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "kind", "status"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.serial[:12]}… of {self.owner or 'the server'}"


class PopChallenge(models.Model):
    """A single-use proof-of-possession challenge bound to the keys it was made for."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    nonce = models.BinaryField()
    secret_sha256 = models.BinaryField()  # the encrypted secret itself is never stored
    signing_spki_sha256 = models.CharField(max_length=64)
    encryption_spki_sha256 = models.CharField(max_length=64)
    expires = models.DateTimeField()
    used = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"challenge {self.pk} for {self.user_id}"


class KeyBackup(models.Model):
    """The owner's private keys, encrypted on the client: opaque to the server."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="key_backup"
    )
    blob = models.BinaryField()
    version = models.PositiveIntegerField()
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"key backup v{self.version} of {self.user_id}"


class AuditEvent(models.Model):
    """Who did what to the PKI. Never holds key material."""

    action = models.CharField(max_length=32)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    serial = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.action} {self.serial}"
