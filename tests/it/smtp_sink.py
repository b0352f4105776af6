"""A loopback SMTP server for tests/it/alerts.rs: aiosmtpd that writes each message it
receives as one JSON file (envelope, subject, plain-text and HTML parts) into a directory.

usage: python3 smtp_sink.py PORT OUTDIR [USER PASSWORD]
  prints "ready" once listening; stop it with a signal. With USER and PASSWORD the server
  requires AUTH and accepts only those (without TLS AUTH is allowed in the clear, for the
  loopback test; with TLS only after it).
environment: SMTP_SINK_TLS=starttls|tls with SMTP_SINK_CERT and SMTP_SINK_KEY (PEM files):
  starttls requires the upgrade before MAIL or AUTH; tls is implicit TLS from the start.
"""

import email
import email.policy
import json
import os
import signal
import ssl
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
            "message_id": msg["message-id"] and str(msg["message-id"]),
            "date": msg["date"] and str(msg["date"]),
            "auto_submitted": msg["auto-submitted"] and str(msg["auto-submitted"]),
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
    tls = os.environ.get("SMTP_SINK_TLS")
    if len(sys.argv) == 5:
        # With implicit TLS aiosmtpd does not know the session is encrypted (it tracks only
        # STARTTLS), so it would never offer AUTH: there every byte is TLS anyway.
        options = dict(auth_required=True, auth_require_tls=(tls == "starttls"),
                       authenticator=authenticator(sys.argv[3], sys.argv[4]))
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(os.environ["SMTP_SINK_CERT"], os.environ["SMTP_SINK_KEY"])
        if tls == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context)
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
