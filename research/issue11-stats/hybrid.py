import sys, json
import numpy as np
sys.path.insert(0, "/work/proto11")
import common as C
from stats import P, make_transform
import run_stats as R
import models
from musicoder import engine
best = json.load(open("/work/main/research/issue11-stats/best_round1.json"))
clips = [c for c in C.CLIPS if not c.startswith("tr_")]
for e in ("laser", "water", "future"):
    net = models.load(e).transform
    adv=[]; cont=[]
    for c in clips:
        y = C.clip(c)
        st = make_transform(R.ex_log(e, y), P(**best[e]))
        out = engine.render(y, "standard", lambda L: st(np.ascontiguousarray(net(L)))).samples
        r = C.judge(c, C.save(out, C.OUT / f"hyb_{c}_{e}.wav"), e)
        adv.append(r["advantage"]); cont.append(r["content"])
    print(f"net+stats {e:7s} mean {np.mean(adv):+.3f} min {min(adv):+.3f} content {np.mean(cont):.3f} (min {min(cont):.3f})", flush=True)
