"""The vault's key rotation: what a previous key sealed still opens, new values use the current key."""

import pytest
from pydantic import SecretStr

from aftercare.vault import Vault, new_secret_key


def test_a_value_sealed_with_a_previous_key_opens_and_new_values_use_the_current_key():
    old, new = SecretStr(new_secret_key()), SecretStr(new_secret_key())
    sealed_before = Vault(old).encrypt("shpat_before")
    rotated = Vault(new, previous=[old])
    assert rotated.decrypt(sealed_before) == "shpat_before"
    sealed_after = rotated.encrypt("shpat_after")
    assert Vault(new).decrypt(sealed_after) == "shpat_after"
    with pytest.raises(ValueError, match="not sealed with this deployment's secret_key"):
        Vault(old).decrypt(sealed_after)
    with pytest.raises(ValueError, match="not sealed with this deployment's secret_key"):
        Vault(new).decrypt(sealed_before)  # the old key dropped


def test_a_key_derived_for_links_never_opens_platform_tokens():
    key = SecretStr(new_secret_key())
    with pytest.raises(ValueError):
        Vault(key, purpose="links survey").decrypt(Vault(key).encrypt("shpat_x"))
