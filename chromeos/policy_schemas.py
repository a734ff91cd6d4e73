"""What the console can set through the Chrome Policy API, in one table: each ChromeOS setting of a Blueprint
and each way of distributing an app, mapped to Google's policy schema, field and values, with its French label.

Blueprint settings live in ``Blueprint.settings`` under the ``key`` of their :class:`PolicySetting`, as
Google's wire value (``True``, ``"DEVICE_ALLOW_NEW_USERS_ENUM_ANY_USER"``, a list of strings). A key that is
absent means "not configured": the Blueprint leaves that setting to whatever the org unit inherits.

Only schemas the Chrome Policy API serves with these exact names are listed (and the emulator serves the
same ones, see ``google_emulator/policy_schemas.py``). Google's rules the apply service relies on:

* one ``batchModify``/``batchInherit`` call carries one schema namespace (``chrome.devices``,
  ``chrome.users.apps``...), org-unit targets only, and never the same schema + target twice;
* ``chrome.devices.*`` follow the *device's* org unit, ``chrome.users.*`` the *user's*;
* app schemas need the ``app_id`` additional target key, ``chrome:<extension id>`` or ``android:<package>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from django.db import models
from django.utils.translation import gettext_lazy as _

from mdm.models import App, AppKind

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

SettingKind = Literal["bool", "enum", "list"]


class Section(models.TextChoices):
    DEVICE = "device", _("Paramètres des périphériques")
    USER = "user", _("Paramètres des utilisateurs et des navigateurs")
    MANAGED_GUEST = "managed_guest", _("Session Invité gérée")


SECTION_HELP: dict[str, StrOrPromise] = {
    Section.DEVICE: _("S'appliquent aux périphériques de l'unité organisationnelle."),
    Section.USER: _(
        "S'appliquent aux utilisateurs de l'unité organisationnelle (l'OU de l'utilisateur, pas celle du "
        "périphérique)."
    ),
    Section.MANAGED_GUEST: _("S'appliquent aux sessions Invité gérées des périphériques de l'unité."),
}


@dataclass(frozen=True)
class PolicySetting:
    """One console setting = one field of one Chrome policy schema."""

    key: str
    section: str
    schema: str
    field: str
    kind: SettingKind
    label: StrOrPromise
    # bool: ((True, label), (False, label)); enum: ((wire value, label), ...)
    choices: tuple[tuple[Any, StrOrPromise], ...] = ()
    help_text: StrOrPromise = ""
    # How a value reads once set (« Désactivé »), where the choice's label is what the admin asks for
    # (« Désactiver le mode invité »). Values without one read as their choice's label.
    states: tuple[tuple[Any, StrOrPromise], ...] = ()

    @property
    def namespace(self) -> str:
        return schema_namespace(self.schema)

    def accepts(self, value: Any) -> bool:
        if self.kind == "list":
            return isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        if self.kind == "bool":
            return isinstance(value, bool)
        return value in {v for v, _ in self.choices}

    def display(self, value: Any) -> str:
        """The value as the console shows it: its label, or the raw value Google sent if we have none."""
        if value is None:
            return str(_("Non défini"))
        if self.kind == "list":
            return ", ".join(str(v) for v in value) if value else str(_("(liste vide)"))
        for choice, label in (*self.states, *self.choices):
            if choice == value and type(choice) is type(value):
                return str(label)
        return unknown_value(value)


def unknown_value(value: Any) -> str:
    """A value Google sent that the console has no words for: readable, never a bare enum."""
    if isinstance(value, bool):
        return str(_("Oui") if value else _("Non"))
    text = str(value)
    if "_ENUM_" in text:
        text = text.rsplit("_ENUM_", 1)[1].replace("_", " ").lower()
    return str(_("Autre valeur de Google : %(value)s") % {"value": text})


def schema_namespace(schema: str) -> str:
    return schema.rsplit(".", 1)[0]


_INCOGNITO = (
    ("INCOGNITO_MODE_AVAILABILITY_ENUM_AVAILABLE", _("Autoriser la navigation privée")),
    ("INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE", _("Interdire la navigation privée")),
    ("INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED", _("Imposer la navigation privée")),
)
_INCOGNITO_STATES = (
    ("INCOGNITO_MODE_AVAILABILITY_ENUM_AVAILABLE", _("Navigation privée autorisée")),
    ("INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE", _("Navigation privée interdite")),
    ("INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED", _("Navigation privée imposée")),
)
RESTRICTED_LIST = "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST"

BLUEPRINT_SETTINGS: tuple[PolicySetting, ...] = (
    PolicySetting(
        "guest_mode",
        Section.DEVICE,
        "chrome.devices.GuestMode",
        "guestModeEnabled",
        "bool",
        _("Mode invité"),
        ((True, _("Autoriser le mode invité")), (False, _("Désactiver le mode invité"))),
        states=((True, _("Autorisé")), (False, _("Désactivé"))),
    ),
    PolicySetting(
        "sign_in_restriction",
        Section.DEVICE,
        "chrome.devices.SignInRestriction",
        "deviceAllowNewUsers",
        "enum",
        _("Restriction de connexion"),
        (
            ("DEVICE_ALLOW_NEW_USERS_ENUM_ANY_USER", _("Autoriser tous les utilisateurs à se connecter")),
            (RESTRICTED_LIST, _("Limiter la connexion à une liste d'utilisateurs")),
            ("DEVICE_ALLOW_NEW_USERS_ENUM_NO_USERS", _("N'autoriser aucun utilisateur à se connecter")),
        ),
        states=(
            ("DEVICE_ALLOW_NEW_USERS_ENUM_ANY_USER", _("Tous les utilisateurs peuvent se connecter")),
            (RESTRICTED_LIST, _("Connexion limitée à une liste d'utilisateurs")),
            ("DEVICE_ALLOW_NEW_USERS_ENUM_NO_USERS", _("Aucun utilisateur ne peut se connecter")),
        ),
    ),
    PolicySetting(
        "sign_in_allowlist",
        Section.DEVICE,
        "chrome.devices.SignInRestriction",
        "userAllowlist",
        "list",
        _("Utilisateurs autorisés à se connecter"),
        help_text=_("Une adresse par ligne ; *@exemple.fr autorise tout un domaine."),
    ),
    PolicySetting(
        "forced_reenrollment",
        Section.DEVICE,
        "chrome.devices.ForcedReenrollment",
        "reenrollmentMode",
        "enum",
        _("Réinscription forcée"),
        (
            ("REENROLLMENT_MODE_ENUM_AUTO_REENROLLMENT", _("Réinscription automatique après effacement")),
            (
                "REENROLLMENT_MODE_ENUM_MANUAL_REENROLLMENT",
                _("Réinscription avec les identifiants de l'utilisateur après effacement"),
            ),
            ("REENROLLMENT_MODE_ENUM_NO_REENROLLMENT", _("Pas de réinscription forcée")),
        ),
    ),
    PolicySetting(
        "auto_update_disabled",
        Section.DEVICE,
        "chrome.devices.AutoUpdateSettings",
        "updateDisabled",
        "bool",
        _("Mises à jour automatiques"),
        ((False, _("Autoriser les mises à jour")), (True, _("Bloquer les mises à jour"))),
        states=((False, _("Autorisées")), (True, _("Bloquées"))),
    ),
    PolicySetting(
        "reboot_after_update",
        Section.DEVICE,
        "chrome.devices.AutoUpdateSettings",
        "rebootAfterUpdate",
        "bool",
        _("Redémarrage après une mise à jour"),
        (
            (True, _("Autoriser le redémarrage automatique")),
            (False, _("Interdire le redémarrage automatique")),
        ),
        states=((True, _("Autorisé")), (False, _("Interdit"))),
    ),
    PolicySetting(
        "screen_lock",
        Section.USER,
        "chrome.users.LockScreen",
        "allowScreenLock",
        "bool",
        _("Verrouillage de l'écran"),
        (
            (True, _("Autoriser le verrouillage de l'écran")),
            (False, _("Interdire le verrouillage de l'écran")),
        ),
        states=((True, _("Autorisé")), (False, _("Interdit"))),
    ),
    PolicySetting(
        "incognito_mode",
        Section.USER,
        "chrome.users.IncognitoMode",
        "incognitoModeAvailability",
        "enum",
        _("Navigation privée"),
        _INCOGNITO,
        states=_INCOGNITO_STATES,
    ),
    PolicySetting(
        "logout_button",
        Section.USER,
        "chrome.users.ShowLogoutButton",
        "showLogoutButtonInTray",
        "bool",
        _("Bouton de déconnexion dans la barre d'état"),
        ((True, _("Afficher le bouton")), (False, _("Ne pas afficher le bouton"))),
        states=((True, _("Affiché")), (False, _("Masqué"))),
    ),
    PolicySetting(
        "managed_guest_incognito_mode",
        Section.MANAGED_GUEST,
        "chrome.devices.managedguest.IncognitoMode",
        "incognitoModeAvailability",
        "enum",
        _("Navigation privée dans la session Invité gérée"),
        _INCOGNITO,
        states=_INCOGNITO_STATES,
    ),
)

SETTINGS_BY_KEY: dict[str, PolicySetting] = {s.key: s for s in BLUEPRINT_SETTINGS}


def blueprint_writes(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{schema: {field: wire value}}`` for the configured settings of a Blueprint (unknown keys ignored)."""
    writes: dict[str, dict[str, Any]] = {}
    for setting in BLUEPRINT_SETTINGS:
        if setting.key in settings and settings[setting.key] is not None:
            writes.setdefault(setting.schema, {})[setting.field] = settings[setting.key]
    return writes


