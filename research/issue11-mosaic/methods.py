"""Transforms compared in the evaluation (each: exemplar samples -> LogMagTransform)."""
import sys
sys.path.insert(0, "/work/main"); sys.path.insert(0, "/work/proto11")
import numpy as np
from musicoder import spectral
import mosaic


def morph_reference(ex_samples, b=0.3):
    """exp((1-b) log X + b log S): S the exemplar's magnitude tiled to length, scaled
    to the music's RMS magnitude."""
    S = np.abs(spectral.stft(ex_samples))

    def transform(log_mag):
        T = log_mag.shape[1]
        St = np.tile(S, (1, T // S.shape[1] + 1))[:, :T]
        X = np.exp(log_mag)
        St = St * (np.sqrt(np.mean(X ** 2)) / (np.sqrt(np.mean(St ** 2)) + 1e-12))
        return ((1 - b) * log_mag + b * spectral.to_log(St)).astype(np.float32)
    return transform


def mosaic_method(ex_samples, **kw):
    return mosaic.make_transform(np.abs(spectral.stft(ex_samples)), mosaic.Params(**kw))


def network(texture):
    import models
    return models.load(texture).transform


def event_method(ex_samples, **kw):
    return mosaic.make_event_transform(np.abs(spectral.stft(ex_samples)), mosaic.EventParams(**kw))
