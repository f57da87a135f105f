"""The voice library: voices found by description (text) or by example (a clip).

A voice's id is what the synthesizer speaks (model/voices.py); it has a written
description (embedded with MiniLM for text search), an engine, a rendered sample and a
resemblyzer speaker embedding (a few dozen voices are compared in numpy, no second index
is needed). Built-in voices are Chroma records in one shared collection, rendered once
per data dir from the catalogue. Each tenant's own voices are registrations in the memory
backend (retrieval/registrations.py: Redis in production, SQLite embedded), so a voice
added on one replica is listed, found and spoken on every other. A sample is spoken from
the voice's id alone, so each replica keeps its own samples as a cache under
`samples_dir` and renders one it lacks when it is asked for.

A voice a user adds from a clip is not cloned: the cascade's engines cannot clone. It is
the built-in timbre nearest to the clip's speaker embedding, with the pitch and speaking
rate measured in the clip, which is what "sounds like this" can mean offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.audio import decode_audio, encode_wav
from model.errors import InputError
from model.speaker import SpeakerEncoder, estimate_pitch, estimate_rate
from model.voices import VoiceStyle, VoiceSynthesizer, parse_voice_id
from retrieval.embedder import Embedder
from retrieval.errors import InvalidNameError, RetrievalError
from retrieval.knowledge import tenant_key
from retrieval.registrations import SyncRegistrations
from retrieval.voice_catalogue import BUILTIN_VOICES, SAMPLE_TEXT, BuiltinVoice

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = ["VOICE_KIND", "Voice", "VoiceHit", "VoiceLibrary", "VoiceSampleError"]

VOICE_KIND = "voice"
"""The registrations' kind of a tenant's voices: one JSON record per voice id."""
BUILTIN = "builtin"
BUILTIN_COLLECTION = f"voices__{BUILTIN}"
_RESERVED_TENANT = "the tenant name {name!r} is reserved for the built-in voices"
_MIN_SAMPLE_S = 1.0
_SHORT_SAMPLE = "the voice sample is {seconds:.1f} s long: send at least {least:.0f} s of speech"
_NO_PITCH = "no voiced speech was found in the voice sample"
# Words people choose voices by: a description naming one gets a small bonus over MiniLM's
# cosine, so "deep slow Scottish" prefers the voice that is all three over one that is one.
_KEY_WORDS = frozenset(
    "scottish british english american caribbean northern lancashire deep low high slow fast quick "
    "whisper whispering soft female woman male man robotic natural calm".split()
)
_KEYWORD_BONUS = 0.06
_FACTOR_LIMITS = (0.6, 1.6)


class VoiceSampleError(RetrievalError, InputError):
    """A clip given to add a voice or search by example holds too little speech."""


@dataclass(frozen=True)
class Voice:
    id: str
    """What the synthesizer speaks and the session state holds, e.g. `espeak:en-gb-scotland+m3:deep-slow`."""
    name: str
    description: str
    engine: str
    parameters: dict[str, Any]
    """The engine's base voice and the pitch and rate factors."""
    sample_path: str
    builtin: bool
    pitch_hz: float
    """The sample's median pitch, so added voices can be matched to it."""
    rate: float
    """The sample's syllable-like peaks per second (comparable between samples, not exact)."""


@dataclass(frozen=True)
class VoiceHit:
    voice: Voice
    score: float
    """Cosine similarity (plus the key-word bonus for text search); higher is nearer."""


def _slug(voice_id: str) -> str:
    return hashlib.sha1(voice_id.encode("utf-8")).hexdigest()[:16]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower())) & _KEY_WORDS


