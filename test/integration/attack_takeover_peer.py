#!/usr/bin/env python3
"""Session takeover in key mode: the attacker is another peer of the server (its own key pair in
a [peer] section, and the tunnel's secret), which knows the victim's session id from the DATA
headers and names it as previous in its handshakes (lib/takeover.py describes the attack).
Figures: the victim's delivery during the attack (at least 0.99) and the victim's datagrams the
attacker read (0)."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import takeover  # noqa: E402

takeover.main(keymode=True)
