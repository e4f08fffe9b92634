#!/usr/bin/env python3
"""asrkit's CTC beam search against flashlight-text and parlance/ctcdecode: ratios and 1-best agreement.

    decode_table.py BUILD_DIR [--markdown OUT.md] [--anchor-python PY] [--reps 3]

1. Makes the workloads (bench/decode_workloads.py, Debian python3 + numpy + irstlm) in
   BUILD_DIR/decode-work unless they are there.
2. Runs BUILD_DIR/bench/bench_decode (Google Benchmark, median of --reps) on them, one thread,
   and keeps its 1-best transcripts (--best).
3. Runs bench/decode_compare.py with the anchors' Python (--anchor-python, default
   $ASRKIT_ANCHOR_PYTHON or /work/anchors/venv/bin/python; see decode_compare.py for how that
   environment is built outside the repository) on the same files, same settings.
4. Writes a Markdown table: ms per utterance of each, asrkit's speed-up over the fastest anchor,
   CER, and on how many utterances asrkit's 1-best equals each anchor's.
Without the anchors' Python the table has asrkit's figures only, and says so.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_asrkit(build, work, reps, best_dir):
    out = subprocess.run([os.path.join(build, "bench", "bench_decode"), f"--workdir={work}", f"--best={best_dir}",
                          f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
                          "--benchmark_format=json"], capture_output=True, text=True, check=True).stdout
    rows = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].split("/process_time")[0]  # decode/<profile>/beam<N>/<config>
        _, profile, beam, config = name.split("/")
        rows[(profile, int(beam[4:]), config)] = {"ms": b["ms_per_utt"], "cer": b["cer"],
                                                  "best": read_lines(os.path.join(best_dir, name.replace("/", "_") + ".txt"))}
    return rows


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def error_rate(hyps, refs, tokens):
    """Unit-cost edit distance over characters (words joined by single spaces) or token ids."""
    split = (lambda s: s.split()) if tokens else (lambda s: list(" ".join(s.split())))
    errors = sum(levenshtein(split(r), split(h)) for h, r in zip(hyps, refs))
    return errors / max(1, sum(len(split(r)) for r in refs))


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def run_anchors(python, work, reps):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    subprocess.run([python, os.path.join(ROOT, "bench", "decode_compare.py"), work, "--reps", str(reps),
                    "--profiles", "peaky", "hard", "--configs", "nolm", "lm", "--json", path], check=True,
                   stdout=subprocess.DEVNULL)
    with open(path) as f:
        results = json.load(f)["results"]
    os.unlink(path)
    out = {}
    for r in results:
        config = "lm_lex" if r["config"] == "lm" else r["config"]
        out[(r["profile"], r["beam"], config, r["anchor"])] = r
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--markdown")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--anchor-python", default=os.environ.get("ASRKIT_ANCHOR_PYTHON", "/work/anchors/venv/bin/python"))
    args = ap.parse_args()
    work = os.path.join(args.build, "decode-work")
    if not os.path.exists(os.path.join(work, "mandarin.safetensors")):
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "decode_workloads.py"), work], check=True)
    best_dir = os.path.join(args.build, "decode-best")
    os.makedirs(best_dir, exist_ok=True)
    ours = run_asrkit(args.build, work, args.reps, best_dir)
    refs = {"letters": read_lines(os.path.join(work, "refs.txt")),
            "mandarin": read_lines(os.path.join(work, "refs_mandarin.txt"))}
    for (profile, _, _), r in ours.items():  # one error-rate definition for every decoder
        r["cer"] = error_rate(r["best"], refs["mandarin" if profile == "mandarin" else "letters"], profile == "mandarin")
    anchors = run_anchors(args.anchor_python, work, args.reps) if os.path.exists(args.anchor_python) else {}

    lines = []
    if not anchors:
        lines.append(f"(anchors not run: {args.anchor_python} not found; see bench/decode_compare.py)\n")
    lines.append("| profile | beam | config | asrkit ms | flashlight ms | ctcdecode ms | speed-up vs fastest | "
                 "asrkit CER % | anchors CER % | same 1-best (fl / cd) |")
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for (profile, beam, config), r in sorted(ours.items(), key=lambda kv: (kv[0][0] != "peaky", kv[0][0], kv[0][1], kv[0][2])):
        if profile == "mandarin":
            continue
        fl = anchors.get((profile, beam, config, "flashlight-text"))
        cd = anchors.get((profile, beam, config, "ctcdecode"))
        times = [a["ms_per_utt"] for a in (fl, cd) if a]
        ratio = f"{min(times) / r['ms']:.1f}x" if times else "-"
        same = " / ".join(str(sum(x == y for x, y in zip(r["best"], a["hyps"]))) + f"/{len(a['hyps'])}" if a else "-"
                          for a in (fl, cd))
        anchor_cer = " / ".join(f"{100 * error_rate(a['hyps'], refs['letters'], False):.2f}" if a else "-"
                                for a in (fl, cd))
        lines.append(f"| {profile} | {beam} | {config} | {r['ms']:.2f} | {fl['ms_per_utt'] if fl else float('nan'):.1f} | "
                     f"{cd['ms_per_utt'] if cd else float('nan'):.1f} | {ratio} | {100 * r['cer']:.2f} | {anchor_cer} | {same} |")
    lines.append("")
    lines.append("Mandarin-like profile (V = 5000, no LM): all labels every frame vs DS2 pruning "
                 "(cumulative 0.99, at most 40 labels).\n")
    lines.append("| beam | all labels ms | DS2 pruning ms | speed-up | token error % all / DS2 | relative change |")
    lines.append("|---:|---:|---:|---:|---|---:|")
    for beam in sorted({b for (p, b, c) in ours if p == "mandarin"}):
        full, ds2 = ours[("mandarin", beam, "full")], ours[("mandarin", beam, "ds2")]
        change = (ds2["cer"] - full["cer"]) / full["cer"] if full["cer"] else 0.0
        lines.append(f"| {beam} | {full['ms']:.2f} | {ds2['ms']:.2f} | {full['ms'] / ds2['ms']:.1f}x | "
                     f"{100 * full['cer']:.2f} / {100 * ds2['cer']:.2f} | {100 * change:+.2f}% |")
    text = "\n".join(lines) + "\n\n"
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write(text)


if __name__ == "__main__":
    sys.exit(main())
