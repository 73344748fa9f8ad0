"""The statistics transfer (settings tuned on training music, best_<round>.json) on models.evaluate's
own validation set, judged the same way; the network and morph rows of the same clips
come from that tool's --json output (argv[1]), so the summary compares all three."""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "/work/main")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import TEXTURES, evaluate as ev  # noqa: E402
from musicoder import audio, engine  # noqa: E402
from stats import P, make_transform  # noqa: E402

ROUND = sys.argv[2] if len(sys.argv) > 2 else "round2"  # which tuned settings: best_<ROUND>.json
settings = json.loads((Path(__file__).resolve().parent / f"best_{ROUND}.json").read_text())
tj = ev.judge_module()
clips = ev.validation_clips(Path("/work/musicdata2"))
rows = []
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for c in clips:
        music = audio.load(c.path, start=c.start, duration=ev.CLIP_SECONDS).samples
        x = ev.judge_file(tj, music, tmp / "input.wav")
        for t in ("laser", "water", "future"):
            ex = audio.load(TEXTURES[t].exemplar_path, duration=None).samples
            transform = make_transform(ev.exemplar_log_mag(ex, music), P(**settings[t]))
            s = tj.load(str(TEXTURES[t].exemplar_path))
            mixes = ev.frontier(tj, x, s)
            for q in ("standard", "hifi"):
                out = engine.render(music, q, transform)
                y = ev.judge_file(tj, out.samples, tmp / "output.wav")
                rows.append({"clip": ev.clip_name(c), "package": c.package, "style": c.style, "texture": t,
                             "method": "stats", "quality": q, **ev.score(tj, x, y, s, mixes),
                             "engine_s": round(sum(out.timings.values()), 3)})
                print(rows[-1]["clip"], t, q, f"{rows[-1]['advantage']:+.3f} {rows[-1]['content']:.3f}", flush=True)
theirs = json.loads(Path(sys.argv[1]).read_text())["rows"]
allrows = [r for r in theirs if r["method"] in ("network", "morph")] + rows
summaries = ev.summarise(allrows)
print(ev.report(allrows, summaries, ev.by_style(allrows), ev.describe(clips, Path("/work/musicdata2"))))
Path(Path(__file__).resolve().parent / f"official_eval_{ROUND}.json").write_text(json.dumps({"rows": rows}, indent=1))
