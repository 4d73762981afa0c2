"""ImageNet-1k: its class names, and the built-in maps from VOC and COCO classes to it.

Built-in maps
-------------

- ``imagenet_to_voc``: all 20 PASCAL VOC classes. The choice of ImageNet classes follows
  the VOC annotation guidelines (bicycle includes tricycles and unicycles, bus includes
  minibuses, car excludes emergency vehicles and trucks, train excludes trams).
- ``person`` (in both maps) is a proxy: ImageNet has no class for people in general,
  only *ballplayer*, *groom* and *scuba diver*, so it also stands for the 26 ImageNet
  classes of clothes worn on the body (*jersey*, *suit*, *jean*, *kimono*, *bikini*,
  *military uniform*, ...), whose maps cover the person wearing them. Accessories (ties,
  hats, sunglasses) are left out: their maps cover a small part of a person. Chosen on
  coco128, which the VOC numbers do not include: with EfficientNet-Lite0 Grad-CAM at 1.5x,
  coco128's person MaxBoxAccV2 goes from 0.224 (the three people classes) to 0.306.
- ``imagenet_to_coco``: the COCO classes that have an ImageNet-1k counterpart, under
  their exact COCO names. Some are approximations: *stop sign* is ImageNet's *street
  sign*, *knife* is *cleaver*, *sandwich* is *cheeseburger*, *wine glass* is *goblet* and
  *red wine*, *oven* is *stove*, *sink* is *washbasin*, *toilet* is *toilet seat*.

No ImageNet-1k class matches these 16 COCO classes, so ``imagenet_to_coco`` leaves them
out (they are listed in ``IMAGENET_TO_COCO_MISSING``):

==================  ====================================================
COCO class          why it is missing
==================  ====================================================
fire hydrant        no counterpart
giraffe             no counterpart
suitcase            no counterpart
frisbee             no counterpart
snowboard           no counterpart
kite                ImageNet's *kite* (index 21) is the bird
baseball bat        no counterpart (*baseball* is the ball)
baseball glove      no counterpart
skateboard          no counterpart
surfboard           no counterpart
fork                no counterpart
carrot              no counterpart
donut               no counterpart (*bagel* is a different object)
cake                no counterpart
scissors            no counterpart
toothbrush          no counterpart
==================  ====================================================
"""

from __future__ import annotations

import functools


@functools.cache
def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, from the metadata of
    torchvision's ImageNet weights (offline: reading it downloads nothing)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


# Indices are ImageNet-1k class indices; each comment names them as torchvision does.
_BIRDS = [
    *range(7, 25),  # cock .. great grey owl
    *range(80, 101),  # black grouse .. black swan
    *range(127, 147),  # white stork .. albatross
]
_DOGS = [*range(151, 269)]  # Chihuahua .. Mexican hairless: the 118 dog breeds
_CATS = [*range(281, 286)]  # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat
_AEROPLANES = [404, 895, 908]  # airliner, warplane, wing
_BOATS = [
    403,  # aircraft carrier
    472,  # canoe
    484,  # catamaran
    510,  # container ship
    554,  # fireboat
    576,  # gondola
    625,  # lifeboat
    628,  # liner
    724,  # pirate
    780,  # schooner
    814,  # speedboat
    833,  # submarine
    871,  # trimaran
    914,  # yawl
]
_BOTTLES = [440, 720, 737, 898, 907]  # beer, pill, pop, water, wine bottle
_BUSES = [654, 779, 874]  # minibus, school bus, trolleybus
_CARS = [
    436,  # beach wagon
    468,  # cab
    511,  # convertible
    609,  # jeep
    627,  # limousine
    656,  # minivan
    661,  # Model T
    751,  # racer
    817,  # sports car
]
_CHAIRS = [423, 559, 765, 857]  # barber chair, folding chair, rocking chair, throne
_COWS = [345, 346, 347]  # ox, water buffalo, bison
_HORSES = [339, 603]  # sorrel, horse cart
_MOTORBIKES = [665, 670]  # moped, motor scooter
_SHEEP = [348, 349]  # ram, bighorn
_TRAINS = [
    466,  # bullet train
    547,  # electric locomotive
    565,  # freight car
    705,  # passenger car
    820,  # steam locomotive
]
_SCREENS = [527, 664, 782, 851]  # desktop computer, monitor, screen, television
_PEOPLE = [
    981,  # ballplayer
    982,  # groom
    983,  # scuba diver
    # Clothes worn on the body: their maps cover the person wearing them.
    *(399, 400, 411, 445, 465, 474, 501, 568, 578, 601, 608, 610, 614, 617),
    # abaya, academic gown, apron, bikini, bulletproof vest, cardigan, cloak, fur coat,
    # gown, hoopskirt, jean, jersey, kimono, lab coat
    *(638, 639, 652, 655, 697, 735, 775, 834, 841, 842, 869, 887),
    # maillot, maillot (tank suit), military uniform, miniskirt, pajama, poncho, sarong,
    # suit, sweatshirt, swimming trunks, trench coat, vestment
]

