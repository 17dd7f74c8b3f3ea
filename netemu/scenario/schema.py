"""The keys a scenario file may hold, with their types, ranges and defaults.

This is the scenario reference: README's table is written from it. Protocol parameters are
declared by each protocol class (``Protocol.params``) and checked against the registry.
"""

from __future__ import annotations

from netemu.metrics import NAMES as METRIC_NAMES
from netemu.params import REQUIRED, Key

TOP = {
    "seed": Key("int", 0, lo=0, hi=2**63 - 1, doc="master seed; every random stream derives from it", example="1"),
    "name": Key("str", None, nullable=True, doc="a title for plots and summary.json"),
    "network": Key("table", REQUIRED),
    "mobility": Key("table", None, nullable=True),
    "run": Key("table", None, nullable=True),
    "task": Key("table", None, nullable=True),
    "protocols": Key("table", REQUIRED),
    "output": Key("table", None, nullable=True),
    "compute": Key("table", None, nullable=True),
    "live": Key("table", None, nullable=True),
    "sweep": Key("table", None, nullable=True,
                 doc='runs the scenario once per combination, e.g. sweep = { "network.loss" = [0.1, 0.3] }'),
}

RANGE_UNIFORM = {  # [network] range = { dist = "uniform", … }: each node's range, drawn once
    "low": Key("float", REQUIRED, lo=0, lo_open=True, hi=1e7, example="80", doc="shortest range, metres"),
    "high": Key("float", REQUIRED, lo=0, lo_open=True, hi=1e7, example="150", doc="longest range, metres"),
}

NETWORK = {
    "nodes": Key("int", REQUIRED, lo=1, hi=10**8, example="30", doc="number of nodes"),
    "topology": Key("str", "random", choices=("random", "latent", "radio", "schedule"),
                    doc="where each round's graph comes from"),
    "p": Key("float", 0.2, lo=0, hi=1, example="0.15",
             doc="random: probability of each directed link j→i per round"),
    "graph": Key("str", "ring", example='"ring"',
                 doc='latent: "ring", "erdos-renyi", "random-geometric", "directed-random", or a '
                     '.graphml/.edgelist file'),
    "edge_prob": Key("float", 0.2, lo=0, hi=1, example="0.2",
                     doc="latent erdos-renyi: edge probability; directed-random: probability of each "
                         "ordered pair j→i (redrawn until strongly connected)"),
    "radius": Key("float", 0.3, lo=0, lo_open=True, hi=2, example="0.3",
                  doc="latent random-geometric: connection radius in the unit square"),
    "directed": Key("bool", False, doc="latent: read a graph file as directed (u→v: v hears u)"),
    "disconnect": Key("float", 0.0, lo=0, hi=1, example="0.1",
                      doc="latent: per-round probability that a link is down (senders know)"),
    "range": Key("number_or_dist", 100.0, lo=0, lo_open=True, hi=1e7, example="100",
                 extra={"dists": {"uniform": RANGE_UNIFORM}, "ordered": (("low", "high"),),
                        "table_example": 'range = { dist = "uniform", low = 80, high = 150 }'},
                 doc='radio unit-disk: reception range in metres, or per-node ranges drawn once, '
                     '{ dist = "uniform", low = 80, high = 150 }: i hears j within j\'s range '
                     '(links can be one-way)'),
    "reception": Key("str", "unit-disk", choices=("unit-disk", "log-distance"), doc="radio reception model"),
    "tx_power": Key("float", 20.0, lo=-200, hi=200, example="20", doc="log-distance: transmit power, dBm"),
    "reference_loss": Key("float", 40.0, lo=0, hi=500, example="40", doc="log-distance: path loss at 1 m, dB"),
    "path_loss_exponent": Key("float", 3.0, lo=0.5, hi=10, example="3",
                              doc="log-distance: path-loss exponent"),
    "shadowing": Key("float", 0.0, lo=0, hi=100, example="4",
                     doc="log-distance: shadowing std-dev in dB, drawn per reception and round"),
    "threshold": Key("float", -80.0, lo=-300, hi=200, example="-80", doc="log-distance: receiver sensitivity, dBm"),
    "file": Key("path", None, nullable=True, example='"schedule.npz"',
                doc="schedule: .npz with bool adjacency [K, n, n]; rounds past K cycle"),
    "loss": Key("float", 0.0, lo=0, hi=1, example="0.1",
                doc="probability that each reception is lost after transmission"),
    "loss_model": Key("table", None, nullable=True),
    "delay": Key("table", None, nullable=True),
    "uplink": Key("table", None, nullable=True),
    "mac": Key("table", None, nullable=True),
}

