"""Built-in class-name lists of the large benchmarks (index = 0-based label).

Sources: NTU RGB+D 60/120 from the dataset's official README (actions A1..A120, trailing periods
dropped); PKU-MMD phase 1 from its `Actions.xlsx` order (ids 1..51); NW-UCLA from the dataset
paper (label 1..10 of the CTR-GCN release, i.e. action files a01..a06, a08, a09, a11, a12).
"""

from __future__ import annotations

from aclnet.errors import InputError

NTU120_CLASSES: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
    "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
    "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
    "hand waving", "kicking something", "put something inside pocket / take out something from pocket",
    "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger",
    "taking a selfie", "check time (from watch)", "rub two hands together", "nod head/bow",
    "shake head", "wipe face", "salute", "put the palms together", "cross hands in front (say stop)",
    "sneeze/cough", "staggering", "falling", "touch head (headache)",
    "touch chest (stomachache/heart pain)", "touch back (backache)", "touch neck (neckache)",
    "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # NTU RGB+D 120 only (A61..A120)
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball",
    "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up",
    "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
    "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
    "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
    "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
    "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
    "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles",
    "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
    "cheers and drink", "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with one's hand (someone is sick, help him to walk)",
    "finger-guessing game (playing rock-paper-scissors)",
)
NTU60_CLASSES: tuple[str, ...] = NTU120_CLASSES[:60]

PKU_MMD_CLASSES: tuple[str, ...] = (
    "bow", "brushing hair", "brushing teeth", "check time (from watch)", "cheer up", "clapping",
    "cross hands in front (say stop)", "drink water", "drop", "eat meal/snack", "falling",
    "giving something to other person", "hand waving", "handshaking", "hopping (one foot jumping)",
    "hugging other person", "jump up", "kicking other person", "kicking something",
    "make a phone call/answer phone", "pat on back of other person", "pickup",
    "playing with phone/tablet", "point finger at the other person",
    "pointing to something with finger", "punching/slapping other person", "pushing other person",
    "put on a hat/cap", "put something inside pocket", "reading", "rub two hands together",
    "salute", "sitting down", "standing up", "take off a hat/cap", "take off glasses",
    "take off jacket", "take out something from pocket", "taking a selfie", "tear up paper",
    "throw", "touch back (backache)", "touch chest (stomachache/heart pain)",
    "touch head (headache)", "touch neck (neckache)", "typing on a keyboard",
    "use a fan (with hand or paper)/feeling warm", "wear jacket", "wear on glasses", "wipe face",
    "writing",
)

NW_UCLA_CLASSES: tuple[str, ...] = (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
    "stand up", "donning", "doffing", "throw", "carry",
)

UTD_MHAD_CLASSES: tuple[str, ...] = (
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave",
    "two hand front clap", "right arm throw", "cross arms in the chest", "basketball shooting",
    "draw x", "draw circle (clockwise)", "draw circle (counter clockwise)", "draw triangle",
    "bowling (right hand)", "front boxing", "baseball swing from right", "tennis forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "knock on door", "hand catch",
    "pick up and throw", "jogging", "walking", "sit to stand", "stand to sit",
    "forward lunge (left foot forward)", "squat",
)

SBU_CLASSES: tuple[str, ...] = (
    "approaching", "departing", "kicking", "punching", "pushing", "hugging", "shaking hands",
    "exchanging objects",
)

_BUILTIN: dict[str, tuple[str, ...]] = {
    "ntu60": NTU60_CLASSES,
    "ntu120": NTU120_CLASSES,
    "pku-mmd": PKU_MMD_CLASSES,
    "nw-ucla": NW_UCLA_CLASSES,
    "utd-mhad": UTD_MHAD_CLASSES,
    "sbu": SBU_CLASSES,
}


def class_names_for(dataset: str) -> list[str]:
    """The class names of a built-in dataset ('ntu60', 'ntu120', 'pku-mmd', 'nw-ucla', 'utd-mhad', 'sbu').

    Case, '_' and '-' are ignored in the name ('NTU_60', 'pkummd' work); unknown names list the valid ones.
    """
    key = dataset.lower().replace("_", "").replace("-", "")
    for name, names in _BUILTIN.items():
        if name.replace("-", "") == key:
            return list(names)
    raise InputError(f"no built-in class names for '{dataset}'; known datasets are {', '.join(_BUILTIN)}")
