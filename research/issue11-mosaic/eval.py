"""Issue-11 evaluation: one row per clip and the means, per exemplar, for
  event  — mosaic.make_event_transform (defaults), Standard and HIFI
  morph  — exp(0.7 log X + 0.3 log S_tiled), Standard
  net    — the current network of the exemplar's texture (shipped exemplars only), Standard
through musicoder.engine.render; judged with texture_judge (--frontier numbers).
Usage: nice -n 19 python eval.py [exemplar,...]   (results also in results.json)
"""
import json, sys, time
sys.path.insert(0, "/work/proto11")
import numpy as np, common, methods
from musicoder import engine

exs = sys.argv[1].split(",") if len(sys.argv) > 1 else list(common.EXEMPLARS)
SHIPPED = {"laser", "water", "future"}
res_path = common.HERE / "results.json"
results = json.loads(res_path.read_text()) if res_path.exists() else {}


def run(method, quality, ex_name, tr):
    rows = []
    for c in common.CLIPS:
        x = common.clip(c)
        t = time.perf_counter(); r = engine.render(x, quality, tr); el = time.perf_counter() - t
        p = common.save(r.samples, common.OUT / f"eval_{method}_{quality}_{c}_{ex_name}.wav")
        j = common.judge(c, p, ex_name)
        rows.append({"clip": c, "style": common.CLIPS[c][1], **{k: round(float(v), 4) for k, v in j.items()},
                     "engine_s": round(el, 3), "transfer_s": round(r.timings["transferring"], 3)})
    return rows


def show(method, quality, ex_name, rows):
    print(f"\n== {method} / {quality} / exemplar {ex_name} (texture {common.EXEMPLARS[ex_name][1]})")
    print(f"{'clip':18s} {'style':14s} {'adv':>7s} {'content':>7s} {'chroma':>6s} {'onset':>6s} {'timbre':>7s} {'texture':>7s} {'engine_s':>8s} {'xfer_s':>6s}")
    for r in rows:
        print(f"{r['clip']:18s} {r['style']:14s} {r['advantage']:+7.3f} {r['content']:7.3f} {r['chroma']:6.3f} {r['onset']:6.3f} "
              f"{r['timbre_gain']:+7.3f} {r['texture_gain']:+7.3f} {r['engine_s']:8.2f} {r['transfer_s']:6.2f}")
    a = lambda k: np.array([r[k] for r in rows])
    print(f"{'MEAN':18s} {'':14s} {a('advantage').mean():+7.3f} {a('content').mean():7.3f} {a('chroma').mean():6.3f} {a('onset').mean():6.3f} "
          f"{a('timbre_gain').mean():+7.3f} {a('texture_gain').mean():+7.3f} {a('engine_s').mean():8.2f} {a('transfer_s').mean():6.2f}")
    print(f"{'min adv / min content':33s} {a('advantage').min():+7.3f} {a('content').min():7.3f}", flush=True)


for e in exs:
    s = common.exemplar(e)
    t = time.perf_counter(); ev = methods.event_method(s); build = time.perf_counter() - t
    print(f"\n###### exemplar {e}: event-mosaic analysis {build*1000:.0f} ms, {len(ev.exemplar.starts)} events", flush=True)
    todo = [("event", "standard", ev), ("morph", "standard", methods.morph_reference(s))]
    if e in SHIPPED:
        todo.append(("net", "standard", methods.network(common.EXEMPLARS[e][1])))
    todo.append(("event", "hifi", ev))
    for method, q, tr in todo:
        rows = run(method, q, e, tr)
        results[f"{method}|{q}|{e}"] = rows
        res_path.write_text(json.dumps(results, indent=1))
        show(method, q, e, rows)
