"""Protocol registration: built-ins, run-time registration, entry points, conformance check."""

import sys
import textwrap

import numpy as np
import pytest

from netemu import registry
from netemu.checks import check_protocol
from netemu.errors import ProtocolError
from netemu.protocol import Protocol


BUILTINS = ("gossip", "push-sum", "pulm", "dgd", "push-diging", "pulm-dgd", "local-sgd", "easgd",
            "broadcast-gossip", "async-push-sum")


def test_builtins_are_listed_and_conform():
    assert set(BUILTINS) <= set(registry.names())
    for name in BUILTINS:
        cls = registry.get(name)
        assert cls.paper, f"{name} must name its paper"
        check_protocol(cls)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ProtocolError, match="did you mean 'push-sum'"):
        registry.get("push_sum")


def test_check_protocol_catches_nondeterminism():
    class Noisy(Protocol):
        def start(self, x0):
            self.x = np.array(x0)

        def end_round(self):
            self.x = self.x + np.random.default_rng().normal(size=self.x.shape)  # global entropy: wrong

        def estimate(self):
            return self.x

    with pytest.raises(AssertionError, match="not deterministic"):
        check_protocol(Noisy)


def test_entry_point_plugin_is_found(tmp_path, monkeypatch):
    (tmp_path / "my_proto.py").write_text(textwrap.dedent("""
        import numpy as np
        from netemu.protocol import Protocol

        class Frozen(Protocol):
            paper = "none: keeps its initial value"
            def start(self, x0):
                self.x = np.array(x0)
            def estimate(self):
                return self.x
    """))
    dist = tmp_path / "my_proto-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-proto\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[netemu.protocols]\nfrozen = my_proto:Frozen\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "frozen" in registry.names()
    cls = registry.get("frozen")
    assert cls.__name__ == "Frozen"
    check_protocol(cls)
    sys.modules.pop("my_proto", None)
