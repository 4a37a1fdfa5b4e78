#!/usr/bin/env bash
# Runs the whole test suite. Installs the independent oracles the tests use when they are missing,
# runs every test project, and ends with one line: "tests: N passed, N failed, N skipped".
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

need=()
command -v tshark    >/dev/null || need+=(tshark)
command -v capinfos  >/dev/null || need+=(tshark)
command -v editcap   >/dev/null || need+=(tshark)
command -v tcpdump   >/dev/null || need+=(tcpdump)
command -v tcpreplay >/dev/null || need+=(tcpreplay)
command -v ping      >/dev/null || need+=(iputils-ping)
command -v ipfixDump >/dev/null || need+=(libfixbuf-tools)
command -v ip        >/dev/null || need+=(iproute2)
command -v gcc       >/dev/null || need+=(gcc)
command -v promtool  >/dev/null || need+=(prometheus)
command -v prometheus >/dev/null || need+=(prometheus)
command -v tmux      >/dev/null || need+=(tmux)
command -v ethtool   >/dev/null || need+=(ethtool)
[ -f /usr/include/linux/if_packet.h ] || need+=(linux-libc-dev)
# DPDK: the shim is built against libdpdk-dev; dpdk-testpmd (dpdk-dev) plays the VM in the vhost-user tests.
pkg-config --exists libdpdk 2>/dev/null || need+=(libdpdk-dev pkg-config)
command -v dpdk-testpmd >/dev/null || need+=(dpdk-dev)
/usr/bin/python3 -c 'import scapy' 2>/dev/null || need+=(python3-scapy)
# The PostgreSQL flow store's tests start private clusters with the server's initdb and pg_ctl (never a system service).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql      >/dev/null || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 && apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null || { echo "test.sh: apt-get install failed" >&2; exit 1; }
fi

results="$root/.build/test-results"
rm -rf "$results"
mkdir -p "$results"

# ./vrmirror is what the end-to-end tests call; build it once before they start.
./vrmirror --help >/dev/null || { echo "tests: 0 passed, 1 failed (vrmirror does not build)"; exit 1; }

dotnet build Mirroring.sln -c Release --nologo -v quiet -clp:ErrorsOnly || { echo "tests: 0 passed, 1 failed (build failed)"; exit 1; }

status=0
for proj in tests/*/*.Tests.csproj; do
  name="$(basename "$proj" .csproj)"
  echo "== $name" >&2
  dotnet test "$proj" -c Release --no-build --nologo \
    --logger "trx;LogFileName=$name.trx" --results-directory "$results" \
    --logger "console;verbosity=minimal" || status=1
done

/usr/bin/python3 - "$results" <<'PY'
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/*.trx"):
    c = ET.parse(f).getroot().find(".//{*}Counters")
    passed += int(c.get("passed", 0))
    failed += int(c.get("failed", 0)) + int(c.get("error", 0)) + int(c.get("timeout", 0)) + int(c.get("aborted", 0))
    skipped += int(c.get("notExecuted", 0))
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
rc=$?
[ $status -ne 0 ] && [ $rc -eq 0 ] && { echo "test.sh: a test run failed without reporting failed tests" >&2; exit 1; }
exit $rc
