"""Quick parameter exploration on a subset: python exp.py NAME 'kwargs-json' [clips] [exemplars]"""
import sys, json, time
sys.path.insert(0, "/work/proto11")
import numpy as np, common, methods
from musicoder import engine
name = sys.argv[1]; kw = json.loads(sys.argv[2])
clips = sys.argv[3].split(",") if len(sys.argv) > 3 else ["naev_ambient1", "stux_chipdisko", "linc_cityblues", "fof_armygeddon"]
exs = sys.argv[4].split(",") if len(sys.argv) > 4 else ["laser", "water", "future"]
q = kw.pop("quality", "standard")
for e in exs:
    s = common.exemplar(e)
    tr = methods.morph_reference(s, **kw) if name.startswith("morph") else methods.network(common.EXEMPLARS[e][1]) if name.startswith("net") else methods.event_method(s, **kw) if name.startswith("ev") else methods.mosaic_method(s, **kw)
    rows = []
    for c in clips:
        x = common.clip(c)
        t = time.perf_counter(); r = engine.render(x, q, tr); el = time.perf_counter() - t
        p = common.save(r.samples, common.OUT / f"{name}_{c}_{e}.wav")
        j = common.judge(c, p, e); j["time"] = el; j["tr"] = r.timings["transferring"]
        rows.append(j)
    a = np.array([[r["advantage"], r["content"], r["timbre_gain"], r["texture_gain"], r["time"], r["tr"]] for r in rows])
    print(f"{name:14s} {e:7s} adv {a[:,0].mean():+.3f} (min {a[:,0].min():+.3f}) content {a[:,1].mean():.3f} (min {a[:,1].min():.3f}) timb {a[:,2].mean():+.3f} tex {a[:,3].mean():+.3f} t {a[:,4].mean():.2f}s tr {a[:,5].mean():.2f}s | " + " ".join(f"{v:+.2f}" for v in a[:,0]), flush=True)