MAC = {  # [network.mac]: the shared radio medium (netemu.world.medium, docs/medium.md)
    "model": Key("str", "ideal", choices=("ideal", "aloha", "csma"),
                 doc="ideal: receptions independent of each other; aloha / csma: a shared medium with "
                     "airtime and collisions"),
    "bitrate": Key("float", 1e6, lo=1, hi=1e12, example="1e6",
                   doc="bits/s; airtime = preamble + 8 · bytes / bitrate"),
    "preamble": Key("float", 0.0, lo=0, hi=10, example="192e-6", doc="seconds added to every transmission"),
    "slot": Key("float", None, lo=0, lo_open=True, hi=10, nullable=True, example="20e-6",
                doc="s; aloha: slotted ALOHA with this slot (unset: pure ALOHA); csma: the backoff slot "
                    "(default 20e-6)"),
    "cw": Key("int", 15, lo=1, hi=10**6, example="15", doc="contention window: backoffs are uniform in 0..cw slots"),
    "propagation": Key("float", 0.0, lo=0, hi=10, example="1e-6",
                       doc="propagation delay between any two nodes, s (carrier sense sees a transmission "
                           "that late; Kleinrock–Tobagi's a = propagation / airtime)"),
    "attempts": Key("int", 0, lo=0, hi=10**6, example="1",
                    doc="csma: senses of a frame before it is dropped as busy; 0: unlimited"),
    "carrier_sense_range": Key("float", None, lo=0, lo_open=True, hi=1e7, nullable=True, example="150",
                               doc="m; default: a node senses exactly the nodes it can receive"),
    "interference_range": Key("float", None, lo=0, lo_open=True, hi=1e7, nullable=True, example="200",
                              doc="m, at least the reception range; default: the reception range"),
    "reception": Key("str", "protocol", choices=("protocol", "sinr"),
                     doc="protocol: lost if any other overlapping transmission is heard; sinr: lost if "
                         "signal / (noise + interference) < sinr_threshold"),
    "sinr_threshold": Key("float", None, lo=-100, hi=100, nullable=True, example="10", doc="sinr: dB"),
    "tx_power": Key("float", None, lo=-200, hi=200, nullable=True, example="20", doc="sinr: transmit power, dBm"),
    "reference_loss": Key("float", None, lo=0, hi=500, nullable=True, example="40", doc="sinr: path loss at 1 m, dB"),
    "path_loss_exponent": Key("float", None, lo=0.5, hi=10, nullable=True, example="3",
                              doc="sinr: log-distance path-loss exponent"),
    "noise": Key("float", -95.0, lo=-300, hi=100, example="-95", doc="sinr: noise power, dBm"),
}

LOSS_MODEL = {
    "kind": Key("str", "independent", choices=("independent", "gilbert-elliott"),
                doc="independent per reception, or a two-state chain per directed link"),
    "p_good_bad": Key("float", 0.05, lo=0, hi=1, example="0.05", doc="P(good → bad) per use of the link"),
    "p_bad_good": Key("float", 0.5, lo=0, hi=1, example="0.5", doc="P(bad → good) per use of the link"),
    "loss_good": Key("float", 0.0, lo=0, hi=1, example="0.01", doc="loss probability in the good state"),
    "loss_bad": Key("float", 1.0, lo=0, hi=1, example="0.8", doc="loss probability in the bad state"),
}

DELAY = {
    "latency": Key("float", 0.0, lo=0, hi=1e6, example="0.01", doc="fixed propagation + processing delay, s"),
    "bandwidth": Key("float", None, lo=1, hi=1e15, nullable=True, example="250000",
                     doc="bytes/s; serialization time = encoded message bytes / bandwidth"),
    "jitter": Key("str", "none", choices=("none", "exponential", "uniform", "lognormal"),
                  doc="random extra delay per reception"),
    "jitter_scale": Key("float", 0.0, lo=0, hi=1e6, example="0.05",
                        doc="exponential: mean; uniform: maximum; lognormal: median (s)"),
    "jitter_sigma": Key("float", 0.5, lo=0, hi=10, example="0.5", doc="lognormal: sigma of log-delay"),
    "resolution": Key("float", 0.0, lo=0, hi=1e6, example="0.001",
                      doc="arrival times rounded up to multiples of this (s); 0: exact. Fewer, larger "
                          "delivery batches with continuous jitter"),
}

