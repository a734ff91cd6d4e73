""" "Tester la connexion": walk the steps an admin can fix one by one and say which work and which fail.

Django-free: ``check_connection`` returns plain data; the view translates the messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ldap_sync.client import (
    ConnectionSettings,
    LdapClient,
    LdapError,
    LdapInvalidCredentials,
    LdapInvalidDn,
    LdapRefused,
    LdapTlsError,
    LdapUnreachable,
    escape_filter_value,
    is_valid_dn,
    normalize_dn,
    refuse_control_characters,
)


def _(message: str) -> str:  # marks msgids for makemessages; translated in the view
    return message


class StepStatus(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckStep:
    label: str
    status: StepStatus
    message: str = ""
    detail: str = ""
    error_code: str = ""


@dataclass(frozen=True)
class RoleGroupCount:
    """A role's group and how many users of the user filter it resolves to, nested groups included."""

    role: str
    group_dn: str
    user_count: int | None  # None: the group was not found (or could not be read)
    detail: str = ""


@dataclass
class ConnectionReport:
    steps: list[CheckStep] = field(default_factory=list)
    role_groups: list[RoleGroupCount] = field(default_factory=list)
    # How many OUs and users these settings would import (None: not counted, a step failed).
    ou_count: int | None = None
    user_count: int | None = None

    @property
    def ok(self) -> bool:
        return all(step.status in (StepStatus.OK, StepStatus.WARNING) for step in self.steps)

    @property
    def first_error(self) -> CheckStep | None:
        return next((step for step in self.steps if step.status == StepStatus.FAILED), None)


STEP_CONNECT = _("Joindre le serveur")
STEP_TLS = _("Chiffrement TLS")
STEP_BIND = _("Authentification du compte de liaison")
STEP_BASE_DN = _("DN de base")
STEP_OU_FILTER = _("Filtre des unités organisationnelles")
STEP_USER_FILTER = _("Filtre des utilisateurs")


def check_connection(
    settings: ConnectionSettings,
    *,
    base_dn: str,
    ou_filter: str,
    user_filter: str,
    id_attribute: str = "entryUUID",
    role_groups: dict[str, str] | None = None,
    group_type: str = "groupOfNames",
    uid_attribute: str = "uid",
) -> ConnectionReport:
    report = ConnectionReport()
    steps = [STEP_CONNECT, *([STEP_TLS] if settings.uses_tls else []), STEP_BIND]
    client = LdapClient(settings)
    try:
        # Every value the steps will send is checked before the first one connects.
        refuse_control_characters(base_dn=base_dn, ou_filter=ou_filter, user_filter=user_filter)
        client.open()
    except LdapError as error:
        failed_step = {
            LdapRefused: STEP_CONNECT,
            LdapUnreachable: STEP_CONNECT,
            LdapTlsError: STEP_TLS if settings.uses_tls else STEP_CONNECT,
            LdapInvalidCredentials: STEP_BIND,
            LdapInvalidDn: STEP_BIND,
        }.get(type(error), STEP_BIND)
        _record_failure(report, steps, failed_step, error)
        _skip(report, [STEP_BASE_DN, STEP_OU_FILTER, STEP_USER_FILTER])
        return report
    try:
        for label in steps:
            report.steps.append(CheckStep(label, StepStatus.OK))
        try:
            client.check_base_dn(base_dn)
        except LdapError as error:
            _record_failure(report, [], STEP_BASE_DN, error)
            _skip(report, [STEP_OU_FILTER, STEP_USER_FILTER])
            return report
        report.steps.append(CheckStep(STEP_BASE_DN, StepStatus.OK))
        counts: dict[str, int] = {}
        for label, filterstr, empty_message in (
            (STEP_OU_FILTER, ou_filter, _("Aucune unité organisationnelle ne correspond à ce filtre.")),
            (STEP_USER_FILTER, user_filter, _("Aucun utilisateur ne correspond à ce filtre.")),
        ):
            try:
                sample = client.check_filter(base_dn, filterstr, [id_attribute])
                if sample is not None:
                    counts[label] = _count_entries(
                        client, base_dn, filterstr, skip_base=label == STEP_OU_FILTER
                    )
            except LdapError as error:
                _record_failure(report, [], label, error)
                continue
            if sample is None:
                counts[label] = 0
                report.steps.append(CheckStep(label, StepStatus.WARNING, empty_message))
            elif not sample.first(id_attribute):
                # Without it every sync would stop at this entry: say so now, not at the first sync.
                message = _(
                    "Les entrées n'ont pas l'attribut d'identité choisi : choisissez le type d'annuaire "
                    "(Active Directory : objectGUID) ou l'attribut d'identité."
                )
                detail = f"{id_attribute}: {sample.dn}"
                report.steps.append(CheckStep(label, StepStatus.FAILED, message, detail, "missing_id"))
            else:
                report.steps.append(CheckStep(label, StepStatus.OK))
        report.ou_count, report.user_count = counts.get(STEP_OU_FILTER), counts.get(STEP_USER_FILTER)
        if role_groups and counts.get(STEP_USER_FILTER):
            report.role_groups = count_role_members(
                client,
                base_dn=base_dn,
                user_filter=user_filter,
                uid_attribute=uid_attribute,
                group_type=group_type,
                role_groups=role_groups,
            )
    except LdapError as error:  # the connection dropped between steps
        report.steps.append(
            CheckStep(STEP_CONNECT, StepStatus.FAILED, error.message, error.detail, error.code)
        )
    finally:
        client.close()
    return report


