"""Understanding what a citizen says: a rating, how sure, reasons, praise and opt-out.

An officer's record depends on how a reply is read, so this is deterministic and
explainable: no model, no network, one rules file (`sms/understand/understanding.toml`)
that ops can edit, and every `Understanding` lists the rule firings that decided it and
the kinds of evidence (`cues`) it rests on. The same `understand()` reads SMS replies
and a citizen's side of a call transcript (Vosk's spaces between words change nothing).

The one error that matters most is an unsatisfied citizen read as satisfied: the
survey closes and nobody calls back. So the reader is asymmetric (a complaint beside
praise is never read as satisfied, see `sms.understand.decide`) and says how sure it is
(`confidence`); a reply it cannot settle is `clarify`: worth one more question.

The steps: `sms.understand.text` normalises the spelling (full-width, traditional,
pinyin and English words, 选三 → 3); `sms.understand.scan` corrects sound-alike typos
(满衣 → 满意) and finds the words, digits, negations, contrasts and corrections;
`sms.understand.decide` weighs them; `sms.understand.reading.understand` runs the steps
and bounds the result. Those modules are compiled by mypyc when `make reader` has built
them for the sources as they are (`sms.compiled`; `COMPILED` says so), and
read as Python otherwise: the same readings, at about three quarters of the speed.
"""

from __future__ import annotations

from typing import Final

from sms.compiled import use

# Before any module of the reader is imported: its compiled build, if current, comes
# first on this package's path (sms.compiled).
COMPILED: Final = use(__path__, __name__)

from sms.understand.reading import understand  # noqa: E402
from sms.understand.rules import Confidence, Rating, Rules  # noqa: E402
from sms.understand.rules.load import default_rules, load_rules  # noqa: E402
from sms.understand.understanding import Understanding  # noqa: E402

__all__ = [
    "Confidence",
    "Rating",
    "Rules",
    "Understanding",
    "default_rules",
    "load_rules",
    "understand",
]
