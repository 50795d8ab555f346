"""Drives the verification page in headless Chromium (Debian's `chromium`), as a person would:
sign in at the OpenID provider, type the code, look at the confirmation, decide; or open the
list of devices signed in with the account and sign one out.

Used by the browser tests (examples/device-login/tests/page.rs). Prints one JSON object per
screen on standard output ({"screen", "status", "url", "text", "code_value"}) and saves a
screenshot of each under --screenshots. The caller asserts; this script only acts.

    python page_flow.py --url URL --sub alice [--code "bcdf ghjk"] [--decision approve|deny]
                        [--codes-first WRONG,WRONG] --screenshots DIR --name PREFIX
    python page_flow.py --url URL/devices --sub alice --devices [--sign-out-device] ...
"""

import argparse
import json
import os
import sys

from playwright.sync_api import sync_playwright

# As the machine's documentation asks of a headless Chromium without a network.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def report(page, screen, status, args):
    path = os.path.join(args.screenshots, f"{args.name}-{screen}.png")
    page.screenshot(path=path, full_page=True)
    code = page.locator("#user_code")
    print(json.dumps({
        "screen": screen,
        "status": status,
        "url": page.url,
        "text": page.inner_text("body"),
        "code_value": code.input_value() if code.count() else None,
    }), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sub", required=True)
    parser.add_argument("--code")
    parser.add_argument("--codes-first", default="")
    parser.add_argument("--decision", choices=["approve", "deny"])
    parser.add_argument("--devices", action="store_true",
                        help="the URL is the device list, which the sign-in returns to")
    parser.add_argument("--sign-out-device", action="store_true",
                        help="press the first device's sign-out button")
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        # A phone-sized window: the page must be readable there.
        page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        response = page.goto(args.url)
        # The provider's login form: any subject.
        page.fill("input[name=sub]", args.sub)
        report(page, "sign-in", response.status if response else None, args)
        with page.expect_navigation():
            page.click("button[type=submit]:not([name=action])")
        report(page, "devices" if args.devices else "code-entry", 200, args)
        if args.sign_out_device:
            with page.expect_navigation() as nav:
                page.click("form[action='/device/devices'] button")
            report(page, "device-signed-out", nav.value.status if nav.value else None, args)
        for wrong in [c for c in args.codes_first.split(",") if c]:
            page.fill("#user_code", wrong)
            with page.expect_navigation() as nav:
                page.keyboard.press("Enter")
            report(page, "wrong-code", nav.value.status if nav.value else None, args)
        if args.code is not None:
            page.fill("#user_code", args.code)
            with page.expect_navigation() as nav:
                page.click("button.primary")
            report(page, "confirmation", nav.value.status if nav.value else None, args)
        if args.decision:
            with page.expect_navigation() as nav:
                page.click(f"button[value={args.decision}]")
            report(page, args.decision, nav.value.status if nav.value else None, args)
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
