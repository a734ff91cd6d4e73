"""The Chrome policy schemas the emulator knows: real names, fields and enum values.

A handful, chosen for what the console applies: app installation per app (``app_id`` target key)
and a few common device and user settings for Blueprints. Names and values follow the Chrome
Policy API's schema service; enum values keep Google's ``<FIELD>_ENUM_`` prefixes where the
real schema has them (``appInstallType`` has none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

APP_ID = "app_id"
APP_ID_PREFIXES = ("chrome:", "android:", "web:")


@dataclass(frozen=True)
class PolicyField:
    name: str
    type: str  # proto type: TYPE_BOOL, TYPE_STRING, TYPE_ENUM, TYPE_INT64
    description: str
    enum: tuple[tuple[str, str], ...] = ()  # (value, description)
    repeated: bool = False

    def accepts(self, value: Any) -> bool:
        if self.repeated:
            return isinstance(value, list) and all(self._accepts_one(v) for v in value)
        return self._accepts_one(value)

    def _accepts_one(self, value: Any) -> bool:
        if self.type == "TYPE_BOOL":
            return isinstance(value, bool)
        if self.type == "TYPE_INT64":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, str) and value.lstrip("-").isdigit()
            )
        if self.type == "TYPE_ENUM":
            return value in {v for v, _ in self.enum}
        return isinstance(value, str)


@dataclass(frozen=True)
class PolicySchema:
    name: str
    description: str
    category: str
    fields: tuple[PolicyField, ...]
    target_keys: tuple[str, ...] = ()
    target_resources: tuple[str, ...] = ("ORG_UNIT",)
    platforms: tuple[str, ...] = ("CHROME_OS",)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.name.rsplit(".", 1)[0]

    @property
    def leaf(self) -> str:
        return self.name.rsplit(".", 1)[1]

    def field(self, name: str) -> PolicyField | None:
        return next((f for f in self.fields if f.name == name), None)

    def resource(self, customer_id: str) -> dict[str, Any]:
        """The PolicySchema resource as the schema service returns it."""
        enum_types = []
        proto_fields = []
        for number, policy_field in enumerate(self.fields, start=1):
            proto_field: dict[str, Any] = {
                "name": policy_field.name,
                "number": number,
                "label": "LABEL_REPEATED" if policy_field.repeated else "LABEL_OPTIONAL",
                "type": policy_field.type,
            }
            if policy_field.enum:
                enum_name = policy_field.name[0].upper() + policy_field.name[1:] + "Enum"
                proto_field["typeName"] = enum_name
                enum_types.append(
                    {
                        "name": enum_name,
                        "value": [{"name": v, "number": i} for i, (v, _) in enumerate(policy_field.enum, 1)],
                    }
                )
            proto_fields.append(proto_field)
        descriptions = []
        for policy_field in self.fields:
            description: dict[str, Any] = {
                "field": policy_field.name,
                "name": policy_field.name,
                "fieldDescription": policy_field.description,
            }
            if policy_field.enum:
                description["knownValueDescriptions"] = [
                    {"value": v, "description": d} for v, d in policy_field.enum
                ]
            descriptions.append(description)
        body: dict[str, Any] = {
            "name": f"customers/{customer_id}/policySchemas/{self.name}",
            "policyDescription": self.description,
            "definition": {
                "name": self.name.replace(".", "/").lower() + ".proto",
                "package": self.namespace,
                "messageType": [{"name": self.leaf, "field": proto_fields}],
                "enumType": enum_types,
                "syntax": "proto2",
            },
            "fieldDescriptions": descriptions,
            "schemaName": self.name,
            "validTargetResources": list(self.target_resources),
            "supportedPlatforms": list(self.platforms),
            "categoryTitle": self.category,
            "policyApiLifecycle": {"policyApiLifecycleStage": "API_CURRENT"},
            "supportUri": "https://support.google.com/chrome/a/answer/2657289",
        }
        if not enum_types:
            del body["definition"]["enumType"]
        if self.target_keys:
            body["additionalTargetKeyNames"] = [
                {"key": k, "keyDescription": "Identifier of the app"} for k in self.target_keys
            ]
        return body


SCHEMAS: dict[str, PolicySchema] = {
    s.name: s
    for s in [
        PolicySchema(
            "chrome.users.apps.InstallType",
            "Specifies the manner in which the app is to be installed.",
            "Apps and extensions",
            (
                PolicyField(
                    "appInstallType",
                    "TYPE_ENUM",
                    "Installation policy.",
                    (
                        ("BLOCKED", "Block installation of the app."),
                        ("ALLOWED", "Allow installation of the app."),
                        ("FORCED", "Force install the app."),
                        ("FORCED_AND_PIN_TO_TOOLBAR", "Force install and pin the app to the toolbar."),
                    ),
                ),
            ),
            target_keys=(APP_ID,),
            target_resources=("ORG_UNIT", "GROUP"),
            platforms=("CHROME_OS", "CHROME_BROWSER"),
        ),
        PolicySchema(
            "chrome.users.apps.ManagedConfiguration",
            "Allows setting of the managed configuration.",
            "Apps and extensions",
            (
                PolicyField(
                    "managedConfiguration", "TYPE_STRING", "Sets the managed configuration JSON format."
                ),
            ),
            target_keys=(APP_ID,),
            target_resources=("ORG_UNIT", "GROUP"),
            platforms=("CHROME_OS", "CHROME_BROWSER"),
        ),
        PolicySchema(
            "chrome.devices.GuestMode",
            "Guest mode.",
            "Sign-in settings",
            (PolicyField("guestModeEnabled", "TYPE_BOOL", "Allow guest mode."),),
        ),
        PolicySchema(
            "chrome.devices.ForcedReenrollment",
            "Forced re-enrollment.",
            "Enrollment and access",
            (
                PolicyField(
                    "reenrollmentMode",
                    "TYPE_ENUM",
                    "Re-enrollment after wiping.",
                    (
                        (
                            "REENROLLMENT_MODE_ENUM_AUTO_REENROLLMENT",
                            "Force device to automatically re-enroll.",
                        ),
                        ("REENROLLMENT_MODE_ENUM_MANUAL_REENROLLMENT", "Re-enroll with user credentials."),
                        ("REENROLLMENT_MODE_ENUM_NO_REENROLLMENT", "Device is not forced to re-enroll."),
                    ),
                ),
            ),
        ),
        PolicySchema(
            "chrome.devices.SignInRestriction",
            "Sign-in restriction.",
            "Sign-in settings",
            (
                PolicyField(
                    "deviceAllowNewUsers",
                    "TYPE_ENUM",
                    "Who may sign in.",
                    (
                        (
                            "DEVICE_ALLOW_NEW_USERS_ENUM_RESTRICTED_LIST",
                            "Restrict sign-in to a list of users.",
                        ),
                        ("DEVICE_ALLOW_NEW_USERS_ENUM_ANY_USER", "Allow any user to sign in."),
                        ("DEVICE_ALLOW_NEW_USERS_ENUM_NO_USERS", "Do not allow any user to sign in."),
                    ),
                ),
                PolicyField(
                    "userAllowlist", "TYPE_STRING", "Allowed users (e.g. *@example.com).", repeated=True
                ),
            ),
        ),
        PolicySchema(
            "chrome.users.IncognitoMode",
            "Incognito mode.",
            "Security",
            (
                PolicyField(
                    "incognitoModeAvailability",
                    "TYPE_ENUM",
                    "Incognito mode availability.",
                    (
                        ("INCOGNITO_MODE_AVAILABILITY_ENUM_AVAILABLE", "Allow incognito mode."),
                        ("INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE", "Disallow incognito mode."),
                        ("INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED", "Force incognito mode."),
                    ),
                ),
            ),
            platforms=("CHROME_OS", "CHROME_BROWSER"),
        ),
        PolicySchema(
            "chrome.users.ShowLogoutButton",
            "Show logout button in tray.",
            "User experience",
            (PolicyField("showLogoutButtonInTray", "TYPE_BOOL", "Show logout button in tray."),),
        ),
        PolicySchema(
            "chrome.devices.ExtensionCacheSize",
            "Apps and extensions cache size.",
            "Other settings",
            (PolicyField("extensionCacheSize", "TYPE_INT64", "Cache size in bytes."),),
        ),
        # Added for the console's Blueprint settings (auto-update, screen lock) and for apps in managed
        # guest sessions and kiosks: a subset of each real schema's fields, with Google's names and values.
        PolicySchema(
            "chrome.devices.AutoUpdateSettings",
            "Auto-update settings.",
            "Device update settings",
            (
                PolicyField("updateDisabled", "TYPE_BOOL", "Block updates."),
                PolicyField("rebootAfterUpdate", "TYPE_BOOL", "Allow auto-reboots after an update."),
            ),
        ),
        PolicySchema(
            "chrome.users.LockScreen",
            "Lock screen.",
            "Security",
            (PolicyField("allowScreenLock", "TYPE_BOOL", "Allow locking screen."),),
        ),
        PolicySchema(
            "chrome.devices.managedguest.IncognitoMode",
            "Incognito mode.",
            "Security",
            (
                PolicyField(
                    "incognitoModeAvailability",
                    "TYPE_ENUM",
                    "Incognito mode availability.",
                    (
                        ("INCOGNITO_MODE_AVAILABILITY_ENUM_AVAILABLE", "Allow incognito mode."),
                        ("INCOGNITO_MODE_AVAILABILITY_ENUM_UNAVAILABLE", "Disallow incognito mode."),
                        ("INCOGNITO_MODE_AVAILABILITY_ENUM_FORCED", "Force incognito mode."),
                    ),
                ),
            ),
        ),
        PolicySchema(
            "chrome.devices.managedguest.apps.InstallType",
            "Specifies the manner in which the app is to be installed.",
            "Apps and extensions",
            (
                PolicyField(
                    "appInstallType",
                    "TYPE_ENUM",
                    "Installation policy.",
                    (
                        ("NOT_INSTALLED", "Not Installed."),
                        ("FORCED", "Force Install."),
                        ("FORCED_AND_PIN_TO_TOOLBAR", "Force Install + pin."),
                    ),
                ),
            ),
            target_keys=(APP_ID,),
        ),
        PolicySchema(
            "chrome.devices.kiosk.apps.ForceInstall",
            "Force installs the app.",
            "Apps and extensions",
            (PolicyField("forceInstall", "TYPE_BOOL", "Force install the app."),),
            target_keys=(APP_ID,),
        ),
    ]
}


def matching(pattern: str) -> list[PolicySchema]:
    """Schemas named by ``pattern``: an exact name or a namespace wildcard (``chrome.users.apps.*``)."""
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return [s for name, s in sorted(SCHEMAS.items()) if name.startswith(prefix)]
    return [SCHEMAS[pattern]] if pattern in SCHEMAS else []
