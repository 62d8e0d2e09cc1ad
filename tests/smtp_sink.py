"""An SMTP server for Klaxon's tests: aiosmtpd on 127.0.0.1:<port>, printing one JSON line per
message it accepts (envelope, subject, and the text and HTML parts decoded by Python's email
package). Prints `ready` once it listens."""

import email
import email.policy
import json
import sys
import threading

from aiosmtpd.controller import Controller


class Report:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "from": message["from"],
                    "to": message["to"],
                    "subject": message["subject"],
                    "message_id": message["message-id"],
                    "text": text.get_content() if text else None,
                    "html": html.get_content() if html else None,
                }
            ),
            flush=True,
        )
        return "250 Message accepted"


controller = Controller(Report(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
threading.Event().wait()