def settings_for(writes: Iterable[str]) -> list[PolicySetting]:
    """The settings that write into these schemas, in catalog order."""
    schemas = set(writes)
    return [s for s in BLUEPRINT_SETTINGS if s.schema in schemas]


# -- apps ---------------------------------------------------------------------------------------------------
class InstallType(models.TextChoices):
    FORCE_INSTALL = "force_install", _("Installation forcée")
    PIN = "pin", _("Installation forcée et épinglée")
    ALLOW = "allow", _("Installation autorisée")
    BLOCK = "block", _("Bloquée")


class AppContext(models.TextChoices):
    USERS = "users", _("Sessions des utilisateurs")
    MANAGED_GUEST = "managed_guest", _("Session Invité gérée")
    KIOSK = "kiosk", _("Kiosque")


@dataclass(frozen=True)
class AppPolicy:
    """How one app context is written: the schema, its field, and the wire value of each install type."""

    context: str
    schema: str
    field: str
    values: dict[str, Any]
    kinds: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return schema_namespace(self.schema)

    def display(self, value: Any) -> str:
        if value is None:
            return str(_("Non gérée"))
        for install_type, wire in self.values.items():
            if wire == value and type(wire) is type(value):
                return str(InstallType(install_type).label)
        return unknown_value(value)


