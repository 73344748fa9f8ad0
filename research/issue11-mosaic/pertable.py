"""Per-clip advantage tables (Standard) from results.json: ev = event mosaic, mo = morph, nn = network."""
import json
from pathlib import Path
R = json.loads((Path(__file__).parent / "results.json").read_text())
def table(exs, methods):
    cols = [(e, m) for e in exs for m in methods if f"{m}|standard|{e}" in R]
    ab = {"event": "ev", "morph": "mo", "net": "nn"}
    print("| clip | " + " | ".join(f"{e} {ab[m]}" for e, m in cols) + " |")
    print("|---|" + "---|" * len(cols))
    clips = [r["clip"] for r in R[f"event|standard|{exs[0]}"]]
    for i, c in enumerate(clips):
        print(f"| {c} | " + " | ".join(f"{R[f'{m}|standard|{e}'][i]['advantage']:+.3f} ({R[f'{m}|standard|{e}'][i]['content']:.2f})" for e, m in cols) + " |")
    print("| **mean** | " + " | ".join(f"**{sum(r['advantage'] for r in R[f'{m}|standard|{e}'])/12:+.3f}** ({sum(r['content'] for r in R[f'{m}|standard|{e}'])/12:.2f})" for e, m in cols) + " |")
print("advantage (content) per clip, Standard\n")
table(["laser", "water", "future"], ["event", "morph", "net"])
print()
table(["zapper", "beam0", "river", "hum"], ["event", "morph"])
