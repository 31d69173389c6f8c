"""Running one check where it cannot take the probe down: inline, or in a child process.

Inline, an exception becomes an "error" result.  Isolated, the check runs in a fresh Python
process (`python -m migrate.probe.isolation CHECK_ID`, the context on stdin so that no
setting shows in the process list) under a timeout; when the client library aborts the
child (a librdkafka assertion) or hangs, that becomes the check's finding ("fail", with the
signal and the last line the child wrote) instead of the end of the probe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from migrate.config import redact_text
from migrate.probe import checks
from migrate.probe.context import ProbeContext
from migrate.probe.model import ERROR, FAIL, CheckResult

MARKER = "@@migrate-probe-results@@ "


def run_inline(check: checks.Check, ctx: ProbeContext) -> list[CheckResult]:
    try:
        results = list(check.run(ctx))
    except Exception as exc:  # a check that breaks must not end the probe: it is reported
        from migrate.kafka import describe_error

        text = f"the check could not run: {type(exc).__name__}: {describe_error(exc)}"
        return [CheckResult(name, check.client, ERROR, "the check runs to a conclusion", redact_text(text))
                for name in check.names]
    # A check that stops early (a group that never joined) leaves later names unanswered:
    # say so, rather than let them look "not probed".
    answered = {r.name for r in results}
    return results + [CheckResult(name, check.client, ERROR, "the check runs to a conclusion",
                                  "not reached: an earlier step of the same check did not succeed")
                      for name in check.names if name not in answered]


def run_isolated(check: checks.Check, ctx: ProbeContext) -> list[CheckResult]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrate.probe.isolation", check.id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(ctx.to_json(), timeout=check.timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child's own group: only what we started
        proc.communicate()
        return _findings(check, FAIL, f"the {check.client} client hung: no answer within {check.timeout_s:.0f}s "
                                      "(child process killed)")
    results = _parse(out)
    if results is not None and proc.returncode == 0:
        return results
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return _findings(check, FAIL, f"the {check.client} client crashed the process ({name}): {_last_words(err)}")
    return _findings(check, ERROR, f"the check's child process exited with {proc.returncode}: {_last_words(err)}")


def _findings(check: checks.Check, status: str, observed: str) -> list[CheckResult]:
    return [CheckResult(name, check.client, status, check.expected, redact_text(observed)) for name in check.names]


def _parse(stdout: str) -> list[CheckResult] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            return [CheckResult(**item) for item in json.loads(line[len(MARKER):])]
    return None


def _last_words(stderr: str) -> str:
    """The line that says why the child died (an assertion), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and "GLIBC" not in line]
    for line in reversed(lines):
        if "Assertion" in line or "Error" in line or "error" in line:
            return redact_text(line[:240])
    return redact_text(lines[-1][:240]) if lines else "no output"


def main(argv: list[str]) -> int:
    check = checks.by_id(argv[0])
    ctx = ProbeContext.from_json(sys.stdin.read())
    results = run_inline(check, ctx)
    payload = [dict(r.__dict__) for r in results]
    sys.stdout.write("\n" + MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
