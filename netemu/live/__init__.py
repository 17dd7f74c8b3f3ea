"""Live mode: the protocols of ``protocols/`` in wall-clock time over real UDP datagrams.

- ``messages``: the datagrams (msgpack; ``docs/wire.md``) and the reasons one is rejected;
- ``medium``: the UDP endpoint that forwards each transmission as the channel model says, and
  checks everything it receives (rate limit, tags, values, ids);
- ``auth``: the keyed BLAKE2b tag and sequence numbers of ``[live] key_file``;
- ``udp``: sockets read with ``recvmsg`` (the kernel's drop count), per-source rate limits;
- ``external``: node ids reserved for outside processes, their hellos and reported estimates;
- ``config``: the ``[live]`` settings and the checks made before any socket is opened;
- ``runtime``: round timers, local node sockets, batches, metrics and outputs;
- ``cli``: the ``netemu live`` command.
"""