UPLINK = {
    "server": Key("int", 0, lo=0, hi=10**8, example="0", doc="the node id of the server (FL: the aggregator)"),
    "latency": Key("float", 0.0, lo=0, hi=1e6, example="0.02", doc="uplink/downlink latency, s"),
    "bandwidth": Key("float", None, lo=1, hi=1e15, nullable=True, example="1e6",
                     doc="bytes/s; transfer time = encoded message bytes / bandwidth"),
    "loss": Key("float", 0.0, lo=0, hi=1, example="0.05", doc="probability that a message is lost"),
    "retries": Key("int", 0, lo=0, hi=100, example="3",
                   doc="times a lost message is sent again (each failed attempt costs its transfer time "
                       "and one latency more) before it is dropped; counted as retries"),
}

MOBILITY = {
    "model": Key("str", "static", choices=("static", "random-waypoint", "random-walk", "trace")),
    "area": Key("pair", [1000.0, 1000.0], lo=1, hi=1e7, example="[1000, 1000]",
                doc="width and height in metres"),
    "positions": Key("path", None, nullable=True, doc="static: .npy [n,2|3] or .csv x,y[,z]"),
    "speed": Key("pair", [1.0, 5.0], lo=0, hi=1e4, example="[1, 5]", extra={"ordered": True},
                 doc="random-waypoint / random-walk: speed range, m/s"),
    "pause": Key("pair", [0.0, 10.0], lo=0, hi=1e6, example="[0, 10]", extra={"ordered": True},
                 doc="random-waypoint: pause range, s"),
    "interval": Key("float", 10.0, lo=1e-3, hi=1e6, example="10",
                    doc="random-walk: seconds between direction changes"),
    "file": Key("path", None, nullable=True, doc="trace: movement file"),
    "format": Key("str", "auto", choices=("auto", "ns2", "one", "bonnmotion", "csv")),
    "strict": Key("bool", False, doc="trace: malformed lines are errors instead of warnings"),
    "stationary": Key("bool", True, doc="random-waypoint: start in the stationary distribution "
                                        "(false: uniform positions and speeds, which drift)"),
}

RUN = {
    "rounds": Key("int", 100, lo=0, hi=10**9, example="500", doc="number of rounds K"),
    "period": Key("float", 1.0, lo=1e-6, hi=1e6, example="1.0", doc="seconds per round"),
    "diverge_at": Key("float", 1e12, lo=1, hi=1e300, example="1e12",
                      doc="a protocol whose state exceeds this many times the initial scale (max |x⁰|, at "
                          "least 1) in magnitude, or is not finite, stops there, marked diverged"),
    "on_diverge": Key("str", "stop", choices=("stop", "fail"),
                      doc='a diverged protocol: "stop" it there, marked diverged, and run the others; '
                          '"fail": the run fails with an error naming it (no outputs; a sweep records it)'),
    "target_loss": Key("float", None, lo=-1e12, hi=1e12, nullable=True, example="0.5",
                       doc="optimization: summary.json gives each protocol's time_to_target, the first "
                           "simulated time its loss is at most this (null if never)"),
}

TASK = {
    "kind": Key("str", "consensus", choices=("consensus", "logistic", "quadratic", "digits", "charlm", "custom"),
                doc="what the nodes hold: values to average, or a problem to optimize "
                    "(custom: a task given from Python, see netemu.tasks.data.ModuleTask)"),
    "dim": Key("int", 1, lo=1, hi=10**6, example="4", doc="consensus: values per node, drawn N(0, 1) from the seed"),
    "x0": Key("path", None, nullable=True, doc="consensus: [n, dim] .npy of initial values"),
    "samples": Key("int", 200, lo=1, hi=10**7, example="200", doc="logistic, quadratic: training samples per node"),
    "features": Key("int", 10, lo=1, hi=10**6, example="10",
                    doc="logistic, quadratic: features (the logistic model adds a bias)"),
    "sigma_h": Key("float", 1.0, lo=0, hi=1e3, example="1.0",
                   doc="logistic, quadratic: heterogeneity of the node models"),
    "rho": Key("float", 0.01, lo=0, hi=1e6, example="0.01",
               doc="logistic: weight of the non-convex regularizer (0: a convex task, with opt_gap)"),
    "l2": Key("float", 0.0, lo=0, hi=1e6, example="0.001",
              doc="logistic: ridge term (l2/2)‖x‖², bias included; with rho = 0 strongly convex"),
    "model": Key("str", "mlp", choices=("mlp", "cnn"), doc="digits: 64-hidden-10 MLP or a small CNN"),
    "hidden": Key("int", 128, lo=1, hi=10**6, example="128", doc="digits mlp: hidden units"),
    "split": Key("str", "iid", choices=("iid", "by-label"), doc="digits: how images are spread over nodes"),
    "test_fraction": Key("float", 0.2, lo=0.01, hi=1, example="0.2",
                         doc="digits: share of the images held out for accuracy"),
    "batch": Key("int", None, lo=0, hi=10**7, nullable=True, example="32",
                 doc="samples per local step (0: the node's whole dataset); default: digits 32, "
                     "charlm 16 windows, logistic and quadratic 0"),
    "corpus": Key("path", "stdlib", example='"texts/"',
                  doc='charlm: "stdlib" (the Python standard library\'s docstrings, a module or a group per '
                      'client), or a UTF-8 text file or folder of them'),
    "chars_per_client": Key("int", 2000, lo=2, hi=10**8, example="2000",
                            doc="charlm: characters of text each client holds"),
    "context": Key("int", 32, lo=1, hi=4096, example="32", doc="charlm: characters the model sees per window"),
    "d_model": Key("int", 64, lo=1, hi=8192, example="64", doc="charlm: width of the transformer"),
    "layers": Key("int", 2, lo=1, hi=64, example="2", doc="charlm: transformer blocks"),
    "heads": Key("int", 4, lo=1, hi=256, example="4", doc="charlm: attention heads (they divide d_model)"),
}