class VoiceLibrary:
    """Built-in voices in Chroma, tenants' voices in `registrations`, samples as WAV files under `samples_dir`."""

    def __init__(
        self,
        client: ClientAPI,
        embedder: Embedder,
        speaker: SpeakerEncoder,
        tts: VoiceSynthesizer,
        samples_dir: Path,
        *,
        registrations: SyncRegistrations,
        catalogue: tuple[BuiltinVoice, ...] = BUILTIN_VOICES,
    ) -> None:
        self._client = client
        self._embedder = embedder
        self._speaker = speaker
        self._tts = tts
        self._registrations = registrations
        self.samples_dir = samples_dir
        self.catalogue = catalogue
        self._imported: set[str] = set()
        """Tenants whose voices older versions kept in Chroma have been moved (this process)."""

    # Collections and records

    def _collection(self, name: str) -> Collection:
        return self._client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)

    @staticmethod
    def _tenant_folder(tenant: str) -> str:
        """The tenant's part of its collection's and samples folder's names; never the built-ins'."""
        key = tenant_key(tenant)
        if key == BUILTIN:
            raise InvalidNameError(_RESERVED_TENANT.format(name=tenant))
        return key

    def _tenant_records(self, tenant: str) -> list[tuple[Voice, np.ndarray, np.ndarray]]:
        """The tenant's voices by name, each with its speaker embedding and its description's."""
        folder = self._tenant_folder(tenant)
        if tenant not in self._imported:
            self._import_chroma(tenant, folder)
        out = []
        for voice_id, value in self._registrations.list(tenant, VOICE_KIND).items():
            kept = json.loads(value)
            meta = {**kept, "parameters": json.dumps(kept["parameters"]), "builtin": False}
            meta["sample_path"] = str(self._sample_path(voice_id, folder))
            speaker = np.asarray(kept["speaker"], dtype=np.float32)
            out.append((self._voice(voice_id, kept["description"], meta), speaker, _unit(kept["embedding"])))
        out.sort(key=lambda record: record[0].name)
        return out

    def _keep(self, tenant: str, voice: Voice, speaker: list[float], embedding: list[float]) -> None:
        record = {
            "name": voice.name,
            "description": voice.description,
            "engine": voice.engine,
            "parameters": voice.parameters,
            "pitch_hz": voice.pitch_hz,
            "rate": voice.rate,
            "speaker": speaker,
            "embedding": [round(float(x), 6) for x in embedding],
        }
        self._registrations.put(tenant, VOICE_KIND, voice.id, json.dumps(record).encode())

    def _import_chroma(self, tenant: str, folder: str) -> None:
        """Move the tenant's voices older versions kept in Chroma (`voices__<tenant>`) into the
        registrations, then drop that collection; a voice already registered is kept as it is."""
        name = f"voices__{folder}"
        if name in {getattr(c, "name", c) for c in self._client.list_collections()}:
            collection = self._collection(name)
            got = collection.get(include=["documents", "metadatas", "embeddings"])
            embeddings = [] if got["embeddings"] is None else list(got["embeddings"])
            rows = zip(got["ids"], got["documents"] or [], got["metadatas"] or [], embeddings, strict=True)
            have = self._registrations.list(tenant, VOICE_KIND)
            for voice_id, document, meta, embedding in rows:
                if voice_id not in have:
                    speaker = json.loads(str(meta["speaker"]))
                    voice = self._voice(voice_id, document or "", meta)
                    self._keep(tenant, voice, speaker, [float(x) for x in embedding])
            with contextlib.suppress(Exception):  # another replica moved and dropped it first
                self._client.delete_collection(name)
        self._imported.add(tenant)

    def _sample_path(self, voice_id: str, folder: str) -> Path:
        return self.samples_dir / folder / f"{_slug(voice_id)}.wav"

    @staticmethod
    def _voice(voice_id: str, document: str, meta: Any) -> Voice:
        return Voice(
            id=voice_id,
            name=str(meta["name"]),
            description=document,
            engine=str(meta["engine"]),
            parameters=json.loads(str(meta["parameters"])),
            sample_path=str(meta["sample_path"]),
            builtin=bool(meta["builtin"]),
            pitch_hz=float(meta["pitch_hz"]),
            rate=float(meta["rate"]),
        )

    def _records(self, collection: Collection) -> list[tuple[Voice, np.ndarray]]:
        got = collection.get(include=["documents", "metadatas"])
        out = []
        for voice_id, document, meta in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True):
            speaker = np.asarray(json.loads(str(meta["speaker"])), dtype=np.float32)
            out.append((self._voice(voice_id, document or "", meta), speaker))
        return out

    def _render(self, voice_id: str, style: VoiceStyle, name: str, folder: str) -> tuple[dict[str, Any], np.ndarray]:
        """Speak the sample text in `style`, save it, and measure it: the record's metadata and sample."""
        audio = np.concatenate([np.zeros(0, np.float32), *self._tts.synthesize(SAMPLE_TEXT, style.id)])
        rate = self._tts.sample_rate
        path = self._sample_path(voice_id, folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_wav(audio, rate))
        speaker = self._speaker.embed(audio, rate)
        parameters = {"voice": style.voice, "pitch": round(style.pitch, 3), "rate": round(style.rate, 3)}
        meta = {
            "name": name,
            "engine": style.engine,
            "parameters": json.dumps(parameters),
            "sample_path": str(path),
            "builtin": folder == BUILTIN,
            "pitch_hz": round(estimate_pitch(audio, rate), 1),
            "rate": round(estimate_rate(audio, rate), 3),
            "speaker": json.dumps([round(float(x), 5) for x in speaker]),
        }
        return meta, audio

    def _store(self, collection: Collection, ids: list[str], descriptions: list[str], metas: list[Any]) -> None:
        """One upsert for many voices: each write of a persistent Chroma is a transaction."""
        if ids:
            vectors = self._embedder.embed(descriptions)
            collection.upsert(ids=ids, documents=descriptions, metadatas=metas, embeddings=vectors)  # type: ignore[arg-type]

    # Built-ins

    def ensure_builtins(self) -> int:
        """Render the catalogue's voices not yet in the data dir (all, on a first start); how many were."""
        collection = self._collection(BUILTIN_COLLECTION)
        have = {voice.id: voice for voice, _ in self._records(collection)}
        wanted = {entry.id for entry in self.catalogue}
        stale = [voice_id for voice_id in have if voice_id not in wanted]
        if stale:
            collection.delete(ids=stale)
        todo = [
            entry
            for entry in self.catalogue
            if not (
                (known := have.get(entry.id))
                and (known.description, known.name) == (entry.description, entry.name)
                and Path(known.sample_path).is_file()
            )
        ]
        metas = [self._render(entry.id, parse_voice_id(entry.id), entry.name, BUILTIN)[0] for entry in todo]
        self._store(collection, [e.id for e in todo], [e.description for e in todo], metas)
        return len(todo)

    # Reading

    def list_voices(self, tenant: str) -> list[Voice]:
        """The built-ins in catalogue order, then the tenant's own voices by name."""
        order = {entry.id: i for i, entry in enumerate(self.catalogue)}
        builtins = [v for v, _ in self._records(self._collection(BUILTIN_COLLECTION))]
        builtins.sort(key=lambda v: order.get(v.id, len(order)))
        return builtins + self.own_voices(tenant)

    def own_voices(self, tenant: str) -> list[Voice]:
        """The voices the tenant added, by name (the built-ins not listed)."""
        return [voice for voice, _, _ in self._tenant_records(tenant)]

    def count_own(self, tenant: str) -> int:
        """The voices the tenant added (the built-ins not counted): its registrations of voices."""
        return len(self._registrations.list(tenant, VOICE_KIND))

    def get(self, tenant: str, voice_id: str) -> Voice | None:
        return next((voice for voice in self.list_voices(tenant) if voice.id == voice_id), None)

    def sample_wav(self, voice_id: str | None, tenant: str | None = None) -> bytes | None:
        """The sample clip of a built-in voice or `tenant`'s own, None if it has none.

        A tenant's voice added on another replica has no sample here yet: it is rendered
        from the voice's id and kept. Without a tenant any tenant's clip this replica holds
        is found (the id is the voice): this is the Step-Audio 2 planner's `voice_clip` for
        the session voice, which token2wav copies.
        """
        if not voice_id:
            return None
        folder = self._tenant_folder(tenant) if tenant is not None else None
        slug = _slug(voice_id)
        anyone = sorted(self.samples_dir.glob(f"*/{slug}.wav")) if tenant is None else []
        for path in [self.samples_dir / BUILTIN / f"{slug}.wav", *anyone]:
            if path.is_file():
                return path.read_bytes()
        if tenant is None or folder is None:
            return None
        voice = next((v for v, _, _ in self._tenant_records(tenant) if v.id == voice_id), None)
        if voice is None:
            return None
        path = Path(voice.sample_path)
        if not path.is_file():
            self._render(voice.id, parse_voice_id(voice.id), voice.name, folder)
        return path.read_bytes()

    # Search

    def search(self, tenant: str, description: str, top_k: int = 3) -> list[VoiceHit]:
        """Voices whose descriptions are nearest to `description`, best first."""
        [query] = self._embedder.embed([description])
        wanted = _words(description)
        hits: list[VoiceHit] = []
        collection = self._collection(BUILTIN_COLLECTION)
        if count := collection.count():
            got = collection.query(
                query_embeddings=np.asarray([query], dtype=np.float32),
                n_results=count,
                include=["documents", "metadatas", "distances"],
            )
            documents, metas = (got["documents"] or [[]])[0], (got["metadatas"] or [[]])[0]
            distances = (got["distances"] or [[]])[0]
            for voice_id, document, meta, distance in zip(got["ids"][0], documents, metas, distances, strict=True):
                bonus = _KEYWORD_BONUS * len(wanted & _words(document or ""))
                hits.append(VoiceHit(self._voice(voice_id, document or "", meta), 1.0 - float(distance) + bonus))
        unit = _unit(query)
        for voice, _, embedding in self._tenant_records(tenant):  # cosine, as Chroma's collection measures
            bonus = _KEYWORD_BONUS * len(wanted & _words(voice.description))
            hits.append(VoiceHit(voice, float(unit @ embedding) + bonus))
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:top_k]

    def search_by_example(self, tenant: str, audio: np.ndarray, sample_rate: int, top_k: int = 3) -> list[VoiceHit]:
        """Voices whose samples' speaker embeddings are nearest to the voice in `audio`."""
        query = self._speaker.embed(_checked(audio, sample_rate), sample_rate)
        return self._nearest(query, self._all(tenant), top_k)

    def _all(self, tenant: str) -> list[tuple[Voice, np.ndarray]]:
        own = [(voice, speaker) for voice, speaker, _ in self._tenant_records(tenant)]
        return self._records(self._collection(BUILTIN_COLLECTION)) + own

    @staticmethod
    def _nearest(query: np.ndarray, records: list[tuple[Voice, np.ndarray]], top_k: int) -> list[VoiceHit]:
        hits = [VoiceHit(voice, float(query @ speaker)) for voice, speaker in records]
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:top_k]

    # Adding

    def add(self, tenant: str, *, description: str, clip: bytes, name: str | None = None) -> Voice:
        """A tenant voice that sounds like `clip`: the nearest built-in timbre at the clip's pitch and pace."""
        audio = _checked(decode_audio(clip, max_seconds=120), 16_000)
        rate = 16_000
        f0 = estimate_pitch(audio, rate)
        if f0 <= 0:
            raise VoiceSampleError(_NO_PITCH)
        bases = [(v, s) for v, s in self._records(self._collection(BUILTIN_COLLECTION)) if v.pitch_hz > 0]
        neutral = [(v, s) for v, s in bases if v.parameters["pitch"] == 1 and v.parameters["rate"] == 1] or bases
        [nearest] = self._nearest(self._speaker.embed(audio, rate), neutral, 1)
        base = nearest.voice
        pitch = _clamp(f0 / base.pitch_hz)
        pace = _clamp(estimate_rate(audio, rate) / base.rate) if base.rate > 0 else 1.0
        style = VoiceStyle(base.engine, str(base.parameters["voice"]), pitch, pace)
        style = parse_voice_id(style.id)  # rounded as the id says, so the sample is what the id speaks
        meta, _ = self._render(style.id, style, name or description[:40], self._tenant_folder(tenant))
        voice = self._voice(style.id, description, meta)
        [embedding] = self._embedder.embed([description])
        self._keep(tenant, voice, json.loads(meta["speaker"]), embedding)
        return voice


def _unit(vector: Any) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def _clamp(factor: float) -> float:
    return min(max(factor, _FACTOR_LIMITS[0]), _FACTOR_LIMITS[1])


def _checked(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    seconds = audio.size / sample_rate
    if seconds < _MIN_SAMPLE_S:
        raise VoiceSampleError(_SHORT_SAMPLE.format(seconds=seconds, least=_MIN_SAMPLE_S))
    return audio
