import sys, json, time, itertools
import numpy as np
sys.path.insert(0, "/work/proto11")
import common as C
from stats import P, make_transform
from musicoder import engine, spectral, audio

def ex_log(name, clip_y):
    s = C.exemplar(name)
    s = s * (np.sqrt(np.mean(clip_y**2)) / max(np.sqrt(np.mean(s**2)), 1e-9))
    return spectral.to_log(spectral.magnitude(s))

def run(params, clips, exs, quality="standard", tag="x"):
    res = {}
    for c in clips:
        y = C.clip(c)
        for e in exs:
            tr = make_transform(ex_log(e, y), params)
            out = engine.render(y, quality, tr).samples
            p = C.save(out, C.OUT / f"st_{tag}_{c}_{e}.wav")
            r = C.judge(c, p, e)
            res[(c, e)] = r
    return res

def summarize(res, exs):
    for e in exs:
        rows = [r for (c, ee), r in res.items() if ee == e]
        adv = [r["advantage"] for r in rows]; cont = [r["content"] for r in rows]
        print(f"  {e:7s} adv {np.mean(adv):+.3f} (min {min(adv):+.3f}) content {np.mean(cont):.3f} (min {min(cont):.3f}) chroma {np.mean([r['chroma'] for r in rows]):.2f} onset {np.mean([r['onset'] for r in rows]):.2f} timbre {np.mean([r['timbre_gain'] for r in rows]):+.2f} texture {np.mean([r['texture_gain'] for r in rows]):+.2f}", flush=True)

if __name__ == "__main__":
    quick = ["naev_ambient1", "stux_theme", "linc_cityblues", "fof_armygeddon"]
    exs = ["laser", "water", "future"] if "--real" not in sys.argv else ["zapper", "beam0", "river", "hum"]
    configs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else [{}]
    clips = quick if "--all" not in sys.argv else list(C.CLIPS)
    for i, cfg in enumerate(configs):
        t = time.time()
        res = run(P(**cfg), clips, exs, tag=str(i))
        print(cfg, f"{time.time()-t:.0f}s", flush=True)
        summarize(res, exs)