COMPUTE = {
    "device": Key("str", "auto", choices=("auto", "cpu", "cuda"),
                  doc="where gradients are computed; auto: CUDA if available, else the CPU (with a notice)"),
    "dtype": Key("str", None, choices=("float64", "float32"), nullable=True,
                 doc="arithmetic of the gradients and of the protocol state (float64 on the CPU keeps "
                     "numpy state); default: float32 for neural tasks (digits, charlm), float64 otherwise"),
    "threads": Key("int", 1, lo=0, hi=1024, example="1",
                   doc="torch threads for the gradients; 1 suits small models and shared machines, "
                       "0 = torch's default (all cores)"),
    "deadline": Key("float", None, lo=0, lo_open=True, hi=1e6, nullable=True, example="0.1",
                    doc="seconds per local step before the round's broadcast; late nodes are silent "
                        "stragglers. Default: wait for every online node"),
    "step_time": Key("table", None, nullable=True),
    "speeds": Key("table", None, nullable=True),
    "stragglers": Key("table", None, nullable=True),
    "availability": Key("table", None, nullable=True),
}

STEP_TIME = {
    "dist": Key("str", "fixed", choices=("none", "fixed", "lognormal", "exponential"),
                doc="distribution of one local step's duration"),
    "value": Key("float", None, lo=0, hi=1e6, nullable=True, example="0.05", doc="fixed: seconds per step"),
    "median": Key("float", None, lo=0, hi=1e6, nullable=True, example="0.05", doc="lognormal: median seconds"),
    "sigma": Key("float", 0.5, lo=0, hi=10, example="0.5", doc="lognormal: sigma of the log-duration"),
    "mean": Key("float", None, lo=0, hi=1e6, nullable=True, example="0.05", doc="exponential: mean seconds"),
}

SPEEDS = {
    "dist": Key("str", "none", choices=("none", "uniform", "lognormal", "file"),
                doc="per-node speed factors (a step takes its time / speed)"),
    "low": Key("float", 0.5, lo=1e-6, hi=1e6, example="0.5", doc="uniform: slowest factor"),
    "high": Key("float", 1.5, lo=1e-6, hi=1e6, example="1.5", doc="uniform: fastest factor"),
    "sigma": Key("float", 0.3, lo=0, hi=10, example="0.3", doc="lognormal: sigma (median 1)"),
    "file": Key("path", None, nullable=True, doc="file: .npy or text, one positive factor per node"),
}

STRAGGLERS = {
    "fraction": Key("float", 0.1, lo=0, hi=1, example="0.1", doc="share of steps (or nodes) slowed down"),
    "slowdown": Key("float", 10.0, lo=1, hi=1e6, example="10", doc="factor on a slowed step's duration"),
    "persistent": Key("bool", False, doc="true: a fixed set of slow nodes; false: each step independently"),
}

AVAILABILITY = {
    "kind": Key("str", "periods", choices=("periods", "trace"), doc="on/off periods or a trace file"),
    "on": Key("float", 60.0, lo=1e-3, hi=1e9, example="60", doc="periods: mean on-duration, s"),
    "off": Key("float", 10.0, lo=1e-3, hi=1e9, example="10", doc="periods: mean off-duration, s"),
    "file": Key("path", None, nullable=True, doc="trace: CSV node,start,end of the intervals a node is on"),
}

