#!/usr/bin/env python3
# Regenerates fuzz/corpus/sigv4_verify/ with botocore (run from that directory):
#   cd fuzz/corpus/sigv4_verify && ../../../.venv/bin/python3 ../../scripts/sigv4_corpus.py
# Write botocore-signed requests (service lambda, key AKIDSOUSFUZZ) dated 2026-12-01T12:00:00Z.
import datetime, sys
from unittest import mock
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

creds = Credentials("AKIDSOUSFUZZ", "sous-fuzz-secret")
when = datetime.datetime(2026, 12, 1, 12, 0, 0)

def write(name, method, url, body=b"", headers=None, presign=False):
    req = AWSRequest(method=method, url="http://127.0.0.1:3001" + url, data=body, headers=headers or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        if presign:
            SigV4QueryAuth(creds, "lambda", "us-east-1", expires=300).add_auth(req)
        else:
            SigV4Auth(creds, "lambda", "us-east-1").add_auth(req)
    p = req.prepare()
    target = p.url[len("http://127.0.0.1:3001"):]
    lines = [f"{method} {target} HTTP/1.1", "host: 127.0.0.1:3001"]
    for k, v in p.headers.items():
        if k.lower() != "host":
            lines.append(f"{k}: {v.decode() if isinstance(v, bytes) else v}")
    with open(name, "wb") as f:
        f.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))

write("get_function", "GET", "/2015-03-31/functions/my-fn")
write("invoke", "POST", "/2015-03-31/functions/my-fn/invocations", b'{"a":1}', {"X-Amz-Invocation-Type": "Event"})
write("query_sorted", "GET", "/2015-03-31/functions/?MaxItems=10&FunctionVersion=ALL&Marker=a%2Fb")
write("query_dollar_raw", "GET", "/2015-03-31/functions/my-fn/configuration?Qualifier=$LATEST")
write("query_dollar_encoded", "GET", "/2015-03-31/functions/my-fn/configuration?Qualifier=%24LATEST")
write("path_arn", "GET", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Amy-fn/configuration")
write("presigned", "GET", "/2015-03-31/functions/my-fn", presign=True)
write("space_and_plus", "GET", "/2015-03-31/functions/?Marker=a%20b+c")
write("empty_value", "GET", "/2015-03-31/functions/?Marker=&MaxItems=1")
write("content_sha", "PUT", "/2015-03-31/functions/my-fn/configuration", b'{"Timeout":3}', {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Type": "application/json"})
