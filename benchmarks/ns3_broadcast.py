"""802.11 ad hoc broadcast in ns-3 against netemu's CSMA on the same geometry.

    pip install ns3            # ns-3 3.44 with its Python bindings (cppyy); not needed by CI
    python benchmarks/ns3_broadcast.py [--duration 10] [--out benchmarks/data/ns3_broadcast.csv]

Geometry: ``n`` static nodes uniform in 200 m × 200 m (one draw per ``n`` from the seed), radios
that hear each other within 50 m and nothing beyond (ns-3: ``RangePropagationLossModel``; netemu:
unit disk), so every in-range signal is equally strong. Traffic: every node broadcasts UDP packets
of 500 payload bytes at the ticks of a Poisson process of ``rate`` per second.

- **ns-3**: 802.11b ad hoc (``AdhocWifiMac``), DSSS 1 Mb/s for everything
  (``ConstantRateWifiManager``, broadcast at that rate), long preamble, the DCF with its defaults
  (slot 20 µs, SIFS 10 µs, DIFS 50 µs, CWmin 31, backoff counters frozen while the medium is
  busy), the default preamble detection and interference models (``YansWifiPhy``). A small
  C++ application (compiled by cppyy at start-up) sends the Poisson broadcasts and counts the
  packets every node receives.
- **netemu**: ``[network.mac] model = "csma"``, bitrate 1e6, preamble 192e-6, slot 20e-6, cw 31,
  carrier sense and interference = reception range, the ``traffic`` protocol with messages of
  564 bytes (payload + UDP 8 + IPv4 20 + LLC/SNAP 8 + MAC header and FCS 28: the same airtime,
  5.704 ms, as ns-3's frame).

Delivery ratio = receptions / (Σ over broadcasts of the sender's neighbours in range). The CSV has
one line per simulator, node count and rate; ``--netemu-only`` recomputes netemu's lines and keeps
the stored ns-3 ones. docs/medium.md discusses the differences.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIDE, RANGE, PAYLOAD, OVERHEAD = 200.0, 50.0, 500, 64
NODES = (10, 20, 40, 80)
RATES = (2.0, 10.0, 40.0)
FIELDS = ("simulator", "nodes", "rate", "mean_neighbours", "offered_load", "broadcasts", "expected",
          "received", "delivery_ratio", "wall_seconds")

CPP = r"""
#include <vector>
namespace nsb {
using namespace ns3;
static uint64_t g_received = 0;
void Receive(Ptr<Socket> s) { Ptr<Packet> p; while ((p = s->Recv())) { g_received++; } }

class PoissonBroadcast : public Application {
 public:
  double m_rate = 1.0, m_stop = 1.0; uint32_t m_size = 500; uint16_t m_port = 9; uint64_t m_sent = 0;
  Ptr<Socket> m_socket; Ptr<ExponentialRandomVariable> m_gap;
  void StartApplication() override {
    m_gap = CreateObject<ExponentialRandomVariable>();
    m_gap->SetAttribute("Mean", DoubleValue(1.0 / m_rate));
    m_socket = Socket::CreateSocket(GetNode(), UdpSocketFactory::GetTypeId());
    m_socket->SetAllowBroadcast(true);
    m_socket->Bind();
    m_socket->Connect(InetSocketAddress(Ipv4Address("255.255.255.255"), m_port));
    Next();
  }
  void StopApplication() override {}
  void Next() {
    double t = Simulator::Now().GetSeconds() + m_gap->GetValue();
    if (t < m_stop) Simulator::Schedule(Seconds(t) - Simulator::Now(), &PoissonBroadcast::Send, this);
  }
  void Send() { m_socket->Send(Create<Packet>(m_size)); m_sent++; Next(); }
};

std::vector<double> Run(std::vector<double> xs, std::vector<double> ys, double rate, uint32_t size,
                        double duration, double range, uint32_t seed) {
  RngSeedManager::SetSeed(seed);
  RngSeedManager::SetRun(1);
  g_received = 0;
  uint32_t n = xs.size();
  NodeContainer nodes; nodes.Create(n);
  WifiHelper wifi; wifi.SetStandard(WIFI_STANDARD_80211b);
  wifi.SetRemoteStationManager("ns3::ConstantRateWifiManager", "DataMode", StringValue("DsssRate1Mbps"),
                               "ControlMode", StringValue("DsssRate1Mbps"),
                               "NonUnicastMode", StringValue("DsssRate1Mbps"));
  YansWifiChannelHelper channel;
  channel.SetPropagationDelay("ns3::ConstantSpeedPropagationDelayModel");
  channel.AddPropagationLoss("ns3::RangePropagationLossModel", "MaxRange", DoubleValue(range));
  YansWifiPhyHelper phy; phy.SetChannel(channel.Create());
  WifiMacHelper mac; mac.SetType("ns3::AdhocWifiMac");
  NetDeviceContainer devs = wifi.Install(phy, mac, nodes);
  MobilityHelper mob;
  Ptr<ListPositionAllocator> alloc = CreateObject<ListPositionAllocator>();
  for (uint32_t i = 0; i < n; i++) alloc->Add(Vector(xs[i], ys[i], 0.0));
  mob.SetPositionAllocator(alloc);
  mob.SetMobilityModel("ns3::ConstantPositionMobilityModel");
  mob.Install(nodes);
  InternetStackHelper internet; internet.Install(nodes);
  Ipv4AddressHelper ip; ip.SetBase("10.0.0.0", "255.0.0.0"); ip.Assign(devs);
  std::vector<Ptr<PoissonBroadcast>> apps;
  for (uint32_t i = 0; i < n; i++) {
    Ptr<Socket> sink = Socket::CreateSocket(nodes.Get(i), UdpSocketFactory::GetTypeId());
    sink->Bind(InetSocketAddress(Ipv4Address::GetAny(), 9));
    sink->SetRecvCallback(MakeCallback(&Receive));
    Ptr<PoissonBroadcast> app = CreateObject<PoissonBroadcast>();
    app->m_rate = rate; app->m_size = size; app->m_stop = duration;
    nodes.Get(i)->AddApplication(app);
    app->SetStartTime(Seconds(0.0));
    apps.push_back(app);
  }
  Simulator::Stop(Seconds(duration + 1.0));
  Simulator::Run();
  std::vector<double> sent;
  for (auto& a : apps) sent.push_back((double)a->m_sent);
  sent.push_back((double)g_received);
  Simulator::Destroy();
  return sent;
}
}
"""


def positions(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng([seed, n]).uniform(0, SIDE, (n, 2))


def degrees(pos: np.ndarray) -> np.ndarray:
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    return (d <= RANGE).sum(axis=1) - 1


def airtime() -> float:
    return 192e-6 + 8 * (PAYLOAD + OVERHEAD) / 1e6


def run_ns3(n: int, rate: float, duration: float, seed: int) -> dict:
    from ns import ns  # noqa: F401 (loads the libraries and headers)
    import cppyy

    if not hasattr(cppyy.gbl, "nsb"):
        cppyy.cppdef(CPP)
    pos = positions(n)
    t = time.perf_counter()
    out = list(cppyy.gbl.nsb.Run(pos[:, 0].tolist(), pos[:, 1].tolist(), rate, PAYLOAD, duration, RANGE, seed))
    wall = time.perf_counter() - t
    sent = np.array(out[:n])
    deg = degrees(pos)
    return row("ns-3", n, rate, deg, int(sent.sum()), int((sent * deg).sum()), int(out[n]), wall)


def run_netemu(n: int, rate: float, duration: float, seed: int) -> dict:
    from netemu.engine import SimEngine
    from netemu.runtime.results import Observer
    from netemu.scenario import build
    from netemu.scenario.load import Scenario

    class Count(Observer):
        def __init__(self):
            self.sent = np.zeros(n)

        def transmit(self, label, k, t, senders, nbytes):
            np.add.at(self.sent, senders, 1)

    pos = positions(n)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "pos.npy", pos)
        data = {"seed": seed,
                "network": {"nodes": n, "topology": "radio", "range": RANGE,
                            "mac": {"model": "csma", "bitrate": 1e6, "preamble": 192e-6, "slot": 20e-6, "cw": 31}},
                "mobility": {"model": "static", "positions": "pos.npy", "area": [SIDE, SIDE]},
                "run": {"rounds": 1, "period": duration},
                "protocols": [{"name": "traffic", "rate": rate, "bytes": PAYLOAD + OVERHEAD}]}
        sc = Scenario.from_dict(data, base_dir=Path(tmp))
        obs = Count()
        t = time.perf_counter()
        res = SimEngine(sc, np.zeros((n, 1)), trajectories=build.trajectories(sc), observers=(obs,)).run_protocol(
            sc.protocols[0])
        wall = time.perf_counter() - t
    deg = degrees(pos)
    return row("netemu", n, rate, deg, int(obs.sent.sum()), int((obs.sent * deg).sum()),
               int(res.counters["deliveries"]), wall)


def row(sim, n, rate, deg, sent, expected, received, wall) -> dict:
    return {"simulator": sim, "nodes": n, "rate": rate, "mean_neighbours": round(float(deg.mean()), 3),
            "offered_load": round(float((deg + 1).mean() * rate * airtime()), 4), "broadcasts": sent,
            "expected": expected, "received": received,
            "delivery_ratio": round(received / expected, 5) if expected else float("nan"),
            "wall_seconds": round(wall, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=HERE / "data" / "ns3_broadcast.csv")
    ap.add_argument("--netemu-only", action="store_true", help="keep the stored ns-3 lines")
    a = ap.parse_args()
    rows = []
    if a.netemu_only:
        with open(a.out) as f:
            rows = [r for r in csv.DictReader(f) if r["simulator"] == "ns-3"]
    for n in NODES:
        for rate in RATES:
            sims = (run_netemu,) if a.netemu_only else (run_ns3, run_netemu)
            for fn in sims:
                r = fn(n, rate, a.duration, a.seed)
                rows.append(r)
                print(" ".join(f"{k}={r[k]}" for k in FIELDS), file=sys.stderr, flush=True)
    rows.sort(key=lambda r: (float(r["nodes"]), float(r["rate"]), r["simulator"]))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
