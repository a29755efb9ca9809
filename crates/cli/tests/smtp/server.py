"""An SMTP server on loopback for Patchbay's e-mail tests (aiosmtpd).

Each message accepted is written to FOLDER as NNNNNN.json: the envelope
(`mail_from`, `rcpt_tos`), the login it signed in with (`login`, or null)
and the message as received (`data`, text). With --fail-first N, the first
N messages are refused for now (451), as a server under load does, and
written as refused-NNNNNN.json; with
--refuse ADDRESS, mail to ADDRESS is refused for good (550). With --user
and --password, signing in (AUTH PLAIN or LOGIN, without TLS: the server
is on loopback) is required.

Prints `ready PORT` once it listens; runs until killed.

Usage: server.py --folder DIR [--port N] [--user U --password P]
                 [--fail-first N] [--refuse ADDRESS]
"""

import warnings
import argparse
import asyncio
import itertools
import json
import os
import signal
import sys

# The server is on loopback: signing in without TLS is what the tests do.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Recorder:
    def __init__(self, folder, fail_first, refuse):
        self.folder = folder
        self.to_fail = fail_first
        self.refuse = refuse
        self.numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and address == self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        name = f"{number:06}.json"
        answer = "250 2.0.0 Message accepted for delivery"
        if self.to_fail > 0:
            self.to_fail -= 1
            name = f"refused-{number:06}.json"
            answer = "451 4.3.2 Try again later"
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        # Written whole, then renamed: a reader never sees half a message.
        path = os.path.join(self.folder, name)
        with open(path + ".tmp", "w") as out:
            json.dump(record, out)
        os.replace(path + ".tmp", path)
        return answer


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, auth_data=auth_data)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--refuse")
    args = parser.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    handler = Recorder(args.folder, args.fail_first, args.refuse)
    options = {}
    if args.user:
        options = {
            "authenticator": authenticator(args.user, args.password or ""),
            "auth_required": True,
            "auth_require_tls": False,
        }
    port = args.port
    if port == 0:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    print(f"ready {port}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
