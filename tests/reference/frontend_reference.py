#!/usr/bin/env python3
"""References for asrkit's front end: torch.stft, torchaudio.functional.melscale_fbanks,
torchaudio.transforms.MelSpectrogram and torchaudio.compliance.kaldi (fbank, spectrogram, mfcc).

Usage: frontend_reference.py OUT_DIR   writes OUT_DIR/frontend_ref.safetensors
Every tensor is [frames, bins] float32 (filterbanks [n_freqs, n_mels]); the C++ test
(frontend_parity.cpp) repeats the same options case by case.
"""
import os
import sys

import torch
import torchaudio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def audio(seconds=1.37, rate=16000):
    """Tones + a chirp + noise at int16-like scale (what Kaldi features usually see)."""
    g = torch.Generator().manual_seed(20261122)
    t = torch.arange(int(seconds * rate), dtype=torch.float64) / rate
    x = 3000 * torch.sin(2 * torch.pi * 440 * t) + 1500 * torch.sin(2 * torch.pi * (300 + 2000 * t) * t)
    x += 800 * torch.randn(t.shape, generator=g, dtype=torch.float64)
    return x.to(torch.float32)


def main(out_dir):
    x = audio()
    ref = {"audio": x.numpy()}

    def stft(n_fft, hop, win, window, center=True, pad_mode="reflect"):
        w = window(win)
        return torch.stft(x, n_fft, hop, win, window=w, center=center, pad_mode=pad_mode,
                          return_complex=True).abs().T.contiguous()

    ref["stft_hann_400_160"] = stft(400, 160, 400, torch.hann_window)
    ref["stft_hamming_512_128_300_constant"] = stft(512, 128, 300, torch.hamming_window, True, "constant")
    ref["stft_hann_256_100_nocenter"] = stft(256, 100, 256, torch.hann_window, False)
    ref["ds2"] = stft(320, 160, 320, torch.hamming_window).log1p()

    # Filterbanks in float64 (torchaudio builds them in the default dtype): asrkit computes them
    # in double too, so the comparison can be tight.
    torch.set_default_dtype(torch.float64)
    fb = torchaudio.functional.melscale_fbanks
    ref["mel_htk_201_80"] = fb(201, 0.0, 8000.0, 80, 16000, None, "htk")
    ref["mel_slaney_257_40"] = fb(257, 20.0, 7600.0, 40, 16000, "slaney", "slaney")
    torch.set_default_dtype(torch.float32)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=400, hop_length=160,
                                               n_mels=80, power=2.0)(x)
    ref["logmel_80"] = mel.clamp(min=1e-10).log().T.contiguous()

    k = torchaudio.compliance.kaldi
    w = x.unsqueeze(0)
    ref["kaldi_fbank_80"] = k.fbank(w, num_mel_bins=80, dither=0.0)
    ref["kaldi_fbank_40_variant"] = k.fbank(w, num_mel_bins=40, dither=0.0, snip_edges=False,
                                            use_energy=True, window_type="hamming",
                                            preemphasis_coefficient=0.0, low_freq=40.0,
                                            high_freq=-400.0, round_to_power_of_two=False)
    ref["kaldi_spectrogram"] = k.spectrogram(w, dither=0.0)
    ref["kaldi_mfcc"] = k.mfcc(w, dither=0.0)
    ref["kaldi_mfcc_energy_htk"] = k.mfcc(w, dither=0.0, use_energy=True, htk_compat=True,
                                          num_mel_bins=30, num_ceps=20)
    st_io.save(os.path.join(out_dir, "frontend_ref.safetensors"),
               {name: t.numpy() if hasattr(t, "numpy") else t for name, t in ref.items()},
               {"torch": torch.__version__, "torchaudio": torchaudio.__version__})
    print(f"wrote {len(ref)} front-end references to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
