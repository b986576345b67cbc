#!/usr/bin/env bash
# Install the Debian packages ptb needs, only those missing. Run as root (or with sudo).
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config      # toolchain
  liblmdb-dev lmdb-utils                # the store
  libprotobuf-c-dev protobuf-c-compiler # events
  zlib1g-dev libzstd-dev libssl-dev     # blob compression (zlib: older stores), SHA-256
  libjansson-dev                        # JSON
  libcurl4-openssl-dev                  # ptb eval's openai backend: HTTP client
  libcmocka-dev                         # unit tests
  clang libclang-rt-14-dev              # libFuzzer targets
  libsqlite3-dev sqlite3                # the benchmark's comparison
  libmnl-dev                            # the tracer: sock_diag netlink
  libpcap-dev                           # packets: capture and pcap files
  strace busybox-static make git tar python3 # the recorder's tests: a peer, real workloads
  openssl curl                          # the TLS tests: a real ClientHello, a real server
  nftables iproute2                     # ptb record's network namespace: NAT, links (tests)
  tcpdump tshark iperf3                 # network tests and benchmark: peers to compare with
  chromium                              # ptb audit --format html's test: the report as a browser shows it
)
# installed without their Recommends (slurm-wlm-basic-plugins recommends every optional plugin)
norec=(
  munge slurmctld slurmd slurm-client   # ptb study's tests: a real Slurm on this machine (tests/integration/slurm_local.sh)
)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=() missing_norec=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${norec[@]}"; do installed "$p" || missing_norec+=("$p"); done
if ((${#missing[@]} + ${#missing_norec[@]})); then
  echo "ptb: installing ${missing[*]} ${missing_norec[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
  if ((${#missing_norec[@]})); then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing_norec[@]}"
  fi
fi
