#!/usr/bin/env bash
# A/B: base (62632b1) vs i12-mbuf, interleaved, order alternating per round.
set -u
out=${OUT:-/tmp/ab/runs.tsv}
echo -e "round\tside\tscenario\tflows\tmpps\tcpu_ns\tns\ttx_copies\tin_mbuf\tload1\ttime" > $out
rounds=${1:-3}
for r in $(seq 1 $rounds); do
  for flows in 4096 65536; do
    for sc in mirror-jh mirror-vxlan forward; do
      if (( r % 2 )); then order="A B"; else order="B A"; fi
      for side in $order; do
        if [ $side = A ]; then dir=/work/wt/i12-mbuf-base; else dir=/work/wt/i12-mbuf; fi
        load=$(cut -d' ' -f1 /proc/loadavg)
        j=$(cd $dir && ./vrmirror bench --io dpdk --scenario $sc --flows $flows --seconds 2 --warmup 2 --json 2>/dev/null)
        python3 - "$r" "$side" "$sc" "$flows" "$load" <<PY >> $out
import json,sys,time
d=json.loads('''$j''')
r,side,sc,flows,load=sys.argv[1:]
print("\t".join(map(str,[r,side,sc,flows,d["mpps"],d["cpu_ns_per_packet"],d["ns_per_packet"],d["tx_copies_per_packet"],d.get("copies_built_in_mbuf_per_packet","-"),load,time.strftime("%H:%M:%S",time.gmtime())])))
PY
      done
    done
  done
done
echo finished >> /tmp/ab/done
