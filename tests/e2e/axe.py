"""axe-core (npm, ``node_modules/axe-core``) run in the page: the WCAG rules a browser can check.

``axe_violations(page)`` injects axe's script (the browser context is opened with ``bypass_csp`` so the
console's Content-Security-Policy does not refuse a test's script) and returns the serious and critical
violations, each as "rule: help (selector, ...)" so a failing test lists them all at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = {"serious", "critical"}


def axe_violations(page: Page) -> list[str]:
    assert AXE_SCRIPT.exists(), f"{AXE_SCRIPT} missing: run npm ci (axe-core is in package.json)"
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    results: dict[str, Any] = page.evaluate(
        """async () => await axe.run(document, {resultTypes: ["violations"],
             runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})"""
    )
    found = []
    for violation in results["violations"]:
        if violation.get("impact") not in BLOCKING_IMPACTS:
            continue
        targets = [", ".join(node["target"]) for node in violation["nodes"][:4]]
        found.append(
            f"{violation['id']} ({violation['impact']}): {violation['help']} — {' | '.join(targets)}"
        )
    return found
