"""A loopback SMTP server for tests/alerts.rs: aiosmtpd that writes each message it
receives as one JSON file (envelope, subject, plain-text and HTML parts) into a directory.

usage: python3 smtp_sink.py PORT OUTDIR   (prints "ready" once listening; stop with a signal)
"""

import email
import email.policy
import json
import os
import signal
import sys
import time

from aiosmtpd.controller import Controller


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


def main():
    port, outdir = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(outdir), hostname="127.0.0.1", port=port)
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
