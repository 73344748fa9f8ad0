"""Engine time per 10 s clip (engine.render, HIFI and Standard): event mosaic vs no
transform vs the current network. Reports min and median over repeats (shared cores)."""
import sys, time
sys.path.insert(0, "/work/proto11")
import numpy as np, common, methods
from musicoder import engine, spectral
x = common.clip("stux_theme")
s = common.exemplar("water")
t = time.perf_counter(); ev = methods.event_method(s); t_an = time.perf_counter() - t
print(f"exemplar analysis (STFT of {len(s)/44100:.1f} s + onsets + features): {t_an*1000:.0f} ms")
t = time.perf_counter(); ev = methods.event_method(s); t_an = time.perf_counter() - t
print(f"  again (warm): {t_an*1000:.0f} ms")
cands = {"none": None, "event": ev, "net(water)": methods.network("water")}
for q in ("hifi", "standard"):
    for name, tr in cands.items():
        engine.render(x, q, tr)  # warm
        tot, xf = [], []
        for _ in range(5):
            t = time.perf_counter(); r = engine.render(x, q, tr); tot.append(time.perf_counter() - t); xf.append(r.timings["transferring"])
        print(f"{q:8s} {name:11s} engine min {min(tot):.3f} s median {np.median(tot):.3f} s | transfer min {min(xf)*1000:.0f} ms median {np.median(xf)*1000:.0f} ms")
