"""Built-in protocols of netemu, one file each (imported as ``netemu.protocols``)."""