OUTPUT = {
    "trace": Key("bool", False, doc="write events.msgpack (every transmission, reception and drop)"),
    "plot": Key("bool", True, doc="write consensus_error.png (optimization: loss, grad_norm_sq, accuracy "
                                  "against round and simulated time; convex tasks: opt_gap, dist_opt too)"),
    "metrics": Key("strs", [], choices=METRIC_NAMES, example='["dist_opt_worst"]',
                   doc="metrics to plot beyond the defaults; opt_gap, dist_opt, dist_opt_worst need a "
                       "convex task (quadratic, or logistic with rho = 0)"),
    "eval_every": Key("int", None, lo=1, hi=10**9, nullable=True, example="10",
                      doc="optimization: full-data evaluation (loss, grad_norm_sq, accuracy, opt_gap, …) "
                          "every this many rounds, and always at the last; cheap metrics every round. "
                          "Default: every round when an evaluation costs under 2·10⁶ sample-parameters, "
                          "else about 100 evaluations per run"),
    "record": Key("any", "auto", example="true",
                  doc='write recording.npz for netemu view (positions, per-node errors, links per frame): '
                      'true, false, or "auto" (on up to 2000 nodes)'),
    "frames_every": Key("int", None, lo=1, hi=10**9, nullable=True, example="5",
                        doc="rounds (event protocols: periods) between recorded frames; default: about "
                            "300 frames per run"),
}

LIVE = {
    "time_scale": Key("float", 1.0, lo=0, lo_open=True, hi=1e6, example="20",
                      doc="live: simulated seconds per wall-clock second (CLI --time-scale)"),
    "port_base": Key("int", 0, lo=0, hi=65535, example="47000",
                     doc="live: UDP port of the medium on 127.0.0.1, local node i uses port_base + 1 + i; "
                         "0: ephemeral ports (CLI --port-base)"),
    "external": Key("ints", [], lo=0, hi=10**8, example="[7]",
                    doc="live: node ids run by outside processes (they say hello before round 0)"),
    "join_timeout": Key("float", 10.0, lo=0, lo_open=True, hi=1e6, example="30",
                        doc="live: seconds to wait for every external node's hello"),
    "max_datagram": Key("int", 65000, lo=512, hi=65507, example="65000",
                        doc="live: largest datagram in bytes; longer ones are rejected, and a longer message "
                            "travels as fragments (docs/wire.md, version 2)"),
    "max_message": Key("int", 16 * 2**20, lo=512, hi=2**31, example="16777216",
                       doc="live: largest message in bytes, fragments reassembled; a round protocol whose "
                           "message is longer is refused before the run"),
    "reassembly_bytes": Key("int", 64 * 2**20, lo=512, hi=2**40, example="67108864",
                            doc="live: bytes one receiver holds in partly received messages, at most (the "
                                "oldest is dropped and counted); at least max_message"),
    "reassembly_timeout": Key("float", 5.0, lo=0, lo_open=True, hi=1e6, example="5",
                              doc="live: wall seconds a partly received message waits for its other "
                                  "fragments before it is dropped and counted lost"),
    "host": Key("str", "127.0.0.1", example='"0.0.0.0"',
                doc="live: IPv4 address the medium binds; one that is not loopback needs key_file "
                    "(or netemu live --insecure)"),
    "key_file": Key("path", None, nullable=True, example='"live.key"',
                    doc="live: file holding a secret key (16 to 64 bytes, whitespace around it removed); "
                        "every datagram then carries a keyed BLAKE2b tag and a sequence number (docs/wire.md)"),
    "max_abs": Key("float", 1e12, lo=0, lo_open=True, example="1e12",
                   doc="live: a transmission with a value beyond this in magnitude, or NaN or infinite, "
                       "is rejected at the medium"),
    "rate_limit": Key("float", 10000.0, lo=0, example="10000",
                      doc="live: datagrams per second from one source address (token bucket, bursts of "
                          "max(64, rate_limit / 10)); more are dropped and counted; 0: no limit"),
    "max_drop_share": Key("float", 0.05, lo=0, hi=1, example="0.05",
                          doc="live: a run that loses a larger share of its datagrams (kernel drops, rate "
                              "limit, sequence gaps) is marked failed; netemu live exits with status 3"),
    "timeout": Key("float", 10.0, lo=0, lo_open=True, example="10",
                   doc="live: an external node that sends nothing for this many wall seconds is marked "
                       "departed (event trace, summary)"),
    "on_departure": Key("str", "continue", choices=("continue", "fail"),
                        doc='live: after a departure, "continue" without the node, or "fail": stop the run '
                            "(netemu live exits with status 4)"),
}

PROTOCOL_COMMON = {
    "name": Key("str", REQUIRED, example='"pulm"', doc="registered protocol name"),
    "label": Key("str", None, nullable=True, doc="name shown in outputs (default: name)"),
}
