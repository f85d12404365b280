"""The fast reader builds exactly gguf's fields: every value type, empty and nested arrays."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from converter.gguf_reader import GGUFReader


def _write(path: Path) -> Path:
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_array("t.tokens", ["<s>", "", "héllo", "▁wörld", "\n", "x" * 300])
    writer.add_array("t.scores", [0.5, -1.25, 3.0e9])
    writer.add_array("t.types", [1, 2, 3, 6])
    writer.add_array("t.flags", [True, False, True])
    writer.add_array("t.empty", [])
    writer.add_array("t.nested", [[1, 2], [3]])  # gguf's own code path
    writer.add_string("t.name", "tiny")
    writer.add_uint32("t.count", 7)
    writer.add_tensor("w", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_fields_equal_gguf_s_own_reader(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.gguf")
    theirs, ours = gguf.GGUFReader(path), GGUFReader(path)
    assert list(ours.fields) == list(theirs.fields)
    for name, field in theirs.fields.items():
        mine = ours.fields[name]
        assert (mine.offset, mine.data, mine.types) == (field.offset, field.data, field.types)
        assert [p.tobytes() for p in mine.parts] == [p.tobytes() for p in field.parts], name
        assert [p.dtype for p in mine.parts] == [p.dtype for p in field.parts], name
        assert mine.contents() == field.contents(), name
    assert ours.fields["t.tokens"].contents() == ["<s>", "", "héllo", "▁wörld", "\n", "x" * 300]
    assert ours.data_offset == theirs.data_offset
    np.testing.assert_array_equal(ours.tensors[0].data, theirs.tensors[0].data)


def test_a_truncated_array_is_an_error_not_a_wrong_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.gguf")
    data = path.read_bytes()
    cut = data.index(b"x" * 300) + 10  # inside the last token
    (tmp_path / "cut.gguf").write_bytes(data[:cut])
    with pytest.raises(ValueError):
        GGUFReader(tmp_path / "cut.gguf")