def _count_entries(client: LdapClient, base_dn: str, filterstr: str, *, skip_base: bool) -> int:
    """Entries a sync with these settings would read (the base entry itself is the root, not an OU)."""
    base = normalize_dn(base_dn).casefold()
    return sum(
        1
        for entry in client.search(base_dn, filterstr, ["1.1"])
        if not (skip_base and normalize_dn(entry.dn).casefold() == base)
    )


IN_CHAIN = "1.2.840.113556.1.4.1941"
MEMBER_ATTRIBUTES = {"groupOfUniqueNames": "uniqueMember", "posixGroup": "memberUid"}
MAX_NESTED_GROUPS = 500


def count_role_members(
    client: LdapClient,
    *,
    base_dn: str,
    user_filter: str,
    uid_attribute: str,
    group_type: str,
    role_groups: dict[str, str],
) -> list[RoleGroupCount]:
    """How many users of the user filter each role's group holds, as the login resolves it (nesting included).

    Active Directory answers itself (LDAP_MATCHING_RULE_IN_CHAIN, which also copes with groups too large to
    read whole); other directories' groups are walked from their member values.
    """
    results = []
    users: dict[str, str] | None = None
    for role, group_dn in role_groups.items():
        try:
            group = client.read_entry(group_dn, ["objectClass"])
        except LdapError as error:
            results.append(RoleGroupCount(role, group_dn, None, error.detail or error.message))
            continue
        if group is None:
            results.append(RoleGroupCount(role, group_dn, None, group_dn))
            continue
        try:
            if group_type == "ad-nested":
                chain = f"(&{user_filter}(memberOf:{IN_CHAIN}:={escape_filter_value(group_dn)}))"
                count = sum(1 for _entry in client.search(base_dn, chain, ["1.1"]))
            else:
                if users is None:  # normalized DN -> uid, for every user the sync would import
                    users = {
                        normalize_dn(entry.dn).casefold(): (entry.first(uid_attribute) or "")
                        for entry in client.search(base_dn, user_filter, [uid_attribute])
                    }
                attribute = MEMBER_ATTRIBUTES.get(group_type, "member")
                members = _walk_members(client, group_dn, attribute, users)
                if group_type == "posixGroup":
                    count = sum(1 for uid in users.values() if uid in members)
                else:
                    count = len(members & users.keys())
        except LdapError as error:
            results.append(RoleGroupCount(role, group_dn, None, error.detail or error.message))
            continue
        results.append(RoleGroupCount(role, group_dn, count))
    return results


def _walk_members(client: LdapClient, group_dn: str, attribute: str, users: dict[str, str]) -> set[str]:
    """Member values of a group and of the groups nested in it (normalized DNs, or uids for memberUid)."""
    found: set[str] = set()
    pending: list[str] = [group_dn]
    seen: set[str] = set()
    while pending and len(seen) < MAX_NESTED_GROUPS:
        dn = pending.pop()
        key = normalize_dn(dn).casefold()
        if key in seen:
            continue
        seen.add(key)
        entry = client.read_entry(dn, [attribute])
        for value in entry.get(attribute) if entry else []:
            if attribute == "memberUid":
                found.add(value)
                continue
            if not is_valid_dn(value):  # a member value that is not a DN counts for nobody
                continue
            member = normalize_dn(value).casefold()
            found.add(member)
            if member not in users:  # not a user: maybe a nested group
                pending.append(value)
    return found


def _record_failure(report: ConnectionReport, steps: list[str], failed: str, error: LdapError) -> None:
    for label in steps:
        if label == failed:
            break
        report.steps.append(CheckStep(label, StepStatus.OK))
    report.steps.append(CheckStep(failed, StepStatus.FAILED, error.message, error.detail, error.code))
    if steps and failed in steps:
        _skip(report, steps[steps.index(failed) + 1 :])


def _skip(report: ConnectionReport, labels: list[str]) -> None:
    report.steps.extend(CheckStep(label, StepStatus.SKIPPED) for label in labels)
