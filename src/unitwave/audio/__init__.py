"""Audio I/O: load any libsndfile format as mono float32 at a target rate; write 16-bit PCM WAV."""

from unitwave.audio.io import AudioError, AudioInfo, audio_info, duration_of, load_audio, resample, write_wav

__all__ = ["AudioError", "AudioInfo", "audio_info", "duration_of", "load_audio", "resample", "write_wav"]
