"""Live mode: the protocols of ``protocols/`` in wall-clock time over real UDP datagrams.

- ``messages``: the datagrams (msgpack; ``docs/wire.md``) and the reasons one is rejected;
- ``medium``: the UDP endpoint that forwards each transmission as the channel model says, and
  checks everything it receives (rate limit, tags, values, ids);
- ``auth``: the keyed BLAKE2b tag and sequence numbers of ``[live] key_file``;
- ``udp``: sockets read with ``recvmsg`` (the kernel's drop count), per-source rate limits;
- ``external``: node ids reserved for outside processes, their hellos and reported estimates, and
  the checks of external FL clients' updates;
- ``config``: the ``[live]`` settings and the checks made before any socket is opened;
- ``fragments``: messages longer than one datagram (wire format version 2), reassembly bounds;
- ``forward``: the medium's copies, sent at their planned instants (fragmented, tagged);
- ``nodes``: the local nodes' sockets and the recorder that waits for external nodes;
- ``runtime``: the live session: sockets, the wall clock, metrics and outputs;
- ``cli``: the ``netemu live`` command.
"""
