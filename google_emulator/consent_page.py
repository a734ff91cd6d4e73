"""The HTML of the consent screen and of the authorize error page (plain forms, no JavaScript)."""

from __future__ import annotations

from html import escape

from google_emulator.oauth import describe_scope

STYLE = """
body{font-family:Roboto,Arial,sans-serif;background:#f1f3f4;margin:0;color:#202124}
main{max-width:450px;margin:48px auto;background:#fff;border:1px solid #dadce0;border-radius:8px;padding:36px 40px}
h1{font-size:22px;font-weight:400;margin:0 0 8px}
.account{display:inline-block;border:1px solid #dadce0;border-radius:16px;padding:4px 12px;margin:8px 0 20px}
ul{padding-left:20px} li{margin:8px 0}
.buttons{display:flex;justify-content:flex-end;gap:12px;margin-top:28px}
button{font-size:14px;padding:9px 24px;border-radius:4px;cursor:pointer}
#submit_deny_access{background:#fff;color:#1a73e8;border:1px solid #dadce0}
#submit_approve_access{background:#1a73e8;color:#fff;border:0}
.note{font-size:12px;color:#5f6368;margin-top:24px}
"""


def consent_page(
    *, consent_id: str, client_id: str, account: str, scopes: list[str], accounts: list[str] | None = None
) -> str:
    chooser = ""
    if accounts:
        # Several customers' admins: Google's account chooser, as a select (no JavaScript).
        options = "".join(
            f'<option value="{escape(a)}"{" selected" if a == account else ""}>{escape(a)}</option>'
            for a in accounts
        )
        chooser = (
            '<p><label for="account_chooser">Choose an account</label> '
            f'<select name="account" id="account_chooser">{options}</select></p>'
        )
    items = "\n".join(
        f'<li><span class="scope-description">{escape(describe_scope(s))}</span><br>'
        f'<code class="scope">{escape(s)}</code></li>'
        for s in scopes
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - Google Accounts (emulator)</title>
<style>{STYLE}</style></head>
<body><main>
<h1>{escape(client_id)} wants to access your Google Account</h1>
<div class="account" id="account">{escape(account)}</div>
<p>This will allow <strong>{escape(client_id)}</strong> to:</p>
<ul id="scopes">{items}</ul>
<form method="post" action="/o/oauth2/approval">
<input type="hidden" name="consent_id" value="{escape(consent_id)}">
{chooser}
<div class="buttons">
<button type="submit" name="decision" value="deny" id="submit_deny_access">Cancel</button>
<button type="submit" name="decision" value="allow" id="submit_approve_access">Allow</button>
</div>
</form>
<p class="note">Google emulator: no real Google account is involved.</p>
</main></body></html>"""


def error_page(error: str, description: str, code: int) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error {code}: {escape(error)}</title>
<style>{STYLE}</style></head>
<body><main>
<h1>Access blocked: this request is invalid</h1>
<p id="error"><strong>Error {code}: {escape(error)}</strong></p>
<p id="error_description">{escape(description)}</p>
</main></body></html>"""
