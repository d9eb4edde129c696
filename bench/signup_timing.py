#!/usr/bin/env python3
"""Sign-up timing in enumeration-safe mode: new against taken address.

Usage: bench/signup_timing.py BASE_URL [PAIRS]

BASE_URL is a usersvc started with USERSVC_SIGNUP_ENUMERATION_SAFE=true and
the register limits raised (USERSVC_RATE_REGISTER_IP, RATE_RESET_ACCOUNT),
e.g. `usersvc dev`. Sends PAIRS (default 60) pairs of sign-ups, one for a
new address and one for a taken one, in random order within each pair, and
prints how many distinct answers (status and body) came back and the
medians of both kinds.
"""
import json, random, statistics, sys, time, urllib.request

URL = sys.argv[1].rstrip("/") + "/user"
PAIRS = int(sys.argv[2]) if len(sys.argv) > 2 else 60
def post(email):
    body = json.dumps({"email": email, "password": "Tr0ub4dor&3xyz-long", "name": "T"}).encode()
    req = urllib.request.Request(URL, data=body, headers={"Content-Type": "application/json"}, method="POST")
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        out = (r.status, r.read())
    return time.perf_counter() - t, out
post("taken@example.com")  # the taken address
for _ in range(5): post("warm%d@example.com" % random.randrange(10**9))
new, taken, answers = [], [], set()
for i in range(PAIRS):
    pair = [("new", "n%d-%d@example.com" % (i, random.randrange(10**9))), ("taken", "taken@example.com")]
    random.shuffle(pair)
    for kind, email in pair:
        d, out = post(email)
        answers.add(out)
        (new if kind == "new" else taken).append(d * 1000)
print("distinct answers (status, body):", len(answers), list(answers)[:2])
for name, xs in (("new", new), ("taken", taken)):
    xs.sort()
    print(f"{name}: median {statistics.median(xs):.1f} ms, p10 {xs[len(xs) // 10]:.1f}, p90 {xs[len(xs) * 9 // 10]:.1f}")
print("ratio of medians taken/new: %.2f" % (statistics.median(taken) / statistics.median(new)))
