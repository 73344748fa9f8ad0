"""One run on the research set's 12 held-out clips with the parameters tuned on training
music: python final_eval.py [round1|round2] (round 1 also runs the four real recordings)."""
import sys, json
import numpy as np
sys.path.insert(0, "/work/proto11")
import common as C
from stats import P
import run_stats as R

ROUND = sys.argv[1] if len(sys.argv) > 1 else "round1"
HERE = "/work/main/research/issue11-stats"
best = json.load(open(f"{HERE}/best_{ROUND}.json"))
GENERIC = dict(keep_low=1.0, level_low=0.0, spread_low=0.0, fine_high=1.0, keep_high=0.6, spread=0.8, crossover_hz=3500)
clips = [c for c in C.CLIPS if not c.startswith("tr_")]
rows = {}
jobs = [(e, best[e], q) for q in ("standard", "hifi") for e in ("laser", "water", "future")]
if ROUND == "round1":
    jobs += [(e, GENERIC, "standard") for e in ("zapper", "beam0", "river", "hum")]
for e, cfg, q in jobs:
    res = R.run(P(**cfg), clips, [e], quality=q, tag=f"final_{ROUND}_{q}")
    adv = [r["advantage"] for r in res.values()]; cont = [r["content"] for r in res.values()]
    print(f"{e:7s} {q:8s} mean {np.mean(adv):+.3f} min {min(adv):+.3f} content {np.mean(cont):.3f} (min {min(cont):.3f})", flush=True)
    rows[f"{e}|{q}"] = {c: {k: round(v, 4) for k, v in r.items()} for (c, _), r in res.items()}
json.dump(rows, open(f"{HERE}/final_eval_{ROUND}.json", "w"), indent=1)
