"""A small ctypes binding to libespeak-ng: speech at 22050 Hz with phone and word timings.

Timings come from the library's synthesis events, not from the command line: a phoneme event names a
phone and the sample where it starts; a word event gives the word's character span in the text.

Three things about those events shape this module:

- Determinism. libespeak-ng keeps synthesis state in static variables (pitch flutter and wave phase,
  resonators, echo buffer) and draws breath noise from libc ``rand()``, so two calls with the same
  text in one process give different audio, even different lengths. Each synthesis therefore runs in
  a freshly loaded instance of the library, with ``rand()`` seeded, unloaded afterwards (~5 ms). The
  instance is a private copy of the shared object, so another binding in this process (phonemizer,
  say) can neither share nor disturb it.
- Pauses. In IPA mode a pause and a sound that IPA does not write (Portuguese's linking glide after
  /i/, for one) both have an empty name. The text is therefore spoken twice, once with IPA names and
  once with espeak's own mnemonics, where pauses start with ``_``; both runs give the same samples.
- Names. ``id.string`` holds up to 8 bytes and is not cleared between events: the bytes after the
  terminating NUL are stale.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import ctypes.util
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unitwave.errors import UserError

SAMPLE_RATE = 22050  # Hz, espeak-ng's native output rate
PAUSE = "sil"  # label of pause phonemes and of audio before the first phone

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_PHONEME_IPA = 0x0002
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing espeak-ng-data calls exit(1) inside the library
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_EE_OK = 0
_WORD = re.compile(r"\w+(?:['’-]\w+)*")
_LIBRARY_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so")
_INSTALL_HINT = "install it with: apt-get install espeak-ng libespeak-ng1"


class EspeakError(UserError, RuntimeError):
    """libespeak-ng is missing or refused a request."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (40 bytes on x86-64: the union is 8-byte aligned at offset 32)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character (not byte) index into the text
        ("length", ctypes.c_int),  # word length in characters
        ("audio_position", ctypes.c_int),  # ms, truncated
        ("sample", ctypes.c_int),  # the same instant in samples at SAMPLE_RATE
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


# int SynthCallback(short *wav, int numsamples, espeak_EVENT *events)
_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Synthesis:
    """One synthesized text: audio and its timings, all times in seconds from the start of ``audio``.

    ``phones`` are contiguous IPA segments ``(start, end, phone)`` covering the audio: each ends where
    the next starts, the last at the end of the audio. Pauses are ``PAUSE``; zero-length phones are
    dropped and a sound without an IPA symbol is part of the phone before it. ``words`` span the
    phones each word produced, ``(start, end, word)``.
    """

    audio: np.ndarray  # (T,) float32 in [-1, 1]
    sample_rate: int  # Hz
    phones: list[tuple[float, float, str]]
    words: list[tuple[float, float, str]]


@dataclass(frozen=True)
class _RawEvent:
    """The fields of one ``espeak_EVENT`` that are used, copied out of the library's buffer."""

    type: int
    sample: int  # at SAMPLE_RATE
    text_position: int  # 1-based, in characters
    name: str  # phone name (IPA or mnemonic); "" for other events


class _Library:
    """Where the private copy of libespeak-ng lives (made once per process) and the lock around its use."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.libc = ctypes.CDLL(None)
        self._copy: Path | None = None

    def path(self) -> Path:
        if self._copy is None or not self._copy.exists():
            folder = Path(tempfile.mkdtemp(prefix="unitwave-espeak-"))
            atexit.register(shutil.rmtree, folder, True)
            self._copy = folder / "libespeak-ng-private.so"
            shutil.copyfile(_find_library(self.libc), self._copy)
        return self._copy


_LIBRARY = _Library()


def _find_library(libc: ctypes.CDLL) -> Path:
    """The file of the system's libespeak-ng (asked of the dynamic loader)."""

    class DlInfo(ctypes.Structure):
        _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                    ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]

    found = ctypes.util.find_library("espeak-ng")
    for name in ([found] if found else []) + list(_LIBRARY_NAMES):
        try:
            symbol = ctypes.cast(ctypes.CDLL(name).espeak_Initialize, ctypes.c_void_p)
        except (OSError, AttributeError):
            continue
        info = DlInfo()
        if libc.dladdr(symbol, ctypes.byref(info)) and info.dli_fname:
            return Path(info.dli_fname.decode())
    raise EspeakError(f"libespeak-ng not found; {_INSTALL_HINT}")


def synthesize(
    text: str,
    voice: str,
    rate: int | None = None,
    pitch: int | None = None,
    pitch_range: int | None = None,
    volume: int | None = None,
) -> Synthesis:
    """Speak ``text`` with an espeak-ng voice; the same arguments always give the same result.

    Args:
        text: plain text; digits and abbreviations are expanded by espeak's rules.
        voice: a voice name with an optional variant, e.g. ``"pt-br"``, ``"en-us+f2"``, ``"pt-br+m3"``.
        rate: speaking rate in words per minute (espeak: 80-450, default 175).
        pitch: base pitch, 0-99 (default 50).
        pitch_range: pitch range, 0-99 (default 50; 0 is monotone).
        volume: amplitude in percent, 0-200 (default 100, which clips some voices at full scale).

    Raises:
        EspeakError: the library is not installed, the voice is unknown, or synthesis failed.
    """
    params = {_PARAM_RATE: rate, _PARAM_PITCH: pitch, _PARAM_RANGE: pitch_range, _PARAM_VOLUME: volume}
    with _LIBRARY.lock:
        samples, ipa = _speak(text, voice, params, ipa=True)
        check, mnemonics = _speak(text, voice, params, ipa=False)
    if len(check) != len(samples) or [e.sample for e in ipa] != [e.sample for e in mnemonics]:
        raise EspeakError(f"espeak-ng gave two different renderings of {text!r} with voice {voice!r}")
    phones, words = _timeline(ipa, [e.name for e in mnemonics], len(samples), text)
    audio = samples.astype(np.float32) / 32768.0
    return Synthesis(audio, SAMPLE_RATE, _to_seconds(phones), _to_seconds(words))


