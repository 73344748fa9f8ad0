"""Summary of results.json (written by eval.py): per exemplar and method, mean / min
advantage, min content, and the bar checks of issue 11."""
import json, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/proto11")
R = json.loads((Path(__file__).parent / "results.json").read_text())
exs = []
for k in R:
    e = k.split("|")[2]
    if e not in exs:
        exs.append(e)
print(f"{'exemplar':8s} {'method':15s} {'mean adv':>8s} {'min adv':>8s} {'mean cont':>9s} {'min cont':>8s} {'timbre':>7s} {'texture':>7s} {'vs morph':>8s} {'engine s':>8s}  bar")
for e in exs:
    morph = np.mean([r["advantage"] for r in R[f"morph|standard|{e}"]])
    for m in ("event|standard", "event|hifi", "morph|standard", "net|standard"):
        k = f"{m}|{e}"
        if k not in R:
            continue
        a = np.array([r["advantage"] for r in R[k]]); c = np.array([r["content"] for r in R[k]])
        ok = a.mean() >= 0.10 and a.min() >= -0.05 and c.min() >= 0.6 and a.mean() - morph >= 0.05
        fails = [n for n, bad in (("mean<.10", a.mean() < 0.10), ("clip<-.05", a.min() < -0.05),
                                  ("cont<.6", c.min() < 0.6), ("morph+.05", a.mean() - morph < 0.05)) if bad]
        print(f"{e:8s} {m:15s} {a.mean():+8.3f} {a.min():+8.3f} {c.mean():9.3f} {c.min():8.3f} "
              f"{np.mean([r['timbre_gain'] for r in R[k]]):+7.3f} {np.mean([r['texture_gain'] for r in R[k]]):+7.3f} "
              f"{a.mean() - morph:+8.3f} {np.mean([r['engine_s'] for r in R[k]]):8.2f}  {'PASS' if ok else 'fail: ' + ','.join(fails)}")
# by style, event standard
print("\nmean advantage by style (event, Standard):")
styles = sorted({r["style"] for r in R[f"event|standard|{exs[0]}"]})
print(f"{'exemplar':8s} " + " ".join(f"{s:>14s}" for s in styles))
for e in exs:
    rows = R[f"event|standard|{e}"]
    print(f"{e:8s} " + " ".join(f"{np.mean([r['advantage'] for r in rows if r['style'] == s]):+14.3f}" for s in styles))
