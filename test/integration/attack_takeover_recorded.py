#!/usr/bin/env python3
"""Session takeover by a second holder of the shared secret who also recorded the victim's
handshake on the path and derives the proof from it with the secret: the handshake hash of
Noise_NNpsk0 mixes the psk, the ephemeral keys and the ciphertexts, never a Diffie-Hellman result,
so the secret and the recording give it (lib/takeover.py describes the attack). Figures: the
victim's delivery during the attack (at least 0.99) and the victim's datagrams the attacker read
(0)."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import takeover  # noqa: E402

takeover.main(recorded=True)
