"""Offline: ingest and ask make no network connection, in Python or below it, and telemetry is off."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import (
    CORPUS,
    INJECTION,
    NETWORK_ATTEMPTS,
    PYTHON,
    FakeEmbedder,
    clean_env,
)

from advisor.api import Advisor

QUESTION = "My contact knows the hiring manager, when should I ask?"


def test_ingest_and_ask_make_no_network_connection_and_telemetry_is_off(tmp_home: Path) -> None:
    assert "_guarded" in socket.socket.connect.__qualname__, "the conftest socket guard is not active"
    assert NETWORK_ATTEMPTS == []
    adv = Advisor(home=tmp_home, embedder=FakeEmbedder())
    adv.ingest([CORPUS, INJECTION])
    answer = adv.ask(QUESTION, llm=False)
    assert answer.citations
    assert NETWORK_ATTEMPTS == [], NETWORK_ATTEMPTS
    assert adv.store._client.get_settings().anonymized_telemetry is False
    adv.close()


STRACED = textwrap.dedent(
    """
    import json, os, socket, sys
    from advisor.api import Advisor

    adv = Advisor(home=sys.argv[1])  # the default embedder, really loaded
    adv.ingest([sys.argv[2]])
    answer = adv.ask("My contact knows the hiring manager, when should I ask?", llm=False)
    print(json.dumps({
        "mode": answer.mode,
        "telemetry": adv.store._client.get_settings().anonymized_telemetry,
        "env": os.environ.get("ANONYMIZED_TELEMETRY"),
    }))
    with socket.socket() as canary:  # proves the trace sees Python's connects
        canary.connect_ex(("127.0.0.1", 9))
    """
)
_INET = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def non_loopback_connections(trace: str) -> list[str]:
    """Lines of an strace log that reach for an address that is not loopback."""
    import ipaddress

    bad = []
    for line in trace.splitlines():
        for v4, v6 in _INET.findall(line):
            if not ipaddress.ip_address(v4 or v6).is_loopback:
                bad.append(line)
    return bad


def test_the_trace_parser_sees_remote_addresses() -> None:
    remote = 'connect(3, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("93.184.216.34")}, 16) = -1'
    local = 'connect(3, {sa_family=AF_INET6, sin6_port=htons(9), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = -1'
    unix = 'connect(4, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT'
    assert non_loopback_connections("\n".join([remote, local, unix])) == [remote]


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_no_process_level_connection_leaves_the_machine(tmp_path: Path) -> None:
    """Below Python: every connect/sendto of a real ingest + ask (Rust Chroma included) is local."""
    trace = tmp_path / "trace.log"
    env = clean_env()
    env.pop("ANONYMIZED_TELEMETRY")  # the advisor must switch telemetry off by itself
    proc = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect,sendto,sendmsg",
            "-o",
            str(trace),
            PYTHON,
            "-c",
            STRACED,
            str(tmp_path / "home"),
            str(CORPUS),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    assert data == {"mode": "extractive", "telemetry": False, "env": "False"}
    log = trace.read_text()
    assert '"127.0.0.1"' in log, "the trace did not see the canary connection"
    assert non_loopback_connections(log) == []
