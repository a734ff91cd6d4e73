"""Connecting a tenant to its Google Admin console: "Autoriser Google", the OAuth callback, re-authorization.

The steps (the reference guide's "Autorisation de Google"):

1. :func:`integration_authorize_start` (POST "Autoriser Google", tenant admins only): checks the prerequisites
   (LDAP configured, its OUs synced), remembers a pending authorization in the session (``oauth.py``: state,
   PKCE verifier, tenant, user, time) and returns Google's authorize URL.
2. Google shows its consent screen; the admin picks the account and clicks "Continuer".
3. :func:`integration_authorize_complete` (the callback): pops the pending authorization (single use, 10
   minutes, same tenant and user), exchanges the code, checks that every scope was granted and a refresh token
   came back, reads the customer (``customers.get(my_customer)``: domain, customer id; a 403 means the account
   is not an administrator), then stores the integration with its tokens encrypted, and audits it.

Each failure raises one :class:`AuthorizationError` subclass carrying a message for the admin, and stores
nothing: the integration row is written last, in one transaction, after every check passed. Failures are
audited too (code only, never a token).

Re-authorization (status "réautorisation requise", or an admin refreshing the grant) for the SAME Google
customer updates the row in place: devices, OUs and history stay. A different customer is refused; the
integration must be removed first. A Google customer already connected to another tenant is refused.

Nothing is revoked at Google when a callback fails: the grant Google just made belongs to the same
(client, account) pair as an integration that may already be live, here or in another tenant, and revoking any
token of a grant revokes all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chromeos.google import oauth
from chromeos.google.client import SCOPES, GoogleClient
from chromeos.google.client import token_fingerprint as client_token_fingerprint
from chromeos.google.errors import (
    AuthRevoked,
    GoogleError,
    GooglePermissionDenied,
    TransientGoogleError,
)
from chromeos.models import GoogleIntegration, IntegrationStatus
from mdm.models import Tenant, User
from mdm.services import audit_record

logger = logging.getLogger(__name__)

# Interactive: the admin waits on the callback page, so fewer attempts than a background sync.
CALLBACK_GOOGLE_ATTEMPTS = 3
REAUTHORIZABLE_STATUSES = (IntegrationStatus.ACTIVE, IntegrationStatus.REAUTH_REQUIRED)


class AuthorizationError(Exception):
    """An authorization that cannot start or complete. ``message`` is for the admin; ``code`` for the audit."""

    code = "authorization_failed"
    default_message: Any = _(
        "L'autorisation Google a échoué. Rien n'a été enregistré ; cliquez de nouveau sur « Autoriser Google »."
    )

    def __init__(self, message: Any = None, **params: Any) -> None:
        self.params = params
        self.message = (
            (message or self.default_message) % params if params else (message or self.default_message)
        )
        super().__init__(str(self.code))


class PrerequisitesMissing(AuthorizationError):
    code = "prerequisites_missing"
    default_message = _(
        "Configurez d'abord l'annuaire LDAP et synchronisez ses unités organisationnelles : "
        "« Autoriser Google » est disponible ensuite."
    )


class IntegrationBusy(AuthorizationError):
    code = "integration_busy"
    default_message = _(
        "L'intégration Google est en cours de suppression ou sa suppression a échoué : "
        "elle ne peut pas être autorisée de nouveau maintenant."
    )


class ConsentDenied(AuthorizationError):
    code = "consent_denied"
    default_message = _(
        "Vous avez refusé l'accès dans Google : la console n'est pas connectée. Rien n'a été enregistré."
    )


class InvalidState(AuthorizationError):
    code = "invalid_state"
    default_message = _(
        "Cette réponse de Google ne correspond à aucune demande d'autorisation en cours (lien déjà utilisé, "
        "d'une autre session ou falsifié). Rien n'a été enregistré ; cliquez de nouveau sur « Autoriser Google »."
    )


class ExpiredState(AuthorizationError):
    code = "expired_state"
    default_message = _(
        "La demande d'autorisation a expiré (plus de 10 minutes). Rien n'a été enregistré ; "
        "cliquez de nouveau sur « Autoriser Google »."
    )


class AuthorizationRefused(AuthorizationError):
    code = "authorization_refused"
    default_message = _(
        "Google a refusé la demande d'autorisation (%(error)s). Rien n'a été enregistré. "
        "Vérifiez la configuration du client OAuth de la console."
    )


class CodeRejected(AuthorizationError):
    code = "code_rejected"
    default_message = _(
        "Google a refusé le code d'autorisation : il a déjà été utilisé ou a expiré. Rien n'a été enregistré ; "
        "cliquez de nouveau sur « Autoriser Google »."
    )


class NoRefreshToken(AuthorizationError):
    code = "no_refresh_token"
    default_message = _(
        "Google n'a pas fourni de jeton d'actualisation (accès hors ligne non accordé) : la console ne pourrait "
        "pas synchroniser. Rien n'a été enregistré. Retirez l'accès de la console dans votre compte Google "
        "(Applications tierces) puis cliquez de nouveau sur « Autoriser Google »."
    )


class ScopesNotGranted(AuthorizationError):
    code = "scopes_not_granted"
    default_message = _(
        "Toutes les autorisations demandées n'ont pas été accordées (manquantes : %(scopes)s). "
        "Rien n'a été enregistré ; recommencez en acceptant toutes les autorisations."
    )


class NotGoogleAdmin(AuthorizationError):
    code = "not_google_admin"
    default_message = _(
        "Le compte Google choisi n'est pas administrateur de son domaine Google Workspace. "
        "Rien n'a été enregistré ; recommencez avec un compte super-administrateur."
    )


class DomainConnectedElsewhere(AuthorizationError):
    code = "domain_connected_elsewhere"
    default_message = _(
        "Le domaine Google %(domain)s est déjà connecté à un autre locataire : un domaine ne peut être géré "
        "que par un seul locataire. Rien n'a été enregistré."
    )


class OtherDomainConnected(AuthorizationError):
    code = "other_domain_connected"
    default_message = _(
        "Cette console est déjà connectée au domaine Google %(current)s ; le compte choisi appartient au "
        "domaine %(new)s. Rien n'a été enregistré. Pour changer de domaine, supprimez d'abord l'intégration."
    )


class GoogleUnavailable(AuthorizationError):
    code = "google_unavailable"
    default_message = _(
        "Google est momentanément indisponible. Rien n'a été enregistré ; "
        "cliquez de nouveau sur « Autoriser Google » dans quelques minutes."
    )


# -- start ----------------------------------------------------------------------------------------------------
def authorization_blocker(
    *, ldap_ready: bool, integration: GoogleIntegration | None
) -> AuthorizationError | None:
    """Why "Autoriser Google" cannot start, given the LDAP prerequisites and the current integration."""
    if not ldap_ready:
        return PrerequisitesMissing()
    if integration is not None and integration.status not in REAUTHORIZABLE_STATUSES:
        return IntegrationBusy()
    return None


def integration_authorization_blocker(tenant: Tenant) -> AuthorizationError | None:
    """Why "Autoriser Google" cannot start for ``tenant`` now, or None."""
    from ldap_sync.selectors import ldap_prerequisites

    return authorization_blocker(
        ldap_ready=ldap_prerequisites(tenant).ready,
        integration=GoogleIntegration.unscoped.filter(tenant=tenant).first(),
    )


def integration_authorize_start(
    *, tenant: Tenant, user: User, session: MutableMapping[str, Any], redirect_uri: str
) -> str:
    """Check that the tenant may authorize, remember the pending authorization, return Google's authorize URL."""
    blocker = integration_authorization_blocker(tenant)
    if blocker is not None:
        raise blocker
    url, pending = oauth.authorization_request(
        redirect_uri=redirect_uri, tenant_id=tenant.pk, user_id=user.pk
    )
    oauth.remember_pending(session, pending)
    audit_record(tenant=tenant, actor=user, action="integration.authorize_start", target="Google")
    return url


