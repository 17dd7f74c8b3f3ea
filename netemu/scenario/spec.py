"""The scenario layer's view of parameter declarations; they live in ``netemu.params``."""

from netemu.params import REQUIRED, Key, check_table, check_value  # noqa: F401
