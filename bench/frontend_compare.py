#!/usr/bin/env python3
"""asrkit's feature extraction vs PyTorch on the same 10 s of 16 kHz audio, one thread each.

    frontend_compare.py BUILD_DIR [--reps 30] [--per-call-median] [--markdown OUT.md]

Anchors (CPU, torch.set_num_threads(1), the CPU's widest ATEN_CPU_CAPABILITY):
  DS2 spectrogram: torch.stft(320, 160, hamming).abs().log1p()
  log-mel 80:      torch.stft(400, 160, hann) power, @ melscale_fbanks, clamp, log
  Kaldi fbank 80:  torchaudio.compliance.kaldi.fbank(num_mel_bins=80, dither=0)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import anchor  # noqa: E402

anchor.use_best_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    anchor.add_statistic_arguments(ap, reps=30)
    ap.add_argument("--markdown")
    args = ap.parse_args()
    torch.set_num_threads(1)
    bench = os.path.join(args.build_dir, "bench", "bench_frontend")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "audio.f32")
        subprocess.run([bench, f"--dump={path}"], check=True)
        x = torch.from_numpy(np.fromfile(path, dtype=np.float32))
    seconds = x.numel() / 16000
    ham, hann = torch.hamming_window(320), torch.hann_window(400)
    fb = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 80, 16000)
    anchors = {
        "bm_ds2_spectrogram": lambda: torch.stft(x, 320, 160, window=ham, return_complex=True).abs().log1p(),
        "bm_log_mel_80": lambda: (torch.stft(x, 400, 160, window=hann, return_complex=True).abs().pow(2).T
                                  @ fb).clamp(min=1e-10).log(),
        "bm_kaldi_fbank_80": lambda: torchaudio.compliance.kaldi.fbank(x.unsqueeze(0), num_mel_bins=80,
                                                                       dither=0.0),
    }
    out = subprocess.run([bench, "--benchmark_format=json", "--benchmark_repetitions=5",
                          "--benchmark_report_aggregates_only=true"], check=True, capture_output=True,
                         text=True).stdout
    ours = {b["run_name"].split("/")[0]: b["real_time"] for b in json.loads(out)["benchmarks"]
            if b.get("aggregate_name") == "median"}
    rows = []
    header = "| features (10 s, 1 thread) | asrkit ms | x real time | PyTorch ms | speed-up |"
    print(header + "\n|---|---|---|---|---|")
    for name, fn in anchors.items():
        theirs = anchor.anchor_ms(fn, args)
        row = (f"| {name[3:]} | {ours[name]:.2f} | {seconds * 1000 / ours[name]:.0f}x | {theirs:.2f} | "
               f"{theirs / ours[name]:.1f}x |")
        print(row, flush=True)
        rows.append(row)
    anchor.append_markdown(args.markdown, [header, "|---|---|---|---|---|"] + rows)


if __name__ == "__main__":
    main()
