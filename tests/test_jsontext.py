"""The prebuilt JSON encoders write exactly what json.dumps writes with the same options."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.jsontext import compact, compact_unicode

VALUES: list[Any] = [
    "plain", "é \u2028 \"quoted\" \\ \n", 0, -7, 10**30, 1.5, 1e16, -0.0, True, False, None,
    [], {}, [1.1, "z", [None, {}]], {"status": "valid", "identifier": {"type": "dns",
                                     "value": "bücher.example"}}, {"n": 1, "a": [0.1]},
    float("inf"),
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_same_text_as_json_dumps(value: Any) -> None:
    assert compact(value) == json.dumps(value, separators=(",", ":"))
    assert compact_unicode(value) == json.dumps(value, separators=(",", ":"),
                                                ensure_ascii=False)


def test_values_json_cannot_hold_are_refused() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        compact({"when": object()})
    with pytest.raises(TypeError):
        compact({(1, 2): "tuple key"})


def test_encoders_can_be_used_again_after_a_refusal() -> None:
    with pytest.raises(TypeError):
        compact([object()])
    assert compact({"a": [1]}) == '{"a":[1]}'
