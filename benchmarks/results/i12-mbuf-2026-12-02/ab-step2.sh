#!/usr/bin/env bash
# Step 2 A/B: S1 (i12-mbuf step 1, 8e46838) vs S2 (flow key from the frame), interleaved, order alternating per round.
set -u
out=/tmp/ab/step2.tsv
echo -e "round\tside\tio\tscenario\tflows\tmpps\tcpu_ns\tload1\ttime" > $out
rounds=${1:-4}
for r in $(seq 1 $rounds); do
  for io in memory dpdk; do
  for flows in 4096 65536; do
    for sc in forward mirror-jh; do
      if (( r % 2 )); then order="S1 S2"; else order="S2 S1"; fi
      for side in $order; do
        if [ $side = S1 ]; then dir=/work/wt/i12-mbuf-step1; else dir=/work/wt/i12-mbuf; fi
        load=$(cut -d' ' -f1 /proc/loadavg)
        secs=2; [ $io = memory ] && secs=1
        j=$(cd $dir && ./vrmirror bench --io $io --scenario $sc --flows $flows --seconds $secs --warmup 2 --json 2>/dev/null)
        python3 - "$r" "$side" "$io" "$sc" "$flows" "$load" <<PY >> $out
import json,sys,time
d=json.loads('''$j''')
r,side,io,sc,flows,load=sys.argv[1:]
print("\t".join(map(str,[r,side,io,sc,flows,d["mpps"],d["cpu_ns_per_packet"],load,time.strftime("%H:%M:%S",time.gmtime())])))
PY
      done
    done
  done
  done
done
echo finished > /tmp/ab/done2
