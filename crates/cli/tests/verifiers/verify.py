"""Verifies requests Patchbay signed, with each scheme's official library.

Reads a JSON file: a list of {"scheme", "secret", "headers", "body"} (the
body as text, exactly as received). Standard Webhooks requests are checked
by the `standardwebhooks` package, Stripe's by the `stripe` package, and
GitHub's as GitHub's documentation shows (GitHub publishes no Python
library). Prints one line per request; exits 1 if any does not verify.
"""

import hashlib
import hmac
import json
import sys

import stripe
from standardwebhooks.webhooks import Webhook


def verify(request):
    scheme = request["scheme"]
    headers = request["headers"]
    body = request["body"]
    secret = request["secret"]
    if scheme == "standard_webhooks":
        Webhook(secret).verify(body, headers)
    elif scheme == "stripe":
        stripe.WebhookSignature.verify_header(
            body, headers["stripe-signature"], secret, tolerance=300
        )
    elif scheme == "github":
        expected = "sha256=" + hmac.new(
            secret.encode(), body.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, headers["x-hub-signature-256"]):
            raise ValueError("signature mismatch")
    else:
        raise ValueError(f"unknown scheme {scheme}")


def main():
    with open(sys.argv[1], encoding="utf-8") as file:
        requests = json.load(file)
    failed = 0
    for request in requests:
        try:
            verify(request)
            print(f"verified {request['scheme']}")
        except Exception as error:  # every library raises its own type
            failed += 1
            print(f"refused {request['scheme']}: {type(error).__name__}: {error}")
    sys.exit(1 if failed or not requests else 0)


if __name__ == "__main__":
    main()