# -- callback -------------------------------------------------------------------------------------------------
def integration_authorize_complete(
    *, tenant: Tenant, user: User, session: MutableMapping[str, Any], params: Mapping[str, str]
) -> GoogleIntegration:
    """Complete the authorization from the callback's query ``params``; return the stored integration."""
    try:
        return _authorize_complete(tenant=tenant, user=user, session=session, params=params)
    except AuthorizationError as error:
        logger.info("google authorization failed tenant=%s code=%s", tenant.slug, error.code)
        audit_record(
            tenant=tenant,
            actor=user,
            action="integration.authorize_failed",
            target="Google",
            details={"error": error.code, **{k: str(v) for k, v in error.params.items()}},
        )
        raise


def _authorize_complete(
    *, tenant: Tenant, user: User, session: MutableMapping[str, Any], params: Mapping[str, str]
) -> GoogleIntegration:
    pending = oauth.pop_pending(session, params.get("state", ""))
    if pending is None or pending.tenant_id != tenant.pk or pending.user_id != user.pk:
        raise InvalidState()
    if pending.expired():
        raise ExpiredState()
    error = params.get("error")
    if error == "access_denied":
        raise ConsentDenied()
    if error:
        raise AuthorizationRefused(error=error[:100])
    code = params.get("code")
    if not code:
        raise AuthorizationRefused(error="no code")
    blocker = integration_authorization_blocker(tenant)
    if blocker is not None:  # the situation changed while the admin was at Google
        raise blocker

    try:
        token = oauth.exchange_code(pending, code)
    except oauth.CodeExchangeRefused as exc:
        if exc.reason == "invalid_grant":
            raise CodeRejected() from exc
        raise AuthorizationRefused(error=exc.reason) from exc
    except TransientGoogleError as exc:
        raise GoogleUnavailable() from exc

    scopes = oauth.granted_scopes(token)
    missing = [scope for scope in SCOPES if scope not in scopes]
    if missing:
        raise ScopesNotGranted(
            scopes=", ".join(s.removeprefix("https://www.googleapis.com/auth/") for s in missing)
        )
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise NoRefreshToken()

    now = timezone.now()
    expires_in = int(token.get("expires_in") or 0)
    candidate = GoogleIntegration(
        tenant=tenant,
        status=IntegrationStatus.ACTIVE,
        refresh_token=refresh_token,
        access_token=token.get("access_token", ""),
        access_token_expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
        scopes=scopes,
    )
    customer = _read_customer(candidate)
    candidate.customer_id = str(customer.get("id", ""))
    candidate.domain = str(customer.get("customerDomain", ""))
    candidate.customer_info = customer
    candidate.admin_email = oauth.id_token_email(token)
    if not candidate.customer_id or not candidate.domain:
        raise GoogleUnavailable()
    return _store(candidate, user=user, now=now)


