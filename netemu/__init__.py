"""netemu: an emulator of broadcast networks for decentralized optimization and federated learning."""

__version__ = "0.1.0"
