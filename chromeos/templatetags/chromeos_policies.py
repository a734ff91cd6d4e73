"""``{% device_policy_inventory device as inventory %}``: the device page's Blueprints and apps (issue 8)."""

from __future__ import annotations

from django import template

from chromeos.models import ChromeOSDevice
from chromeos.selectors.policies import InventoryEntry
from chromeos.selectors.policies import device_policy_inventory as _inventory

register = template.Library()


@register.simple_tag
def device_policy_inventory(device: ChromeOSDevice) -> list[InventoryEntry]:
    return _inventory(device)