def _read_customer(candidate: GoogleIntegration) -> dict[str, Any]:
    client = GoogleClient(candidate)
    try:
        customer = client.execute(
            client.directory().customers().get(customerKey="my_customer"), attempts=CALLBACK_GOOGLE_ATTEMPTS
        )
    except GooglePermissionDenied as exc:
        if exc.reason == "insufficientPermissions":
            raise ScopesNotGranted(scopes=exc.reason) from exc
        raise NotGoogleAdmin() from exc
    except AuthRevoked as exc:  # the grant was revoked between the exchange and this call
        raise CodeRejected() from exc
    except GoogleError as exc:
        raise GoogleUnavailable() from exc
    customer.pop("etag", None)
    customer.pop("kind", None)
    return dict(customer)


def _store(candidate: GoogleIntegration, *, user: User, now: Any) -> GoogleIntegration:
    tenant = candidate.tenant
    try:
        with transaction.atomic():
            elsewhere = (
                GoogleIntegration.unscoped.filter(customer_id=candidate.customer_id)
                .exclude(tenant=tenant)
                .exists()
            )
            if elsewhere:
                raise DomainConnectedElsewhere(domain=candidate.domain)
            existing = GoogleIntegration.unscoped.select_for_update().filter(tenant=tenant).first()
            if existing is not None and existing.status not in REAUTHORIZABLE_STATUSES:
                raise IntegrationBusy()
            if existing is not None and existing.customer_id != candidate.customer_id:
                raise OtherDomainConnected(current=existing.domain, new=candidate.domain)
            fields = {
                "status": IntegrationStatus.ACTIVE,
                "status_detail": "",
                "customer_id": candidate.customer_id,
                "domain": candidate.domain,
                "customer_info": candidate.customer_info,
                "admin_email": candidate.admin_email,
                "authorized_by": user,
                "authorized_at": now,
                "scopes": candidate.scopes,
                "refresh_token": candidate.refresh_token,
                "access_token": candidate.access_token,
                "access_token_expires_at": candidate.access_token_expires_at,
            }
            if existing is None:
                integration = GoogleIntegration.unscoped.create(tenant=tenant, **fields)
                action = "integration.authorize"
            else:
                for name, value in fields.items():
                    setattr(existing, name, value)
                existing.save(update_fields=[*fields, "updated_at"])
                integration = existing
                action = "integration.reauthorize"
            audit_record(
                tenant=tenant,
                actor=user,
                action=action,
                target=integration.domain,
                details={
                    "customer_id": integration.customer_id,
                    "domain": integration.domain,
                    "admin_email": integration.admin_email,
                    "scopes": integration.scopes,
                },
            )
    except IntegrityError as exc:
        # Another tenant connected the same customer between the check and the insert.
        raise DomainConnectedElsewhere(domain=candidate.domain) from exc
    return integration