APP_POLICIES: dict[str, AppPolicy] = {
    AppContext.USERS: AppPolicy(
        AppContext.USERS,
        "chrome.users.apps.InstallType",
        "appInstallType",
        {
            InstallType.FORCE_INSTALL: "FORCED",
            InstallType.PIN: "FORCED_AND_PIN_TO_TOOLBAR",
            InstallType.ALLOW: "ALLOWED",
            InstallType.BLOCK: "BLOCKED",
        },
        (AppKind.CHROME, AppKind.ANDROID),
    ),
    # Google offers Chrome apps only, force-installed (pinned or not), in managed guest sessions and kiosks.
    AppContext.MANAGED_GUEST: AppPolicy(
        AppContext.MANAGED_GUEST,
        "chrome.devices.managedguest.apps.InstallType",
        "appInstallType",
        {InstallType.FORCE_INSTALL: "FORCED", InstallType.PIN: "FORCED_AND_PIN_TO_TOOLBAR"},
        (AppKind.CHROME,),
    ),
    AppContext.KIOSK: AppPolicy(
        AppContext.KIOSK,
        "chrome.devices.kiosk.apps.ForceInstall",
        "forceInstall",
        {InstallType.FORCE_INSTALL: True},
        (AppKind.CHROME,),
    ),
}

APP_ID_PREFIX = {AppKind.CHROME: "chrome:", AppKind.ANDROID: "android:"}


def app_target_id(app: App) -> str | None:
    """Google's ``app_id`` for an app, or None for apps Google cannot distribute (uploaded files)."""
    prefix = APP_ID_PREFIX.get(app.kind)  # type: ignore[call-overload]
    return f"{prefix}{app.identifier}" if prefix else None


def app_install_choices(app: App, context: str) -> list[tuple[str, StrOrPromise]]:
    policy = APP_POLICIES[context]
    if app.kind not in policy.kinds:
        return []
    return [(t.value, t.label) for t in InstallType if t.value in policy.values]
