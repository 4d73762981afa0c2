"""Tests for wsol.class_maps: ImageNet names, the built-in maps and map loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from wsol.models.class_maps import (
    BUILTIN_CLASS_MAPS,
    IMAGENET_TO_COCO_MISSING,
    ClassMapError,
    imagenet_class_names,
    load_class_map,
)

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]  # fmt: skip

COCO_CLASSES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
]  # fmt: skip

# One ImageNet class name that each mapped class must contain: catches shifted indices.
VOC_SPOT_CHECKS = {
    "aeroplane": "airliner", "bicycle": "mountain bike", "bird": "bald eagle",
    "boat": "canoe", "bottle": "wine bottle", "bus": "school bus", "car": "sports car",
    "cat": "Siamese cat", "chair": "folding chair", "cow": "ox", "diningtable": "dining table",
    "dog": "golden retriever", "horse": "sorrel", "motorbike": "moped", "person": "groom",
    "pottedplant": "pot", "sheep": "ram", "sofa": "studio couch", "train": "steam locomotive",
    "tvmonitor": "television",
}  # fmt: skip

COCO_SPOT_CHECKS = {
    "airplane": "warplane", "truck": "garbage truck", "traffic light": "traffic light",
    "stop sign": "street sign", "parking meter": "parking meter", "bench": "park bench",
    "elephant": "African elephant", "bear": "ice bear", "zebra": "zebra",
    "backpack": "backpack", "umbrella": "umbrella", "handbag": "purse", "tie": "Windsor tie",
    "skis": "ski", "sports ball": "soccer ball", "tennis racket": "racket",
    "wine glass": "goblet", "cup": "coffee mug", "knife": "cleaver", "spoon": "wooden spoon",
    "bowl": "soup bowl", "banana": "banana", "apple": "Granny Smith",
    "sandwich": "cheeseburger", "orange": "orange", "broccoli": "broccoli",
    "hot dog": "hotdog", "pizza": "pizza", "couch": "studio couch", "bed": "four-poster",
    "toilet": "toilet seat", "tv": "monitor", "laptop": "laptop", "mouse": "mouse",
    "remote": "remote control", "keyboard": "computer keyboard",
    "cell phone": "cellular telephone", "microwave": "microwave", "oven": "stove",
    "toaster": "toaster", "sink": "washbasin", "refrigerator": "refrigerator",
    "book": "comic book", "clock": "wall clock", "vase": "vase", "teddy bear": "teddy",
    "hair drier": "hand blower", "train": "streetcar", "motorcycle": "motor scooter",
}  # fmt: skip


def _index(name: str) -> int:
    names = imagenet_class_names()
    assert names.count(name) == 1, f"{name!r} is not a unique ImageNet class name"
    return names.index(name)


def _names(indices: list[int]) -> set[str]:
    names = imagenet_class_names()
    return {names[i] for i in indices}


def test_imagenet_class_names() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000
    assert names[151] == "Chihuahua"
    assert names[281] == "tabby"
    assert names[0] == "tench"
    assert names[999] == "toilet tissue"


def test_voc_map_has_exactly_the_voc_classes() -> None:
    assert sorted(BUILTIN_CLASS_MAPS["imagenet_to_voc"]) == sorted(VOC_CLASSES)


def test_voc_dog_cat() -> None:
    voc = BUILTIN_CLASS_MAPS["imagenet_to_voc"]
    assert len(voc["dog"]) == 118
    assert sorted(voc["dog"]) == list(range(151, 269))
    assert sorted(voc["cat"]) == [281, 282, 283, 284, 285]


def test_voc_aeroplane_and_tvmonitor_by_name() -> None:
    voc = BUILTIN_CLASS_MAPS["imagenet_to_voc"]
    for name in ("airliner", "warplane"):
        assert _index(name) in voc["aeroplane"], name
    for name in ("television", "monitor", "screen"):
        assert _index(name) in voc["tvmonitor"], name


@pytest.mark.parametrize(
    ("map_name", "checks"),
    [("imagenet_to_voc", VOC_SPOT_CHECKS), ("imagenet_to_coco", COCO_SPOT_CHECKS)],
)
def test_spot_checks_by_name(map_name: str, checks: dict[str, str]) -> None:
    mapping = BUILTIN_CLASS_MAPS[map_name]
    for cls, imagenet_name in checks.items():
        assert imagenet_name in _names(mapping[cls]), (cls, imagenet_name)


def test_birds_are_birds() -> None:
    bird_names = _names(BUILTIN_CLASS_MAPS["imagenet_to_voc"]["bird"])
    for name in ("ostrich", "great grey owl", "toucan", "black swan", "crane bird"):
        assert name in bird_names, name
    # ImageNet's "kite" (21) is a bird; "crane" (517) is the machine.
    assert "kite" in bird_names
    assert "crane" not in bird_names
    assert "tench" not in bird_names


@pytest.mark.parametrize("map_name", sorted(BUILTIN_CLASS_MAPS))
def test_builtin_maps_are_valid(map_name: str) -> None:
    mapping = BUILTIN_CLASS_MAPS[map_name]
    seen: dict[int, str] = {}
    for cls, indices in mapping.items():
        assert indices, cls
        assert len(set(indices)) == len(indices), cls
        for index in indices:
            assert isinstance(index, int) and 0 <= index < 1000, (cls, index)
            assert index not in seen, f"{index} is under both {seen[index]!r} and {cls!r}"
            seen[index] = cls


def test_coco_map_keys_and_missing() -> None:
    coco = BUILTIN_CLASS_MAPS["imagenet_to_coco"]
    keys = set(coco)
    missing = set(IMAGENET_TO_COCO_MISSING)
    assert len(COCO_CLASSES) == 80
    assert keys <= set(COCO_CLASSES)
    assert "person" in keys  # through the clothes people wear (see wsol.models.imagenet)
    assert "kite" in missing and len(missing) == 16
    assert keys | missing == set(COCO_CLASSES)
    assert not keys & missing
    assert len(IMAGENET_TO_COCO_MISSING) == len(missing)


def test_person_stands_for_people_and_their_clothes() -> None:
    from wsol.models.imagenet import imagenet_class_names

    names = imagenet_class_names()
    for map_name in ("imagenet_to_voc", "imagenet_to_coco"):
        person = [names[i] for i in BUILTIN_CLASS_MAPS[map_name]["person"]]
        assert {"ballplayer", "groom", "scuba diver", "jersey", "suit", "kimono"} <= set(person)
        assert not {"Windsor tie", "sunglasses", "cowboy hat"} & set(person)


def test_coco_missing_is_documented() -> None:
    from wsol.models import class_maps, imagenet

    assert "How mapped classes combine" in (class_maps.__doc__ or "")
    doc = imagenet.__doc__ or ""
    for name in IMAGENET_TO_COCO_MISSING:
        assert name in doc, name


def test_load_builtin_returns_a_copy() -> None:
    loaded = load_class_map("imagenet_to_voc", model_classes=1000)
    assert loaded == BUILTIN_CLASS_MAPS["imagenet_to_voc"]
    assert loaded is not BUILTIN_CLASS_MAPS["imagenet_to_voc"]
    loaded["dog"].append(999)
    loaded["extra"] = [1]
    assert 999 not in BUILTIN_CLASS_MAPS["imagenet_to_voc"]["dog"]
    assert "extra" not in BUILTIN_CLASS_MAPS["imagenet_to_voc"]


def test_load_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("kangaroo: [104]\nbig cat: [286, 287]\n", encoding="utf-8")
    loaded = load_class_map(str(path), model_classes=1000)
    assert loaded == {"kangaroo": [104], "big cat": [286, 287]}
    assert imagenet_class_names()[loaded["kangaroo"][0]] == "wallaby"


def test_load_yaml_int_shorthand(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("kangaroo: 104\n", encoding="utf-8")
    assert load_class_map(str(path)) == {"kangaroo": [104]}


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(ClassMapError, match="imagenet_to_voc") as info:
        load_class_map("imagenet_to_nowhere")
    assert "imagenet_to_coco" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClassMapError, match="neither a built-in map"):
        load_class_map(str(tmp_path / "absent.yaml"))


def test_builtin_checked_against_model_size() -> None:
    with pytest.raises(ClassMapError, match="out of range"):
        load_class_map("imagenet_to_voc", model_classes=10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kangaroo: [1000]\n", "out of range"),
        ("kangaroo: [-1]\n", "out of range"),
        ("kangaroo: []\n", "non-empty list"),
        ("kangaroo: [1.5]\n", "not an integer"),
        ("kangaroo: [true]\n", "not an integer"),
        # A name needs the model's class names, which a bare count does not give.
        ("kangaroo: wallaby\n", "use indices"),
        ("kangaroo: {a: 1}\n", "non-empty list"),
        ("kangaroo: [104, 104]\n", "twice"),
        ("- 104\n", "mapping"),
        ("", "mapping"),
        ("kangaroo: [104\n", "malformed YAML"),
    ],
)
def test_bad_yaml_maps(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ClassMapError, match=message):
        load_class_map(str(path), model_classes=1000)


def test_class_map_error_is_value_error() -> None:
    assert issubclass(ClassMapError, ValueError)


def test_model_classes_may_be_named(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text("aeroplane: [airplane]\nsofa: couch\nmixed: [0, dog]\n")
    names = ["person", "airplane", "couch", "dog"]
    assert load_class_map(str(path), names) == {"aeroplane": [1], "sofa": [2], "mixed": [0, 3]}


def test_unknown_model_class_name_is_a_clear_error(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text("aeroplane: [aeroplane]\n")
    with pytest.raises(ClassMapError, match="no class 'aeroplane'"):
        load_class_map(str(path), ["person", "airplane"])
    with pytest.raises(ClassMapError, match="use indices"):
        load_class_map(str(path), 2)