# -- status ---------------------------------------------------------------------------------------------------
def integration_mark_reauth_required(
    *, integration: GoogleIntegration, reason: str, token_fingerprint: str = ""
) -> bool:
    """Google refused the grant: an ACTIVE integration becomes "réautorisation requise" (hourly sync paused).

    Only from ACTIVE: a removal in progress keeps its status. With ``token_fingerprint`` (the refresh token that
    failed, see ``AuthRevoked``), only if that token is still the stored one: a run that started before a
    re-authorization holds the old grant, and its refusal says nothing about the new one. Returns whether the
    status changed.
    """
    with transaction.atomic():
        stored = (
            GoogleIntegration.unscoped.select_for_update()
            .filter(pk=integration.pk, status=IntegrationStatus.ACTIVE)
            .first()
        )
        if stored is None:
            return False
        if token_fingerprint and client_token_fingerprint(stored.refresh_token) != token_fingerprint:
            logger.info(
                "google grant refused tenant=%s for a replaced refresh token: integration left active",
                integration.tenant_id,
            )
            return False
        GoogleIntegration.unscoped.filter(pk=stored.pk).update(
            status=IntegrationStatus.REAUTH_REQUIRED, status_detail=reason[:1000], updated_at=timezone.now()
        )
        integration.status = IntegrationStatus.REAUTH_REQUIRED
        integration.status_detail = reason[:1000]
        logger.warning("google grant refused tenant=%s: re-authorization required", integration.tenant_id)
        audit_record(
            tenant=integration.tenant,
            actor=None,
            action="integration.reauth_required",
            target=integration.domain,
            details={"reason": reason[:300]},
        )
    return True


def integration_google_refused(*, integration: GoogleIntegration, error: GoogleError) -> bool:
    """What a service does with any Google error it stops on: a refused grant marks the integration (see
    :func:`integration_mark_reauth_required`); other errors change nothing here. Returns whether it marked."""
    if not isinstance(error, AuthRevoked) or integration.pk is None:
        return False
    return integration_mark_reauth_required(
        integration=integration, reason=error.message, token_fingerprint=error.token_fingerprint
    )