def _speak(
    text: str, voice: str, params: dict[int, int | None], ipa: bool
) -> tuple[np.ndarray, list[_RawEvent]]:
    """Load a fresh instance of the library, synthesize, unload; int16 samples and the events."""
    lib = _declare(ctypes.CDLL(str(_LIBRARY.path())))
    try:
        options = _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT | (_INITIALIZE_PHONEME_IPA if ipa else 0)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
        if rate != SAMPLE_RATE:
            raise EspeakError(f"espeak_Initialize failed ({rate}); is espeak-ng-data missing? {_INSTALL_HINT}")
        try:
            return _synth(lib, text, voice, params)
        finally:
            lib.espeak_Terminate()
    finally:
        _ctypes.dlclose(lib._handle)


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """C signatures of the functions used (speak_lib.h)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [_Callback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def _synth(
    lib: ctypes.CDLL, text: str, voice: str, params: dict[int, int | None]
) -> tuple[np.ndarray, list[_RawEvent]]:
    """Synthesize with an initialised library; int16 samples and the events."""
    chunks: list[np.ndarray] = []
    events: list[_RawEvent] = []

    def collect(wav: ctypes._Pointer[ctypes.c_short], count: int, event_list: ctypes._Pointer[_Event]) -> int:
        if wav and count > 0:
            chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while event_list[i].type != _EVENT_LIST_TERMINATED:
            e = event_list[i]
            name = e.id.string.decode("utf-8", "replace") if e.type == _EVENT_PHONEME else ""  # stops at NUL
            events.append(_RawEvent(e.type, e.sample, e.text_position, name))
            i += 1
        return 0

    callback = _Callback(collect)  # referenced until synthesis is over
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
        raise EspeakError(f"unknown espeak-ng voice {voice!r} (`espeak-ng --voices`, `--voices=variant`)")
    for param, value in params.items():
        if value is not None:
            lib.espeak_SetParameter(param, int(value), 0)
    _LIBRARY.libc.srand(0)
    data = text.encode("utf-8")
    status = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if status != _EE_OK or lib.espeak_Synchronize() != _EE_OK:
        raise EspeakError(f"espeak_Synth failed (status {status}) for {text!r}")
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)), events


def _timeline(
    events: list[_RawEvent], mnemonics: list[str], total: int, text: str
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """Phone and word segments ``(start, end, label)`` in samples of ``[0, total)``.

    ``events`` carry IPA names; ``mnemonics`` are espeak's names for the same events (pauses start
    with ``_``). A phone lasts until the next phone event, the last one until ``total``. Audio before
    the first phone and pauses are ``PAUSE`` (adjacent pauses merged); a sound without an IPA name
    extends the phone before it; zero-length phones are dropped. A word spans the phones that follow
    its word event; a word left without phones is dropped.
    """
    words = _word_texts([e.text_position for e in events if e.type == _EVENT_WORD], text)
    word = -1
    marks: list[tuple[int, str, int]] = [(0, PAUSE, -1)]  # (start sample, phone, index of its word)
    for e, mnemonic in zip(events, mnemonics):
        if e.type == _EVENT_WORD:
            word += 1
        elif e.type == _EVENT_PHONEME and mnemonic.startswith("_"):
            marks.append((min(e.sample, total), PAUSE, -1))
        elif e.type == _EVENT_PHONEME and e.name:
            marks.append((min(e.sample, total), e.name, word))
    phones: list[tuple[int, int, str]] = []
    word_spans: dict[int, tuple[int, int]] = {}
    for (start, phone, word), (end, _, _) in zip(marks, marks[1:] + [(total, PAUSE, -1)]):
        if end <= start:
            continue
        if phone == PAUSE and phones and phones[-1][2] == PAUSE:
            phones[-1] = (phones[-1][0], end, PAUSE)
            continue
        phones.append((start, end, phone))
        if word >= 0:
            word_spans[word] = (word_spans.get(word, (start, end))[0], end)
    return phones, [(start, end, words[w]) for w, (start, end) in sorted(word_spans.items())]


def _word_texts(positions: list[int], text: str) -> list[str]:
    """The text of each word event: from its 1-based character position to the next event's.

    espeak joins some unstressed words to their neighbour without an event of their own ("on the" is
    one word of phones), so a word's text runs up to the next event, without punctuation.
    """
    bounds = [p - 1 for p in positions] + [len(text)]
    return [" ".join(_WORD.findall(text[start:end])) for start, end in zip(bounds, bounds[1:])]


def _to_seconds(segments: list[tuple[int, int, str]]) -> list[tuple[float, float, str]]:
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE, label) for start, end, label in segments]
