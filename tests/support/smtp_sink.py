"""A loopback SMTP server for tests/alerts.rs: aiosmtpd that writes each message it
receives as one JSON file (envelope, subject, plain-text and HTML parts) into a directory.

usage: python3 smtp_sink.py PORT OUTDIR [USER PASSWORD]
  prints "ready" once listening; stop it with a signal. With USER and PASSWORD the server
  requires AUTH (allowed without TLS, for the loopback test) and accepts only those.
"""

import email
import email.policy
import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        plain = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "to": str(msg["to"]),
            "text": plain.get_content() if plain else None,
            "html": html.get_content() if html else None,
        }
        path = os.path.join(self.outdir, "%d-%03d.json" % (time.time_ns(), self.count))
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok)
    return check


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    options = {}
    if len(sys.argv) == 5:
        options = dict(auth_required=True, auth_require_tls=False,
                       authenticator=authenticator(sys.argv[3], sys.argv[4]))
    controller = Controller(Sink(outdir), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
