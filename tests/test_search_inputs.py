"""`vadlib search` on bad cached features: NaN never drops a video silently."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vadlib.errors import DataError
from vadlib.search import collection_store, collection_videos, search


def _clip(folder, value):
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(6):
        img = np.full((32, 32, 3), value, np.uint8)
        img[:, : 4 * t + 4] = 255 - value
        cv2.imwrite(str(folder / f"{t:03d}.png"), img)


@pytest.mark.parametrize("poison", ["one_row", "all"])
def test_nan_in_a_cached_feature_file_is_an_error_naming_it(tiny_backbone, tmp_path, poison):
    col = tmp_path / "col"
    _clip(col / "a", 10)
    _clip(col / "b", 200)
    name, vids = collection_videos(str(col))
    store = collection_store(name, vids, tiny_backbone, tmp_path / "feats", every=2, progress=False)
    assert len(search(["a bright stripe"], store, vids, tiny_backbone, top_k=3)) > 0
    f = store.path / store.meta("b")["file"]
    arr = np.load(f)
    if poison == "all":
        arr[:] = np.nan
    else:
        arr[1, 3] = np.nan
    np.save(f, arr)
    again = collection_store(name, vids, tiny_backbone, tmp_path / "feats", every=2, progress=False)
    with pytest.raises(DataError, match=rf"{f.name}: features of video 'b' hold NaN or inf in "
                                        rf"{len(arr) if poison == 'all' else 1} of {len(arr)} rows") as exc:
        search(["a bright stripe"], again, vids, tiny_backbone, top_k=3)
    assert str(f) in str(exc.value) and "delete the feature store" in str(exc.value)