BUILTIN_CLASS_MAPS: dict[str, dict[str, list[int]]] = {
    "imagenet_to_voc": {
        "aeroplane": _AEROPLANES,
        "bicycle": [444, 671, 870, 880],  # bicycle-built-for-two, mountain bike, tri-, unicycle
        "bird": _BIRDS,
        "boat": _BOATS,
        "bottle": _BOTTLES,
        "bus": _BUSES,
        "car": [*_CARS, 717],  # + pickup
        "cat": _CATS,
        "chair": _CHAIRS,
        "cow": _COWS,
        "diningtable": [532],  # dining table
        "dog": _DOGS,
        "horse": _HORSES,
        "motorbike": _MOTORBIKES,
        "person": _PEOPLE,
        "pottedplant": [738],  # pot (flowerpot)
        "sheep": _SHEEP,
        "sofa": [831],  # studio couch
        "train": _TRAINS,
        "tvmonitor": _SCREENS,
    },
    "imagenet_to_coco": {
        "person": _PEOPLE,
        "bicycle": [444, 671],  # bicycle-built-for-two, mountain bike
        "car": [*_CARS, 407, 734],  # + ambulance, police van
        "motorcycle": _MOTORBIKES,
        "airplane": _AEROPLANES,
        "bus": _BUSES,
        "train": [*_TRAINS, 829],  # + streetcar
        "truck": [
            555,  # fire engine
            569,  # garbage truck
            675,  # moving van
            717,  # pickup
            864,  # tow truck
            867,  # trailer truck
        ],
        "boat": _BOATS,
        "traffic light": [920],
        "stop sign": [919],  # street sign
        "parking meter": [704],
        "bench": [703],  # park bench
        "bird": _BIRDS,
        "cat": _CATS,
        "dog": _DOGS,
        "horse": _HORSES,
        "sheep": _SHEEP,
        "cow": _COWS,
        "elephant": [101, 385, 386],  # tusker, Indian elephant, African elephant
        "bear": [294, 295, 296, 297, 388],  # brown, American black, ice, sloth bear, giant panda
        "zebra": [340],
        "backpack": [414],
        "umbrella": [879],
        "handbag": [748],  # purse
        "tie": [451, 457, 906],  # bolo tie, bow tie, Windsor tie
        "skis": [795],  # ski
        "sports ball": [
            429,  # baseball
            430,  # basketball
            522,  # croquet ball
            574,  # golf ball
            722,  # ping-pong ball
            768,  # rugby ball
            805,  # soccer ball
            852,  # tennis ball
            890,  # volleyball
        ],
        "tennis racket": [752],  # racket
        "bottle": _BOTTLES,
        "wine glass": [572, 966],  # goblet, red wine
        "cup": [441, 504, 968],  # beer glass, coffee mug, cup
        "knife": [499],  # cleaver
        "spoon": [910],  # wooden spoon
        "bowl": [659, 809],  # mixing bowl, soup bowl
        "banana": [954],
        "apple": [948],  # Granny Smith
        "sandwich": [933],  # cheeseburger
        "orange": [950],
        "broccoli": [937],
        "hot dog": [934],  # hotdog
        "pizza": [963],
        "chair": _CHAIRS,
        "couch": [831],  # studio couch
        "potted plant": [738],  # pot (flowerpot)
        "bed": [564],  # four-poster
        "dining table": [532],
        "toilet": [861],  # toilet seat
        "tv": _SCREENS,
        "laptop": [620, 681],  # laptop, notebook (computer)
        "mouse": [673],  # (computer) mouse
        "remote": [761],  # remote control
        "keyboard": [508, 810],  # computer keyboard, space bar
        "cell phone": [487],  # cellular telephone
        "microwave": [651],
        "oven": [827],  # stove
        "toaster": [859],
        "sink": [896],  # washbasin
        "refrigerator": [760],
        "book": [917, 921],  # comic book, book jacket
        "clock": [409, 530, 892],  # analog clock, digital clock, wall clock
        "vase": [883],
        "teddy bear": [850],  # teddy
        "hair drier": [589],  # hand blower
    },
}

IMAGENET_TO_COCO_MISSING: tuple[str, ...] = (
    "fire hydrant",
    "giraffe",
    "suitcase",
    "frisbee",
    "snowboard",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "fork",
    "carrot",
    "donut",
    "cake",
    "scissors",
    "toothbrush",
)
