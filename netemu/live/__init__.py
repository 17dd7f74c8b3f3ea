"""Live mode: the protocols of ``protocols/`` in wall-clock time over real UDP datagrams.

- ``messages``: the datagrams (msgpack; ``docs/wire.md``) and the reasons one is rejected;
- ``medium``: the UDP endpoint that forwards each transmission as the channel model says;
- ``external``: node ids reserved for outside processes, their hellos and reported estimates;
- ``config``: the ``[live]`` settings and the checks made before any socket is opened;
- ``runtime``: round timers, local node sockets, batches, metrics and outputs;
- ``cli``: the ``netemu live`` command.
"""
