"""Sign-in protection over HTTP: throttling per account and per address with a growing delay, the audit of every
attempt, support clearing a lockout, session lifetimes, the CSRF cookie."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client
from django.urls import reverse

from mdm.auth import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from mdm.models import AuditEvent, Role, User

pytestmark = pytest.mark.django_db

PASSWORD = "the-Right-password-42"


@pytest.fixture
def local_admin(tenant, make_user) -> User:
    user = make_user(tenant, Role.ADMIN, username="admin@acme.test")
    user.set_password(PASSWORD)
    user.save()
    return user


def _sign_in(client: Client, username: str, password: str, *, tenant: str = "", url: str = "/login/"):
    data = {"username": username, "password": password}
    if tenant:
        data["tenant"] = tenant
    return client.post(url, data)


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _age_attempts(by: timedelta) -> None:
    """Move every recorded attempt back in time, as if ``by`` had passed."""
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - by)


def test_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused(local_admin, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, local_admin.username, "wrong").status_code == 200
    assert _sign_in(client, local_admin.username, "wrong").status_code == 429
    response = _sign_in(client, local_admin.username, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "Trop de tentatives de connexion échouées pour ce compte ou depuis cette adresse." in _text(
        response
    )
    assert "Réessayez dans 5 minutes." in _text(response)
    # Another client address, same account: still refused (the account is locked, not only the address).
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert _sign_in(other, local_admin.username, PASSWORD).status_code == 429
    # Once the cool-off has passed, the right password works again.
    _age_attempts(settings.MDM_SIGNIN_COOLOFF_BASE + timedelta(seconds=1))
    assert _sign_in(other, local_admin.username, PASSWORD).status_code == 302


def test_the_lockout_is_explained_in_english_too(local_admin, settings):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        response = _sign_in(client, local_admin.username, "wrong", url="/login/")
    assert response.status_code == 429
    assert (
        "Too many failed sign-in attempts for this account or from this address. Try again in 5 minutes."
        in (_text(response))
    )


def test_the_delay_grows_with_repeated_failures(local_admin, settings):
    client = Client()
    base = settings.MDM_SIGNIN_COOLOFF_BASE
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, local_admin.username, "wrong")
    # After the threshold, each failure once the delay has passed locks again; every further AXES_FAILURE_LIMIT
    # failures within 24 hours double the delay.
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _age_attempts(base + timedelta(seconds=1))
        response = _sign_in(client, local_admin.username, "wrong")
        assert response.status_code == 429
    assert "Réessayez dans 10 minutes." in _text(response)
    _age_attempts(base + timedelta(seconds=1))
    assert _sign_in(client, local_admin.username, PASSWORD).status_code == 429  # 5 minutes are not enough now
    _age_attempts(base + timedelta(seconds=1))
    assert _sign_in(client, local_admin.username, PASSWORD).status_code == 302


def test_attempts_while_locked_are_not_checked_nor_counted(local_admin, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, local_admin.username, "wrong")
    for _ in range(20):
        assert _sign_in(client, local_admin.username, "wrong").status_code == 429
    assert AccessFailureLog.objects.count() == settings.AXES_FAILURE_LIMIT
    blocked = AuditEvent.unscoped.filter(action="auth.login_blocked", tenant=local_admin.tenant)
    assert blocked.count() == 20


def test_one_address_guessing_many_accounts_is_throttled(local_admin, settings):
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for n in range(settings.MDM_SIGNIN_ADDRESS_LIMIT - 1):
        assert _sign_in(attacker, f"user{n}@acme.test", "wrong").status_code == 200
    assert _sign_in(attacker, "one-more@acme.test", "wrong").status_code == 429
    assert _sign_in(attacker, local_admin.username, PASSWORD).status_code == 429
    # The account itself is not locked: its owner signs in from elsewhere.
    assert _sign_in(Client(REMOTE_ADDR="198.51.100.7"), local_admin.username, PASSWORD).status_code == 302


def test_with_an_organisation_only_the_directory_is_tried(local_admin, settings):
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, local_admin.username, "wrong", tenant=f"org{n}")
    # A local account signs in without an organisation; with one, the attempt is a directory sign-in.
    assert _sign_in(Client(), local_admin.username, PASSWORD, tenant="acme").status_code == 200
    assert _sign_in(Client(), local_admin.username, PASSWORD).status_code == 302


def test_support_site_is_throttled_and_support_clears_a_lockout(support_user, settings):
    support_user.set_password(PASSWORD)
    support_user.save()
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, support_user.username, "wrong", url="/support/login/").status_code == 200
    assert _sign_in(client, support_user.username, "wrong", url="/support/login/").status_code == 429
    response = _sign_in(client, support_user.username, PASSWORD, url="/support/login/")
    assert response.status_code == 429
    assert "Trop de tentatives de connexion échouées" in _text(response)

    other_support = User.objects.create_superuser("support2@mdm.test", password=PASSWORD)
    helper = Client(REMOTE_ADDR="198.51.100.8")
    helper.force_login(other_support)
    listing = _text(helper.get("/support/axes/accessattempt/"))
    assert support_user.username in listing
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    cleared = helper.post(
        "/support/axes/accessattempt/", {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert cleared.status_code == 302
    assert not AccessAttempt.objects.exists()
    assert _sign_in(client, support_user.username, PASSWORD, url="/support/login/").status_code == 302


def test_every_attempt_is_audited_without_the_password(local_admin, settings):
    client = Client(REMOTE_ADDR="192.0.2.10")
    _sign_in(client, local_admin.username, "wrong-Secret-1")
    _sign_in(client, "nobody@nowhere.test", "wrong-Secret-2")
    _sign_in(client, "camille", "wrong-Secret-3", tenant="no-such-org")
    _sign_in(client, local_admin.username, PASSWORD)

    failed = AuditEvent.unscoped.get(action="auth.login_failed", actor_label=local_admin.username)
    assert failed.tenant == local_admin.tenant and failed.actor is None
    assert failed.details == {"site": "console", "address": "192.0.2.10"}
    unknown = AuditEvent.unscoped.get(action="auth.login_failed", actor_label="nobody@nowhere.test")
    assert unknown.tenant is None
    unknown_org = AuditEvent.unscoped.get(action="auth.login_failed", actor_label="camille")
    assert unknown_org.tenant is None and unknown_org.details["organisation"] == "no-such-org"
    success = AuditEvent.unscoped.get(action="auth.login")
    assert success.tenant == local_admin.tenant and success.actor == local_admin

    stored = " ".join(
        f"{e.actor_label} {e.target} {e.details}" for e in AuditEvent.unscoped.all()
    ) + " ".join(f"{a.post_data} {a.get_data}" for a in AccessAttempt.objects.all())
    assert "Secret" not in stored and PASSWORD not in stored
    # The tenant's admins see the attack on their account; support sees the attempts at nothing known.
    assert "wrong" not in _text(client.get(reverse("mdm:audit")))
    journal = re.sub(r"<[^>]+>", "", _text(client.get(reverse("mdm:audit"))))
    assert f"Échec de connexion pour {local_admin.username} depuis l'adresse 192.0.2.10" in journal
    assert f"Connexion de {local_admin.username} depuis l'adresse 192.0.2.10." in journal
    assert "nobody@nowhere.test" not in journal  # filed under no tenant: support's, not this tenant's


def test_support_sign_ins_are_audited_under_no_tenant(support_user):
    support_user.set_password(PASSWORD)
    support_user.save()
    assert _sign_in(Client(), support_user.username, PASSWORD, url="/support/login/").status_code == 302
    event = AuditEvent.unscoped.get(action="auth.login")
    assert event.tenant is None and event.details["site"] == "support"


# -- sessions ---------------------------------------------------------------------------------------------------
def _set_session(client: Client, **values: int) -> None:
    session = client.session
    for key, value in values.items():
        session[key] = value
    session.save()


def test_an_idle_session_is_signed_out(admin_client_, settings):
    assert admin_client_.get("/").status_code == 200
    now = int(time.time())
    _set_session(admin_client_, **{SESSION_SEEN_KEY: now - settings.SESSION_IDLE_TIMEOUT + 120})
    assert admin_client_.get("/").status_code == 200  # still within the idle timeout, and the clock moves on
    assert admin_client_.session[SESSION_SEEN_KEY] >= now
    _set_session(admin_client_, **{SESSION_SEEN_KEY: now - settings.SESSION_IDLE_TIMEOUT - 1})
    response = admin_client_.get("/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "Votre session a expiré" in _text(admin_client_.get(response["Location"]))


def test_an_active_session_still_ends_at_its_absolute_lifetime(admin_client_, settings):
    now = int(time.time())
    _set_session(
        admin_client_, **{SESSION_STARTED_KEY: now - settings.SESSION_MAX_AGE - 1, SESSION_SEEN_KEY: now}
    )
    response = admin_client_.get("/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_session_lifetimes_default_to_two_and_twelve_hours(settings):
    assert settings.SESSION_IDLE_TIMEOUT == 2 * 3600
    assert settings.SESSION_MAX_AGE == 12 * 3600
    assert settings.SESSION_COOKIE_AGE <= settings.SESSION_MAX_AGE


def test_the_csrf_cookie_is_http_only():
    response = Client().get("/login/")
    assert response.cookies["csrftoken"]["httponly"] is True


def test_an_expired_htmx_poll_sends_the_whole_page_to_sign_in(admin_client_, settings):
    _set_session(admin_client_, **{SESSION_SEEN_KEY: int(time.time()) - settings.SESSION_IDLE_TIMEOUT - 1})
    response = admin_client_.get(
        "/audit/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/admin/google/chromeos/"
    )
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Redirect"] == "/login/?next=%2Fadmin%2Fgoogle%2Fchromeos%2F"


def test_the_sign_in_logs_of_axes_follow_the_audit_retention(local_admin, settings):
    from mdm import services

    _sign_in(Client(), local_admin.username, "wrong")
    _sign_in(Client(), local_admin.username, PASSWORD)
    assert AccessFailureLog.objects.count() == 1
    assert services.audit_purge(older_than_days=-1) >= 2
    assert not AccessFailureLog.objects.exists()
