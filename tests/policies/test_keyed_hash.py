"""KeyedHash gives HMAC-SHA256's bytes: shoppers' keys and experiment arms must not move."""

from __future__ import annotations

import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from policies.keyed_hash import KeyedHash


@pytest.mark.parametrize("key_length", [0, 1, 32, 63, 64, 65, 200])
@pytest.mark.parametrize("message_length", [0, 1, 55, 64, 3000])
def test_same_bytes_as_hmac(key_length: int, message_length: int) -> None:
    key, message = os.urandom(key_length), os.urandom(message_length)
    keyed = KeyedHash(key)
    expected = hmac.new(key, message, hashlib.sha256)
    assert keyed.digest(message) == expected.digest()
    assert keyed.hexdigest(message) == expected.hexdigest()
    assert keyed.digest(message) == expected.digest()  # hashing leaves the kept states as they were


def test_threads_share_one() -> None:
    key = os.urandom(32)
    keyed = KeyedHash(key)
    messages = [f"shopper-{i}".encode() for i in range(2000)]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(keyed.hexdigest, messages))
    assert found == [hmac.new(key, m, hashlib.sha256).hexdigest() for m in messages]
