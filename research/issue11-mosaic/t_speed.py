import sys, time
sys.path.insert(0, "/work/proto11")
import numpy as np, common, mosaic
from musicoder import spectral
x = common.clip("stux_theme"); s = common.exemplar("laser")
X = np.abs(spectral.stft(x)); S = np.abs(spectral.stft(s))
t=time.perf_counter(); d = mosaic.build_dictionary(S); print("dict", time.perf_counter()-t, d.comp.shape, d.full.shape)
for _ in range(2):
    t=time.perf_counter(); v = d.bands @ X; vf=mosaic.equalise_to(v,d.mean_band,0.5)
    c = mosaic.candidate_scores(vf, d); t0=time.perf_counter()
    idx,h = mosaic.fit_activations(vf, d); t1=time.perf_counter()
    m = mosaic.render(idx,h,d); t2=time.perf_counter()
    print("scores", t0-t, "fit(incl scores)", t1-t0, "render", t2-t1)
    r = (d.comp_t[idx] * h[...,None]).sum(1).T; print("fit rel err", np.linalg.norm(r-vf)/np.linalg.norm(vf))
tr = mosaic.make_transform(S, mosaic.Params())
for _ in range(2):
    t=time.perf_counter(); tr(spectral.to_log(X)); print("transform", time.perf_counter()-t)
