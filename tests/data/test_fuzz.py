"""Property tests: no input makes the readers crash with anything but their own errors."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsol.data.coco import load_coco
from wsol.data.loader import DecodeError, decode_image
from wsol.data.voc import AnnotationError, parse_voc_xml

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

JPEG_HEAD = bytes.fromhex("ffd8ffe000104a46494600010100000100010000")
PNG_HEAD = bytes.fromhex("89504e470d0a1a0a")


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.binary(max_size=2048).map(lambda b: JPEG_HEAD + b),
        st.binary(max_size=2048).map(lambda b: PNG_HEAD + b),
    )
)
def test_random_bytes_never_crash_the_decoder(tmp_path, data):
    p = tmp_path / "x.jpg"
    p.write_bytes(data)
    try:
        pixels, size = decode_image(p, max_side=64)
    except DecodeError as e:
        assert str(e)
    else:
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and min(size) >= 1


_xml_piece = st.sampled_from(
    [
        "<annotation>",
        "</annotation>",
        "<object>",
        "</object>",
        "<name>cat</name>",
        "<name/>",
        "<bndbox>",
        "</bndbox>",
        "<xmin>1</xmin>",
        "<ymin>x</ymin>",
        "<xmax>5.5</xmax>",
        "<ymax>9</ymax>",
        "<size><width>10</width><height>a</height></size>",
        "<difficult>1",
        "</difficult>",
        "&amp;",
        "<",
        ">",
        "text",
        "\x00",
    ]
)


@FUZZ
@given(st.one_of(st.text(max_size=300), st.lists(_xml_piece, max_size=30).map("".join)))
def test_random_xml_gives_a_parse_or_an_annotation_error(text):
    try:
        out = parse_voc_xml(text)
    except AnnotationError as e:
        assert str(e)
    else:
        assert isinstance(out["objects"], list)
        for o in out["objects"]:
            assert o["box"].shape == (4,)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "images",
                    "annotations",
                    "categories",
                    "name",
                    "image_id",
                    "category_id",
                    "bbox",
                    "file_name",
                    "iscrowd",
                    "height",
                    "width",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@FUZZ
@given(_json)
def test_random_coco_json_gives_a_dataset_or_an_annotation_error(tmp_path, doc):
    p = tmp_path / "a.json"
    p.write_text(json.dumps(doc))
    try:
        ds = load_coco(tmp_path, p)
    except AnnotationError as e:
        assert str(e)
    else:
        assert all(s.boxes.shape[1] == 4 for s in ds.samples)
