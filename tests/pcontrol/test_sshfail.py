"""pcontrol.sshfail: a failed agent start is named by ssh's decisive message (a table, no processes).

The same outputs go through a fake ssh and a real pcontrol in tests/pcontrol/test_hosts.py.
"""

from __future__ import annotations

import re

import pytest

from pcontrol.sshfail import PROMPTS, ConnectOutcome, classify

O = ConnectOutcome

CHANGED = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Offending ECDSA key in /home/u/.ssh/known_hosts:3
Password authentication is disabled to avoid man-in-the-middle attacks.
u@h: Permission denied (publickey,password).
"""

TABLE = [
    ("ssh: Could not resolve hostname nosuch: Name or service not known\n", O.UNRESOLVED, "ssh: Could not resolve hostname nosuch"),
    ("ssh: Could not resolve hostname h: Temporary failure in name resolution\r\n", O.UNRESOLVED, "Temporary failure"),
    ("ssh: connect to host h port 22: Connection refused\n", O.CONNECTION_REFUSED, "port 22: Connection refused"),
    ("ssh: connect to host h port 22: No route to host\n", O.UNREACHABLE, "No route to host"),
    ("ssh: connect to host h port 22: Connection timed out\n", O.UNREACHABLE, "timed out"),
    ("u@h: Permission denied (publickey).\n", O.PERMISSION_DENIED, "u@h: Permission denied (publickey)."),
    (CHANGED, O.HOST_KEY_CHANGED, "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!"),
    ("No ED25519 host key is known for h and you have requested strict checking.\nHost key verification failed.\n",
     O.HOST_KEY, "Host key verification failed."),
    # a warning before the error is not the error
    ("Warning: Identity file /k not accessible: No such file or directory.\nu@h: Permission denied (publickey).\n",
     O.PERMISSION_DENIED, "Permission denied"),
    ("Warning: Permanently added 'h' (ED25519) to the list of known hosts.\nbash: line 1: pclient: command not found\n",
     O.NOT_FOUND, "pclient: command not found"),
    ("kex_exchange_identification: read: Connection reset by peer\n", O.CLOSED, "Connection reset by peer"),
    ("Connection closed by 10.0.0.7 port 22\n", O.CLOSED, "Connection closed by"),
    ("/usr/bin/python3: No module named pclient\n", O.NOT_FOUND, "No module named pclient"),
    ("", None, None),
    ("Last login: yesterday\nwelcome\n", None, None),
]


@pytest.mark.parametrize("output, outcome, line", TABLE)
def test_the_decisive_message_names_the_failure(output, outcome, line):
    said = classify(output.encode())
    if outcome is None:
        assert said is None
        return
    assert said is not None and said.outcome is outcome
    assert line in said.line
    assert said.reason.endswith(said.line)


PROMPT_TABLE = [
    (b"u@h's password: ", O.PASSWORD_PROMPT),
    (b"Enter passphrase for key '/home/u/.ssh/id_ed25519': ", O.PASSWORD_PROMPT),
    (b"Are you sure you want to continue connecting (yes/no/[fingerprint])? ", O.HOST_KEY),
    # said, not asked: the output goes on after it
    (b"Password authentication is disabled: see below\r\nmore\r\n", None),
    (b"u@h: Permission denied (publickey,password).\r\n", None),
]


@pytest.mark.parametrize("output, outcome", PROMPT_TABLE)
def test_only_a_question_waiting_for_an_answer_is_a_prompt(output, outcome):
    found = [o for o, pattern in PROMPTS if re.search(pattern, output)]
    assert found == ([outcome] if outcome else [])
